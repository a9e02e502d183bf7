"""Temporal alignment of BEVDepth4D with a known ego motion.

Scene: a static world point ``P`` is seen by the front camera in the key
frame and in the adjacent frame; between the frames the ego turned by 10 deg
and moved about 6.5 m. The image encoder and the DepthNet are replaced by
exact stand-ins (the "feature" is 1 at the pixel where ``P`` projects, the
depth distribution is one-hot at ``P``'s true depth), so each frame's BEV map
is a single bright cell wherever the geometry puts ``P``. The real lift
(camera vector, softmax), geometry, splatting, frame splitting, extrinsics
handling and ``shift_feature`` run unchanged.

The geometry is chosen so that ``P`` projects exactly onto a frustum pixel
(through the image-augmentation translation ``post_tran``) at an exact depth
bin, and sits at a BEV cell centre in both ego frames: the expected BEV cell
is then unambiguous and the warp maps cell centre to cell centre.
"""
import math

import pytest
import torch
from torch import nn

from bevdet_testutils import CAM_YAWS, cam_to_ego, load_model_cfg

torch.set_num_threads(1)

IMG_HW = (128, 352)
FEAT_HW = (8, 22)
N = 6
FRONT = 1  # CAM_YAWS[1] == 0: looks along +x
CAM_RADIUS = 1.4
CAM_HEIGHT = 1.5
DEPTH_CFG = [1.0, 60.0, 0.8]  # bins 1.0 + 0.8 k
K = torch.tensor([[1260.0, 0, 800.0], [0, 1260.0, 450.0], [0, 0, 1]])
SCALE = IMG_HW[1] / 1600.0
CROP_TOP = 900 * SCALE - IMG_HW[0]
# BEV grid of the tiny config: 32 x 32 cells of 3.2 m, centres -49.6 + 3.2 i
P_CUR = (20.8, 4.8, 0.5)  # current key ego: cell (iy 17, ix 22), depth 19.4
P_ADJ = (14.4, 1.6, 0.5)  # adjacent key ego: cell (iy 16, ix 20), depth 13.0
YAW = 10.0  # deg, ego rotation from the adjacent to the current frame


def rot_z(deg):
    a = math.radians(deg)
    m = torch.eye(4, dtype=torch.float64)
    m[:2, :2] = torch.tensor([[math.cos(a), -math.sin(a)],
                              [math.sin(a), math.cos(a)]])
    return m


def adj2cur():
    """Ego motion: adjacent key ego -> current key ego (P_ADJ -> P_CUR)."""
    m = rot_z(YAW)
    p_adj = torch.tensor(P_ADJ, dtype=torch.float64)
    m[:3, 3] = torch.tensor(P_CUR, dtype=torch.float64) - m[:3, :3] @ p_adj
    return m


BDAS = {
    'identity': torch.eye(4, dtype=torch.float64),
    # 90 deg rotation + x flip: maps cell centres onto cell centres
    'rot90_flip': rot_z(90.0) @ torch.diag(
        torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=torch.float64)),
}


def cell_of(p, bda):
    """``(iy, ix)`` of a key-ego point in the BEV frame ``bda @ ego``."""
    q = bda[:3, :3] @ torch.tensor(p, dtype=torch.float64) + bda[:3, 3]
    ix = int(math.floor((float(q[0]) + 51.2) / 3.2))
    iy = int(math.floor((float(q[1]) + 51.2) / 3.2))
    return iy, ix


def frustum_pixel(u, v):
    """The frustum pixel (feature index and its exact image coordinate)
    nearest to an augmented image point ``(u, v)``."""
    (H, W), (h, w) = IMG_HW, FEAT_HW
    i = min(max(round(u / ((W - 1) / (w - 1))), 0), w - 1)
    j = min(max(round(v / ((H - 1) / (h - 1))), 0), h - 1)
    return i, j, i * (W - 1) / (w - 1), j * (H - 1) / (h - 1)


