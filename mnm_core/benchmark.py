"""Fast-path latency benchmark: backend × precision × preset × resolution → median, p99, frames/s, peak memory.

Each row is measured in one run: the backend is created, warmed up at that size, then timed for up
to `repeats` runs or until `budget_s` is spent (slow rows get fewer repeats; the row says how many).
Memory: on the CPU the peak resident set of this process during the row above its size before the
backend was created (Linux /proc: VmHWM is reset per row); on CUDA torch's peak allocation (torch
backend) or the device memory in use at the end of the row, above the start (other backends).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnm_core.errors import MnmError

LOGGER = logging.getLogger(__name__)

SIZES: tuple[tuple[int, int], ...] = ((256, 320), (512, 640), (1024, 1280))
"""H×W of the 320×256, 640×512 and 1280×1024 (W×H) resolutions."""


@dataclass(frozen=True)
class BenchResult:
    backend: str
    precision: str
    preset: str
    height: int
    width: int
    warmup: int
    repeats: int
    median_ms: float
    p99_ms: float
    fps: float
    peak_mem_mib: float | None
    memory: str
    """What peak_mem_mib measures: 'host RSS', 'GPU (torch peak)' or 'GPU (in use)'."""
    runs_on: str
    """The backend's own description, e.g. 'onnxruntime fp32 (CPU)'."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _proc_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class MemoryProbe:
    """Peak memory of one benchmark row, in MiB above the level when `start` was called."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.kind = "host RSS"
        self.start_level = 0.0

    def start(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            free, total = torch.cuda.mem_get_info()
            self.start_level = (total - free) / 2**20
        else:
            self.start_level = (_proc_kib("VmRSS") or 0) / 1024

    def reset_peak(self) -> None:
        """Forget the host high-water mark so far (it restarts at the current RSS)."""
        if not self.cuda:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                LOGGER.debug("cannot reset VmHWM; host peaks include earlier rows")

    def peak(self, backend_name: str) -> float | None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            if backend_name == "torch":
                self.kind = "GPU (torch peak)"
                return torch.cuda.max_memory_allocated() / 2**20
            self.kind = "GPU (in use)"
            free, total = torch.cuda.mem_get_info()
            return (total - free) / 2**20 - self.start_level
        hwm = _proc_kib("VmHWM")
        return None if hwm is None else hwm / 1024 - self.start_level


def bench_model(preset: str, seed: int = 0):
    """(model, what it is): the embedded checkpoint of the preset (mnm_core/weights/mnm_<preset>), else an
    untrained model with a random positive dictionary (timing does not depend on the weights; a fixed seed
    keeps the export cache)."""
    import torch

    from mnm_core.checkpoint import default_checkpoint_path, load_model, read_checkpoint
    from mnm_core.config import preset as preset_config
    from mnm_core.model import VgiiModel

    path = default_checkpoint_path(preset)
    if path.is_file() and read_checkpoint(path)[0].preset == preset:
        return load_model(path)[0], f"embedded checkpoint {path.name}"
    with torch.random.fork_rng():  # seeded weights without touching the caller's random state
        torch.manual_seed(seed)
        model = VgiiModel(preset_config(preset)).eval()
        n_atoms, size = model.config.n_atoms, model.config.atom_size
        atoms = torch.rand(n_atoms, size, size)
        model.set_dictionary(atoms / atoms.sum(dim=(1, 2), keepdim=True))
    return model, "untrained, random dictionary"


def time_backend(backend, size: tuple[int, int], repeats: int, warmup: int,
                 budget_s: float) -> tuple[int, list[float]]:
    """(warm-up runs done, timed latencies in ms). Warm-up stops early when one run takes > budget/4."""
    n_atoms = backend.n_atoms
    rng = np.random.default_rng(0)
    y = rng.random((1, 1, *size), dtype=np.float32)
    gamma, beta = np.ones((1, n_atoms), np.float32), np.zeros((1, n_atoms), np.float32)
    done = 0
    for _ in range(max(1, warmup)):
        start = time.perf_counter()
        backend.run(y, gamma, beta)
        done += 1
        if time.perf_counter() - start > budget_s / 4:
            break
    latencies: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(latencies) < repeats and (not latencies or time.perf_counter() < deadline):
        start = time.perf_counter()
        backend.run(y, gamma, beta)
        latencies.append((time.perf_counter() - start) * 1e3)
    return done, latencies


def run_benchmark(backends: list[str] | None = None, precisions: list[str] | None = None,
                  presets: list[str] | tuple[str, ...] = ("small",),
                  sizes: list[tuple[int, int]] | tuple[tuple[int, int], ...] = SIZES, repeats: int = 20,
                  warmup: int = 2, budget_s: float = 10.0, device: str = "cpu", cache_dir: str = "",
                  threads: int = 0) -> tuple[list[BenchResult], list[str]]:
    """All rows that could run, and notes: which weights were used, and rows skipped with the reason.

    backends: default torch and onnxruntime, plus tensorrt on CUDA; precisions: default fp32, plus fp16
    on CUDA. `threads` > 0 sets torch's and onnxruntime's CPU threads for the run (0 = their defaults).
    """
    import torch

    cuda = device.startswith("cuda")
    backends = backends or (["torch", "onnxruntime", "tensorrt"] if cuda else ["torch", "onnxruntime"])
    precisions = precisions or (["fp32", "fp16"] if cuda else ["fp32"])

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run_rows(backends, precisions, presets, sizes, repeats, warmup, budget_s, device, cache_dir, threads)
    finally:
        torch.set_num_threads(previous)


def _run_rows(backends, precisions, presets, sizes, repeats, warmup, budget_s, device, cache_dir,
              threads) -> tuple[list[BenchResult], list[str]]:
    from tqdm import tqdm

    from mnm_core.backends import create_backend

    results: list[BenchResult] = []
    notes: list[str] = []
    combos = [(p, b, q) for p in presets for b in backends for q in precisions]
    with tqdm(total=len(combos) * len(sizes), desc="bench", unit="row", leave=False) as progress:
        for preset in presets:
            model, weights = bench_model(preset)
            notes.append(f"{preset}: {weights}")
            for name in backends:
                for precision in precisions:
                    probe = MemoryProbe(device)
                    probe.start()
                    options = {} if name == "torch" else {"cache_dir": cache_dir}
                    if name == "onnxruntime" and threads:
                        options["threads"] = threads
                    try:
                        backend = create_backend(name, model, precision=precision, device=device, **options)
                    except MnmError as exc:
                        notes.append(f"skipped {name} {precision} {preset}: {exc}")
                        progress.update(len(sizes))
                        continue
                    if precision == "int8":
                        notes.append(f"{name} int8 {preset}: {backend.path}")
                    for height, width in sizes:
                        progress.set_postfix_str(f"{name} {precision} {preset} {width}×{height}")
                        probe.reset_peak()
                        done, latencies = time_backend(backend, (height, width), repeats, warmup, budget_s)
                        median = float(np.median(latencies))
                        results.append(BenchResult(
                            backend=name, precision=precision, preset=preset, height=height, width=width,
                            warmup=done, repeats=len(latencies), median_ms=median,
                            p99_ms=float(np.percentile(latencies, 99)), fps=1e3 / median,
                            peak_mem_mib=probe.peak(name), memory=probe.kind, runs_on=backend.describe()))
                        progress.update(1)
                    del backend
    return results, notes


def machine(device: str) -> dict[str, object]:
    """What the numbers were measured on: CPU, cores, load, library versions, GPU."""
    import os
    import platform

    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info: dict[str, object] = {
        "cpu": cpu, "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 1),
        "torch_default_threads": torch.get_num_threads(), "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def format_table(results: list[BenchResult]) -> str:
    """A fixed-width table, one row per measurement (resolution written W×H, as cameras name it)."""
    header = ("backend", "precision", "preset", "W×H", "median ms", "p99 ms", "frames/s", "peak MiB",
              "runs", "memory")
    rows = [header] + [
        (r.backend, r.precision, r.preset, f"{r.width}×{r.height}", f"{r.median_ms:.1f}", f"{r.p99_ms:.1f}",
         f"{r.fps:.3g}", "n/a" if r.peak_mem_mib is None else f"{r.peak_mem_mib:.0f}",
         f"{r.warmup}+{r.repeats}", r.memory)
        for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 4 or i == 9 else cell.rjust(w) for i, (cell, w) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


__all__ = ["SIZES", "BenchResult", "MemoryProbe", "bench_model", "format_table", "machine", "run_benchmark",
           "time_backend"]
