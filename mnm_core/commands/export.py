"""`mnm export`: the fast path to ONNX (fp32, fp16 or int8), and a TensorRT engine where TensorRT is installed
(`mnm_core.deployment.export_fast_path`)."""

from __future__ import annotations

import argparse

from mnm_core.commands.options import size_type
from mnm_core.config import PRESETS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export the fast path to ONNX (and a TensorRT engine)",
        description="Export the fast path (y, gamma, beta -> pseudo_ir, fused_y) of a checkpoint to a simplified "
                    "ONNX file (opset 18) with mnm metadata; with --int8 quantise it for ONNX Runtime on the CPU "
                    "(rebuild a shipped file with `mnm export --int8 --out mnm_core/weights/mnm_<preset>.int8.onnx`); "
                    "with --engine also build a TensorRT engine (only where TensorRT and pycuda are installed).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", default="", help="VGII checkpoint (default: the embedded default)")
    source.add_argument("--preset", default="", choices=sorted(PRESETS),
                        help="export an UNTRAINED model of this preset (for timing and deployment tests)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="fp16 weights and compute (inputs/outputs stay fp32)")
    precision.add_argument("--int8", action="store_true",
                           help="int8 for ONNX Runtime on the CPU: the fp32 export statically quantised (QDQ), "
                                "calibrated on --calibration frames (inputs/outputs stay fp32; not for TensorRT)")
    parser.add_argument("--calibration", nargs="+", default=[], metavar="DIR",
                        help="with --int8: folders of camera frames or of vis/+ir/ pairs to calibrate on "
                             "(default: the training sets under ../shared/data)")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--size", type=size_type, action="append", metavar="WxH",
                        help="fixed input size WIDTHxHEIGHT (multiples of 8), repeatable; default: any size "
                             "(dynamic); with --engine the TensorRT profile covers these sizes")
    parser.add_argument("--engine", default="", help="also build a TensorRT engine here (+ a .json sidecar)")
    parser.add_argument("--device", default="cuda", help="CUDA device for --engine (cuda, cuda:1)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mnm_core.deployment import export_fast_path

    result = export_fast_path(args.out, checkpoint=args.checkpoint, preset=args.preset,
                              precision="fp16" if args.fp16 else "int8" if args.int8 else "fp32", sizes=args.size,
                              engine=args.engine, device=args.device, calibration=args.calibration)
    meta = result.metadata
    print(f"wrote {result.onnx} ({meta.preset}, {meta.precision}, "
          f"{'sizes ' + ', '.join(f'{w}x{h}' for h, w in meta.sizes) if meta.sizes else 'dynamic WxH'})")
    if result.engine is not None:
        print(f"wrote {result.engine} and {result.engine.with_suffix('.json')}")
    return 0
