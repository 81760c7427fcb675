"""A local causal language model as text encoder: pooled last hidden state of its backbone.

`model_dir` is a transformers model directory (Qwen2.5 and Qwen3 load natively; Qwen-7B-Chat needs
`trust_remote_code`) or a GGUF file (or a directory holding exactly one). A GGUF file is de-quantised
and converted once into a transformers directory under the cache (~/.cache/mnm/gguf/, honouring
$XDG_CACHE_HOME), because parsing a GGUF vocabulary takes tens of seconds on every load.
Everything is loaded with `local_files_only`: no network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from mnm_core.errors import TextEncoderError
from mnm_core.text.base import TextEncoder, check_texts, pool, to_features

LOGGER = logging.getLogger(__name__)

POOLINGS = ("mean", "last")


def model_name(model_dir: str | Path) -> str:
    """The model's name in the fingerprint: the directory name, or the GGUF file's stem."""
    path = Path(model_dir).expanduser()
    return path.stem if path.suffix == ".gguf" else path.name


def fingerprint(model_dir: str | Path, pooling: str) -> str:
    return f"hf-causal-lm:{model_name(model_dir)}:{pooling}"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnm"


def resolve_model(model_dir: str) -> tuple[Path, Path | None]:
    """(transformers directory, GGUF file or None) for a configured model path; clear errors otherwise."""
    if not model_dir:
        raise TextEncoderError("the hf-causal-lm encoder needs text.model_dir: a local transformers model "
                               "directory or a .gguf file")
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise TextEncoderError(f"hf-causal-lm model directory {path} does not exist; set text.model_dir to a "
                               "local transformers model directory or a .gguf file")
    if path.is_file():
        if path.suffix != ".gguf":
            raise TextEncoderError(f"hf-causal-lm: {path} is a file but not a .gguf file; give its directory")
        return path.parent, path
    if (path / "config.json").is_file():
        return path, None
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return path, ggufs[0]
    found = f"{len(ggufs)} .gguf files" if ggufs else "neither config.json nor a .gguf file"
    raise TextEncoderError(f"hf-causal-lm: {path} holds {found}; point text.model_dir at a transformers "
                           "model directory or at one .gguf file")


def convert_gguf(gguf: Path, cache: Path | None = None) -> Path:
    """Convert a GGUF model once into a transformers directory in the cache; returns that directory.

    The cache key is the file's path, size and modification time, so a replaced file converts again.
    """
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = (cache or cache_root()) / "gguf" / f"{gguf.stem}-{key}"
    if (target / "model.safetensors").is_file():
        return target
    LOGGER.info("converting %s to a transformers directory in %s (once; this takes a minute)", gguf, target)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True,
                                                     dtype=torch.float32)
        tokenizer.save_pretrained(str(tmp))
        # The weights are already de-quantised to fp32; drop the GGUF marker so they load as a plain model.
        model.config.quantization_config = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.save_pretrained(str(tmp))
        save_model(model, str(tmp / "model.safetensors"))
        tmp.replace(target)
    except (OSError, ValueError, ImportError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TextEncoderError(f"hf-causal-lm: cannot convert GGUF file {gguf}: {exc}") from exc
    return target


class HfCausalLmEncoder(TextEncoder):
    """Prompt (wrapped in the tokenizer's chat template, if any) → pooled last hidden state."""

    name = "hf-causal-lm"

    def __init__(self, model_dir: str, pooling: str = "mean", trust_remote_code: bool = False,
                 device: str = "cpu", cache: Path | None = None) -> None:
        if pooling not in POOLINGS:
            raise TextEncoderError(f"hf-causal-lm: unknown pooling {pooling!r}; use one of {list(POOLINGS)}")
        folder, gguf = resolve_model(model_dir)  # before importing transformers: a wrong path fails fast
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if gguf is not None:
            folder = convert_gguf(gguf, cache)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                            trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32,
                                                         trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            hint = "" if trust_remote_code else " (models with custom code need text.trust_remote_code: true)"
            raise TextEncoderError(f"hf-causal-lm: cannot load {folder}: {exc}{hint}") from exc
        # The backbone alone: its last_hidden_state is what we pool, and the LM head is never needed.
        self._backbone = model.base_model.to(device).eval()
        self._tokenizer.padding_side = "right"
        if self._tokenizer.pad_token is None and self._tokenizer.eos_token is not None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        self._device = device
        self._pooling = pooling
        self._chat = bool(getattr(self._tokenizer, "chat_template", None))
        self.dim = int(model.config.hidden_size)
        self.fingerprint = fingerprint(model_dir, pooling)
        LOGGER.debug("loaded %s from %s (chat template: %s)", self.fingerprint, folder, self._chat)

    def wrap(self, text: str) -> str:
        """The prompt as the model sees it: a user turn of its chat template, when it has one."""
        if not self._chat:
            return text
        return self._tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                   add_generation_prompt=False)

    def encode(self, texts: list[str]) -> np.ndarray:
        check_texts(texts)
        if self._tokenizer.pad_token is None and len(texts) > 1:  # e.g. Qwen-7B-Chat's tokenizer: one by one
            return np.concatenate([self._encode_batch([text]) for text in texts])
        return self._encode_batch(texts)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self._tokenizer([self.wrap(t) for t in texts], padding=len(texts) > 1, return_tensors="pt",
                                 add_special_tokens=not self._chat).to(self._device)
        with torch.inference_mode():
            hidden = self._backbone(input_ids=tokens["input_ids"],
                                    attention_mask=tokens["attention_mask"]).last_hidden_state
            pooled = pool(hidden, tokens["attention_mask"], self._pooling)
        return to_features(pooled)


__all__ = ["HfCausalLmEncoder", "convert_gguf", "fingerprint", "resolve_model"]
