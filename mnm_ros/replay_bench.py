"""Repeated live replays of a bag through `fuse_node`, variants interleaved (`mnm replay-bench`).

One live replay measures what a user of the node feels (transport + conversion + inference + the slow
path competing for the cores), but on a shared machine one run's p99 moves by half between runs. So the
benchmark repeats the replay in rounds and interleaves the variants within each round (A B A B …): a
slow spell of the machine then hits every variant alike instead of one variant's whole series, and the
summary takes medians over rounds.

Each run is two fresh processes, as a deployment has them: `fuse_node` (`mnm_ros.client.start_node`:
the params file, then the variant's `-p` overrides, input remapped to the bag's topic) and `mnm
bag-play`, which publishes the topic at the bag's timing and records the node's outputs (end-to-end
latency by header stamp, `mnm_ros.bag_play`). Both run in one ROS domain with localhost discovery and the
shipped large-data Fast DDS profile, as `mnm demo` runs. The node is stopped with SIGINT after each run.
This module imports no rclpy itself.
"""

from __future__ import annotations

import csv
import logging
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnm_core.errors import ConfigError, DataError
from mnm_ros.demo import NAMESPACE, START_TIMEOUT_S

LOGGER = logging.getLogger(__name__)

DEFAULT_VARIANTS: dict[str, tuple[str, ...]] = {
    "no-text": ("text.encoder:=none",),
    "refresh-1s": ("text.refresh_period_s:=1.0",),
}
"""Variant name → ROS parameter overrides. The first variant is the baseline of the p99 ratio."""
DEFAULT_TOPIC = "/camera/image_raw"
OUTPUT = f"{NAMESPACE}/fused"
"""The output whose latency is reported (pseudo_ir is published just before it, with the same stamp)."""
POLL_S = 0.2
"""How often the node is checked for an early exit while the replay runs."""
LOG_TAIL_LINES = 12
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ReplayRun:
    """One replay of one variant: frames the node published of those played, latency over those (ms)."""

    variant: str
    round: int
    """1-based round."""
    published: int
    total: int
    """Messages of the topic played (the bag's count unless it is damaged)."""
    median_ms: float
    p99_ms: float


@dataclass(frozen=True)
class VariantSummary:
    """A variant over its rounds: medians of the per-run figures, the worst published fraction."""

    variant: str
    rounds: int
    median_ms: float
    """Median of the runs' medians."""
    p99_ms: float
    """Median of the runs' p99."""
    min_published_fraction: float
    p99_ratio: float
    """p99_ms / the baseline (first) variant's p99_ms."""


def parse_variant(text: str) -> tuple[str, tuple[str, ...]]:
    """'NAME=KEY:=VALUE[,KEY:=VALUE...]' → (NAME, overrides); 'NAME=' is the params file unchanged.

    Values cannot contain commas. ConfigError for a malformed variant.
    """
    name, sep, rest = text.partition("=")
    if not sep or not _NAME.fullmatch(name):
        raise ConfigError(f"variant {text!r}: expected NAME=KEY:=VALUE[,KEY:=VALUE...] with NAME made of "
                          "letters, digits, '_', '-', '.'")
    overrides = tuple(item.strip() for item in rest.split(",") if item.strip())
    for item in overrides:
        key, assign, _ = item.partition(":=")
        if not assign or not key.strip():
            raise ConfigError(f"variant {name!r}: override {item!r} is not KEY:=VALUE (e.g. text.encoder:=none)")
    return name, overrides


def _overrides(items: Sequence[str]) -> dict[str, str]:
    """['key:=value', …] (checked by `parse_variant`) → {key: value} for `start_node` ('' is passed as '')."""
    return {key.strip(): value.strip() for key, value in (item.split(":=", 1) for item in items)}


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except OSError:
        return "(no log)"


def _check_bag(bag: Path, topic: str) -> int:
    """The topic's message count from the bag's index (-1 if unknown); DataError for no bag or no topic."""
    from mnm_core.bags.reader import BagReader

    with BagReader(bag) as reader:  # DataError for a missing or unreadable bag
        topics = reader.topics
        if topic not in topics:
            raise DataError(f"topic {topic} is not in bag {bag}; it has: {reader.describe_topics()}")
        return topics[topic][1]


