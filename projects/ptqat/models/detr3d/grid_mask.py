"""``GridMask`` image augmentation (DETR3D / BEVFormer), in pure torch/numpy."""
import numpy as np
import torch
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module()
class GridMask(nn.Module):
    """Zero (or keep) a random rotated grid of square patches, training only.

    Defaults are BEVFormer's ``GridMask(True, True, rotate=1, offset=False,
    ratio=0.5, mode=1, prob=0.7)``.  In eval mode, or with probability
    ``1 - prob``, the input is returned unchanged.

    Args:
        use_h, use_w (bool): Mask stripes along H / W.
        rotate (int): Max rotation of the grid in degrees (drawn in ``[0, rotate)``).
        offset (bool): Fill masked pixels with noise instead of 0.
        ratio (float): Stripe width as a fraction of the period.
        mode (int): 1 inverts the mask (keep the grid, drop the rest).
        prob (float): Probability of applying the mask.
    """

    def __init__(self, use_h: bool = True, use_w: bool = True, rotate: int = 1,
                 offset: bool = False, ratio: float = 0.5, mode: int = 1, prob: float = 0.7):
        super().__init__()
        self.use_h, self.use_w, self.rotate, self.offset = use_h, use_w, rotate, offset
        self.ratio, self.mode, self.prob = ratio, mode, prob

    def make_mask(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """An ``(h, w)`` float mask with 1 = keep."""
        hh = int(1.5 * h)
        ww = int(1.5 * w)
        d = int(rng.integers(2, max(3, min(h, w))))
        length = min(max(int(d * self.ratio + 0.5), 1), d - 1)
        mask = np.ones((hh, ww), np.float32)
        st_h = int(rng.integers(0, d))
        st_w = int(rng.integers(0, d))
        if self.use_h:
            for i in range(hh // d):
                s = d * i + st_h
                mask[s:min(s + length, hh), :] = 0
        if self.use_w:
            for i in range(ww // d):
                s = d * i + st_w
                mask[:, s:min(s + length, ww)] = 0
        angle = float(rng.uniform(0, self.rotate)) if self.rotate > 0 else 0.0
        if angle:
            from .rotate import rotate_nearest_np
            mask = rotate_nearest_np(mask, angle)
        mask = mask[(hh - h) // 2:(hh - h) // 2 + h, (ww - w) // 2:(ww - w) // 2 + w]
        if self.mode == 1:
            mask = 1 - mask
        return mask

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` images -> same shape, masked (training only)."""
        if not self.training or np.random.rand() > self.prob:
            return x
        n, c, h, w = x.shape
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        mask = torch.from_numpy(self.make_mask(h, w, rng)).to(x)
        mask = mask.view(1, 1, h, w)
        if self.offset:
            noise = torch.from_numpy(2 * (rng.random((h, w)) - 0.5)).to(x)
            return x * mask + noise * (1 - mask)
        return x * mask
