"""Fixtures of the engine tests: a float checkpoint of the toy detector."""
import os.path as osp
import sys

import pytest

HERE = osp.dirname(osp.abspath(__file__))
if HERE not in sys.path:  # ptqat_toys for the tests, the worker script and configs
    sys.path.insert(0, HERE)


@pytest.fixture(scope='session')
def fp_ckpt(tmp_path_factory):
    from ptqat_toys import save_fp_checkpoint
    return save_fp_checkpoint(str(tmp_path_factory.mktemp('fp') / 'fp.pth'))
