"""Bad input to the deployment export raises a clear error."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _build(cfg_file):
    import ptqat.plugin  # noqa: F401
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    return MODELS.build(Config.fromfile(osp.join(ROOT, cfg_file)).model).eval()


def _inputs(batch=1):
    eye4 = torch.eye(4).expand(batch, 6, 4, 4).clone()
    k = torch.tensor([[280.0, 0, 176], [0, 280.0, 64], [0, 0, 1]]).expand(batch, 6, 3, 3).clone()
    return dict(imgs=torch.randn(batch, 6, 3, 128, 352), sensor2keyegos=eye4, intrins=k,
                post_rots=torch.eye(3).expand(batch, 6, 3, 3).clone(), post_trans=torch.zeros(batch, 6, 3),
                bda=torch.eye(4).expand(batch, 4, 4).clone())


def test_uncalibrated_quantized_model_is_refused(tmp_path):
    from ptqat.deploy import export_detector
    det = _build('configs/ptqat/bevdet/bevdet-tiny_ptqat-w4a8_synth.py')
    with pytest.raises(RuntimeError, match='none of the .* quantizers .* has a step size'):
        export_detector(det, _inputs(), str(tmp_path))


def test_bad_opset_and_batch(tmp_path):
    from ptqat.deploy import export_detector, frame_inputs
    det = _build('configs/bevdet/bevdet-tiny_synth.py')
    with pytest.raises(ValueError, match='opset must be >= 16'):
        export_detector(det, _inputs(), str(tmp_path), opset=13)
    with pytest.raises(ValueError, match='batch must be 1'):
        frame_inputs(det, _inputs(batch=2))


def test_not_a_bevdet_detector():
    from ptqat.deploy import DeployDetector
    with pytest.raises(TypeError, match='not a BEVDet-family detector'):
        DeployDetector(torch.nn.Conv2d(1, 1, 1))
