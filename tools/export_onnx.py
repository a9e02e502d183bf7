"""Export a BEVDet / BEVDepth4D checkpoint (float, PTQ, QAT or PTQAT) to ONNX for deployment.

    python tools/export_onnx.py CONFIG CHECKPOINT --out DIR [--weights-int4] [--sample-index I]

Writes DIR/model.onnx (TensorRT-style explicit quantization: symmetric QuantizeLinear /
DequantizeLinear, per-channel weights, per-tensor activations; a float model has no Q/DQ),
DIR/model_int4.onnx with --weights-int4 (4-bit weights as packed INT4 initialisers, opset 21),
DIR/pooling_indices.npz (BEV-pooling indices and DepthNet camera vector of the cameras of test
sample I, for a fixed rig) and DIR/deploy.json (what the host needs). See README "Deployment".
"""
import argparse
import json
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'projects'))
from _runner_utils import read_config  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export a BEVDet-family detector to Q/DQ ONNX')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--weights-int4', action='store_true',
                   help='also write model_int4.onnx with packed INT4 weights (opset 21)')
    p.add_argument('--sample-index', type=int, default=0,
                   help='test-set sample whose cameras give the stored pooling indices (default 0)')
    p.add_argument('--opset', type=int, default=17, help='opset of model.onnx (>= 16; default 17)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = read_config(args.config, args.cfg_options)
    from ptqat.deploy import export_detector
    from ptqat.deploy.build import build_detector, build_test_dataset, preprocess_samples
    detector = build_detector(cfg, args.checkpoint)
    dataset = build_test_dataset(cfg)
    if not 0 <= args.sample_index < len(dataset):
        raise SystemExit(f'--sample-index {args.sample_index} is outside the test set (0..{len(dataset) - 1})')
    inputs, _ = preprocess_samples(detector, [dataset[args.sample_index]])
    classes = dataset.metainfo.get('classes')
    sidecar = export_detector(detector, inputs, args.out, weights_int4=args.weights_int4, opset=args.opset,
                              class_names=classes,
                              meta=dict(config=osp.abspath(args.config), checkpoint=osp.abspath(args.checkpoint),
                                        sample_index=args.sample_index))
    print(json.dumps(dict(out=args.out, files=sidecar['files'],
                          quantized_layers=len(sidecar['quantized_layers']),
                          weights_int4=sidecar['weights_int4']), indent=1))
    return sidecar


if __name__ == '__main__':
    main()
