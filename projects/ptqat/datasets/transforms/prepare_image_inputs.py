"""BEVDet's ``PrepareImageInputs``: multi-view images + camera matrices + image-view augmentation.

Port (clean-room, from the description of upstream BEVDet dev3.0) to mmdet3d 1.x / the
``ptqat`` v2 info files (see :mod:`ptqat.datasets.nuscenes_infos`).
"""
from __future__ import annotations

import io
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get as fileio_get
from PIL import Image

from mmdet3d.registry import TRANSFORMS

#: BEVDet's camera order; camera 0 (CAM_FRONT_LEFT) defines the key-ego frame.
BEVDET_CAMS = ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_BACK_LEFT', 'CAM_BACK',
               'CAM_BACK_RIGHT')


def img_aug_matrix(resize: float, crop: Sequence[int], flip: bool,
                   rotate: float) -> Tuple[np.ndarray, np.ndarray]:
    """The 2-D image augmentation as ``pixel' = post_rot @ pixel + post_tran``.

    Upstream BEVDet's convention (pixel = integer index, the ≤ 1 px half-pixel offsets of
    PIL's resize / flip / rotate are ignored, exactly as the official models were trained):

    1. resize: ``p * resize``;
    2. crop: ``p - (crop[0], crop[1])``;
    3. horizontal flip: ``x -> (crop[2] - crop[0]) - x``;
    4. rotation by ``rotate`` degrees (counter-clockwise on screen, PIL's ``Image.rotate``)
       about the crop centre ``((crop[2] - crop[0]) / 2, (crop[3] - crop[1]) / 2)``.

    Returns:
        ``post_rot`` (3, 3) and ``post_tran`` (3,), float64; the 3rd row/entry are
        ``[0, 0, 1]`` / ``0`` so that the depth of a frustum point ``(u, v, d)`` is untouched.
    """
    rot = np.eye(2) * resize
    tran = -np.asarray(crop[:2], dtype=np.float64)
    if flip:
        a = np.array([[-1.0, 0.0], [0.0, 1.0]])
        b = np.array([crop[2] - crop[0], 0.0])
        rot = a @ rot
        tran = a @ tran + b
    h = rotate / 180.0 * math.pi
    a = np.array([[math.cos(h), math.sin(h)], [-math.sin(h), math.cos(h)]])
    b = np.array([crop[2] - crop[0], crop[3] - crop[1]], dtype=np.float64) / 2
    b = a @ -b + b
    rot = a @ rot
    tran = a @ tran + b
    post_rot = np.eye(3)
    post_rot[:2, :2] = rot
    post_tran = np.zeros(3)
    post_tran[:2] = tran
    return post_rot, post_tran


