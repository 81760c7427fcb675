"""The moving average of trained weights (training/weight_average.py)."""

from __future__ import annotations

import torch
from torch import nn

from training.weight_average import WeightAverage


def test_average_follows_the_formula_and_is_applied_only_inside_the_block():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model[1].weight.requires_grad_(False)  # frozen: not averaged, never touched
    average = WeightAverage(model, decay=0.9)
    assert set(average.average) == {"0.weight", "0.bias", "1.bias"}
    expected = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    for n in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update()
        d = min(0.9, (1 + n) / (10 + n))
        for name, p in model.named_parameters():
            if name in expected:
                expected[name] = d * expected[name] + (1 - d) * p.detach()
    trained = {name: p.detach().clone() for name, p in model.named_parameters()}
    with average.applied():
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.detach(), expected.get(name, trained[name]))
    for name, p in model.named_parameters():  # back to the trained weights
        assert torch.equal(p.detach(), trained[name])
    restored = WeightAverage(model, decay=0.9)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 5
    for name, tensor in restored.average.items():
        assert torch.equal(tensor, average.average[name])
