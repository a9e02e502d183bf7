"""BEVDepth4D's temporal data pipeline on the synthetic nuScenes set.

``NuScenesSequentialDataset`` (previous key frames of the same scene), ``PrepareImageInputs(
sequential=True)`` (same augmentation, frame-major tensors, ``sensor2keyegos`` into the current
key ego) and ``configs/_base_/datasets/nus-bevdepth4d.py``.

The ground truth of the adjacency and of the geometry comes from the nuScenes devkit tables
(``prev`` chain, ego poses, calibrations, annotations), not from the info files.
"""
import copy
import os.path as osp
import zlib

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(REPO, 'configs', '_base_', 'datasets', 'nus-bevdepth4d.py')
TINY_MODEL_CFG = osp.join(REPO, 'configs', '_base_', 'models', 'bevdet-tiny.py')
SMALL_INPUT = (128, 352)
STRONG_IMG_AUG = dict(input_size=SMALL_INPUT, resize=(-0.06, 0.11), rot=(-10.0, 10.0),
                      flip=True, crop_h=(0.0, 0.1))


@pytest.fixture(scope='module')
def cfg():
    import ptqat.plugin  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    return Config.fromfile(CFG)


def build_dataset(cfg, root, pipeline=(), split='train', **kwargs):
    from mmdet3d.registry import DATASETS
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    ds_cfg = copy.deepcopy(loader.dataset)
    ds_cfg.update(data_root=root, pipeline=list(pipeline), filter_empty_gt=False, **kwargs)
    return DATASETS.build(ds_cfg)


def devkit_prev_tokens(nusc, token, n, scene_start='earliest'):
    """``n`` previous key frames along the devkit's ``prev`` chain (scene start: repeat the
    scene's first frame, or the current one for ``'current'``)."""
    out, t = [], token
    for _ in range(n):
        prev = nusc.get('sample', t)['prev']
        if prev:
            t = prev
            out.append(t)
        else:
            out.append(t if scene_start == 'earliest' else token)
    return out


def check_adjacency(ds, nusc, scene_start='earliest'):
    n_adj = len(ds.adj_frame_offsets)
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        expect = devkit_prev_tokens(nusc, info['token'], n_adj, scene_start)
        assert info['adjacent_tokens'] == expect, (idx, info['frame_idx'])
        assert [a['token'] for a in info['adjacent']] == expect
        for a, j in zip(info['adjacent'], info['adjacent_sample_idx']):
            assert a['scene_token'] == info['scene_token']  # never another scene
            assert a['frame_idx'] <= info['frame_idx']
            assert ds.get_data_info(j)['token'] == a['token']
            # parsed like the key frame: data_prefix joined
            for cam, img in a['images'].items():
                assert img['img_path'] == osp.join(ds.data_prefix[cam],
                                                   osp.basename(img['img_path']))
                assert osp.isfile(img['img_path'])
            assert osp.isfile(a['lidar_points']['lidar_path'])


@pytest.mark.parametrize('adj_cfg', [(1, 2, 1), (1, 4, 1)])
def test_adjacent_are_previous_key_frames_of_the_scene(cfg, synthetic_root, nusc, adj_cfg):
    ds = build_dataset(cfg, synthetic_root[0], multi_adj_frame_id_cfg=adj_cfg)
    assert len({ds.get_data_info(i)['scene_token'] for i in range(len(ds))}) >= 2
    check_adjacency(ds, nusc)
    # explicit scene-start cases (3 key frames per scene): frame 0 repeats itself, the
    # window is padded with the scene's first frame, never the previous scene's last frame
    by_frame = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        by_frame[(info['scene_token'], info['frame_idx'])] = info['token']
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        f, s = info['frame_idx'], info['scene_token']
        want = [by_frame[(s, max(f - k, 0))] for k in range(*adj_cfg)]
        assert info['adjacent_tokens'] == want