@TRANSFORMS.register_module()
class PrepareImageInputs(BaseTransform):
    """Load the multi-view images, augment them and produce BEVDet's camera tensors.

    Required keys (mmdet3d v2 info as parsed by ``NuScenesDataset`` with camera modality):
    ``images[cam]``: ``img_path`` (with ``data_prefix`` joined), ``cam2img`` (3×3),
    ``cam2ego`` (4×4), ``ego2global`` (4×4, ego pose **at the camera's timestamp**, added by
    :mod:`ptqat.datasets.nuscenes_infos`).

    Added keys (``N = len(cams)``, in the order of ``cams``):

    ================ ============================ ==============================================
    key              type, shape                  meaning
    ================ ============================ ==============================================
    img              uint8 ndarray (N, 3, H, W)   augmented RGB images, ``(H, W) = input_size``
    sensor2egos      float32 (N, 4, 4)            camera -> ego (``cam2ego``)
    ego2globals      float32 (N, 4, 4)            ego -> global at each camera's timestamp
    sensor2keyegos   float32 (N, 4, 4)            camera -> key ego, ``inv(ego2global[0]) @
                                                  ego2global @ sensor2ego`` (float64 maths;
                                                  only if ``with_sensor2keyego``)
    intrins          float32 (N, 3, 3)            ``cam2img`` of the *original* image
    post_rots        float32 (N, 3, 3)            image augmentation, see
    post_trans       float32 (N, 3)               :func:`img_aug_matrix`:
                                                  ``pixel' = post_rot @ pixel + post_tran``
    key_cam          str                          ``cams[0]`` (defines the key-ego frame)
    cam_names        list[str]                    ``cams``
    img_path         list[str]                    image files, ``cams`` order
    img_shape        (H, W)                       network input size
    ori_shape        (H0, W0)                     original image size (of camera 0)
    img_aug_params   list[dict]                   per camera ``resize``, ``crop`` (x0, y0, x1,
                                                  y1), ``flip``, ``rotate`` (degrees)
    num_views        int                          ``N``
    ================ ============================ ==============================================

    Augmentation, sampled independently per camera (upstream BEVDet):

    * train: ``resize = W_in / W0 + U(*resize)`` (additive), image resized to
      ``(int(W0 * resize), int(H0 * resize))``; crop of ``input_size`` whose top is
      ``int((1 - U(*crop_h)) * newH) - H_in`` (bottom crop for ``crop_h = (0, 0)``) and left
      ``U(0, max(0, newW - W_in))``; horizontal flip with probability 0.5 if ``flip``;
      rotation by ``U(*rot)`` degrees about the crop centre;
    * test: ``resize = W_in / W0 + resize_test``, bottom crop (``mean(crop_h)``), horizontally
      centred, no flip or rotation. Deterministic.

    Regions of the crop outside the resized image are black (0).

    Args:
        data_config (dict): ``cams`` (list of camera names, camera 0 = key camera),
            ``input_size`` (H, W), ``resize`` (lo, hi), ``rot`` (lo, hi) degrees, ``flip``
            (bool), ``crop_h`` (lo, hi), ``resize_test`` (float); ``Ncams``/``src_size`` are
            accepted for upstream compatibility (the actual image size is used).
        is_train (bool): Random augmentation (True) or the deterministic test transform.
        with_sensor2keyego (bool): Also output ``sensor2keyegos`` (then the model uses it
            directly instead of recomputing it from the float32 ``ego2globals``).
        jpeg_draft (bool): Decode JPEGs at a reduced DCT scale (1/2, 1/4; never below the
            resize target, at most 1/4) before resizing: 3–5× faster loading for small input
            sizes with a practically identical result; the geometry (post_rot) is unchanged.
            Off by default (upstream decodes at full size).
        resample (str): PIL filter of the resize: ``'bicubic'`` (upstream / PIL default),
            ``'bilinear'``.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 data_config: dict,
                 is_train: bool = False,
                 with_sensor2keyego: bool = True,
                 jpeg_draft: bool = False,
                 resample: str = 'bicubic',
                 backend_args: Optional[dict] = None):
        self.data_config = dict(data_config)
        self.cams: List[str] = list(self.data_config.get('cams', BEVDET_CAMS))
        if 'Ncams' in self.data_config and self.data_config['Ncams'] != len(self.cams):
            raise ValueError('Ncams < len(cams) (random camera subsets) is not supported: got '
                             f"Ncams={self.data_config['Ncams']} for {len(self.cams)} cams")
        self.input_size = tuple(int(s) for s in self.data_config['input_size'])
        self.is_train = is_train
        self.with_sensor2keyego = with_sensor2keyego
        self.jpeg_draft = jpeg_draft
        self.resample = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR}[resample]
        self.backend_args = backend_args

    # ------------------------------------------------------------------ augmentation
    def sample_augmentation(
            self, H: int,
            W: int) -> Tuple[float, Tuple[int, int], Tuple[int, int, int, int], bool, float]:
        """``resize, resize_dims (W', H'), crop (x0, y0, x1, y1), flip, rotate (deg)``."""
        cfg = self.data_config
        fH, fW = self.input_size
        crop_h_range = cfg.get('crop_h', (0.0, 0.0))
        if self.is_train:
            resize = float(fW) / float(W) + np.random.uniform(*cfg.get('resize', (0.0, 0.0)))
            resize_dims = (int(W * resize), int(H * resize))
            newW, newH = resize_dims
            crop_h = int((1 - np.random.uniform(*crop_h_range)) * newH) - fH
            crop_w = int(np.random.uniform(0, max(0, newW - fW)))
            flip = bool(cfg.get('flip', False) and np.random.choice([0, 1]))
            rotate = float(np.random.uniform(*cfg.get('rot', (0.0, 0.0))))
        else:
            resize = float(fW) / float(W) + cfg.get('resize_test', 0.0)
            resize_dims = (int(W * resize), int(H * resize))
            newW, newH = resize_dims
            crop_h = int((1 - np.mean(crop_h_range)) * newH) - fH
            crop_w = int(max(0, newW - fW) / 2)
            flip = False
            rotate = 0.0
        crop = (crop_w, crop_h, crop_w + fW, crop_h + fH)
        return resize, resize_dims, crop, flip, rotate

    def img_transform_core(self, img: Image.Image, resize_dims: Tuple[int, int],
                           crop: Sequence[int], flip: bool, rotate: float) -> Image.Image:
        """PIL resize -> crop -> flip -> rotate (about the centre, nearest neighbour)."""
        img = img.resize(resize_dims, self.resample)
        img = img.crop(tuple(crop))
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        if rotate != 0.0:
            img = img.rotate(rotate)
        return img

    # ------------------------------------------------------------------ loading
    def load_image(self, path: str) -> Image.Image:
        """Open ``path`` lazily (PIL decodes on first pixel access, so a JPEG draft can
        still be requested)."""
        return Image.open(io.BytesIO(fileio_get(path, backend_args=self.backend_args)))

    def decode(self, img: Image.Image, resize_dims: Tuple[int, int]) -> Image.Image:
        """RGB image, decoded at a reduced JPEG scale if ``jpeg_draft`` (see the class doc)."""
        if self.jpeg_draft and getattr(img, 'format', None) == 'JPEG':
            W0, H0 = img.size
            img.draft('RGB', (max(resize_dims[0], int(math.ceil(W0 / 4))),
                              max(resize_dims[1], int(math.ceil(H0 / 4)))))
        if img.mode != 'RGB':
            img = img.convert('RGB')
        return img

    # ------------------------------------------------------------------ transform
    def transform(self, results: dict) -> dict:
        imgs, s2e, e2g, intrins, post_rots, post_trans, params, paths = ([] for _ in range(8))
        ori_shape = None
        for cam in self.cams:
            cam_info = results['images'][cam]
            path = cam_info['img_path']
            # the original size is known before decoding (needed for the JPEG draft)
            img = self.load_image(path)
            W0, H0 = img.size
            resize, resize_dims, crop, flip, rotate = self.sample_augmentation(H0, W0)
            img = self.decode(img, resize_dims)
            img = self.img_transform_core(img, resize_dims, crop, flip, rotate)
            post_rot, post_tran = img_aug_matrix(resize, crop, flip, rotate)
            imgs.append(np.asarray(img, dtype=np.uint8))
            s2e.append(np.asarray(cam_info['cam2ego'], dtype=np.float64))
            e2g.append(np.asarray(cam_info['ego2global'], dtype=np.float64))
            intrins.append(np.asarray(cam_info['cam2img'], dtype=np.float64)[:3, :3])
            post_rots.append(post_rot)
            post_trans.append(post_tran)
            params.append(dict(resize=resize, crop=crop, flip=flip, rotate=rotate))
            paths.append(path)
            if ori_shape is None:
                ori_shape = (H0, W0)
        s2e = np.stack(s2e)
        e2g = np.stack(e2g)
        results['img'] = np.ascontiguousarray(np.stack(imgs).transpose(0, 3, 1, 2))
        results['sensor2egos'] = s2e.astype(np.float32)
        results['ego2globals'] = e2g.astype(np.float32)
        if self.with_sensor2keyego:
            s2ke = np.linalg.inv(e2g[0])[None] @ e2g @ s2e
            results['sensor2keyegos'] = s2ke.astype(np.float32)
        results['intrins'] = np.stack(intrins).astype(np.float32)
        results['post_rots'] = np.stack(post_rots).astype(np.float32)
        results['post_trans'] = np.stack(post_trans).astype(np.float32)
        results['key_cam'] = self.cams[0]
        results['cam_names'] = list(self.cams)
        results['img_path'] = paths
        results['img_shape'] = self.input_size
        results['ori_shape'] = ori_shape
        results['img_aug_params'] = params
        results['num_views'] = len(self.cams)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(cams={self.cams}, input_size={self.input_size}, '
                f'is_train={self.is_train}, jpeg_draft={self.jpeg_draft})')
