"""An exponential moving average of a model's trainable weights (Polyak averaging), for evaluation.

SGD's last iterate wanders around a minimum with the noise of its batches; the average of recent
iterates sits nearer its centre and usually validates better at no extra cost per step (Polyak &
Juditsky 1992; the "EMA model" of ultralytics and of most diffusion training). The stage trains the raw
weights as before; validation, checkpoint selection and the stage's product use the averaged ones.

    θ̄ ← d·θ̄ + (1 − d)·θ  after every optimizer step,  d = min(decay, (1 + n) / (10 + n))

The ramp on d lets the average follow the weights closely over the first updates, when it starts from
the initial weights (those of `init_from` in a continuation).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """The moving average of `model`'s parameters that require gradients; buffers are not averaged."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.average = {name: p.detach().clone() for name, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average (call after each optimizer step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, param in self.params.items():
            self.average[name].lerp_(param.detach(), 1.0 - decay)

    @contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """The averaged weights in the model for the duration of the block, the trained ones after it."""
        trained = {name: p.detach().clone() for name, p in self.params.items()}
        self.copy_to_model()
        try:
            yield
        finally:
            for name, param in self.params.items():
                param.copy_(trained[name])

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for name, param in self.params.items():
            param.copy_(self.average[name])

    def state_dict(self) -> dict:
        return {"updates": self.updates, "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for name, tensor in state["average"].items():
            self.average[name].copy_(tensor)