def test_scene_start_current_policy_is_upstream(cfg, synthetic_root, nusc):
    """``scene_start='current'``: upstream's ``get_adj_info`` (current frame reused)."""
    ds = build_dataset(cfg, synthetic_root[0], multi_adj_frame_id_cfg=(1, 3, 1),
                       scene_start='current')
    check_adjacency(ds, nusc, scene_start='current')
    frame1 = [i for i in range(len(ds)) if ds.get_data_info(i)['frame_idx'] == 1]
    info = ds.get_data_info(frame1[0])
    assert info['adjacent_tokens'][1] == info['token']  # offset 2 before the scene start


def test_adjacency_ignores_list_order_and_filtering(cfg, synthetic_root, nusc):
    """Shuffled / scene-interleaved / filtered lists: still the same scene's previous frames."""
    root = synthetic_root[0]
    full = build_dataset(cfg, root, multi_adj_frame_id_cfg=(1, 3, 1))
    n = len(full)
    tokens = [full.get_data_info(i)['token'] for i in range(n)]
    order = list(np.random.default_rng(0).permutation(n))
    for serialize in (True, False):
        ds = build_dataset(cfg, root, multi_adj_frame_id_cfg=(1, 3, 1), indices=order,
                           serialize_data=serialize)
        assert [ds.get_data_info(i)['token'] for i in range(n)] == [tokens[i] for i in order]
        check_adjacency(ds, nusc)
    # drop frame 1 of every scene: frame 2's nearest previous frame is now frame 0
    keep = [i for i in range(n) if full.get_data_info(i)['frame_idx'] != 1]
    for ds in (build_dataset(cfg, root, multi_adj_frame_id_cfg=(1, 3, 1), indices=keep),
               full.get_subset(keep)):
        assert len(ds) == len(keep)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            first = devkit_prev_tokens(nusc, info['token'], 3)[-1]  # scene's frame 0
            if info['frame_idx'] == 2:
                assert info['adjacent_tokens'] == [first, first]
            for a in info['adjacent']:
                assert a['scene_token'] == info['scene_token'] and a['frame_idx'] != 1


@pytest.mark.parametrize('bad,needle', [
    ((0, 2, 1), '0 is not'), ((1, 2, -1), '-1 is not'), ((1, 2.5, 1), '2.5 is not'),
    ((2, 2, 1), 'no adjacent'), ('12', "'12'"), ((1, True, 1), 'True is not')])
def test_bad_multi_adj_frame_id_cfg(cfg, synthetic_root, bad, needle):
    from ptqat.datasets.sequential_nuscenes import check_adj_frame_id_cfg
    with pytest.raises(ValueError, match='multi_adj_frame_id_cfg') as err:
        check_adj_frame_id_cfg(bad)
    assert needle in str(err.value)
    with pytest.raises(ValueError, match='multi_adj_frame_id_cfg'):
        build_dataset(cfg, synthetic_root[0], multi_adj_frame_id_cfg=bad)
    assert check_adj_frame_id_cfg((1, 9, 1)) == tuple(range(1, 9))


