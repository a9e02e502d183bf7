"""Full-size BEVFormer-base: parameter count, the official state_dict layout, the DCNv2
layers, and the small / tiny variants' counts."""
import os.path as osp
import re

import pytest

from bevformer_testutils import build_bevformer
from official_keys import BN_BUFFERS, SHARED_KEYS_FILE, parse_official, to_regex

HERE = osp.dirname(osp.abspath(__file__))
KEYS_FILE = osp.join(HERE, 'reference', 'bevformer-base_official_keys.txt')
SECTION = 'BEVFormer-base'
# ResNet-101 bottleneck blocks per stage and their widths (planes)
R101_BLOCKS = {1: (3, 64), 2: (4, 128), 3: (23, 256), 4: (3, 512)}


@pytest.fixture(scope='module')
def base():
    model, _ = build_bevformer('bevformer-base.py')
    return model


@pytest.mark.skipif(not osp.exists(SHARED_KEYS_FILE), reason='shared reference not present')
def test_reference_copy_is_current():
    assert parse_official(KEYS_FILE, SECTION) == parse_official(SHARED_KEYS_FILE, SECTION)


def test_parameter_counts(base):
    n_params = sum(p.numel() for p in base.parameters())
    n_state = sum(v.numel() for v in base.state_dict().values())
    assert n_state == 69_140_395  # the authors' published count ("v4 69140395")
    assert round(n_params / 1e6, 3) == 69.035
    emb = sum(p.numel() for n, p in base.named_parameters() if n.endswith('_embedding.weight'))
    assert emb == 200 * 200 * 256 + 900 * 512  # 10.7 M in the BEV / query embeddings


def _block_shape(key, shape):
    """Expected shape of a backbone key in a block k > 0 (the list shows block 0 only)."""
    m = re.match(r'^img_backbone\.layer(\d)\.(\d+)\.(conv\d|bn\d)(\.conv_offset)?\.(\w+)$', key)
    if not m:
        return None
    stage, blk = int(m.group(1)), int(m.group(2))
    nblocks, planes = R101_BLOCKS[stage]
    if not 1 <= blk < nblocks:
        return None
    part, offset, leaf = m.group(3), m.group(4), m.group(5)
    if offset:
        return (27, planes, 3, 3) if leaf == 'weight' else (27, )
    if part.startswith('bn'):
        return () if leaf == 'num_batches_tracked' else (planes * 4 if part == 'bn3' else planes, )
    return {'conv1': (planes, planes * 4, 1, 1), 'conv2': (planes, planes, 3, 3),
            'conv3': (planes * 4, planes, 1, 1)}[part]


def test_official_keys_and_shapes(base):
    official = parse_official(KEYS_FILE, SECTION)
    assert len(official) > 100
    sd = {k: tuple(v.shape) for k, v in base.state_dict().items()}
    patterns = [(to_regex(k), shape) for k, shape in official.items()]
    for key, shape in official.items():
        hits = [k for k in sd if to_regex(key).match(k)]
        assert hits, f'missing {key}'
        assert all(sd[k] == shape for k in hits), (key, shape)
    extra = []
    for key, shape in sd.items():
        if any(rx.match(key) and shape == s for rx, s in patterns):
            continue
        mod, _, leaf = key.rpartition('.')
        if leaf in BN_BUFFERS and f'{mod}.weight' in official:
            continue
        expect = _block_shape(key, shape)
        if expect is not None:
            assert shape == expect, (key, shape, expect)
            continue
        extra.append(key)
    assert extra == [], f'unexpected keys: {extra}'
    for stage, (nblocks, _) in R101_BLOCKS.items():
        blocks = {int(k.split('.')[2]) for k in sd if k.startswith(f'img_backbone.layer{stage}.')}
        assert blocks == set(range(nblocks)), stage


def test_dcn_layers(base):
    from mmcv.ops import ModulatedDeformConv2dPack
    dcn = [n for n, m in base.named_modules() if isinstance(m, ModulatedDeformConv2dPack)]
    assert len(dcn) == 26  # conv2 of the 23 layer3 and 3 layer4 blocks
    assert all(n.endswith('.conv2') for n in dcn)


@pytest.mark.parametrize('name,params,state', [('bevformer-small.py', 59.464, 59.569),
                                               ('bevformer-tiny.py', 33.521, 33.574)])
def test_variant_parameter_counts(name, params, state):
    model, _ = build_bevformer(name)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 3) == params
    assert round(sum(v.numel() for v in model.state_dict().values()) / 1e6, 3) == state
