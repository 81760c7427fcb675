"""Model report: parameters and multiply-accumulates (MACs) per component, fast vs slow path.

MACs are counted by torch's FlopCounterMode (convolutions and matrix products; MACs = FLOPs / 2) on
the meta device, so no arithmetic runs and the paper preset at 640×512 costs nothing. The JSRL
network's FFT (CSB) and Cholesky (DSB) are not counted: they are training-only and outside the
deployed graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mnm_core.config import preset
from mnm_core.model import JsrlModel, VgiiModel

REPORT_SIZES = ((256, 256), (640, 512))
"""(H, W) at which MACs are reported."""
FAST_PATH_PARTS = ("ren", "rin", "gate", "tail")
SLOW_PATH_PARTS = ("ren", "rin", "tail", "gamma_head", "beta_head")


@dataclass
class ModelReport:
    """Parameter counts and MACs of one preset."""

    preset: str
    params: dict[str, int] = field(default_factory=dict)
    """Parameters per component: jsrl, ren, rin, gate, synthesis, text_heads."""
    fast_path_macs: dict[str, int] = field(default_factory=dict)
    """'HxW' → MACs of one fast-path frame."""
    slow_path_macs: dict[str, int] = field(default_factory=dict)
    """'HxW' → MACs of one slow-path refresh (I_pir⁰ and the Φγ/Φβ heads; text encoder excluded)."""
    component_macs: dict[str, dict[str, int]] = field(default_factory=dict)
    """'HxW' → component → MACs of the fast path, plus 'jsrl' for one training forward of both modalities."""

    def as_dict(self) -> dict[str, object]:
        fast = sum(self.params[p] for p in ("ren", "rin", "gate", "synthesis"))
        slow = sum(self.params[p] for p in ("ren", "rin", "synthesis", "text_heads"))
        return {
            "preset": self.preset,
            "params_total": sum(self.params.values()),
            "params": self.params,
            "fast_path_params": fast,
            "slow_path_params": slow,
            "fast_path_macs": self.fast_path_macs,
            "slow_path_macs": self.slow_path_macs,
            "component_macs": self.component_macs,
        }


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _macs_by_module(fn, *args) -> tuple[int, dict[str, int]]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(*args)
    per_module = counter.get_flop_counts()
    total = counter.get_total_flops() // 2
    parts = {name.split(".", 1)[1] if "." in name else name: sum(ops.values()) // 2
             for name, ops in per_module.items() if name.count(".") == 1}
    return total, parts


def model_report(preset_name: str) -> ModelReport:
    """Build both networks of `preset_name` on the meta device and count parameters and MACs."""
    config = preset(preset_name)
    with torch.device("meta"):
        jsrl, vgii = JsrlModel(config), VgiiModel(config)
    report = ModelReport(preset_name)
    report.params = {
        "jsrl": count_params(jsrl),
        "ren": count_params(vgii.ren),
        "rin": count_params(vgii.rin),
        "gate": count_params(vgii.gate),
        "synthesis": count_params(vgii.tail),
        "text_heads": count_params(vgii.gamma_head) + count_params(vgii.beta_head),
    }
    for height, width in REPORT_SIZES:
        key = f"{height}x{width}"
        y = torch.empty(1, 1, height, width, device="meta")
        gamma, beta = vgii.identity_modulation(1)
        fast_total, fast_parts = _macs_by_module(vgii, y, gamma, beta)
        slow_image, _ = _macs_by_module(vgii.initial_pseudo_ir, y)
        slow_text, _ = _macs_by_module(vgii.modulation, torch.empty(1, config.text_dim, device="meta"))
        jsrl_total, _ = _macs_by_module(jsrl, y, y)
        report.fast_path_macs[key] = fast_total
        report.slow_path_macs[key] = slow_image + slow_text
        report.component_macs[key] = {
            "ren": fast_parts.get("ren", 0),
            "rin": fast_parts.get("rin", 0),
            "gate": fast_parts.get("gate", 0),
            "synthesis": fast_parts.get("tail", 0),
            "jsrl": jsrl_total,
        }
    return report


def format_report(report: ModelReport) -> str:
    """A human-readable table of `report`."""
    data = report.as_dict()
    lines = [f"mnm model report: preset {report.preset}", "", f"{'component':<14}{'params':>14}"]
    lines += [f"{name:<14}{count:>14,}" for name, count in report.params.items()]
    lines += [f"{'total':<14}{data['params_total']:>14,}",
              f"{'fast path':<14}{data['fast_path_params']:>14,}",
              f"{'slow path':<14}{data['slow_path_params']:>14,}", ""]
    sizes = list(report.fast_path_macs)
    lines.append(f"{'GMACs':<14}" + "".join(f"{s:>14}" for s in sizes))
    for component in ("ren", "rin", "gate", "synthesis", "jsrl"):
        lines.append(f"{component:<14}" + "".join(
            f"{report.component_macs[s][component] / 1e9:>14.3f}" for s in sizes))
    lines.append(f"{'fast path':<14}" + "".join(f"{report.fast_path_macs[s] / 1e9:>14.3f}" for s in sizes))
    lines.append(f"{'slow path':<14}" + "".join(f"{report.slow_path_macs[s] / 1e9:>14.3f}" for s in sizes))
    lines.append("")
    lines.append("jsrl = one training forward over both modalities (FFT and Cholesky solves not counted);")
    lines.append("slow path = I_pir⁰ plus the Φγ/Φβ heads, text encoder excluded.")
    return "\n".join(lines)


def format_comparison(reports: list[ModelReport], reference: str = "small") -> str:
    """Presets side by side: fast-path parameters and GMACs (total and per component at the largest
    size), and each preset's fast-path MACs as a fraction of `reference`'s."""
    largest = list(reports[0].fast_path_macs)[-1]
    base = next((r.fast_path_macs[largest] for r in reports if r.preset == reference), None)
    rows = [("fast-path params", [f"{r.as_dict()['fast_path_params']:,}" for r in reports])]
    rows += [(f"GMACs {size}", [f"{r.fast_path_macs[size] / 1e9:.2f}" for r in reports])
             for size in reports[0].fast_path_macs]
    rows += [(f"  {part} {largest}", [f"{r.component_macs[largest][part] / 1e9:.2f}" for r in reports])
             for part in ("ren", "rin", "gate", "synthesis")]
    if base:
        rows.append((f"× {reference}'s MACs", [f"{r.fast_path_macs[largest] / base:.3f}" for r in reports]))
    rows.append(("slow-path GMACs " + largest, [f"{r.slow_path_macs[largest] / 1e9:.2f}" for r in reports]))
    width = max(len(label) for label, _ in rows) + 2
    lines = ["mnm model report: fast path (one frame) per preset", "",
             f"{'':<{width}}" + "".join(f"{r.preset:>12}" for r in reports)]
    lines += [f"{label:<{width}}" + "".join(f"{cell:>12}" for cell in cells) for label, cells in rows]
    lines += ["", "`mnm model-report --preset NAME` gives one preset's full table (JSRL and the slow path too)."]
    return "\n".join(lines)
