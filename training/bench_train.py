"""Training throughput per preset on this machine: crops/s of a full optimisation step of each stage.

    python training/bench_train.py [--presets tiny small paper] [--crop 128] [--batch 8] [--steps 3]
                                   [--precision auto|fp32|bf16]

Stage 1 is a JSRL step (forward with the batch dictionary solve, L1 loss, backward, Adam); the
pseudo-IR stage a REN → RIN → TailNet step with the pseudo-IR loss (training/configs defaults, identity
modulation); the fusion stage a step of the gate alone with the fusion loss. Precision as in training
(auto = bf16 + channels-last on CUDA and on CPUs with native bf16: AVX-512 BF16 or AMX). Random images:
throughput does not depend on content. Prints a Markdown table.
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


def bench_preset(name: str, crop: int, batch: int, steps: int, device: torch.device,
                 train: TrainConfig) -> dict[str, float]:
    from training.losses import fusion_loss, jsrl_loss, pseudo_ir_loss
    from training.stage2 import VgiiStep
    from training.stages import fast_math

    torch.manual_seed(0)
    config = preset(name)
    fast = fast_math(train, device)
    memory = torch.channels_last if fast else torch.contiguous_format
    vis = torch.rand(batch, 1, crop, crop, device=device)
    ir = torch.rand(batch, 1, crop, crop, device=device)
    weights = {k: getattr(train, k) for k in vars(train) if k.startswith("w_")}

    def timed(module: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> float:
        optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-4)

        def step() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
                loss = loss_fn()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return batch / _time_steps(step, 1, steps)

    jsrl = JsrlModel(config).to(device, memory_format=memory)
    jsrl_rate = timed(jsrl, lambda: jsrl_loss(jsrl(vis, ir), vis, ir)["total"])
    with torch.no_grad():
        dictionary = jsrl(vis, ir).dictionary.float()
    vgii = VgiiModel(config).to(device)
    vgii.set_dictionary(dictionary)
    vgii = vgii.to(memory_format=memory)
    vgii.gate.requires_grad_(False)
    pseudo_ir_step = VgiiStep(vgii, fusion=False)
    pseudo_rate = timed(vgii, lambda: pseudo_ir_loss(pseudo_ir_step(vis, None), vis, ir, None, weights)["total"])
    vgii.requires_grad_(False)
    vgii.gate.requires_grad_(True)
    fusion_step = VgiiStep(vgii, fusion=True)
    fusion_rate = timed(vgii, lambda: fusion_loss(fusion_step(vis, None), vis, ir, weights)["total"])
    n_params = sum(p.numel() for p in vgii.parameters())
    return {"jsrl": jsrl_rate, "pseudo_ir": pseudo_rate, "fusion": fusion_rate, "params_m": n_params / 1e6,
            "bf16": fast}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"], choices=sorted(PRESETS))
    parser.add_argument("--crop", type=int, default=128, help="crop side (a multiple of 8)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="network precision as train.precision (auto: bf16 on CUDA and native-bf16 CPUs)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage (after one warm-up step)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"training throughput on {where}; crops {args.crop}×{args.crop}, batch {args.batch}, "
          f"{args.steps} timed steps (crops/s = images/s of one modality pair)")
    train = TrainConfig(precision=args.precision)
    print("| preset | VGII params (M) | precision | stage 1 JSRL crops/s | pseudo-IR stage crops/s "
          "| fusion stage crops/s |")
    print("|---|---|---|---|---|---|")
    for name in args.presets:
        r = bench_preset(name, args.crop, args.batch, args.steps, device, train)
        print(f"| {name} | {r['params_m']:.2f} | {'bf16' if r['bf16'] else 'fp32'} | {r['jsrl']:.2f} "
              f"| {r['pseudo_ir']:.2f} | {r['fusion']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
