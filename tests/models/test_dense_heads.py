"""Occupancy and map segmentation heads: grid resampling orientation, the channel-to-height
layout, the camera-masked cross-entropy, the focal loss, and the test-time un-flip."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ptqat.models  # noqa: F401  (registers the heads)
from ptqat.datasets.transforms import bda_matrix
from ptqat.models.dense_heads import (BEVGridTransform, BEVMapSegHead, BEVOCCHead2D, BEVOCCHead3D,
                                      sigmoid_focal_loss)
from ptqat.models.dense_heads.dense_detectors import _unflip

OCC_XY = ((-40.0, 40.0, 0.4), (-40.0, 40.0, 0.4))


def test_grid_transform_identity_and_orientation():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 20)
    b = ((-10.0, 10.0, 1.0), (-8.0, 8.0, 1.0))  # x: 20 cells, y: 16 cells
    assert torch.allclose(BEVGridTransform(b, b)(x), x, atol=1e-5)
    # one hot cell at x = +4.5 (col 14), y = -2.5 (row 5) lands at the same metric place
    hot = torch.zeros(1, 1, 16, 20)
    hot[0, 0, 5, 14] = 1.0
    out = BEVGridTransform(b, ((-10.0, 10.0, 0.5), (-8.0, 8.0, 0.5)))(hot)[0, 0]
    r, c = divmod(int(out.argmax()), out.shape[1])
    assert (-8 + 0.5 * (r + 0.5), -10 + 0.5 * (c + 0.5)) == pytest.approx((-2.5, 4.5), abs=0.5)
    with pytest.raises(ValueError, match='does not match the input grid'):
        BEVGridTransform(b, b)(torch.zeros(1, 1, 20, 16))


def test_occ_head_2d_layout_is_x_y_z():
    torch.manual_seed(0)
    head = BEVOCCHead2D(in_dim=4, out_dim=8, Dz=3, num_classes=5,
                        output_bounds=((-2.0, 2.0, 1.0), (-3.0, 3.0, 1.0))).eval()
    bev = torch.zeros(1, 4, 6, 4)  # (B, C, Y, X)
    base = head(bev)
    assert base.shape == (1, 4, 6, 3, 5)  # (B, X, Y, Z, n_cls)
    bev[0, :, 1, 3] = 5.0  # y row 1, x col 3
    diff = (head(bev) - base).abs().sum(dim=(3, 4))[0]  # (X, Y)
    assert diff[3, 1] > 0 and diff[0, 5] == 0  # changes appear at [x=3, y=1]'s 3x3 neighbourhood
    assert diff[3, 1] == diff.max()


def test_occ_head_3d_splits_channels_into_height():
    head = BEVOCCHead3D(in_dim=2, out_dim=4, Dz=3, num_classes=5)
    assert head(torch.randn(2, 6, 5, 4)).shape == (2, 4, 5, 3, 5)
    assert head(torch.randn(2, 2, 3, 5, 4)).shape == (2, 4, 5, 3, 5)
    with pytest.raises(ValueError, match='cannot be split'):
        head(torch.randn(1, 5, 5, 4))


def test_occ_head_3d_voxel_conv_is_quantized():
    """Under W4A8 the 3D head's Conv3d is a QuantConv3d too: with its quantizers off the head
    is the float head exactly, with them on it differs."""
    import copy

    import ptqat.plugin  # noqa: F401  (registers mmcv's layer wrappers, ConvModule's Conv3d among them)
    from ptqat.quant import QuantConfig, QuantConv3d, calibrate, iter_quantizers, quantize_model
    torch.manual_seed(0)
    head = BEVOCCHead3D(in_dim=2, out_dim=4, Dz=3, num_classes=5).eval()
    feat = torch.randn(2, 2, 3, 5, 4)
    with torch.no_grad():
        ref = head(feat)
    q = copy.deepcopy(head)
    assert 'final_conv.conv' in quantize_model(q, QuantConfig(w_bits=4, a_bits=8))
    assert isinstance(q.final_conv.conv, QuantConv3d)
    calibrate(q, [feat], progress=False)
    with torch.no_grad():
        for _, quantizer in iter_quantizers(q):
            quantizer.enabled = False
        assert torch.equal(q(feat), ref)
        for _, quantizer in iter_quantizers(q):
            quantizer.enabled = True
        assert not torch.equal(q(feat), ref)


def test_camera_masked_cross_entropy():
    torch.manual_seed(0)
    head = BEVOCCHead2D(in_dim=4, out_dim=4, Dz=2, num_classes=18)
    logits = torch.randn(2, 3, 3, 2, 18)
    sem = torch.randint(0, 18, (2, 3, 3, 2), dtype=torch.uint8)
    mask = torch.rand(2, 3, 3, 2) < 0.5
    loss = head.loss(logits, sem, mask)['loss_occ']
    manual = F.cross_entropy(logits[mask], sem[mask].long())
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    sem2 = sem.clone()
    sem2[~mask] = (sem2[~mask] + 1) % 18  # labels the cameras cannot see do not count
    assert head.loss(logits, sem2, mask)['loss_occ'].item() == pytest.approx(loss.item(), rel=1e-6)
    with pytest.raises(KeyError, match='mask_camera'):
        head.loss(logits, sem, None)


def test_focal_loss_matches_formula_and_map_head_keys():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 5, 5), (torch.rand(2, 5, 5) < 0.3).float()
    p = logits.sigmoid()
    pt = torch.where(target > 0, p, 1 - p)
    manual = (-(pt.log()) * (1 - pt) ** 2).mean()
    assert sigmoid_focal_loss(logits, target).item() == pytest.approx(manual.item(), rel=1e-5)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    assert sigmoid_focal_loss(logits, target, gamma=0.0).item() == pytest.approx(bce.item(), rel=1e-6)
    head = BEVMapSegHead(8, ['walkway', 'divider'], input_bounds=((-8.0, 8.0, 2.0),) * 2,
                         output_bounds=((-5.0, 5.0, 0.5),) * 2, channels=4,
                         class_weights={'divider': 3.0})
    out = head(torch.randn(1, 8, 8, 8))
    assert out.shape == (1, 2, 20, 20)
    losses = head.loss(out, torch.zeros(1, 2, 20, 20))
    assert set(losses) == {'loss_walkway_focal', 'loss_divider_focal'}
    with pytest.raises(ValueError, match='unknown classes'):
        BEVMapSegHead(8, ['walkway'], class_weights={'lava': 1.0})


def test_unflip_undoes_the_bev_flip():
    occ = torch.arange(24).reshape(2, 3, 4)  # (X, Y, Z)
    flipped = occ.flip(0)
    bda = torch.as_tensor(bda_matrix(0, 1, True, False), dtype=torch.float32)
    assert torch.equal(_unflip(flipped, bda, 0, 1), occ)
    masks = torch.arange(24).reshape(2, 3, 4)  # (C, Y, X)
    bda = torch.as_tensor(bda_matrix(0, 1, True, True), dtype=torch.float32)
    assert torch.equal(_unflip(masks.flip(1).flip(2), bda, 2, 1), masks)
    with pytest.raises(ValueError, match='flips only'):
        _unflip(occ, torch.as_tensor(bda_matrix(30, 1, False, False)), 0, 1)
