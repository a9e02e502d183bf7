"""tools/convert_checkpoint.py bevformer: the box-code rows of a synthetic state_dict."""
import math

import pytest
import torch
from tool_loader import load_tool


def _state():
    w = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 4) + 0.5  # row r = r + 0.5
    return {
        'pts_bbox_head.reg_branches.0.4.weight': w.clone(),
        'pts_bbox_head.reg_branches.0.4.bias': torch.arange(10, dtype=torch.float32),
        'pts_bbox_head.reg_branches.1.4.weight': w.clone() * 2,
        'pts_bbox_head.reg_branches.0.0.weight': torch.ones(4, 4),  # hidden layer: unchanged
        'pts_bbox_head.cls_branches.0.6.weight': torch.ones(10, 4),  # 10 classes: unchanged
        'img_backbone.conv1.weight': torch.ones(2, 3, 1, 1),
    }


def test_convert_rows(tmp_path):
    tool = load_tool('convert_checkpoint')
    src, dst = tmp_path / 'old.pth', tmp_path / 'new.pth'
    torch.save(dict(state_dict=_state(), meta=dict(epoch=24, CLASSES=('car', 'truck'))), src)
    changed = tool.main(['bevformer', str(src), str(dst)])
    assert sorted(changed) == ['pts_bbox_head.reg_branches.0.4.bias',
                               'pts_bbox_head.reg_branches.0.4.weight',
                               'pts_bbox_head.reg_branches.1.4.weight']
    new = torch.load(dst, weights_only=True)
    sd, old = new['state_dict'], _state()
    bias = sd['pts_bbox_head.reg_branches.0.4.bias'].tolist()
    # (cx, cy, w, l, cz, h, sin, cos, vx, vy) -> (cx, cy, l, w, cz, h, -cos, -sin, vx, vy)
    assert bias == [0, 1, 3, 2, 4, 5, -7, -6, 8, 9]
    assert sd['pts_bbox_head.reg_branches.0.4.weight'][:, 0].tolist() == [
        0.5, 1.5, 3.5, 2.5, 4.5, 5.5, -7.5, -6.5, 8.5, 9.5]
    for k in ('pts_bbox_head.reg_branches.0.0.weight', 'pts_bbox_head.cls_branches.0.6.weight',
              'img_backbone.conv1.weight'):
        assert torch.equal(sd[k], old[k])
    assert new['meta']['ptqat_box_convention'] == 'mmdet3d-1.x' and new['meta']['epoch'] == 24
    with pytest.raises(ValueError, match='already converted'):
        tool.main(['bevformer', str(dst), str(tmp_path / 'again.pth')])


def test_converted_yaw_is_the_new_convention():
    """sin/cos rows decode to yaw_new = -yaw_old - pi/2 (mod 2 pi)."""
    from ptqat.models.bevformer.checkpoint_convert import convert_reg_rows
    for yaw_old in (0.0, 0.3, 2.0, -1.2):
        code = torch.zeros(10, 1)
        code[6, 0], code[7, 0] = math.sin(yaw_old), math.cos(yaw_old)
        new = convert_reg_rows(code)
        yaw_new = math.atan2(float(new[6, 0]), float(new[7, 0]))
        diff = (yaw_new - (-yaw_old - math.pi / 2)) % (2 * math.pi)
        assert min(diff, 2 * math.pi - diff) < 1e-6


def test_convert_rejects_bad_input(tmp_path):
    tool = load_tool('convert_checkpoint')
    src = tmp_path / 'x.pth'
    torch.save({'state_dict': {'a.weight': torch.ones(3)}}, src)
    with pytest.raises(ValueError, match='is this a BEVFormer checkpoint'):
        tool.main(['bevformer', str(src), str(tmp_path / 'y.pth')])
    with pytest.raises(SystemExit):
        tool.main(['sparsebev', str(src), str(tmp_path / 'y.pth')])
