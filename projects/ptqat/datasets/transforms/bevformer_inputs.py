"""``LoadBEVFormerImages``: the six camera images + ``lidar2img`` for BEVFormer."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mmdet3d.registry import TRANSFORMS


def lidar2img_matrix(cam2img, lidar2cam, scale: float = 1.0) -> np.ndarray:
    """``(4, 4)`` LiDAR -> pixel matrix ``diag(s, s, 1, 1) @ viewpad(K) @ lidar2cam``."""
    viewpad = np.eye(4)
    k = np.asarray(cam2img, dtype=np.float64)
    viewpad[:k.shape[0], :k.shape[1]] = k
    m = viewpad @ np.asarray(lidar2cam, dtype=np.float64)
    m[:2] *= scale
    return m


@TRANSFORMS.register_module()
class LoadBEVFormerImages(BaseTransform):
    """Load the camera images of one frame, rescale, pad, and compute ``lidar2img``.

    Reads ``results['images'][cam]`` (``img_path``, ``cam2img``, ``lidar2cam``) of a parsed
    mmdet3d v2 info. Writes ``img`` (list of N float32 ``(H', W', 3)`` BGR arrays, ``H' x W'``
    the scaled size padded to ``size_divisor``), ``lidar2img (N, 4, 4)`` (pixels of the
    scaled image), ``img_shape`` (scaled, per camera), ``pad_shape`` (padded, per camera),
    ``ori_shape``, ``num_views``, ``cam_names``.

    Args:
        scale (float): Image scale (upstream ``RandomScaleImageMultiViewImage``: 1 for
            base, 0.8 small, 0.5 tiny).
        size_divisor (int): Pad H and W up to a multiple (0: no padding).
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self, scale: float = 1.0, size_divisor: int = 32,
                 backend_args: Optional[dict] = None):
        if scale <= 0:
            raise ValueError(f'LoadBEVFormerImages: scale {scale} must be > 0')
        if size_divisor < 0:
            raise ValueError(f'LoadBEVFormerImages: size_divisor {size_divisor} must be >= 0')
        self.scale, self.size_divisor, self.backend_args = scale, size_divisor, backend_args

    def transform(self, results: dict) -> dict:
        images = results.get('images')
        if not images:
            raise KeyError("LoadBEVFormerImages needs results['images'] (mmdet3d v2 infos "
                           'with camera modality)')
        imgs, mats, shapes, ori = [], [], [], []
        for cam, item in images.items():
            img = mmcv.imfrombytes(get(item['img_path'], backend_args=self.backend_args),
                                   flag='color').astype(np.float32)
            ori.append(img.shape[:2])
            if self.scale != 1.0:
                h, w = img.shape[:2]
                img = mmcv.imresize(img, (int(w * self.scale), int(h * self.scale)),
                                    return_scale=False)
            shapes.append(img.shape[:2])
            if self.size_divisor:
                img = mmcv.impad_to_multiple(img, self.size_divisor, pad_val=0)
            imgs.append(img)
            mats.append(lidar2img_matrix(item['cam2img'], item['lidar2cam'], self.scale))
        results['img'] = imgs
        results['lidar2img'] = np.stack(mats).astype(np.float32)
        results['img_shape'] = shapes
        results['ori_shape'] = ori
        results['pad_shape'] = [im.shape[:2] for im in imgs]
        results['num_views'] = len(imgs)
        results['cam_names'] = list(images.keys())
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale}, size_divisor={self.size_divisor})'
