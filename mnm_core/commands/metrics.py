"""`mnm metrics`: the six VIFB fusion metrics of one (vis, ir, fused) triple, as one JSON object."""

from __future__ import annotations

import argparse
import json
import math


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metrics", help="VIFB fusion metrics (AG, CE, EI, EN, Qcb, SF) of one image triple",
        description="Print one JSON object with AG, CE, EI, EN, Qcb and SF of FUSED against the sources, "
                    "computed as the VIFB benchmark's MATLAB code does. Images are read as stored "
                    "(colour stays colour); 16-bit images are stretched to 8 bits as the node does.")
    parser.add_argument("--vis", required=True, help="visible image")
    parser.add_argument("--ir", required=True, help="infrared image")
    parser.add_argument("--fused", required=True, help="fused image")
    parser.add_argument("--pseudo-ir", help="also score this pseudo-IR image against --ir (PSNR, SSIM)")
    parser.add_argument("--mode", choices=("vifb", "gray"), default="vifb",
                        help="vifb: per channel, averaged; gray: all images to 8-bit gray first")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from mnm_core.metrics import fusion_metrics, pseudo_ir_scores
    from mnm_core.pairs import read_frame, stretch_note

    def load(path: str):
        frame = read_frame(path)
        note = stretch_note(frame)
        if note:
            logging.getLogger("mnm").warning("%s: %s", path, note)
        return frame.stored_rgb()

    ir = load(args.ir)
    values = fusion_metrics(load(args.vis), ir, load(args.fused), mode=args.mode)
    if args.pseudo_ir:
        values.update(pseudo_ir_scores(load(args.pseudo_ir), ir))
    # NaN (undefined Qcb) and inf (PSNR of identical images) → null, so the output stays valid JSON
    print(json.dumps({k: (v if math.isfinite(v) else None) for k, v in values.items()}))
    return 0
