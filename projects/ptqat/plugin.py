"""Import everything that registers into the mmdet3d registries (models, transforms, engine).

Configs say ``custom_imports = dict(imports=['ptqat.plugin'], allow_failed_imports=False)``.
``import ptqat`` itself stays light so that ``ptqat.quant`` works without OpenMMLab.
"""
import ptqat.checkpoint_compat  # noqa: F401
import ptqat.datasets.bevformer_nuscenes  # noqa: F401
import ptqat.datasets.sequential_nuscenes  # noqa: F401
import ptqat.datasets.transforms  # noqa: F401
import ptqat.engine  # noqa: F401
import ptqat.evaluation  # noqa: F401  (Occ3DMetric, BEVMapSegMetric)
import ptqat.evaluation.nuscenes_metric  # noqa: F401
import ptqat.models  # noqa: F401
