"""``BEVFormerNuScenesDataset``: nuScenes in scene order with BEVFormer's CAN-bus fields and
its training queue of previous frames."""
import copy
import math
import random
from typing import List, Optional

import numpy as np
import torch


from mmdet3d.datasets import NuScenesDataset
from mmdet3d.registry import DATASETS


def can_bus_from_pose(can_bus, ego2global) -> np.ndarray:
    """BEVFormer's ``get_data_info``: ``can_bus[:3]`` = ego translation, ``[3:7]`` = ego
    rotation quaternion (w, x, y, z), ``[-2]`` = ego yaw in radians in [0, 2 pi),
    ``[-1]`` the same in degrees. ``ego2global`` is a ``(4, 4)`` matrix."""
    from pyquaternion import Quaternion
    m = np.asarray(ego2global, dtype=np.float64)
    out = np.zeros(18) if can_bus is None else np.array(can_bus, dtype=np.float64).copy()
    if out.shape != (18, ):
        raise ValueError(f'can_bus must have 18 values, got shape {out.shape}')
    q = Quaternion(matrix=m[:3, :3], rtol=1e-5, atol=1e-5)
    out[:3] = m[:3, 3]
    out[3:7] = q.elements
    yaw = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    if yaw < 0:
        yaw += 360
    out[-2] = yaw / 180 * math.pi
    out[-1] = yaw
    return out


@DATASETS.register_module()
class BEVFormerNuScenesDataset(NuScenesDataset):
    """nuScenes for BEVFormer.

    * The samples are ordered by scene (first appearance in the info file) and
      ``frame_idx``, so that a sequential test loader delivers every scene in order (the
      model's prev-BEV cache needs it; ``sample_idx`` keeps pointing into the info file, so
      ``NuScenesMetric`` is unaffected).
    * ``can_bus`` is completed from ``ego2global`` (see :func:`can_bus_from_pose`).
    * Training (``test_mode=False``) with ``queue_length = T > 1``: like upstream, ``T - 1``
      of the ``T`` previous dataset entries are drawn at random (sorted; index 0 where
      negative) and the pipeline runs on each. ``inputs['img']`` becomes ``(T, N, 3, H, W)``
      (oldest first) and the current frame's data sample gets ``queue_metas``: the history
      frames' metainfo. Frames of another scene are reset by the model (scene token).

    Args:
        queue_length (int): Frames per training sample (4 base, 3 small/tiny).
        **kwargs: :class:`mmdet3d.datasets.NuScenesDataset` arguments.
    """

    def __init__(self, *args, queue_length: int = 4, **kwargs):
        if int(queue_length) < 1:
            raise ValueError(f'queue_length {queue_length} must be >= 1')
        self.queue_length = int(queue_length)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        first = {}
        for i, info in enumerate(data_list):
            for key in ('scene_token', 'frame_idx', 'can_bus', 'ego2global'):
                if key not in info:
                    raise KeyError(f'BEVFormerNuScenesDataset needs {key!r} in every info '
                                   f'(token {info.get("token")!r} lacks it); make the info '
                                   'files with tools/create_data.py')
            first.setdefault(info['scene_token'], i)
        data_list.sort(key=lambda d: (first[d['scene_token']], int(d['frame_idx'])))
        return data_list

    def parse_data_info(self, info: dict):
        info = super().parse_data_info(info)
        info['can_bus'] = can_bus_from_pose(info.get('can_bus'), info['ego2global'])
        return info

    def queue_indices(self, idx: int) -> List[int]:
        """Upstream's draw: ``T - 1`` of the ``T`` previous indices, sorted, then ``idx``."""
        cands = list(range(idx - self.queue_length, idx))
        random.shuffle(cands)
        return [max(0, i) for i in sorted(cands[1:])] + [idx]

    def prepare_data(self, idx: int) -> Optional[dict]:
        if self.test_mode or self.queue_length == 1:
            return super().prepare_data(idx)
        frames = []
        for i in self.queue_indices(idx):
            example = super().prepare_data(i)
            if example is None:
                return None
            frames.append(example)
        cur = frames[-1]
        cur['data_samples'].set_metainfo(dict(
            queue_metas=[copy.copy(f['data_samples'].metainfo) for f in frames[:-1]]))
        cur['inputs']['img'] = torch.stack([f['inputs']['img'] for f in frames])
        return cur
