"""The official state_dict key list (../shared/docs/reference/official_state_dict_keys.txt)
and its in-repo copies under reference/: parsing and matching, for the key-name tests."""
import os.path as osp
import re

HERE = osp.dirname(osp.abspath(__file__))
SHARED_KEYS_FILE = osp.join(HERE, '..', '..', '..', 'shared', 'docs',
                            'reference', 'official_state_dict_keys.txt')
BN_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def parse_official(path, section):
    """``{key_pattern: shape}`` of one ``## <section>`` of the key list.

    Lines look like ``name  (d0, d1, ...)``; ``{i}`` stands for any index.
    """
    entries, inside = {}, False
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('## '):
                inside = line[3:].startswith(section)
                continue
            if not inside or not line.strip():
                continue
            m = re.match(r'^(\S+)\s+\(([\d,\s]*)\)\s*$', line)
            assert m, f'unparsed line: {line!r}'
            entries[m.group(1)] = tuple(
                int(s) for s in m.group(2).split(',') if s.strip())
    return entries


def to_regex(key):
    return re.compile('^' + re.escape(key).replace(r'\{i\}', r'\d+') + '$')


# ResNet-50 bottleneck blocks per stage and their widths (planes); the key list shows only the
# first block of each stage
R50_BLOCKS = {1: (3, 64), 2: (4, 128), 3: (6, 256), 4: (3, 512)}
