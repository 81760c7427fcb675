"""Text encoders on real components: the packaged MiniLM, a real local HTTP embeddings server.

The strictly offline run (HF_HUB_OFFLINE=1 before transformers is imported) is test_text_bench.py's.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from mnm_core.config import TextConfig
from mnm_core.errors import ConfigError, TextEncoderError
from mnm_core.text import create_encoder, encoder_fingerprint

SERVER_DIM = 8


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return create_encoder(TextConfig())


def test_minilm_real_embedding(minilm) -> None:
    texts = ["A very dark scene with low contrast and a warm person at the lower left.",
             "A dark night scene, low contrast, one warm pedestrian on the left.",
             "A very bright sunny beach with blue sky and high contrast."]
    features = minilm.encode(texts)
    assert minilm.dim == 384 and features.shape == (3, 384) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    assert cosine(features[0], features[1]) > cosine(features[0], features[2]) + 0.1
    assert minilm.fingerprint == encoder_fingerprint(TextConfig()) == "minilm:all-MiniLM-L6-v2:mean"


def test_minilm_batch_equals_single(minilm) -> None:
    short, long = "warm objects", "a much longer prompt that forces padding of the shorter one in the batch"
    np.testing.assert_allclose(minilm.encode([short, long])[0], minilm.encode([short])[0], atol=1e-5)
    with pytest.raises(TextEncoderError, match="non-empty list"):
        minilm.encode("not a list")  # type: ignore[arg-type]


def test_unknown_encoder_and_none() -> None:
    with pytest.raises(ConfigError, match=r"TextConfig\.encoder: 'bert' is not one of \['minilm'"):
        TextConfig(encoder="bert")  # type: ignore[arg-type]
    with pytest.raises(TextEncoderError, match="identity modulation"):
        create_encoder(TextConfig(encoder="none"))


def test_hf_causal_missing_model(tmp_path) -> None:
    with pytest.raises(TextEncoderError, match=r"needs text\.model_dir"):
        create_encoder(TextConfig(encoder="hf-causal-lm"))
    with pytest.raises(TextEncoderError, match="does not exist"):
        create_encoder(TextConfig(encoder="hf-causal-lm", model_dir=str(tmp_path / "qwen")))
    with pytest.raises(TextEncoderError, match=r"neither config.json nor a \.gguf"):
        create_encoder(TextConfig(encoder="hf-causal-lm", model_dir=str(tmp_path)))
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(TextEncoderError, match=r"not a \.gguf file"):
        create_encoder(TextConfig(encoder="hf-causal-lm", model_dir=str(tmp_path / "weights.bin")))


# --- a real OpenAI-compatible embeddings server on 127.0.0.1 -------------------------------------------

class EmbeddingsHandler(BaseHTTPRequestHandler):
    """POST /v1/embeddings: deterministic features from each input's CRC, answered in reverse order."""

    delay_s = 0.0
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        time.sleep(self.delay_s)
        if self.path != "/v1/embeddings" or body.get("model") != "test-embed":
            self._reply(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
            return
        rows = [{"index": i, "embedding": np.random.default_rng(zlib.crc32(text.encode()))
                 .standard_normal(SERVER_DIM).tolist()} for i, text in enumerate(body["input"])]
        self._reply(200, {"object": "list", "data": rows[::-1], "model": body["model"]})

    def _reply(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def serve(delay_s: float = 0.0) -> Iterator[str]:
    handler = type("Handler", (EmbeddingsHandler,), {"delay_s": delay_s, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda *args: None  # the slow server's client hangs up on purpose
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server_url() -> Iterator[str]:
    yield from serve()


@pytest.fixture
def slow_server_url() -> Iterator[str]:
    yield from serve(delay_s=2.0)


def test_openai_encoder(server_url: str) -> None:
    config = TextConfig(encoder="openai", url=server_url + "/", server_model="test-embed", timeout_s=5.0)
    encoder = create_encoder(config)
    assert encoder.dim == SERVER_DIM and encoder.fingerprint == "openai:test-embed:server"
    assert encoder.fingerprint == encoder_fingerprint(config)
    features = encoder.encode(["dark scene", "bright scene"])
    assert features.shape == (2, SERVER_DIM) and features.dtype == np.float32
    expected = np.random.default_rng(zlib.crc32(b"bright scene")).standard_normal(SERVER_DIM)
    np.testing.assert_allclose(features[1], expected, rtol=1e-6)  # rows put back in index order


def test_openai_errors(server_url: str, slow_server_url: str) -> None:
    with pytest.raises(TextEncoderError, match=r"HTTP 404.*not found"):
        create_encoder(TextConfig(encoder="openai", url=server_url, server_model="other"))
    with pytest.raises(TextEncoderError, match=r"needs text\.server_model"):
        create_encoder(TextConfig(encoder="openai", url=server_url))
    with pytest.raises(TextEncoderError, match=r"did not answer within 0\.3 s"):
        create_encoder(TextConfig(encoder="openai", url=slow_server_url, server_model="test-embed", timeout_s=0.3))


def test_openai_server_down() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TextEncoderError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1/embeddings.*running"):
        create_encoder(TextConfig(encoder="openai", url=f"http://127.0.0.1:{port}/v1", server_model="test-embed"))
