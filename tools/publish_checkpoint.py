"""Slim an mmengine training checkpoint for sharing: the model's state_dict only (no optimizer,
message hub or history), floating-point tensors stored as float16, plus a short ``meta``.

    python tools/publish_checkpoint.py work_dirs/bevdepth4d-tiny_synth/epoch_30.pth \
        checkpoints/bevdepth4d-tiny_synth_fp16.pth --config configs/bevdepth4d/bevdepth4d-tiny_synth.py \
        --note "BEVDepth4D-tiny FP, 30 epochs on synthetic nuScenes"

``load_from`` / ``tools/test.py`` load it like any checkpoint (mmengine casts the tensors back to
the model's dtype). float16 keeps 11 significant bits: check the metric after publishing.
Tensors with values beyond float16's range (65504; BatchNorm running variances of a BEV encoder
can exceed it) are kept in their dtype and named in ``meta.note``; a state_dict holding inf or
NaN is refused; an existing OUT is replaced only with ``--overwrite``.
"""
import argparse
import os
import os.path as osp
from typing import List, Tuple

import torch


def slim_state_dict(state_dict: dict, dtype: torch.dtype = torch.float16) -> Tuple[dict, List[str]]:
    """A copy with every floating-point tensor cast to ``dtype`` (others unchanged), except
    tensors with a value beyond ``dtype``'s range (e.g. a BatchNorm ``running_var`` above
    65504), which the cast would turn into inf: those stay as they are.

    Returns:
        ``(state_dict, kept)``: the copy and the names of the tensors kept at their dtype.
    Raises:
        ValueError: a tensor already holds inf or NaN (a diverged model), naming them.
    """
    bad = [k for k, v in state_dict.items()
           if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f'{len(bad)} tensors hold inf or NaN (the model diverged?): '
                         f'{", ".join(bad[:8])}{" ..." if len(bad) > 8 else ""}')
    limit = torch.finfo(dtype).max
    out, kept = {}, []
    for k, v in state_dict.items():
        if torch.is_tensor(v) and v.is_floating_point():
            if v.numel() and v.abs().max().item() > limit:
                kept.append(k)
            else:
                v = v.to(dtype)
        out[k] = v
    return out, kept


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='mmengine checkpoint (with a state_dict)')
    parser.add_argument('out', help='output .pth')
    parser.add_argument('--config', default=None, help='config that trained it (recorded)')
    parser.add_argument('--note', default='', help='free text recorded in meta.note')
    parser.add_argument('--overwrite', action='store_true', help='replace OUT if it exists')
    args = parser.parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        raise FileExistsError(f'{args.out} exists; pass --overwrite to replace it')
    from ptqat.checkpoint_compat import load_local_checkpoint
    ckpt = load_local_checkpoint(args.checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise ValueError(f'{args.checkpoint} has no state_dict (keys: '
                         f'{sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__})')
    state_dict, kept = slim_state_dict(ckpt['state_dict'])
    stored = 'float tensors stored as float16'
    if kept:
        stored += f' but {len(kept)} beyond its range, kept as they were: {", ".join(kept)}'
        print(stored)
    meta = dict(config=args.config, epoch=ckpt.get('meta', {}).get('epoch'),
                note=(args.note + '; ' if args.note else '') + stored)
    if 'ptqat' in ckpt.get('meta', {}):  # the quantization settings, checked when the file is loaded
        meta['ptqat'] = ckpt['meta']['ptqat']
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=state_dict), args.out)
    print(f'wrote {args.out} ({osp.getsize(args.out) / 2 ** 20:.1f} MiB)')
    return args.out


if __name__ == '__main__':
    main()
