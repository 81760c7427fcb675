"""Checkpoints side by side on the test sets: the pseudo-IR and fused-image tables of docs/training.md.

    python -m training.compare_models --checkpoint NAME=PATH [--checkpoint NAME=PATH ...]
        [--sets roadscene_test tno_test msrs_test_128] [--data-root ../shared/data] [--backend torch]
        [--precision auto] [--text-encoder auto] [--max-side PX] [--out runs/compare] [--limit N] [--report]

For each set (DATA_ROOT/SET with vis/ and ir/) it runs the evaluation of `mnm eval --method model`
(`mnm_core.evaluation.evaluate`: missing-IR protocol, vifb mode) once per checkpoint, without baselines,
and once the evaluation of `mnm eval --method visible`, whose baselines give the real-IR max(Y, IR)
fusion and whose rows score the trivial pseudo-IR guesses (visible Y, 1 − Y): baselines and guesses are
computed once per set, not per checkpoint. Each evaluation keeps its own outputs (per_image.csv,
summary.json, fused/, pseudo_ir/; report.html with `--report`) under OUT/SET/NAME/, the baselines' under
OUT/SET/baselines/. Then it prints three Markdown tables (four with two or more checkpoints):

1. Pseudo-IR: one row per set, one column per checkpoint and one per guess, "PSNR / SSIM / hotspot_auc";
   a checkpoint's cell is bold where it beats both guesses on SSIM and on hotspot_auc.
2. Fused image: one row per set, the six VIFB metrics (AG, CE ↓, EI, EN, Qcb, SF) of each checkpoint, of
   the visible baseline and of the real-IR fusion.
3. Fused image against the baselines: one row per set and checkpoint, AG, EI and SF as % over the visible
   baseline (the issue's target: each ≥ +10 %) and whether Qcb ≥ the real-IR fusion's.
4. With two or more checkpoints, each later one against the first (the reference, e.g. the shipped model):
   the mean per-image difference of hotspot_auc, its standard error, and how many images got better and
   worse. Per-image AUCs spread widely (on tno_test's 42 images a standard error of 0.025 is usual), so a
   difference within about two standard errors may be noise.

All numbers (and the derived ones) go to OUT/compare.json. `--limit N` evaluates only the first N pairs
of each set, in the evaluator's order. A missing set
folder or checkpoint stops everything before any evaluation, exit code 2; a set with no readable pair
is skipped with the reason (below the tables and in the JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from mnm_core.backends import BACKENDS
from mnm_core.commands.options import api_defaults
from mnm_core.config import PipelinePrecision
from mnm_core.errors import DataError, MnmError
from mnm_core.evaluation import FUSED_KEYS, EvalResult, evaluate
from mnm_core.guesses import GUESSES, PSEUDO_IR_SCORES, guess_means
from mnm_core.metrics import FUSED_WARM_KEY

if TYPE_CHECKING:
    from tqdm import tqdm

DEFAULT_SETS = ("roadscene_test", "tno_test", "msrs_test_128")
BASELINE_RUN = "baselines"
"""Folder (under OUT/SET/) of the run that scores the visible and real-IR baselines and the guesses."""
GAIN_KEYS = ("AG", "EI", "SF")
GAIN_TARGET_PCT = 10.0
"""The issue's target for the fused image: AG, EI and SF at least this many % above the visible image."""
PAIRED_KEY = "hotspot_auc"
"""The per-image score table 4 compares between checkpoints."""
BEATS_ON = ("pseudo_ir_ssim", "hotspot_auc")
"""A checkpoint's pseudo-IR cell is bold where it beats both guesses on each of these."""

Scores = dict[str, float | None]


@dataclass
class Options:
    """What every evaluation of a run shares."""

    out: Path
    backend: str
    precision: str
    text_encoder: str
    limit: int | None
    report: bool
    max_side: int | None


