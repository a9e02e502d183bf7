"""Config values that used to pass unnoticed (issue 10 item 6): refused, naming the value."""
import pytest
import torch.nn as nn

from ptqat.engine import PTQATHook
from ptqat.engine.model_builder import PTQATModel


@pytest.mark.parametrize('threshold', [-1.0, -1e-9])
@pytest.mark.parametrize('strategy', ['small', 'large'])
def test_negative_threshold_refused(strategy, threshold):
    # with 'large' a negative threshold selected every layer (Dis >= threshold always holds)
    with pytest.raises(ValueError, match=rf'threshold must be >= 0 .*got {threshold!r}'):
        PTQATHook(strategy=strategy, threshold=threshold)
    assert PTQATHook(strategy='large', threshold=0.0).settings.threshold == 0.0


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)


def test_skip_everything_names_the_skip_patterns():
    with pytest.raises(ValueError, match=r"quantization\.skip=\['\.\*'\] excludes every one of the 2 "
                                         r"quantizable layers of _Net \(e\.g\. \['conv', 'fc'\]\)"):
        PTQATModel(_Net(), quantization=dict(skip=['.*']))
    with pytest.raises(ValueError, match=r"quantization\.skip=\['conv', 'fc'\] excludes every one"):
        PTQATModel(_Net(), quantization=dict(skip=['conv', 'fc']))
    # a model without any quantizable layer is still described as such
    with pytest.raises(ValueError, match='_Net has no quantizable layer'):
        net = _Net()
        net.conv, net.fc = nn.ReLU(), nn.Identity()
        PTQATModel(net)