def _cam_image(cam, size=(1600, 900)):
    """A deterministic textured image per camera (independent of the frame)."""
    from PIL import Image
    rng = np.random.default_rng(zlib.crc32(cam.encode()))
    small = rng.integers(0, 256, (size[1] // 20, size[0] // 20, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BILINEAR)


def test_sequential_same_augmentation_frame_major(cfg, synthetic_root):
    """Adjacent images get the key frame's augmentation of the same camera; frame-major
    layout; the current-frame part equals the single-frame transform's output."""
    from ptqat.datasets.transforms import PrepareImageInputs
    ds = build_dataset(cfg, synthetic_root[0], multi_adj_frame_id_cfg=(1, 3, 1))
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)['frame_idx'] == 2)
    info = ds.get_data_info(idx)
    dc = dict(cfg.data_config, **STRONG_IMG_AUG)
    cams, N = dc['cams'], len(dc['cams'])
    path2cam = {img['img_path']: cam for fr in [info] + info['adjacent']
                for cam, img in fr['images'].items()}
    assert len(path2cam) == 3 * N  # three different frames
    seq = PrepareImageInputs(dc, is_train=True, sequential=True)
    single = PrepareImageInputs(dc, is_train=True)
    for t in (seq, single):
        t.load_image = lambda p: _cam_image(path2cam[p])
    np.random.seed(5)
    out = seq(copy.deepcopy(info))
    np.random.seed(5)
    ref = single(copy.deepcopy(info))
    T = 3
    assert out['num_frames'] == T and out['num_views'] == N and out['cam_names'] == cams
    assert 'num_frames' not in ref  # the single-frame output is unchanged
    H, W = SMALL_INPUT
    shapes = dict(img=(T * N, 3, H, W), sensor2egos=(T * N, 4, 4), ego2globals=(T * N, 4, 4),
                  sensor2keyegos=(T * N, 4, 4), intrins=(T * N, 3, 3),
                  post_rots=(T * N, 3, 3), post_trans=(T * N, 3))
    for k, shape in shapes.items():
        assert out[k].shape == shape, k
        # frame 0 = the single-frame result (same RNG draws, same order)
        np.testing.assert_array_equal(out[k][:N], ref[k], err_msg=k)
    assert out['img_aug_params'][:N] == ref['img_aug_params']
    params = out['img_aug_params']
    assert any(p['flip'] for p in params[:N]) or any(abs(p['rotate']) > 1 for p in params[:N])
    assert len({p['crop'] for p in params[:N]}) > 1  # sampled per camera
    for t in range(1, T):
        fr = info['adjacent'][t - 1]
        sl = slice(t * N, (t + 1) * N)
        assert params[sl] == params[:N]
        np.testing.assert_array_equal(out['post_rots'][sl], out['post_rots'][:N])
        np.testing.assert_array_equal(out['post_trans'][sl], out['post_trans'][:N])
        # same source content per camera -> identical augmented images
        np.testing.assert_array_equal(out['img'][sl], out['img'][:N])
        assert out['img_path'][sl] == [fr['images'][c]['img_path'] for c in cams]
        for n, c in enumerate(cams):
            np.testing.assert_allclose(out['ego2globals'][t * N + n],
                                       np.asarray(fr['images'][c]['ego2global']), atol=1e-3)
            np.testing.assert_allclose(out['sensor2egos'][t * N + n],
                                       np.asarray(fr['images'][c]['cam2ego']), atol=1e-6)
    assert not np.array_equal(out['img'][0], out['img'][1])  # cameras do differ
    assert out['adjacent_tokens'] == info['adjacent_tokens']
    with pytest.raises(KeyError, match='adjacent'):
        seq({k: v for k, v in info.items() if k != 'adjacent'})


def _pose(rec):
    from pyquaternion import Quaternion
    m = np.eye(4)
    m[:3, :3] = Quaternion(rec['rotation']).rotation_matrix
    m[:3, 3] = rec['translation']
    return m


def _cam_poses(nusc, sample_token, cam):
    sd = nusc.get('sample_data', nusc.get('sample', sample_token)['data'][cam])
    calib = nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])
    return (_pose(nusc.get('ego_pose', sd['ego_pose_token'])), _pose(calib),
            np.asarray(calib['camera_intrinsic'], dtype=np.float64))