def build_scene(bdas):
    """Frame-major inputs for B = len(bdas) samples (key frame, adjacent).

    ``imgs`` channel 0 is the brightness (1 at the projection of P in the
    front camera), channel 1 the true depth of that pixel in metres.
    """
    B, T = len(bdas), 2
    s2e = torch.stack([
        torch.as_tensor(cam_to_ego(CAM_YAWS[c], CAM_HEIGHT, CAM_RADIUS))
        for c in range(N)
    ])  # (N, 4, 4) float64
    motion = adj2cur()
    glob = rot_z(-35.0)
    glob[:3, 3] = torch.tensor([600.0, 1200.0, 0.0], dtype=torch.float64)
    s2ke = torch.cat([s2e, motion @ s2e])  # (T*N, 4, 4)
    e2g = torch.cat([glob.expand(N, 4, 4), (glob @ motion).expand(N, 4, 4)])
    post_rot = torch.diag(torch.tensor([SCALE, SCALE, 1.0]))
    post_trans = torch.tensor([0.0, -CROP_TOP, 0.0]).repeat(T * N, 1)
    imgs = torch.zeros(T * N, 3, *IMG_HW)
    imgs[:, 1] = 10.0  # depth of the other pixels / cameras (irrelevant)
    for t, p in enumerate((P_CUR, P_ADJ)):
        # P seen from the front camera of frame t (its own ego frame)
        pc = torch.inverse(s2e[FRONT]) @ torch.tensor([*p, 1.0],
                                                      dtype=torch.float64)
        depth = float(pc[2])
        k = (depth - DEPTH_CFG[0]) / DEPTH_CFG[2]
        assert abs(k - round(k)) < 1e-6, depth  # an exact depth bin
        uvw = K.double() @ pc[:3]
        u, v = float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2])
        ua, va = SCALE * u, SCALE * v - CROP_TOP
        i, j, u_i, v_j = frustum_pixel(ua, va)
        assert abs(ua - u_i) < 40 and abs(va - v_j) < 40, (ua, va)
        cam = t * N + FRONT
        post_trans[cam] = torch.tensor([u_i - SCALE * u, v_j - SCALE * v, 0])
        imgs[cam, 0, round(v_j), round(u_i)] = 1.0
        imgs[cam, 1] = depth
    inputs = dict(
        imgs=imgs.expand(B, -1, -1, -1, -1).clone(),
        sensor2keyegos=s2ke.float().expand(B, -1, -1, -1).clone(),
        sensor2egos=s2e.float().repeat(T, 1, 1).expand(B, -1, -1,
                                                       -1).clone(),
        ego2globals=e2g.float().expand(B, -1, -1, -1).clone(),
        intrins=K.expand(B, T * N, 3, 3).clone(),
        post_rots=post_rot.expand(B, T * N, 3, 3).clone(),
        post_trans=post_trans.expand(B, -1, -1).clone(),
        bda=torch.stack([b.float() for b in bdas]))
    return inputs


class ExactDepthNet(nn.Module):
    """Stand-in DepthNet: one-hot depth logits at ``x[:, 1]`` metres and the
    brightness ``x[:, 0]`` as every context channel."""

    def __init__(self, depth_cfg, num_bins, context_channels):
        super().__init__()
        self.d0, self.step = depth_cfg[0], depth_cfg[2]
        self.D, self.C = num_bins, context_channels
        self.calls = 0

    def forward(self, x, mlp_input):
        assert mlp_input.shape == (x.shape[0], 27)
        self.calls += 1
        idx = torch.round((x[:, 1] - self.d0) / self.step).long()
        onehot = nn.functional.one_hot(idx, self.D).permute(0, 3, 1, 2)
        logits = (onehot.float() - 1.0) * 1e4
        context = x[:, :1].expand(-1, self.C, -1, -1)
        return torch.cat([logits, context], dim=1)


def sample_features(imgs):
    """Stand-in image encoder: the input pixels at the frustum positions."""
    (H, W), (h, w) = IMG_HW, FEAT_HW
    rows = torch.linspace(0, H - 1, h).round().long()
    cols = torch.linspace(0, W - 1, w).round().long()
    return imgs[..., :2, :, :][..., rows, :][..., cols]


@pytest.fixture(scope='module')
def model():
    from mmdet3d.registry import MODELS
    cfg = load_model_cfg('bevdepth4d-tiny.py')
    cfg.model.img_view_transformer.grid_config['depth'] = DEPTH_CFG
    m = MODELS.build(cfg.model).eval()
    vt = m.img_view_transformer
    assert vt.grid_size[:2] == [32, 32]
    vt.depth_net = ExactDepthNet(DEPTH_CFG, vt.D, vt.out_channels)
    m.image_encoder = sample_features
    m.pre_process_net = None
    return m


def peak(bev_map):
    """``(iy, ix)`` and value of the brightest cell of a ``(C, Y, X)`` map,
    and the largest value elsewhere."""
    ch = bev_map[0]
    flat = int(ch.argmax())
    iy, ix = divmod(flat, ch.shape[1])
    rest = ch.clone()
    rest[iy, ix] = 0
    return (iy, ix), float(ch[iy, ix]), float(rest.abs().max())


def run(model, inputs, align):
    model.align_after_view_transformation = align
    with torch.no_grad():
        frames, _ = model.extract_bev_frames(inputs)
    return frames


def test_scene_is_consistent():
    """Sanity of the construction itself: P is static in the world."""
    inputs = build_scene([BDAS['identity']])
    g_cur = inputs['ego2globals'][0, 0].double()
    g_adj = inputs['ego2globals'][0, N].double()
    p_cur = g_cur @ torch.tensor([*P_CUR, 1.0], dtype=torch.float64)
    p_adj = g_adj @ torch.tensor([*P_ADJ, 1.0], dtype=torch.float64)
    torch.testing.assert_close(p_cur, p_adj)
    assert cell_of(P_CUR, BDAS['identity']) == (17, 22)
    assert cell_of(P_ADJ, BDAS['identity']) == (16, 20)