@dataclass
class SetRuns:
    """The evaluations of one set: the baselines' run and each checkpoint's, or why one did not run."""

    name: str
    data: Path
    baselines: EvalResult | None = None
    models: dict[str, EvalResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    """Run name ('baselines' or a checkpoint's) → why it gave no result."""


def checkpoint_arg(text: str) -> tuple[str, Path]:
    """argparse type of --checkpoint NAME=PATH: the name must work as a folder name."""
    name, sep, path = text.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATH")
    if name == BASELINE_RUN or name in (".", "..") or "/" in name or "\\" in name:
        raise argparse.ArgumentTypeError(f"{name!r} cannot name a checkpoint (a folder under OUT/SET/; "
                                         f"{BASELINE_RUN!r} is the baselines')")
    return name, Path(path)


def check_checkpoint(path: Path) -> None:
    """CheckpointError unless `path` loads as the stage-2 (vgii) model the pipeline runs."""
    from mnm_core.checkpoint import load_model

    load_model(path)


def check_inputs(checkpoints: dict[str, Path], data_root: Path, sets: list[str]) -> None:
    """Fail before any evaluation when a checkpoint or a set folder (with vis/ and ir/) is missing."""
    for path in checkpoints.values():
        check_checkpoint(path)
    for name in sets:
        for sub in ("vis", "ir"):
            if not (data_root / name / sub).is_dir():
                raise DataError(f"test set {name}: no folder {data_root / name / sub} (sets are DATA_ROOT/SET with "
                                f"vis/ and ir/; --data-root is {data_root})")


def run_set(name: str, data_root: Path, checkpoints: dict[str, Path], options: Options,
            progress: tqdm) -> SetRuns:
    """The baselines' evaluation of one set, then each checkpoint's; a set whose baselines find no
    readable pair is not evaluated further. `progress`: a tqdm bar over all runs."""
    runs = SetRuns(name, data_root / name)
    jobs: list[tuple[str, str, Path | None]] = [(BASELINE_RUN, "visible", None)]
    jobs += [(model, "model", path) for model, path in checkpoints.items()]
    for run, method, checkpoint in jobs:
        progress.set_postfix_str(f"{name}: {run}")
        if runs.baselines is None and run != BASELINE_RUN:
            progress.update(1)
            continue
        try:
            result = evaluate(runs.data, method, options.out / name / run, checkpoint=checkpoint,
                              baselines=method == "visible", report=options.report, text_encoder=options.text_encoder,
                              backend=options.backend, precision=options.precision, limit=options.limit,
                              max_side=options.max_side)
        except DataError as exc:
            runs.failed[run] = str(exc)
        else:
            if run == BASELINE_RUN:
                runs.baselines = result
            else:
                runs.models[run] = result
        progress.update(1)
    return runs


def gain_pct(value: float | None, reference: float | None) -> float | None:
    """`value` as % over `reference` (None where either is missing or the reference is 0)."""
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * (value / reference - 1.0)


def beats_guesses(pseudo_ir: Scores, guesses: dict[str, Scores]) -> bool:
    """Whether the pseudo-IR beats every guess on every score of BEATS_ON (False where one is missing)."""
    for key in BEATS_ON:
        values = [pseudo_ir.get(key)] + [guess.get(key) for guess in guesses.values()]
        if any(v is None for v in values) or any(pseudo_ir[key] <= v for v in values[1:]):
            return False
    return True


def model_entry(result: EvalResult, visible: Scores, real_ir: Scores, guesses: dict[str, Scores]) -> dict:
    """One checkpoint's numbers on one set, with the comparisons the tables mark."""
    mean = result.means["model"]
    pseudo_ir = guess_means(mean)["model"]
    gains = {key: gain_pct(mean[key], visible[key]) for key in GAIN_KEYS}
    qcb = None if mean["Qcb"] is None or real_ir["Qcb"] is None else mean["Qcb"] >= real_ir["Qcb"]
    return {"images": len(result.rows), "summary": str(result.summary_path), "pseudo_ir": pseudo_ir,
            "fused": {key: mean[key] for key in FUSED_KEYS}, "beats_guesses": beats_guesses(pseudo_ir, guesses),
            "gain_over_visible_pct": gains,
            "gains_meet_target": all(g is not None and g >= GAIN_TARGET_PCT for g in gains.values()),
            "qcb_at_least_real_ir": qcb}


def paired_difference(rows: list[dict], reference_rows: list[dict], key: str = PAIRED_KEY) -> dict | None:
    """Per-image `key` of `rows` minus that of `reference_rows`, over the images both scored (matched by
    name): mean, standard error of the mean, images better and worse; None where fewer than two match."""
    reference = {row["name"]: row.get(key) for row in reference_rows}
    diffs = [float(row[key]) - float(reference[row["name"]]) for row in rows
             if row.get(key) is not None and reference.get(row["name"]) is not None
             and math.isfinite(float(row[key])) and math.isfinite(float(reference[row["name"]]))]
    if len(diffs) < 2:
        return None
    mean = sum(diffs) / len(diffs)
    variance = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return {"key": key, "images": len(diffs), "mean": mean, "standard_error": math.sqrt(variance / len(diffs)),
            "better": sum(d > 0 for d in diffs), "worse": sum(d < 0 for d in diffs)}


def set_entry(runs: SetRuns) -> dict:
    """One evaluated set's numbers (its baselines' run succeeded)."""
    assert runs.baselines is not None
    means = runs.baselines.means
    visible = {key: means["visible"][key] for key in FUSED_KEYS}
    real_ir = {key: means["real-ir"][key] for key in FUSED_KEYS}
    guesses = {label: scores for label, scores in guess_means(means["visible"]).items() if label != "model"}
    models = {name: model_entry(result, visible, real_ir, guesses) for name, result in runs.models.items()}
    reference = next(iter(runs.models.items()), None)
    for name, result in runs.models.items():
        if reference is not None and name != reference[0]:
            models[name]["vs_reference"] = {"reference": reference[0],
                                            **(paired_difference(result.rows, reference[1].rows) or {})}
    return {"data": str(runs.data), "images": len(runs.baselines.rows),
            "summary": str(runs.baselines.summary_path), "visible": visible, "real-ir": real_ir,
            "guesses": guesses,
            "skipped_pairs": [{"name": s.name, "reason": s.reason} for s in runs.baselines.skipped],
            "models": models, "failed_runs": dict(runs.failed)}


def collect(all_runs: list[SetRuns]) -> tuple[dict[str, dict], dict[str, str]]:
    """(set → numbers) of the evaluated sets, (set → reason) of the skipped ones."""
    sets, skipped = {}, {}
    for runs in all_runs:
        if runs.baselines is None:
            skipped[runs.name] = runs.failed.get(BASELINE_RUN, "not evaluated")
        else:
            sets[runs.name] = set_entry(runs)
    return sets, skipped


def fmt(value: float | None) -> str:
    """A metric as the docs' tables write it: four significant digits, at most three decimals."""
    if value is None or not math.isfinite(value):
        return "—"
    digits = 0 if value == 0 else math.floor(math.log10(abs(value)))
    return f"{value:.{max(0, min(3, 3 - digits))}f}"


def pseudo_ir_cell(scores: Scores, bold: bool = False) -> str:
    psnr, ssim, auc = (scores.get(key) for key in PSEUDO_IR_SCORES)
    if psnr is None and ssim is None and auc is None:
        return "—"
    text = " / ".join("—" if v is None else f"{v:.{d}f}" for v, d in ((psnr, 2), (ssim, 3), (auc, 3)))
    return f"**{text}**" if bold else text


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def pseudo_ir_table(sets: dict[str, dict], names: list[str]) -> str:
    """Table 1: PSNR / SSIM / hotspot_auc per set of each checkpoint and of the two guesses."""
    header = ["set", *names, *(f"guess: {label}" for label in GUESSES.values())]
    rows = []
    for set_name, entry in sets.items():
        cells = [f"{set_name} ({entry['images']})"]
        for name in names:
            model = entry["models"].get(name)
            cells.append("—" if model is None else pseudo_ir_cell(model["pseudo_ir"], model["beats_guesses"]))
        cells += [pseudo_ir_cell(entry["guesses"][label]) for label in GUESSES.values()]
        rows.append(cells)
    return table(header, rows)


def fused_table(sets: dict[str, dict], names: list[str]) -> str:
    """Table 2: the six fusion metrics and the fused hotspot_auc per set of each checkpoint, the visible and
    the real-IR fusion."""
    header = ["set", *names, "visible", "real-IR max(Y, IR) (upper bound)"]
    rows = []
    for set_name, entry in sets.items():
        columns = [entry["models"].get(name, {}).get("fused") for name in names] + [entry["visible"], entry["real-ir"]]
        cells = ["—" if c is None else ", ".join(fmt(c[key]) for key in FUSED_KEYS) for c in columns]
        rows.append([set_name, *cells])
    return table(header, rows)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f} %".replace("-", "−")


def yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def gains_table(sets: dict[str, dict], names: list[str]) -> str:
    """Table 3: per set and checkpoint, AG/EI/SF over the visible baseline, Qcb against the real-IR fusion,
    and the fused image's hotspot_auc against the visible image's."""
    header = ["set", "checkpoint", *(f"{key} vs visible" for key in GAIN_KEYS),
              f"all ≥ +{GAIN_TARGET_PCT:g} %", "Qcb (real-IR's)", "Qcb ≥ real-IR", "fused hotspot_auc (visible's)"]
    rows = []
    for set_name, entry in sets.items():
        for name in names:
            model = entry["models"].get(name)
            if model is None:
                continue
            gains = model["gain_over_visible_pct"]
            rows.append([set_name, name, *(pct(gains[key]) for key in GAIN_KEYS),
                         yes_no(model["gains_meet_target"]),
                         f"{fmt(model['fused']['Qcb'])} ({fmt(entry['real-ir']['Qcb'])})",
                         yes_no(model["qcb_at_least_real_ir"]),
                         f"{fmt(model['fused'][FUSED_WARM_KEY])} ({fmt(entry['visible'][FUSED_WARM_KEY])})"])
    return table(header, rows)


def paired_table(sets: dict[str, dict], names: list[str]) -> str:
    """Table 4: per set, each later checkpoint's per-image hotspot_auc against the first's."""
    header = ["set", "checkpoint", f"Δ {PAIRED_KEY} vs {names[0]} (± standard error)", "images better / worse",
              "beyond 2 standard errors"]
    rows = []
    for set_name, entry in sets.items():
        for name in names[1:]:
            paired = entry["models"].get(name, {}).get("vs_reference", {})
            if paired.get("reference") != names[0] or "mean" not in paired:
                continue  # the first checkpoint did not run on this set, or too few images matched
            delta = f"{paired['mean']:+.3f} ± {paired['standard_error']:.3f}".replace("-", "−")
            rows.append([set_name, name, delta, f"{paired['better']} / {paired['worse']}",
                         yes_no(abs(paired["mean"]) > 2 * paired["standard_error"])])
    return table(header, rows)


