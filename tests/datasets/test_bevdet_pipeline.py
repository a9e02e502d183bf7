"""BEVDet data pipeline on the synthetic nuScenes set: shapes, geometry, frames, determinism.

The geometry test is end to end and independent of the pipeline's own matrices on the image
side: every camera image is replaced by a black canvas with a bright blob where a GT box
centre projects (through the info's ``lidar2img``); after the random image-view
augmentation (resize, crop, flip, rotation) and BEV augmentation (rotation, scale, flips,
translation) the blob is found in the augmented image, lifted with the model's own
``LSSViewTransformer.get_geometry`` at the box's depth, and must land on the box centre that
the pipeline put into the BEV frame.
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTH_CFG = osp.join(REPO, 'configs', '_base_', 'datasets', 'nus-synth-bevdet.py')
TINY_MODEL_CFG = osp.join(REPO, 'configs', '_base_', 'models', 'bevdet-tiny.py')

STRONG_IMG_AUG = dict(resize=(-0.06, 0.11), rot=(-10.0, 10.0), flip=True, crop_h=(0.0, 0.1))
STRONG_BDA = dict(rot_lim=(-22.5, 22.5), scale_lim=(0.9, 1.1), flip_dx_ratio=0.5,
                  flip_dy_ratio=0.5, tran_lim=(0.5, 0.5, 0.2))


@pytest.fixture(scope='module')
def cfg():
    import ptqat.plugin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    return Config.fromfile(SYNTH_CFG)


def build_dataset(cfg, root, pipeline, split='train'):
    from mmdet3d.registry import DATASETS
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    ds_cfg = copy.deepcopy(loader.dataset)
    ds_cfg.update(data_root=root, pipeline=pipeline, filter_empty_gt=False)
    if split != 'train':
        ds_cfg.update(test_mode=True)
    return DATASETS.build(ds_cfg)


def train_pipeline(cfg, filters=True, img_aug=None, bda=None):
    pipe = copy.deepcopy(cfg.train_pipeline)
    if img_aug is not None:
        pipe[0].data_config.update(img_aug)
    if bda is not None:
        pipe[3].bda_aug_conf = bda
    assert [t.type for t in pipe] == [
        'PrepareImageInputs', 'LoadAnnotations3D', 'LidarToKeyEgo', 'BEVAug',
        'ObjectRangeFilter', 'ObjectNameFilter', 'PackBEVDetInputs'
    ]
    if not filters:  # keep every box so that output index == info index
        pipe = [t for t in pipe if t.type not in ('ObjectRangeFilter', 'ObjectNameFilter')]
    return pipe


def test_train_sample_contract(cfg, synthetic_root):
    from mmdet3d.structures import LiDARInstance3DBoxes
    ds = build_dataset(cfg, synthetic_root[0], train_pipeline(cfg))
    np.random.seed(0)
    out = ds[0]
    inp, sample = out['inputs'], out['data_samples']
    H, W = cfg.data_config.input_size
    expect = dict(img=((6, 3, H, W), torch.uint8), sensor2egos=((6, 4, 4), torch.float32),
                  ego2globals=((6, 4, 4), torch.float32),
                  sensor2keyegos=((6, 4, 4), torch.float32),
                  intrins=((6, 3, 3), torch.float32), post_rots=((6, 3, 3), torch.float32),
                  post_trans=((6, 3), torch.float32), bda=((4, 4), torch.float32))
    assert set(inp) == set(expect)
    for k, (shape, dtype) in expect.items():
        assert tuple(inp[k].shape) == shape and inp[k].dtype == dtype, k
    assert inp['img'].float().std() > 5  # real images, not blank
    # camera 0 defines the key ego: its sensor2keyego is its sensor2ego
    torch.testing.assert_close(inp['sensor2keyegos'][0], inp['sensor2egos'][0], atol=1e-5,
                               rtol=0)
    gt = sample.gt_instances_3d
    assert isinstance(gt.bboxes_3d, LiDARInstance3DBoxes) and gt.bboxes_3d.box_dim == 9
    assert len(gt.labels_3d) == len(gt.bboxes_3d) > 0
    assert gt.labels_3d.dtype == torch.int64
    assert 0 <= gt.labels_3d.min() and gt.labels_3d.max() < 10
    # range filter in the BEV frame
    c = gt.bboxes_3d.gravity_center
    assert c[:, :2].abs().max() <= 51.2
    meta = sample.metainfo
    for key in ('lidar2keyego', 'sample_idx', 'token', 'cam_names', 'img_aug_params'):
        assert key in meta, key
    assert np.asarray(meta['lidar2keyego']).shape == (4, 4)
    assert meta['cam_names'][0] == 'CAM_FRONT_LEFT' and len(meta['img_path']) == 6


def test_model_geometry_matrices_agree(cfg, synthetic_root):
    """The model's sensor2keyego (from sensor2egos + ego2globals) equals the pipeline's."""
    from ptqat.models.bevdet import compute_sensor2keyegos
    ds = build_dataset(cfg, synthetic_root[0], train_pipeline(cfg))
    inp = ds[1]['inputs']
    s2ke = compute_sensor2keyegos(inp['sensor2egos'][None], inp['ego2globals'][None])[0]
    torch.testing.assert_close(s2ke, inp['sensor2keyegos'], atol=2e-3, rtol=0)


def _blob_image(size_wh, centre_uv, sigma=7.0):
    w, h = size_wh
    u0, v0 = centre_uv
    ys, xs = np.mgrid[0:h, 0:w]
    g = 255.0 * np.exp(-((xs - u0)**2 + (ys - v0)**2) / (2 * sigma**2))
    return Image.fromarray(np.repeat(g.astype(np.uint8)[..., None], 3, axis=2))


def _blob_centroid(img_chw):
    a = img_chw[0].double()
    a = torch.where(a > 0.2 * a.max(), a, torch.zeros_like(a))
    total = a.sum()
    ys, xs = torch.meshgrid(torch.arange(a.shape[0], dtype=torch.float64),
                            torch.arange(a.shape[1], dtype=torch.float64), indexing='ij')
    return float((a * xs).sum() / total), float((a * ys).sum() / total), float(total)


@pytest.mark.parametrize('seed,flip_dx,flip_dy', [(0, 1.0, 0.0), (1, 0.0, 1.0), (2, 1.0, 1.0)])
def test_geometry_end_to_end(cfg, synthetic_root, seed, flip_dx, flip_dy):
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    root = synthetic_root[0]
    bda = dict(STRONG_BDA, flip_dx_ratio=flip_dx, flip_dy_ratio=flip_dy)
    ds = build_dataset(cfg, root, train_pipeline(cfg, filters=False, img_aug=STRONG_IMG_AUG,
                                                 bda=bda))
    idx = seed % len(ds)
    info = ds.get_data_info(idx)
    boxes_lidar = info['ann_info']['gt_bboxes_3d']
    centres = torch.cat([boxes_lidar.gravity_center.double(),
                         torch.ones(len(boxes_lidar), 1, dtype=torch.float64)], dim=1)
    W0, H0 = 1600, 900
    # per camera: the GT box whose centre projects closest to the image centre
    targets, path2cam = {}, {}
    for cam in cfg.cam_names:
        cam_info = info['images'][cam]
        path2cam[cam_info['img_path']] = cam
        l2c = torch.as_tensor(np.asarray(cam_info['lidar2cam']), dtype=torch.float64)
        K = torch.as_tensor(np.asarray(cam_info['cam2img']), dtype=torch.float64)[:3, :3]
        pc = (centres @ l2c.T)[:, :3]
        uv = (pc @ K.T)
        uv = uv[:, :2] / uv[:, 2:3]
        dist = (uv - torch.tensor([W0 / 2, H0 / 2 + 60])).norm(dim=1)
        ok = (pc[:, 2] > 3.0) & (uv[:, 0] > 150) & (uv[:, 0] < W0 - 150) & (
            uv[:, 1] > 350) & (uv[:, 1] < H0 - 100)
        if ok.any():
            i = int(torch.where(ok, dist, torch.full_like(dist, 1e9)).argmin())
            targets[cam] = (i, uv[i].tolist(), float(pc[i, 2]))

    prep = ds.pipeline.transforms[0]
    prep.load_image = lambda path: _blob_image(
        (W0, H0), targets[path2cam[path]][1] if path2cam[path] in targets else (-1e4, -1e4))
    # random resize / crop / rotation, but a horizontal flip on every other camera (so that
    # both flip states are covered whatever the seed)
    sample_aug, calls = prep.sample_augmentation, []

    def alternate_flip(H, W):
        resize, dims, crop, _, rotate = sample_aug(H, W)
        calls.append(None)
        return resize, dims, crop, len(calls) % 2 == 1, rotate

    prep.sample_augmentation = alternate_flip
    np.random.seed(seed)
    out = ds[idx]
    inp, sample = out['inputs'], out['data_samples']
    gt_bev = sample.gt_instances_3d.bboxes_3d
    assert len(gt_bev) == len(boxes_lidar)

    vt = MODELS.build(Config.fromfile(TINY_MODEL_CFG).model.img_view_transformer)
    checked, flipped, rotated = 0, 0, 0
    for c, cam in enumerate(cfg.cam_names):
        if cam not in targets:
            continue
        i, _, depth = targets[cam]
        u, v, mass = _blob_centroid(inp['img'][c])
        H, W = inp['img'].shape[-2:]
        if mass < 0.5 * 255 * 2 * np.pi * (7.0 * 0.38)**2 or not (15 < u < W - 15
                                                                  and 15 < v < H - 15):
            continue  # blob cropped away by the augmentation
        frustum = torch.tensor([[[[u, v, depth]]]], dtype=torch.float64)
        pts = vt.get_geometry(inp['sensor2keyegos'][None, c:c + 1].double(),
                              inp['intrins'][None, c:c + 1].double(),
                              inp['post_rots'][None, c:c + 1].double(),
                              inp['post_trans'][None, c:c + 1].double(),
                              inp['bda'][None].double(), frustum)
        lifted = pts.reshape(3)
        target = gt_bev.gravity_center[i].double()
        aug = sample.metainfo['img_aug_params'][c]
        focal = float(inp['intrins'][c, 0, 0]) * aug['resize']
        tol = 2.0 * depth / focal * sample.metainfo['bda_aug_params']['scale'] + 0.02
        err = float((lifted - target).norm())
        assert err < tol, (cam, aug, err, tol)
        checked += 1
        flipped += aug['flip']
        rotated += abs(aug['rotate']) > 1.0
    assert checked >= 3, targets
    assert rotated >= 1 and 0 < flipped < checked
    bda_params = sample.metainfo['bda_aug_params']
    assert (bda_params['flip_dx'], bda_params['flip_dy']) == (flip_dx == 1.0, flip_dy == 1.0)


def test_lidar2keyego_and_bda_round_trip(cfg, synthetic_root):
    """inv(bda @ lidar2keyego) (the model's predict mapping) gives back the LiDAR GT."""
    from ptqat.models.bevdet import BEVDet
    pipeline = train_pipeline(cfg, filters=False, bda=STRONG_BDA)
    ds = build_dataset(cfg, synthetic_root[0], pipeline)
    for idx, seed in ((0, 3), (2, 4)):
        np.random.seed(seed)
        out = ds[idx]
        ref = ds.get_data_info(idx)['ann_info']['gt_bboxes_3d'].tensor.double()
        sample = out['data_samples']
        res = InstanceData(bboxes_3d=sample.gt_instances_3d.bboxes_3d.clone())
        back = BEVDet.to_output_frame(res, sample, out['inputs']['bda']).bboxes_3d.tensor
        back = back.double()
        assert back.shape == ref.shape
        torch.testing.assert_close(back[:, :6], ref[:, :6], atol=2e-3, rtol=0)
        dyaw = torch.remainder(back[:, 6] - ref[:, 6] + np.pi, 2 * np.pi) - np.pi
        assert dyaw.abs().max() < 1e-4
        torch.testing.assert_close(back[:, 7:9], ref[:, 7:9], atol=1e-3, rtol=0)


def test_bev_aug_moves_velocity_and_yaw(cfg, synthetic_root):
    """Against BEVDet's explicit per-field formulas (a pure x flip + rotation + scale)."""
    from mmdet3d.structures import LiDARInstance3DBoxes
    from ptqat.datasets.transforms import BEVAug
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.uniform(-20, 20, (5, 3)), rng.uniform(1, 4, (5, 3)),
                        rng.uniform(-3, 3, (5, 1)), rng.uniform(-5, 5, (5, 2))], axis=1)
    boxes = LiDARInstance3DBoxes(torch.as_tensor(t, dtype=torch.float32), box_dim=9)
    aug = BEVAug(dict(rot_lim=(10.0, 10.0), scale_lim=(1.05, 1.05), flip_dx_ratio=1.0,
                      flip_dy_ratio=0.0), is_train=True)
    out = aug(dict(gt_bboxes_3d=boxes.clone()))
    b = out['gt_bboxes_3d'].tensor.double()
    a = np.deg2rad(10.0)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * 1.05
    R[0] *= -1  # x flip after rotation and scale
    np.testing.assert_allclose(b[:, :2].numpy(), t[:, :2] @ R.T, atol=1e-4)
    np.testing.assert_allclose(b[:, 3:6].numpy(), t[:, 3:6] * 1.05, atol=1e-4)
    yaw = np.pi - (t[:, 6] + a)  # upstream: yaw += angle; flip_dx: yaw = pi - yaw
    d = np.remainder(b[:, 6].numpy() - yaw + np.pi, 2 * np.pi) - np.pi
    np.testing.assert_allclose(d, 0, atol=1e-5)
    np.testing.assert_allclose(b[:, 7:9].numpy(), t[:, 7:9] @ R.T, atol=1e-4)
    np.testing.assert_allclose(out['bda'][:2, :2], R, atol=1e-6)


