"""Fixtures for the ptqat.quant tests. Makes `ptqat` importable from a source checkout."""
from __future__ import annotations

import os
import sys

import pytest
import torch

try:
    import ptqat  # noqa: F401
except ImportError:  # not installed (editable): use the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'projects'))

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def cnn():
    from quant_toys import ToyCNN
    return ToyCNN().eval()


@pytest.fixture
def transformer():
    from quant_toys import ToyTransformer
    return ToyTransformer().eval()


@pytest.fixture
def qcnn():
    """A W4A8-quantized, calibrated ToyCNN plus its batches."""
    from ptqat.quant import QuantConfig, calibrate, quantize_model
    from quant_toys import ToyCNN, cnn_batches
    model = ToyCNN().eval()
    quantize_model(model, QuantConfig())
    batches = cnn_batches()
    calibrate(model, batches, progress=False)
    return model, batches


@pytest.fixture
def qtransformer():
    from ptqat.quant import QuantConfig, calibrate, quantize_model
    from quant_toys import ToyTransformer, seq_batches
    model = ToyTransformer().eval()
    quantize_model(model, QuantConfig(w_bits=4, a_bits=8))
    batches = seq_batches()
    calibrate(model, batches, progress=False)
    return model, batches
