"""Camera BEV detectors for MMDetection3D 1.x.

Importing this package registers every model component in mmdet3d's
registries (configs: ``custom_imports = dict(imports=['ptqat.models'])``).
"""
from . import bevdet  # noqa: F401
from .bevdet import *  # noqa: F401,F403
from .bevdepth4d import *  # noqa: F401,F403
from .detr3d import *  # noqa: F401,F403
from .bevformer import *  # noqa: F401,F403
from .sparsebev import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