def test_test_mode_deterministic(cfg, synthetic_root):
    ds = build_dataset(cfg, synthetic_root[0], cfg.test_pipeline, split='val')
    a, b = ds[0], ds[0]
    assert set(a['inputs']) == {'img', 'sensor2egos', 'ego2globals', 'sensor2keyegos',
                                'intrins', 'post_rots', 'post_trans', 'bda'}
    for k in a['inputs']:
        assert torch.equal(a['inputs'][k], b['inputs'][k]), k
    H, W = cfg.data_config.input_size
    r = W / 1600
    torch.testing.assert_close(a['inputs']['bda'], torch.eye(4))
    torch.testing.assert_close(a['inputs']['post_rots'],
                               torch.diag(torch.tensor([r, r, 1.0])).expand(6, 3, 3))
    crop_top = int(900 * r) - H  # bottom crop, centred
    torch.testing.assert_close(a['inputs']['post_trans'],
                               torch.tensor([0.0, -crop_top, 0.0]).expand(6, 3))
    meta = a['data_samples'].metainfo
    assert 'lidar2keyego' in meta and len(a['data_samples'].gt_instances_3d) == 0
    assert all(not p['flip'] and p['rotate'] == 0 for p in meta['img_aug_params'])


def test_jpeg_draft_matches_full_decode(cfg, synthetic_root):
    from ptqat.datasets.transforms import PrepareImageInputs
    ds = build_dataset(cfg, synthetic_root[0], [], split='val')
    info = ds.get_data_info(0)
    dc = dict(cfg.data_config, input_size=(128, 352))
    full = PrepareImageInputs(dc, is_train=False)(copy.deepcopy(info))
    draft = PrepareImageInputs(dc, is_train=False, jpeg_draft=True)(copy.deepcopy(info))
    for k in ('post_rots', 'post_trans', 'intrins', 'sensor2keyegos'):
        np.testing.assert_array_equal(full[k], draft[k])
    diff = np.abs(full['img'].astype(np.float32) - draft['img'].astype(np.float32))
    assert diff.mean() < 4.0, diff.mean()


def test_preprocessor_batches_pipeline_output(cfg, synthetic_root):
    from mmengine.dataset import pseudo_collate
    from ptqat.models.bevdet import BEVDetDataPreprocessor
    ds = build_dataset(cfg, synthetic_root[0], train_pipeline(cfg))
    batch = pseudo_collate([ds[0], ds[1]])
    out = BEVDetDataPreprocessor()(batch, training=True)
    H, W = cfg.data_config.input_size
    assert tuple(out['inputs']['imgs'].shape) == (2, 6, 3, H, W)
    assert out['inputs']['imgs'].dtype == torch.float32
    assert tuple(out['inputs']['bda'].shape) == (2, 4, 4)
    assert tuple(out['inputs']['post_trans'].shape) == (2, 6, 3)
    assert len(out['data_samples']) == 2