@pytest.mark.parametrize('align', [False, True])
@pytest.mark.parametrize('s2ke_given', [True, False])
def test_static_point_lands_in_same_cell(model, align, s2ke_given):
    bdas = [BDAS['identity'], BDAS['rot90_flip']]
    inputs = build_scene(bdas)
    if not s2ke_given:  # computed from sensor2egos and ego2globals
        inputs.pop('sensor2keyegos')
    frames = run(model, inputs, align)
    assert len(frames) == 2
    for b, bda in enumerate(bdas):
        expected = cell_of(P_CUR, bda)
        for t in range(2):
            cell, value, rest = peak(frames[t][b])
            assert cell == expected, (align, b, t, cell, expected)
            # (a rotated warp leaks ~1 % bilinear weight into neighbours)
            assert value > 0.99 and rest < 0.05, (align, b, t, value, rest)


def test_without_alignment_the_peaks_differ(model, monkeypatch):
    """The test is able to fail: lifted into its own ego frame and not
    warped, the adjacent frame's point lands in another cell."""
    bdas = [BDAS['identity'], BDAS['rot90_flip']]
    inputs = build_scene(bdas)
    monkeypatch.setattr(model, 'shift_feature', lambda feat, m, bda: feat)
    frames = run(model, inputs, True)
    for b, bda in enumerate(bdas):
        assert peak(frames[0][b])[0] == cell_of(P_CUR, bda)
        assert peak(frames[1][b])[0] == cell_of(P_ADJ, bda)
        assert cell_of(P_ADJ, bda) != cell_of(P_CUR, bda)
    # and lifting the adjacent images with the key frame's extrinsics
    # (ignoring the ego motion) also misplaces it
    static = dict(inputs)
    static['sensor2keyegos'] = inputs['sensor2keyegos'][:, :N].repeat(
        1, 2, 1, 1)
    frames = run(model, static, False)
    assert peak(frames[1][0])[0] == cell_of(P_ADJ, bdas[0])


# ------------------------------------------------ shift_feature directly
def expected_shift(feat, motion, bda):
    """Move every cell centre of the adjacent map by ``bda @ motion @
    inv(bda)`` to its (exact) target cell; zeros where nothing lands."""
    C, Y, X = feat.shape
    out = torch.zeros_like(feat)
    m = bda @ motion @ torch.inverse(bda)
    for iy in range(Y):
        for ix in range(X):
            p = torch.tensor([-49.6 + 3.2 * ix, -49.6 + 3.2 * iy, 0.0, 1.0],
                             dtype=torch.float64)
            q = m @ p
            jx = (float(q[0]) + 49.6) / 3.2
            jy = (float(q[1]) + 49.6) / 3.2
            assert abs(jx - round(jx)) < 1e-6 and abs(jy - round(jy)) < 1e-6
            jx, jy = round(jx), round(jy)
            if 0 <= jx < X and 0 <= jy < Y:
                out[:, jy, jx] = feat[:, iy, ix]
    return out


@pytest.mark.parametrize('yaw,cells,bda_name', [
    (0.0, (2, -1), 'identity'),
    (0.0, (-3, 4), 'rot90_flip'),
    (90.0, (1, 2), 'identity'),
    (-90.0, (0, -2), 'rot90_flip'),
])
def test_shift_feature_whole_cells(model, yaw, cells, bda_name):
    torch.manual_seed(0)
    feat = torch.rand(1, 3, 32, 32)
    motion = rot_z(yaw)
    motion[0, 3], motion[1, 3] = 3.2 * cells[0], 3.2 * cells[1]
    bda = BDAS[bda_name]
    out = model.shift_feature(feat, motion[None].float(), bda[None].float())
    ref = expected_shift(feat[0].double(), motion, bda).float()
    torch.testing.assert_close(out[0], ref, atol=1e-4, rtol=0)
    if yaw == 0.0 and bda_name == 'identity':  # plain translation: a roll
        dx, dy = cells
        torch.testing.assert_close(out[0, :, 5:-5, 5:-5],
                                   feat[0, :, 5 - dy:-5 - dy, 5 - dx:-5 - dx],
                                   atol=1e-4, rtol=0)


def test_shift_feature_identity_and_errors(model):
    feat = torch.rand(2, 4, 32, 32)
    eye = torch.eye(4).expand(2, 4, 4)
    torch.testing.assert_close(model.shift_feature(feat, eye), feat,
                               atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='BEV grid'):
        model.shift_feature(torch.rand(1, 4, 16, 16), eye[:1])


def test_ego_motion_helper():
    from ptqat.models import ego_motion
    s2e = torch.as_tensor(cam_to_ego(55.0), dtype=torch.float32)[None]
    motion = adj2cur().float()[None]
    torch.testing.assert_close(
        ego_motion(s2e, motion @ s2e), motion, atol=1e-5, rtol=0)