def skipped_lines(sets: dict[str, dict], skipped: dict[str, str]) -> list[str]:
    """What did not run: whole sets, single runs, pairs the evaluator left out."""
    lines = [f"- set {name} skipped: {reason}" for name, reason in skipped.items()]
    for set_name, entry in sets.items():
        lines += [f"- {set_name} / {run}: not evaluated: {reason}" for run, reason in entry["failed_runs"].items()]
        if entry["skipped_pairs"]:
            lines.append(f"- {set_name}: {len(entry['skipped_pairs'])} pairs left out by the evaluator "
                         f"(reasons in {entry['summary']})")
    return lines


def markdown(sets: dict[str, dict], skipped: dict[str, str], names: list[str]) -> str:
    """The tables with their captions (the fourth with two or more checkpoints), and what was skipped."""
    parts = [f"**Pseudo-IR** (PSNR dB / SSIM / hotspot_auc; bold: beats both trivial guesses on SSIM and on "
             f"hotspot_auc):\n\n{pseudo_ir_table(sets, names)}",
             f"**Fused image** ({', '.join(FUSED_KEYS).replace('CE', 'CE ↓')}):\n\n{fused_table(sets, names)}",
             f"**Fused image against the baselines** (AG, EI, SF as % over the visible image, target "
             f"≥ +{GAIN_TARGET_PCT:g} % each; Qcb against the real-IR max(Y, IR) fusion's):\n\n"
             f"{gains_table(sets, names)}"]
    if len(names) > 1:
        parts.append(f"**{PAIRED_KEY} per image against {names[0]}** (mean difference over the images both "
                     f"scored; within about two standard errors it may be noise):\n\n{paired_table(sets, names)}")
    lines = skipped_lines(sets, skipped)
    if lines:
        parts.append("Skipped:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def write_json(path: Path, sets: dict[str, dict], skipped: dict[str, str], checkpoints: dict[str, Path],
               args: argparse.Namespace) -> None:
    """OUT/compare.json: the run's settings, `sets` and `skipped` (means are finite or None: strict JSON)."""
    document = {"data_root": str(args.data_root), "limit": args.limit, "backend": args.backend,
                "precision": args.precision, "text_encoder": args.text_encoder, "max_side": args.max_side,
                "mode": "vifb",
                "checkpoints": {name: str(p) for name, p in checkpoints.items()}, "sets": sets,
                "skipped_sets": skipped}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    default = api_defaults(evaluate)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=checkpoint_arg, action="append", required=True, metavar="NAME=PATH",
                        help="a stage-2 checkpoint and its column name (repeat to compare several)")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), help="test sets under --data-root")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"), help="folder of the sets")
    parser.add_argument("--backend", default=default["backend"], choices=BACKENDS, help="fast-path backend")
    parser.add_argument("--precision", default=default["precision"], choices=get_args(PipelinePrecision),
                        help="fast-path precision; auto = what this machine runs by default")
    parser.add_argument("--text-encoder", default=default["text_encoder"], choices=("auto", "minilm", "none"),
                        help="language conditioning: auto = each checkpoint's own encoder, per image")
    parser.add_argument("--max-side", type=int, default=None, metavar="PX",
                        help="longest side the fast path runs at (0 = each image's own size; default: the "
                             "pipeline's, PipelineConfig.max_side)")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"), help="output folder")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N pairs of each set")
    parser.add_argument("--report", action="store_true", help="also write each evaluation's report.html")
    args = parser.parse_args(argv)
    names = [name for name, _ in args.checkpoint]
    if len(set(names)) != len(names):
        parser.error(f"checkpoint names must differ: {', '.join(names)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    checkpoints = dict(args.checkpoint)
    options = Options(args.out, args.backend, args.precision, args.text_encoder, args.limit, args.report,
                      args.max_side)
    try:
        check_inputs(checkpoints, args.data_root, args.sets)
        with tqdm(total=len(args.sets) * (1 + len(checkpoints)), desc="compare", unit="run") as progress:
            all_runs = [run_set(name, args.data_root, checkpoints, options, progress) for name in args.sets]
    except MnmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sets, skipped = collect(all_runs)
    write_json(args.out / "compare.json", sets, skipped, checkpoints, args)
    print(markdown(sets, skipped, list(checkpoints)))
    print(f"\nnumbers: {args.out / 'compare.json'}; each evaluation's outputs under {args.out}/SET/NAME/")
    return 0 if sets else 1


if __name__ == "__main__":
    raise SystemExit(main())
