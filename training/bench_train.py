"""Training throughput per preset on this machine: crops/s of a full optimisation step, both stages.

    python training/bench_train.py [--presets tiny small paper] [--crop 64] [--batch 4] [--steps 3]

Stage 1 is a JSRL step (forward with the batch dictionary solve, L1 loss, backward, Adam); stage 2 a
VGII + AFRI step with the frozen JSRL teacher, the full stage-2 loss and the identity modulation.
Random images: throughput does not depend on content. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from mnm_core.config import PRESETS, TrainConfig, preset  # noqa: E402
from mnm_core.model import JsrlModel, VgiiModel  # noqa: E402


def _time_steps(step: Callable[[], None], warmup: int, steps: int) -> float:
    """Seconds per step after `warmup` untimed steps."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def bench_preset(name: str, crop: int, batch: int, steps: int, device: torch.device) -> dict[str, float]:
    from training.losses import jsrl_loss, vgii_loss
    from training.stages import VgiiStep

    torch.manual_seed(0)
    config = preset(name)
    vis = torch.rand(batch, 1, crop, crop, device=device)
    ir = torch.rand(batch, 1, crop, crop, device=device)
    jsrl = JsrlModel(config).to(device)
    optimizer = torch.optim.Adam(jsrl.parameters(), lr=1e-4)

    def jsrl_step() -> None:
        loss = jsrl_loss(jsrl(vis, ir), vis, ir)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    jsrl_s = _time_steps(jsrl_step, 1, steps)
    with torch.no_grad():
        dictionary = jsrl(vis, ir).dictionary
    vgii = VgiiModel(config).to(device)
    vgii.set_dictionary(dictionary)
    module = VgiiStep(vgii)
    jsrl.requires_grad_(False)
    optimizer = torch.optim.Adam(vgii.parameters(), lr=1e-4)
    defaults = TrainConfig()
    weights = {k: getattr(defaults, k) for k in vars(defaults) if k.startswith("w_")}

    def vgii_step() -> None:
        with torch.no_grad():
            teacher = jsrl.encode(ir, "ir", vgii.dictionary)
        out, recon = module(vis, None)
        loss = vgii_loss(out, vis, ir, teacher, recon, weights)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    vgii_s = _time_steps(vgii_step, 1, steps)
    n_params = sum(p.numel() for p in vgii.parameters())
    return {"jsrl": batch / jsrl_s, "vgii": batch / vgii_s, "params_m": n_params / 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=sorted(PRESETS))
    parser.add_argument("--crop", type=int, default=64, help="crop side (a multiple of 8)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage (after one warm-up step)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"training throughput on {where}; crops {args.crop}×{args.crop}, batch {args.batch}, "
          f"{args.steps} timed steps (crops/s = images/s of one modality pair)")
    print("| preset | VGII params (M) | stage 1 JSRL crops/s | stage 2 VGII+AFRI crops/s |")
    print("|---|---|---|---|")
    for name in args.presets:
        r = bench_preset(name, args.crop, args.batch, args.steps, device)
        print(f"| {name} | {r['params_m']:.2f} | {r['jsrl']:.2f} | {r['vgii']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
