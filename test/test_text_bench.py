"""`mnm text-bench`: the real CLI, MiniLM strictly offline in a fresh process, openai against a local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mnm_core.cli import main
from test.test_text_encoders import SERVER_DIM, server_url  # noqa: F401 - the fixture is used by name


def test_text_bench_minilm_offline_json() -> None:
    """HF_HUB_OFFLINE=1 is set before transformers is imported, as on a robot without network."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "mnm_core.cli", "text-bench", "--json", "--encoder", "minilm",
                          "--repeats", "1", "--threads", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert [row["encoder"] for row in rows] == ["minilm"]
    assert rows[0]["dim"] == 384 and rows[0]["load_s"] > 0 and rows[0]["per_prompt_ms"] > 0


def test_text_bench_openai_table(server_url: str, capsys) -> None:  # noqa: F811
    assert main(["text-bench", "--encoder", "openai", "--url", server_url, "--server-model", "test-embed",
                 "--repeats", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["encoder", "dim", "load_s", "per_prompt_ms"]
    assert table[2].split()[:2] == ["openai", str(SERVER_DIM)] and table[2].endswith("openai:test-embed:server")


def test_text_bench_missing_model_is_one_error(tmp_path, caplog) -> None:
    assert main(["text-bench", "--encoder", "hf-causal-lm", "--model-dir", str(tmp_path / "nothing")]) == 1
    assert "does not exist" in caplog.text
