"""Slim an mmengine training checkpoint for sharing: the model's state_dict only (no optimizer,
message hub or history), floating-point tensors stored as float16, plus a short ``meta``.

    python tools/publish_checkpoint.py work_dirs/bevdepth4d-tiny_synth/epoch_30.pth \
        checkpoints/bevdepth4d-tiny_synth_fp16.pth --config configs/bevdepth4d/bevdepth4d-tiny_synth.py \
        --note "BEVDepth4D-tiny FP, 30 epochs on synthetic nuScenes"

``load_from`` / ``tools/test.py`` load it like any checkpoint (mmengine casts the tensors back to
the model's dtype). float16 keeps 11 significant bits: check the metric after publishing.
"""
import argparse
import os
import os.path as osp

import torch


def slim_state_dict(state_dict: dict, dtype: torch.dtype = torch.float16) -> dict:
    """A copy with every floating-point tensor cast to ``dtype`` (others unchanged)."""
    return {k: (v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v)
            for k, v in state_dict.items()}


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='mmengine checkpoint (with a state_dict)')
    parser.add_argument('out', help='output .pth')
    parser.add_argument('--config', default=None, help='config that trained it (recorded)')
    parser.add_argument('--note', default='', help='free text recorded in meta.note')
    args = parser.parse_args(argv)
    from ptqat.checkpoint_compat import load_local_checkpoint
    ckpt = load_local_checkpoint(args.checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise ValueError(f'{args.checkpoint} has no state_dict (keys: '
                         f'{sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__})')
    meta = dict(config=args.config, epoch=ckpt.get('meta', {}).get('epoch'),
                note=(args.note + '; ' if args.note else '') + 'float tensors stored as float16')
    if 'ptqat' in ckpt.get('meta', {}):  # the quantization settings, checked when the file is loaded
        meta['ptqat'] = ckpt['meta']['ptqat']
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=slim_state_dict(ckpt['state_dict'])), args.out)
    print(f'wrote {args.out} ({osp.getsize(args.out) / 2 ** 20:.1f} MiB)')
    return args.out


if __name__ == '__main__':
    main()
