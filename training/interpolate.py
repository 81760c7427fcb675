"""Weight-space interpolation of two checkpoints of one model: θ = (1 − α)·θ_from + α·θ_to.

A continued run (θ_to) fits the training distribution better than the model it started from
(θ_from), but on this project's CPU budget every continuation lost hotspot_auc on tno_test, the one
test set unlike the training scenes. Interpolating the weights of a fine-tuned model with those of
the model it was fine-tuned from ("WiSE-FT", Wortsman et al., CVPR 2022) tends to keep most of the
in-distribution gain and the robustness of the start; α = 0.5 is that paper's default, chosen before
looking at any score.

    python -m training.interpolate --from mnm_core/weights/mnm_fast.safetensors \
        --to training/init/fast_grey_20261201.safetensors --alpha 0.5 --out runs/fast_wise.safetensors

Both checkpoints must hold the same model (kind, preset, config, text encoder): only then are their
tensors the same functions of the same inputs, and the path from one to the other stays inside one
basin (a continuation starts from θ_from, so it does).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from mnm_core.checkpoint import CheckpointInfo, load_model, read_checkpoint, save_checkpoint
from mnm_core.errors import CheckpointError


def average_tensors(states: Sequence[dict[str, torch.Tensor]],
                    weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Σᵢ wᵢ·θᵢ per floating tensor (in fp32); other tensors must be equal in every state and are kept."""
    mixed = {}
    for name, first in states[0].items():
        tensors = [state[name] for state in states]
        if first.is_floating_point():
            mixed[name] = sum(w * t.float() for w, t in zip(weights, tensors))
        elif all(torch.equal(first, t) for t in tensors[1:]):
            mixed[name] = first
        else:
            raise CheckpointError(f"tensor {name!r} ({first.dtype}) differs and cannot be averaged")
    return mixed


def check_same_model(first: CheckpointInfo, second: CheckpointInfo, tensors: tuple[dict, dict]) -> None:
    """CheckpointError naming what differs between two checkpoints that should hold the same model."""
    fields = ("kind", "preset", "model_config", "text_encoder")
    differing = [f for f in fields if getattr(first, f) != getattr(second, f)]
    if set(tensors[0]) != set(tensors[1]):
        differing.append("tensor names")
    if differing:
        raise CheckpointError(f"the checkpoints hold different models ({', '.join(differing)} differ)")


def interpolate(start_path: Path, end_path: Path, alpha: float, out: Path) -> Path:
    """Write the interpolated checkpoint to `out` (fp32), with both sources in its provenance."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    start_info, start = read_checkpoint(start_path)
    end_info, end = read_checkpoint(end_path)
    check_same_model(start_info, end_info, (start, end))
    model, _ = load_model(end_path, kind=end_info.kind)
    model.load_state_dict(average_tensors((start, end), (1.0 - alpha, alpha)))
    provenance = {"interpolated": {"from": str(start_path), "to": str(end_path), "alpha": alpha},
                  "from_extra": start_info.extra, "to_extra": end_info.extra}
    return save_checkpoint(out, model, dataclasses.replace(end_info, extra=provenance))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="start", type=Path, required=True, help="the model a run started from")
    parser.add_argument("--to", dest="end", type=Path, required=True, help="the continued model")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of --to (0 = --from, 1 = --to)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    args = parser.parse_args(argv)
    print(interpolate(args.start, args.end, args.alpha, args.out))


if __name__ == "__main__":
    main()
