"""The prepared GPU run: train a preset from a data pack within a wall-clock budget, results into --out.

    python training/gpu_run.py --pack data_cache/pack.npz --preset small --budget-s 480 --out "$OUT" [--bench]

Made for a GPU machine lent for minutes (docs/training.md, "GPU run"): it needs only torch, numpy,
OpenCV, safetensors, PyYAML, tqdm and TensorBoard (no ../shared/data: the pack holds the pairs and
their text features; no text model, no ROS, no scipy). It trains stage 1, the dictionary, the pseudo-IR
stage and the fusion stage with training/configs/gpu.yaml, stops each at its share of the budget, and
writes into --out:

    mnm_<preset>.safetensors   the fp16 model, rewritten whenever validation improves (at least every
                               minute) and at the end; split into .partNN files over 15 MiB
                               (join: cat mnm_<preset>.safetensors.part* > mnm_<preset>.safetensors)
    summary.json               steps, crops/s and validation scores per stage
    tb/                        TensorBoard scalars
    bench.md                   with --bench: inference and training throughput on this GPU

The resume state stays in --work-dir (too large to bring back); a killed command still leaves the last
exported model in --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from training.train import load_config, run_training  # noqa: E402

GPU_CONFIG = REPO_ROOT / "training" / "configs" / "gpu.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True, help="data pack written by training/pack.py")
    parser.add_argument("--preset", default="small", help="model preset (small, paper, fast, tiny)")
    parser.add_argument("--budget-s", type=float, required=True, help="wall-clock seconds for the whole training")
    parser.add_argument("--out", required=True, help="folder for the results (the device's $OUT)")
    parser.add_argument("--config", default=str(GPU_CONFIG), help="base training YAML (%(default)s)")
    parser.add_argument("--work-dir", default="/tmp/mnm_gpu_run", help="run folder with the resume state")
    parser.add_argument("--init-from", default="", help="start stage 2 from this checkpoint (skips stage 1)")
    parser.add_argument("--batch-size", type=int, default=0, help="override train.batch_size")
    parser.add_argument("--bench", action="store_true", help="after training, benchmark inference and training")
    return parser.parse_args(argv)


def bench(out: Path, preset: str) -> None:
    """Inference rows (`mnm bench`, torch on CUDA, fp32, fp16 and bf16) and training crops/s, into bench.md."""
    commands = [
        [sys.executable, "-m", "mnm_core.cli", "bench", "--device", "cuda", "--backends", "torch",
         "--precisions", "fp32", "fp16", "bf16", "--presets", "fast", "small", "paper",
         "--sizes", "320x256", "640x512", "1280x1024"],
        [sys.executable, str(REPO_ROOT / "training" / "bench_train.py"), "--presets", "fast", "small", "paper",
         "--crop", "128", "--batch", "32", "--steps", "10"],
    ]
    with (out / "bench.md").open("w") as report:
        report.write(f"# GPU benchmarks after the {preset} run ({time.strftime('%Y-%m-%d %H:%M')})\n\n")
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
            report.write(f"`{' '.join(Path(c).name if c == sys.executable else c for c in command[1:])}`\n\n")
            report.write(result.stdout + ("\n" + result.stderr[-3000:] if result.returncode else "") + "\n\n")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    train, data, text = load_config(args.config)
    train = dataclasses.replace(
        train, preset=args.preset, budget_s=args.budget_s, out_dir=str(Path(args.work_dir) / args.preset),
        log_dir=str(out), export_path=str(out / f"mnm_{args.preset}.safetensors"), init_from=args.init_from,
        batch_size=args.batch_size or train.batch_size)
    data = dataclasses.replace(data, pack=str(Path(args.pack).resolve()))
    code = run_training(train, data, text, resume=Path(train.out_dir).is_dir(), source=args.config)
    if args.bench:
        bench(out, args.preset)
    return code


if __name__ == "__main__":
    sys.exit(main())
