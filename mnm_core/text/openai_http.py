"""An OpenAI-compatible embeddings server (vLLM, llama.cpp server, Ollama) as text encoder.

Plain HTTP with the standard library: POST {url}/embeddings with {"model", "input"}, read
`data[i].embedding`. Every way the call can fail (server down, timeout, HTTP error, malformed
answer) is one TextEncoderError that names the URL.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request

import numpy as np

from mnm_core.errors import TextEncoderError
from mnm_core.text.base import TextEncoder, check_texts

LOGGER = logging.getLogger(__name__)

_PROBE = "probe"


def fingerprint(server_model: str) -> str:
    """The server decides the pooling, so the fingerprint is the served model's name."""
    return f"openai:{server_model}:server"


class OpenAiEncoder(TextEncoder):
    """Embeddings from a server; the constructor makes one call to learn `dim` (and that the server is up)."""

    name = "openai"

    def __init__(self, url: str, server_model: str, timeout_s: float = 10.0) -> None:
        if not server_model:
            raise TextEncoderError("the openai encoder needs text.server_model: the model name the server serves "
                                   "(e.g. the --model given to vLLM, or an Ollama model tag)")
        if not url.startswith(("http://", "https://")):
            raise TextEncoderError(f"openai encoder: text.url {url!r} must start with http:// or https://")
        self.endpoint = url.rstrip("/") + "/embeddings"
        self.server_model = server_model
        self.timeout_s = timeout_s
        self.fingerprint = fingerprint(server_model)
        self.dim = int(self.encode([_PROBE]).shape[1])
        LOGGER.debug("%s answers %d-d embeddings for %s", self.endpoint, self.dim, server_model)

    def encode(self, texts: list[str]) -> np.ndarray:
        check_texts(texts)
        body = json.dumps({"model": self.server_model, "input": list(texts)}).encode()
        request = urllib.request.Request(self.endpoint, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode(errors="replace")
            raise TextEncoderError(f"openai encoder: {self.endpoint} answered HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise self._timeout() from exc
            raise TextEncoderError(f"openai encoder: cannot reach {self.endpoint} ({exc.reason}); is the server "
                                   "running and text.url right?") from exc
        except TimeoutError as exc:
            raise self._timeout() from exc
        except (OSError, ValueError) as exc:
            raise TextEncoderError(f"openai encoder: bad answer from {self.endpoint}: {exc}") from exc
        return self._features(payload, len(texts))

    def _timeout(self) -> TextEncoderError:
        return TextEncoderError(f"openai encoder: {self.endpoint} did not answer within {self.timeout_s:g} s "
                                "(text.timeout_s)")

    def _features(self, payload: object, count: int) -> np.ndarray:
        try:
            rows = sorted(payload["data"], key=lambda row: row.get("index", 0))  # type: ignore[index]
            features = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TextEncoderError(f"openai encoder: {self.endpoint} did not answer with an embeddings list "
                                   f"(data[i].embedding): {exc!r}") from exc
        if features.ndim != 2 or features.shape[0] != count:
            raise TextEncoderError(f"openai encoder: asked for {count} embeddings, {self.endpoint} "
                                   f"returned an array of shape {features.shape}")
        return features


__all__ = ["OpenAiEncoder", "fingerprint"]
