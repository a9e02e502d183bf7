"""Convert a released BEVFormer checkpoint (mmdet3d 0.17 box convention) to mmdet3d 1.x.

mmdet3d 1.x changed the LiDAR box dims from (w, l, h) to (x_size, y_size, z_size) = (l, w, h)
and the yaw to ``yaw_new = -yaw_old - pi/2`` (so ``sin_new = -cos_old``, ``cos_new =
-sin_old``). The head's box code is ``(cx, cy, w, l, cz, h, sin, cos, vx, vy)``, so the last
Linear of every ``reg_branches`` gets rows 2 and 3 swapped and rows 6, 7 replaced by
``-rows 7, 6`` (weight and bias; as mmdet3d 1.4's ``projects/DETR3D/old_detr3d_converter.py``).
Centres, velocity, the encoder and the class channels (0.x class order, which the configs
keep) are unchanged. Pure torch.
"""
import re
from typing import Dict, List, Tuple

import torch
from torch import Tensor

#: meta key marking a converted checkpoint (a second conversion would undo the first)
CONVERTED_MARK = 'ptqat_box_convention'
REG_OUT = re.compile(r'(^|\.)pts_bbox_head\.reg_branches\.\d+\.(\d+)\.(weight|bias)$')


def convert_reg_rows(t: Tensor) -> Tensor:
    """``(10, ...)`` rows of the box code, old -> new convention (a new tensor)."""
    if t.shape[0] != 10:
        raise ValueError(f'expected 10 box-code rows, got shape {tuple(t.shape)}')
    return torch.cat([t[0:2], t[3:4], t[2:3], t[4:6], -t[7:8], -t[6:7], t[8:10]], 0)


def convert_bevformer_state_dict(state_dict: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor],
                                                                        List[str]]:
    """Return the converted copy and the names of the changed tensors.

    Raises ValueError if no ``reg_branches`` output layer (first dim 10) is found.
    """
    out, changed = dict(state_dict), []
    for key, value in state_dict.items():
        if REG_OUT.search(key) and torch.is_tensor(value) and value.shape[0] == 10:
            out[key] = convert_reg_rows(value)
            changed.append(key)
    if not changed:
        raise ValueError('no pts_bbox_head.reg_branches.<i>.<j>.weight/bias with 10 output rows '
                         'found: is this a BEVFormer checkpoint?')
    return out, changed
