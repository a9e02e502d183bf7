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

    Sequential mode (``sequential=True``, BEVDet4D / BEVDepth4D): ``results['adjacent']`` (from
    :class:`ptqat.datasets.NuScenesSequentialDataset`, nearest first) lists ``T - 1`` previous
    key frames' infos; each one's ``N`` images get the **same** augmentation as the key frame's
    image of the same camera (one sample per camera, not per image). Every tensor above is then
    **frame-major** with ``T * N`` entries: ``[cur cams..., adj 1 cams..., adj 2 cams...]``
    (index ``t * N + n``), i.e. ``img`` (T*N, 3, H, W), ``sensor2egos``/``ego2globals``/
    ``sensor2keyegos`` (T*N, 4, 4), ``intrins``/``post_rots`` (T*N, 3, 3), ``post_trans``
    (T*N, 3); ``img_path`` and ``img_aug_params`` have T*N entries in the same order.
    ``sensor2egos``/``ego2globals`` of an adjacent frame are its own (camera calibration and
    ego pose at that camera's timestamp); ``sensor2keyegos`` maps every camera of every frame
    into the **current** key ego (``cams[0]``'s ego pose at the current time):
    ``inv(ego2global[cur, cam0]) @ ego2global[t, cam] @ sensor2ego[t, cam]`` (float64), so
    the ego motion between the frames is inside it (no BEV warp is needed). Extra key:
    ``num_frames`` (T; the dataset already gives ``adjacent_tokens``);
    ``cam_names``/``num_views`` stay the ``N`` cameras. Upstream BEVDet dev3.0 orders the
    *images* camera-major ([cam0_cur, cam0_adj, cam1_cur, ...]) and only the matrices
    frame-major; here everything is frame-major, so ``img.view(T, N, ...)`` splits the frames.

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
        sequential (bool): Also load the adjacent frames of ``results['adjacent']`` (see
            above). False: the single-frame behaviour, unchanged.
    """

    def __init__(self,
                 data_config: dict,
                 is_train: bool = False,
                 with_sensor2keyego: bool = True,
                 jpeg_draft: bool = False,
                 resample: str = 'bicubic',
                 backend_args: Optional[dict] = None,
                 sequential: bool = False):
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
        self.sequential = sequential

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
    def _load_frame(self, images: dict, aug: Optional[List[tuple]] = None) -> dict:
        """Load and augment one frame's ``cams``; sample the augmentation per camera unless
        ``aug`` (one ``(resize, resize_dims, crop, flip, rotate)`` per camera) is given."""
        out = dict(imgs=[], s2e=[], e2g=[], intrins=[], post_rots=[], post_trans=[], params=[],
                   paths=[], aug=[], ori_shape=None)
        for c, cam in enumerate(self.cams):
            cam_info = images[cam]
            path = cam_info['img_path']
            # the original size is known before decoding (needed for the JPEG draft)
            img = self.load_image(path)
            W0, H0 = img.size
            if aug is None:
                cam_aug = self.sample_augmentation(H0, W0)
            else:
                cam_aug = aug[c]
                if (W0, H0) != aug[c][-1]:
                    raise ValueError(f'{cam}: image {path!r} is {W0}x{H0} but the key frame\'s '
                                     f'image of this camera is {aug[c][-1][0]}x{aug[c][-1][1]}; '
                                     'the same augmentation needs the same size')
                cam_aug = cam_aug[:-1]
            resize, resize_dims, crop, flip, rotate = cam_aug
            img = self.decode(img, resize_dims)
            img = self.img_transform_core(img, resize_dims, crop, flip, rotate)
            post_rot, post_tran = img_aug_matrix(resize, crop, flip, rotate)
            out['imgs'].append(np.asarray(img, dtype=np.uint8))
            out['s2e'].append(np.asarray(cam_info['cam2ego'], dtype=np.float64))
            out['e2g'].append(np.asarray(cam_info['ego2global'], dtype=np.float64))
            out['intrins'].append(np.asarray(cam_info['cam2img'], dtype=np.float64)[:3, :3])
            out['post_rots'].append(post_rot)
            out['post_trans'].append(post_tran)
            out['params'].append(dict(resize=resize, crop=crop, flip=flip, rotate=rotate))
            out['paths'].append(path)
            out['aug'].append(tuple(cam_aug) + ((W0, H0),))
            if out['ori_shape'] is None:
                out['ori_shape'] = (H0, W0)
        return out

    def transform(self, results: dict) -> dict:
        frames = [self._load_frame(results['images'])]
        if self.sequential:
            if 'adjacent' not in results:
                raise KeyError('PrepareImageInputs(sequential=True) needs results[\'adjacent\'] '
                               '(the previous key frames\' infos): use the '
                               'NuScenesSequentialDataset')
            for adj in results['adjacent']:
                frames.append(self._load_frame(adj['images'], aug=frames[0]['aug']))

        def cat(key):
            return np.stack([x for f in frames for x in f[key]])

        s2e = cat('s2e')
        e2g = cat('e2g')
        results['img'] = np.ascontiguousarray(cat('imgs').transpose(0, 3, 1, 2))
        results['sensor2egos'] = s2e.astype(np.float32)
        results['ego2globals'] = e2g.astype(np.float32)
        if self.with_sensor2keyego:
            # every frame's cameras into the CURRENT key ego (cams[0] at the current time)
            s2ke = np.linalg.inv(e2g[0])[None] @ e2g @ s2e
            results['sensor2keyegos'] = s2ke.astype(np.float32)
        results['intrins'] = cat('intrins').astype(np.float32)
        results['post_rots'] = cat('post_rots').astype(np.float32)
        results['post_trans'] = cat('post_trans').astype(np.float32)
        results['key_cam'] = self.cams[0]
        results['cam_names'] = list(self.cams)
        results['img_path'] = [p for f in frames for p in f['paths']]
        results['img_shape'] = self.input_size
        results['ori_shape'] = frames[0]['ori_shape']
        results['img_aug_params'] = [p for f in frames for p in f['params']]
        results['num_views'] = len(self.cams)
        if self.sequential:
            results['num_frames'] = len(frames)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(cams={self.cams}, input_size={self.input_size}, '
                f'is_train={self.is_train}, jpeg_draft={self.jpeg_draft}, '
                f'sequential={self.sequential})')
