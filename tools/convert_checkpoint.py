"""Convert released checkpoints so that they load and evaluate in mmdet3d 1.x.

    python tools/convert_checkpoint.py bevformer bevformer_r101_dcn_24ep.pth ckpts/bevformer_base_1x.pth

bevformer: the official BEVFormer checkpoints (mmdet3d 0.17 box convention): the box-code rows
of the regression branches are converted (see ptqat.models.bevformer.checkpoint_convert); key
names are already those of configs/_base_/models/bevformer-*.py. The output holds
``state_dict`` and ``meta`` (with ``ptqat_box_convention='mmdet3d-1.x'``); converting an
already converted file is refused. The input is loaded with ``torch.load(weights_only=True)``:
no code from the file runs.
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'projects'))

MODELS = ('bevformer', )


def load_state(path: str) -> tuple:
    """``(state_dict, meta)`` of a checkpoint file (weights only)."""
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001  (re-raised with the reason)
        raise ValueError(f'{path}: not a weights-only checkpoint ({e}); refusing to unpickle '
                         'arbitrary objects') from e
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path}: expected a dict checkpoint, got {type(ckpt).__name__}')
    state = ckpt.get('state_dict', ckpt)
    meta = ckpt.get('meta', {}) if 'state_dict' in ckpt else {}
    return state, dict(meta or {})


def convert(model: str, src: str, dst: str) -> list:
    """Convert ``src`` to ``dst`` for ``model``; returns the changed keys."""
    if model not in MODELS:
        raise ValueError(f'unknown model {model!r}; allowed: {", ".join(MODELS)}')
    from ptqat.models.bevformer.checkpoint_convert import (CONVERTED_MARK,
                                                           convert_bevformer_state_dict)
    state, meta = load_state(src)
    if meta.get(CONVERTED_MARK) == 'mmdet3d-1.x':
        raise ValueError(f'{src} is already converted ({CONVERTED_MARK}=mmdet3d-1.x)')
    new_state, changed = convert_bevformer_state_dict(state)
    keep = {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, list, tuple))}
    keep[CONVERTED_MARK] = 'mmdet3d-1.x'
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=new_state, meta=keep), dst)
    return changed


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', choices=MODELS)
    parser.add_argument('src', help='released checkpoint')
    parser.add_argument('dst', help='output .pth')
    args = parser.parse_args(argv)
    changed = convert(args.model, args.src, args.dst)
    print(f'{args.dst}: converted {len(changed)} tensors ({", ".join(changed)})')
    return changed


if __name__ == '__main__':
    main()