def test_sequential_ego_motion_geometry(cfg, synthetic_root, nusc):
    """A static object's centre seen by the ADJACENT frame's cameras, lifted with that
    frame's intrins/post_rot/post_tran/sensor2keyegos (the model's own get_geometry) and the
    sample's bda, lands on the current frame's GT box centre (BEV frame) to 1e-4 m."""
    from mmdet3d.registry import MODELS
    from mmengine.config import Config
    root = synthetic_root[0]
    pipe = copy.deepcopy(cfg.train_pipeline)
    pipe[0].data_config.update(STRONG_IMG_AUG)
    keep = ('PrepareImageInputs', 'LoadAnnotations3D', 'LidarToKeyEgo', 'BEVAug',
            'PackBEVDetInputs')
    pipe = [t for t in pipe if t.type in keep]  # no range filter: every GT box kept
    pipe[-1]['keys'] = [k for k in pipe[-1]['keys'] if k != 'gt_depth']
    pipe[3].bda_aug_conf = dict(rot_lim=(-22.5, 22.5), scale_lim=(0.9, 1.1),
                                flip_dx_ratio=0.5, flip_dy_ratio=0.5, tran_lim=(0.5, 0.5, 0.2))
    ds = build_dataset(cfg, root, pipe, multi_adj_frame_id_cfg=(1, 3, 1),
                       use_valid_flag=False)
    cams = cfg.cam_names
    N, T = len(cams), 3
    # a sample of a scene where the ego moves between the key frames
    idx = None
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        if info['frame_idx'] == 2:
            e_cur = _cam_poses(nusc, info['token'], cams[0])[0]
            e_adj = _cam_poses(nusc, info['adjacent_tokens'][0], cams[0])[0]
            if np.linalg.norm(e_cur[:3, 3] - e_adj[:3, 3]) > 1.0:
                idx = i
                break
    assert idx is not None, 'no moving-ego scene in the synthetic set'
    np.random.seed(1)
    out = ds[idx]
    inp, sample = out['inputs'], out['data_samples']
    assert sample.metainfo['num_frames'] == T and inp['img'].shape[0] == T * N
    token = sample.metainfo['token']
    adj_tokens = sample.metainfo['adjacent_tokens']
    assert adj_tokens == devkit_prev_tokens(nusc, token, 2)
    gt_centres = sample.gt_instances_3d.bboxes_3d.gravity_center.double()
    bda = inp['bda'].double()
    e_key = _cam_poses(nusc, token, cams[0])[0]  # current key ego (cams[0], now)
    to_bev = bda.numpy() @ np.linalg.inv(e_key)

    vt = MODELS.build(Config.fromfile(TINY_MODEL_CFG).model.img_view_transformer)
    H, W = inp['img'].shape[-2:]

    def lift(entry, uvd, s2ke):
        frustum = torch.tensor(uvd, dtype=torch.float64).view(1, 1, 1, 3)
        return vt.get_geometry(s2ke.view(1, 1, 4, 4).double(),
                               inp['intrins'][None, entry:entry + 1].double(),
                               inp['post_rots'][None, entry:entry + 1].double(),
                               inp['post_trans'][None, entry:entry + 1].double(),
                               bda[None], frustum).reshape(3)

    checked, cams_used, wrong = 0, set(), []
    for t in (1, 2):
        adj = adj_tokens[t - 1]
        if adj == token:
            continue
        cur_anns = {nusc.get('sample_annotation', a)['instance_token']:
                    nusc.get('sample_annotation', a) for a in nusc.get('sample', token)['anns']}
        for a in nusc.get('sample', adj)['anns']:
            ann = nusc.get('sample_annotation', a)
            cur = cur_anns.get(ann['instance_token'])
            x_g = np.asarray(ann['translation'], dtype=np.float64)
            if cur is None or np.linalg.norm(np.asarray(cur['translation']) - x_g) > 1e-6:
                continue  # not a static object
            target = (to_bev @ np.append(x_g, 1.0))[:3]
            # the current frame's GT (pipeline) holds this box at the same place
            d_gt = float((gt_centres - torch.from_numpy(target)).norm(dim=1).min())
            if d_gt > 0.5:
                continue  # not a GT box of the 10 classes
            assert d_gt < 2e-4, d_gt
            for n, cam in enumerate(cams):
                e2g, s2e, K = _cam_poses(nusc, adj, cam)  # the ADJACENT frame's camera
                p = (np.linalg.inv(e2g @ s2e) @ np.append(x_g, 1.0))[:3]
                if not 3.0 < p[2] < 50.0:
                    continue
                uv = K @ p
                e = t * N + n
                uvd = (inp['post_rots'][e].double().numpy() @ np.array(
                    [uv[0] / uv[2], uv[1] / uv[2], p[2]]) + inp['post_trans'][e].double().numpy())
                if not (0 <= uvd[0] < W and 0 <= uvd[1] < H):
                    continue
                lifted = lift(e, uvd, inp['sensor2keyegos'][e]).numpy()
                err = np.linalg.norm(lifted - target)
                assert err < 1e-4, (t, cam, err)
                # without the ego motion (the adjacent camera's own sensor2ego, or the
                # current frame's sensor2keyego of this camera) the point is off
                wrong.append(min(np.linalg.norm(lift(e, uvd, inp['sensor2egos'][e]).numpy()
                                                - target),
                                 np.linalg.norm(lift(e, uvd, inp['sensor2keyegos'][n]).numpy()
                                                - target)))
                checked += 1
                cams_used.add(cam)
    assert checked >= 4 and len(cams_used) >= 2, (checked, cams_used)
    assert min(wrong) > 0.5, min(wrong)


