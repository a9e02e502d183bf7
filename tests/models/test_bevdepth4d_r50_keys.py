"""Full-size BEVDepth4D-R50 (num_adj 1 and 8): parameter counts and the
official state_dict layout.

The full-size models are built once per module (about 75 M parameters each).
"""
import os.path as osp
import re

import pytest
import torch

from bevdet_testutils import build_model
from official_keys import BN_BUFFERS, R50_BLOCKS, SHARED_KEYS_FILE, parse_official, to_regex

# The BEVDepth4D section of shared/docs/reference/official_state_dict_keys.txt
# (parameters only: no BN buffers and, for the image backbone, only the first
# block of each stage). A copy lives beside the tests;
# test_reference_copy_is_current checks it against the shared file.
HERE = osp.dirname(osp.abspath(__file__))
KEYS_FILE = osp.join(HERE, 'reference', 'bevdepth4d-r50_official_keys.txt')
SECTION = 'BEVDepth4D'
# the two tensors whose input width grows with num_adj (80 * (num_adj + 1))
ADJ_KEYS = ('img_bev_encoder_backbone.layers.0.0.conv1.weight',
            'img_bev_encoder_backbone.layers.0.0.downsample.weight')


def r50_block_shape(key):
    """Expected shape of a repeated ``img_backbone.layer{s}.{k>0}`` tensor,
    or None if ``key`` is not one."""
    m = re.match(r'^img_backbone\.layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)$',
                 key)
    if not m:
        return None
    stage, blk = int(m.group(1)), int(m.group(2))
    nblocks, planes = R50_BLOCKS[stage]
    if not 1 <= blk < nblocks:
        return None
    kind, idx, leaf = m.group(3), int(m.group(4)), m.group(5)
    if kind == 'conv':
        return {1: (planes, planes * 4, 1, 1), 2: (planes, planes, 3, 3),
                3: (planes * 4, planes, 1, 1)}[idx]
    if leaf == 'num_batches_tracked':
        return ()
    return (planes * 4 if idx == 3 else planes, )


def check_layout(sd, official):
    """Every official key with its shape; nothing else but BN buffers and
    the repeated ResNet-50 blocks."""
    for key, shape in official.items():
        rx = to_regex(key)
        hits = [k for k in sd if rx.match(k)]
        assert hits, f'missing {key}'
        assert all(sd[k] == shape for k in hits), (key, shape,
                                                   [sd[k] for k in hits])
    patterns = [(to_regex(k), s) for k, s in official.items()]
    extra = []
    for key, shape in sd.items():
        if any(rx.match(key) and shape == s for rx, s in patterns):
            continue
        mod, _, leaf = key.rpartition('.')
        if leaf in BN_BUFFERS and f'{mod}.weight' in official:
            continue
        expect = r50_block_shape(key)
        if expect is not None:
            assert shape == expect, (key, shape, expect)
            continue
        extra.append(key)
    assert extra == [], f'unexpected keys: {extra}'


@pytest.fixture(scope='module')
def models():
    torch.set_num_threads(1)
    short, _ = build_model('bevdepth4d-r50.py')
    longterm, _ = build_model('bevdepth4d-r50-longterm.py')
    return dict(short=short, longterm=longterm)


@pytest.mark.skipif(
    not osp.exists(SHARED_KEYS_FILE), reason='shared reference not present')
def test_reference_copy_is_current():
    assert parse_official(KEYS_FILE, SECTION) == parse_official(
        SHARED_KEYS_FILE, SECTION)


def test_official_keys_and_shapes(models):
    official = parse_official(KEYS_FILE, SECTION)
    assert len(official) > 200
    sd = {k: tuple(v.shape) for k, v in models['short'].state_dict().items()}
    check_layout(sd, official)
    # the backbone has the full ResNet-50 block count
    for stage, (nblocks, _) in R50_BLOCKS.items():
        blocks = {int(k.split('.')[2]) for k in sd
                  if k.startswith(f'img_backbone.layer{stage}.')}
        assert blocks == set(range(nblocks)), (stage, blocks)


def test_longterm_keys_and_shapes(models):
    """Same layout; only the BEV encoder's input width is 80 * 9 = 720."""
    official = parse_official(KEYS_FILE, SECTION)
    for key in ADJ_KEYS:
        assert official[key] == (160, 160, 3, 3)
        official[key] = (160, 720, 3, 3)
    sd = {k: tuple(v.shape)
          for k, v in models['longterm'].state_dict().items()}
    check_layout(sd, official)


def test_parameter_counts(models):
    expected = dict(short=(74.901, 74.977), longterm=(76.514, 76.590))
    for name, (params, state) in expected.items():
        model = models[name]
        n_params = sum(p.numel() for p in model.parameters())
        n_state = sum(v.numel() for v in model.state_dict().values())
        assert round(n_params / 1e6, 3) == params, (name, n_params)
        assert round(n_state / 1e6, 3) == state, (name, n_state)
    # per-module breakdown (M parameters) of the num_adj=1 model
    per_module = dict(
        img_backbone=23.508, img_neck=3.934, img_view_transformer=19.902,
        pre_process_net=0.289, img_bev_encoder_backbone=19.594,
        img_bev_encoder_neck=7.294, pts_bbox_head=0.381)
    for name, value in per_module.items():
        got = sum(p.numel()
                  for p in getattr(models['short'], name).parameters())
        assert round(got / 1e6, 3) == value, (name, got)


def test_config_values(models):
    from ptqat.models import (BEVDepth4D, CustomResNet,
                              LSSViewTransformerBEVDepth)
    for name, num_adj in (('short', 1), ('longterm', 8)):
        m = models[name]
        assert isinstance(m, BEVDepth4D)
        assert m.num_adj == num_adj and m.num_cams == 6
        assert m.align_after_view_transformation is False
        assert isinstance(m.pre_process_net, CustomResNet)
        vt = m.img_view_transformer
        assert isinstance(vt, LSSViewTransformerBEVDepth)
        assert vt.D == 118 and vt.out_channels == 80
        assert vt.loss_depth_weight == 3.0
        head = m.pts_bbox_head
        assert head.loss_cls.loss_weight == 6.0
        assert head.loss_bbox.loss_weight == 1.5
        assert list(head.train_cfg['code_weights']) == [1.0] * 10
