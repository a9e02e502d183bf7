"""Full-size BEVDet-R50: parameter count and official state_dict layout."""
import os.path as osp
import re

import pytest

from bevdet_testutils import build_model
from official_keys import BN_BUFFERS, R50_BLOCKS, SHARED_KEYS_FILE, parse_official, to_regex

# The BEVDet section of shared/docs/reference/official_state_dict_keys.txt
# (the reference lists parameters only: no BN buffers and, for the image
# backbone, only the first block of each stage).  A copy lives beside the
# tests; test_reference_copy_is_current checks it against the shared file.
HERE = osp.dirname(osp.abspath(__file__))
KEYS_FILE = osp.join(HERE, 'reference', 'bevdet-r50_official_keys.txt')
SECTION = 'BEVDet-R50'


@pytest.fixture(scope='module')
def r50():
    model, _ = build_model('bevdet-r50.py')
    return model


@pytest.mark.skipif(
    not osp.exists(SHARED_KEYS_FILE), reason='shared reference not present')
def test_reference_copy_is_current():
    assert parse_official(KEYS_FILE, SECTION) == parse_official(
        SHARED_KEYS_FILE, SECTION)


def test_official_keys_and_shapes(r50):
    official = parse_official(KEYS_FILE, SECTION)
    assert len(official) > 100
    sd = {k: tuple(v.shape) for k, v in r50.state_dict().items()}
    patterns = [(to_regex(k), shape) for k, shape in official.items()]

    # 1) every official key exists with the official shape
    for key, shape in official.items():
        if '{i}' in key:
            rx = to_regex(key)
            hits = [k for k in sd if rx.match(k)]
            assert hits, f'missing {key}'
            assert all(sd[k] == shape for k in hits), key
        else:
            assert key in sd, f'missing {key}'
            assert sd[key] == shape, (key, sd[key], shape)

    # 2) no extra keys, except the two kinds the reference file omits
    weight_keys = set(official)
    extra = []
    for key, shape in sd.items():
        if any(rx.match(key) and shape == s for rx, s in patterns):
            continue
        mod, _, leaf = key.rpartition('.')
        # (a) BatchNorm buffers of an official norm layer
        if leaf in BN_BUFFERS and f'{mod}.weight' in weight_keys:
            continue
        # (b) the repeated ResNet-50 blocks layer{s}.{k>0} of img_backbone
        m = re.match(r'^img_backbone\.layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)$',
                     key)
        if m:
            stage, blk = int(m.group(1)), int(m.group(2))
            nblocks, planes = R50_BLOCKS[stage]
            if 1 <= blk < nblocks:
                kind, idx = m.group(3), int(m.group(4))
                expect = {
                    ('conv', 1): (planes, planes * 4, 1, 1),
                    ('conv', 2): (planes, planes, 3, 3),
                    ('conv', 3): (planes * 4, planes, 1, 1),
                }.get((kind, idx))
                if kind == 'bn':
                    ch = planes * 4 if idx == 3 else planes
                    expect = () if m.group(5) == 'num_batches_tracked' \
                        else (ch, )
                assert shape == expect, (key, shape, expect)
                continue
        extra.append(key)
    assert extra == [], f'unexpected keys: {extra}'

    # 3) the backbone has the full ResNet-50 block count
    for stage, (nblocks, _) in R50_BLOCKS.items():
        blocks = {int(k.split('.')[2]) for k in sd
                  if k.startswith(f'img_backbone.layer{stage}.')}
        assert blocks == set(range(nblocks)), (stage, blocks)


def test_parameter_counts(r50):
    n_params = sum(p.numel() for p in r50.parameters())
    n_state = sum(v.numel() for v in r50.state_dict().values())
    assert round(n_params / 1e6, 3) == 44.249
    assert round(n_state / 1e6, 3) == 44.312
    # per-module breakdown of the reference notes (M parameters)
    expected = dict(img_backbone=23.51, img_neck=1.38,
                    img_view_transformer=0.03, img_bev_encoder_backbone=12.39,
                    img_bev_encoder_neck=6.56, pts_bbox_head=0.38)
    for name, value in expected.items():
        got = sum(p.numel() for p in getattr(r50, name).parameters()) / 1e6
        assert round(got, 2) == value, (name, got)


def test_conv_layer_count(r50):
    import torch.nn as nn
    n_conv = sum(isinstance(m, nn.Conv2d) for m in r50.modules())
    assert n_conv == 89  # reference: BEVDet has 89 Conv2d


def test_config_geometry():
    from bevdet_testutils import load_model_cfg
    cfg = load_model_cfg('bevdet-r50.py')
    assert cfg.class_names[0] == 'car' and cfg.class_names[-1] == \
        'traffic_cone' and cfg.class_names[2] == 'construction_vehicle'
    assert tuple(cfg.input_size) == (256, 704)
    vt = cfg.model.img_view_transformer
    assert vt.grid_config['depth'] == [1.0, 60.0, 1.0]
    assert cfg.model.pts_bbox_head.tasks[0].class_names == cfg.class_names