def _default_params_file() -> Path:
    from mnm_ros.qos import shipped_config

    found = shipped_config("fuse.yaml")
    if found is None:
        raise ConfigError("the shipped config/fuse.yaml was not found (share/mnm_ros/config or the source "
                          "checkout); pass a params file")
    return found


def _environment(domain_id: int) -> dict[str, str]:
    """This process's environment with the large-data Fast DDS profile, the domain, localhost discovery."""
    from mnm_ros.qos import large_data_environment

    env = large_data_environment()
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return env


def _latencies(record: Path) -> tuple[list[float], int]:
    """The OUTPUT latencies (ms) of the frames that came back, and the number of frames played."""
    path = record / "latency.csv"
    if not path.is_file():
        raise DataError(f"mnm bag-play wrote no {path}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    column = f"{OUTPUT}_latency_ms"
    if rows and column not in rows[0]:
        raise DataError(f"{path} has no column {column}: {list(rows[0])}")
    return [float(row[column]) for row in rows if row[column]], len(rows)


def _run_once(bag: Path, topic: str, params_file: Path, variant: str, overrides: Sequence[str], round_: int,
              run_dir: Path, env: Mapping[str, str], wait_s: float, settle_s: float) -> ReplayRun:
    """Start the node, replay the bag into it with `mnm bag-play`, stop the node; the run's figures."""
    from mnm_ros.client import start_node, stop_node

    run_dir.mkdir(parents=True, exist_ok=True)
    node_log, play_log, record = run_dir / "node.log", run_dir / "play.log", run_dir / "record"
    node = start_node(NAMESPACE, _overrides(overrides), env, node_log, params_file=params_file,
                      remaps={"image": topic})
    try:
        command = [sys.executable, "-m", "mnm_core.cli", "bag-play", str(bag), "--topics", topic,
                   "--input-topic", topic, "--record", str(record), "--wait", str(wait_s), "--settle", str(settle_s)]
        with play_log.open("w") as log:
            play = subprocess.Popen(command, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
        try:
            while play.poll() is None:
                if node.poll() is not None:
                    raise ConfigError(f"fuse_node ({variant}, round {round_}) exited with code {node.returncode} "
                                      f"during the replay; last lines of {node_log}:\n{_tail(node_log)}")
                time.sleep(POLL_S)
        finally:
            stop_node(play)
    finally:
        code = stop_node(node)
    if play.returncode != 0:
        raise DataError(f"mnm bag-play failed ({variant}, round {round_}, exit code {play.returncode}); last lines "
                        f"of {play_log}:\n{_tail(play_log)}")
    if code != 0:
        LOGGER.warning("fuse_node (%s, round %d) exited with code %s when stopped; see %s", variant, round_, code,
                       node_log)
    latencies, total = _latencies(record)
    if not latencies:
        raise DataError(f"no frame came back on {OUTPUT} ({variant}, round {round_}; was the node ready within "
                        f"{wait_s:.0f} s?); last lines of {play_log}:\n{_tail(play_log)}\n"
                        f"and of {node_log}:\n{_tail(node_log)}")
    return ReplayRun(variant, round_, len(latencies), total, float(np.median(latencies)),
                     float(np.percentile(latencies, 99)))


def run_replay_bench(bag: str | Path, variants: Mapping[str, Sequence[str]] | None = None, repeats: int = 3,
                     topic: str = DEFAULT_TOPIC, params_file: str | Path | None = None,
                     out: str | Path | None = None, domain_id: int | None = None, wait_s: float = START_TIMEOUT_S,
                     settle_s: float = 10.0) -> list[ReplayRun]:
    """Replay `bag`'s `topic` through a fresh `fuse_node` per run, `repeats` rounds of every variant in order.

    variants: name → ROS parameter overrides ("text.encoder:=none"), applied over `params_file`
    (default: the shipped config/fuse.yaml); None = DEFAULT_VARIANTS. out: where each run keeps its
    node.log, play.log and record/ (play_summary.json, latency.csv, latency.png), in OUT/rN_VARIANT/;
    None = a temporary folder, removed afterwards. domain_id: ROS_DOMAIN_ID (None = a random one, the
    same for every run). wait_s: how long bag-play waits for the node to subscribe before playing;
    settle_s: how long it waits for late outputs. ConfigError for bad settings or a node that exits,
    DataError for a missing bag or topic, a failed bag-play, or a run where no frame came back.
    """
    variants = dict(DEFAULT_VARIANTS if variants is None else variants)
    if repeats < 1 or not variants:
        raise ConfigError("replay-bench needs repeats ≥ 1 and at least one variant")
    for name, items in variants.items():
        parse_variant(f"{name}={','.join(items)}")  # same checks as the command line's --variant
    if wait_s <= 0 or settle_s < 0:
        raise ConfigError("wait_s must be > 0 and settle_s ≥ 0")
    if domain_id is not None and not 0 <= domain_id <= 232:
        raise ConfigError(f"ROS_DOMAIN_ID must be in 0..232, got {domain_id}")
    params = Path(params_file) if params_file is not None else _default_params_file()
    if not params.is_file():
        raise ConfigError(f"params file {params} does not exist")
    bag = Path(bag)
    count = _check_bag(bag, topic)
    domain = domain_id if domain_id is not None else random.randint(1, 100)
    env = _environment(domain)
    LOGGER.info("replaying %s (%s, %s messages) through fuse_node: %d rounds of %s, params %s, ROS_DOMAIN_ID %d",
                bag, topic, count if count >= 0 else "?", repeats, ", ".join(variants), params, domain)

    with tempfile.TemporaryDirectory(prefix="mnm_replay_bench_") as scratch:
        root = Path(out) if out is not None else Path(scratch)
        runs: list[ReplayRun] = []
        total_runs = repeats * len(variants)
        for round_ in range(1, repeats + 1):
            for name, items in variants.items():
                LOGGER.info("run %d/%d: %s, round %d (%s)", len(runs) + 1, total_runs, name, round_,
                            " ".join(items) or "params file only")
                run = _run_once(bag, topic, params, name, items, round_, root / f"r{round_}_{name}", env, wait_s,
                                settle_s)
                LOGGER.info("%s, round %d: published %d of %d, median %.1f ms, p99 %.1f ms", name, round_,
                            run.published, run.total, run.median_ms, run.p99_ms)
                runs.append(run)
    return runs


def summarize(runs: Sequence[ReplayRun]) -> list[VariantSummary]:
    """Per variant, in order of first appearance (the first is the baseline): medians over the rounds."""
    by_variant: dict[str, list[ReplayRun]] = {}
    for run in runs:
        by_variant.setdefault(run.variant, []).append(run)
    rows = []
    for name, group in by_variant.items():
        fractions = [r.published / r.total if r.total else 0.0 for r in group]
        rows.append((name, len(group), statistics.median(r.median_ms for r in group),
                     statistics.median(r.p99_ms for r in group), min(fractions)))
    baseline = rows[0][3] if rows else float("nan")
    return [VariantSummary(name, rounds, median, p99, fraction, p99 / baseline if baseline > 0 else float("nan"))
            for name, rounds, median, p99, fraction in rows]


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A pipe table padded to fixed widths (plain text and Markdown alike); the first `left` columns
    left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i >= left else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def format_table(runs: Sequence[ReplayRun], summaries: Sequence[VariantSummary] | None = None) -> str:
    """The runs, one row each, then the summary per variant (`summarize(runs)` by default)."""
    summaries = summarize(runs) if summaries is None else summaries
    per_run = _markdown(
        ("variant", "round", "published", "median ms", "p99 ms"),
        [(r.variant, str(r.round), f"{r.published} of {r.total} ({100 * r.published / max(r.total, 1):.0f} %)",
          f"{r.median_ms:.1f}", f"{r.p99_ms:.1f}") for r in runs])
    baseline = summaries[0].variant if summaries else ""
    summary = _markdown(
        ("variant", "rounds", "min published", "median ms", "p99 ms", f"p99 vs {baseline}"),
        [(s.variant, str(s.rounds), f"{100 * s.min_published_fraction:.0f} %", f"{s.median_ms:.1f}",
          f"{s.p99_ms:.1f}", f"{s.p99_ratio:.2f}") for s in summaries])
    return f"{per_run}\n\nmedians over the rounds:\n\n{summary}"


__all__ = ["DEFAULT_VARIANTS", "ReplayRun", "VariantSummary", "format_table", "parse_variant", "run_replay_bench",
           "summarize"]
