"""Full-size SparseBEV r50_nuimg_704x256: parameter count and the official state_dict layout."""
import os.path as osp
import re

import pytest

from official_keys import BN_BUFFERS, R50_BLOCKS, SHARED_KEYS_FILE, parse_official
from sparsebev_testutils import build_sparsebev

HERE = osp.dirname(osp.abspath(__file__))
KEYS_FILE = osp.join(HERE, 'reference', 'sparsebev-r50_official_keys.txt')
SECTION = 'SparseBEV r50_nuimg_704x256'
LAYER = 'pts_bbox_head.transformer.decoder.decoder_layer.'


@pytest.fixture(scope='module')
def r50():
    model, _ = build_sparsebev('sparsebev-r50.py', init=False)
    return model


@pytest.mark.skipif(not osp.exists(SHARED_KEYS_FILE), reason='shared reference not present')
def test_reference_copy_is_current():
    assert parse_official(KEYS_FILE, SECTION) == parse_official(SHARED_KEYS_FILE, SECTION)


def test_parameter_counts(r50):
    n_params = sum(p.numel() for p in r50.parameters())
    n_state = sum(v.numel() for v in r50.state_dict().values())
    assert round(n_params / 1e6, 3) == 44.570
    assert round(n_state / 1e6, 3) == 44.623
    expected = dict(img_backbone=23.51, img_neck=3.34, pts_bbox_head=17.72)
    for name, value in expected.items():
        got = sum(p.numel() for p in getattr(r50, name).parameters()) / 1e6
        assert round(got, 2) == value, (name, got)
    mixing = r50.pts_bbox_head.transformer.decoder.decoder_layer.mixing
    assert round(sum(p.numel() for p in mixing.parameters()) / 1e6, 2) == 16.81


def _backbone_block_shape(key):
    """Expected shape of ``img_backbone.layer{s}.{k>0}.*`` (the list shows block 0 only),
    None for any other key."""
    m = re.match(r'^img_backbone\.layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)$', key)
    if not m:
        return None
    nblocks, planes = R50_BLOCKS[int(m.group(1))]
    if not 1 <= int(m.group(2)) < nblocks:
        return None
    kind, idx = m.group(3), int(m.group(4))
    if kind == 'conv':
        return {1: (planes, planes * 4, 1, 1), 2: (planes, planes, 3, 3),
                3: (planes * 4, planes, 1, 1)}[idx]
    if m.group(5) == 'num_batches_tracked':
        return ()
    return (planes * 4 if idx == 3 else planes,)


def test_official_keys_and_shapes(r50):
    official = parse_official(KEYS_FILE, SECTION)
    sd = {k: tuple(v.shape) for k, v in r50.state_dict().items()}
    for key, shape in official.items():
        assert sd.get(key) == shape, (key, sd.get(key), shape)
    extra = []
    for key, shape in sd.items():
        if key in official:
            continue
        mod, _, leaf = key.rpartition('.')
        if leaf in BN_BUFFERS and f'{mod}.weight' in official:
            continue
        expect = _backbone_block_shape(key)
        if expect is not None:
            assert shape == expect, (key, shape, expect)
            continue
        extra.append(key)
    assert extra == [], f'unexpected keys: {extra}'


def test_one_shared_decoder_layer(r50):
    """Six stages, one set of weights: exactly one decoder layer in the module tree."""
    dec = r50.pts_bbox_head.transformer.decoder
    assert dec.num_layers == 6
    layers = [n for n, m in r50.named_modules()
              if type(m).__name__ == 'SparseBEVTransformerDecoderLayer']
    assert layers == [LAYER[:-1]]
    assert r50.pts_bbox_head.init_query_bbox.weight.shape == (900, 10)