def test_config_piece_and_preprocessor(cfg, synthetic_root):
    """nus-bevdepth4d.py end to end (points + PointToMultiViewDepth) with T = 3, and the
    BEVDetDataPreprocessor batches the (T*N, ...) tensors to (B, T*N, ...)."""
    from mmengine.dataset import pseudo_collate
    from mmdet3d.registry import TRANSFORMS
    from ptqat.models.bevdet import BEVDetDataPreprocessor
    assert cfg.dataset_type == 'NuScenesSequentialDataset'
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.type == 'NuScenesSequentialDataset'
    assert tuple(ds_cfg.multi_adj_frame_id_cfg) == (1, 2, 1)
    assert ds_cfg.modality == dict(use_lidar=True, use_camera=True)
    assert cfg.val_dataloader.dataset.type == 'NuScenesSequentialDataset'
    types = [t.type for t in ds_cfg.pipeline]
    assert types[:3] == ['PrepareImageInputs', 'LoadPointsFromFile', 'PointToMultiViewDepth']
    assert ds_cfg.pipeline[0].sequential and cfg.test_pipeline[0].sequential
    assert TRANSFORMS.get('PointToMultiViewDepth') is not None
    pipe = copy.deepcopy(cfg.train_pipeline)
    pipe[0].data_config.update(input_size=SMALL_INPUT)
    ds = build_dataset(cfg, synthetic_root[0], pipe, multi_adj_frame_id_cfg=(1, 3, 1))
    assert ds.num_frames == 3
    np.random.seed(0)
    samples = [ds[0], ds[len(ds) - 1]]
    H, W = SMALL_INPUT
    for s in samples:
        assert tuple(s['inputs']['img'].shape) == (18, 3, H, W)
        assert tuple(s['inputs']['gt_depth'].shape) == (6, H, W)
        assert (s['inputs']['gt_depth'] > 0).sum() > 100
        assert s['data_samples'].metainfo['num_frames'] == 3
        assert len(s['data_samples'].metainfo['adjacent_tokens']) == 2
    batch = BEVDetDataPreprocessor()(pseudo_collate(samples), training=True)
    inputs = batch['inputs']
    assert tuple(inputs['imgs'].shape) == (2, 18, 3, H, W)
    for k, shape in dict(sensor2keyegos=(4, 4), sensor2egos=(4, 4), ego2globals=(4, 4),
                         intrins=(3, 3), post_rots=(3, 3), post_trans=(3,)).items():
        assert tuple(inputs[k].shape) == (2, 18) + shape, k
        torch.testing.assert_close(inputs[k][1], samples[1]['inputs'][k])
    assert tuple(inputs['gt_depth'].shape) == (2, 6, H, W)
    assert tuple(inputs['bda'].shape) == (2, 4, 4)
    # the val/test pipeline of the piece: T frames, no points needed
    test_pipe = copy.deepcopy(cfg.test_pipeline)
    test_pipe[0].data_config.update(input_size=SMALL_INPUT)
    val = build_dataset(cfg, synthetic_root[0], test_pipe, split='val')
    out = val[0]
    assert out['inputs']['img'].shape[0] == 2 * 6 and 'gt_depth' not in out['inputs']
