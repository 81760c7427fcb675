"""Greedy model soup (training/soup.py): uniform weight averages chosen on a validation score."""

from __future__ import annotations

import torch

from mnm_core.checkpoint import load_model
from test.conftest import write_tiny_checkpoint
from training.soup import cook, greedy_soup, read_ingredients


def test_greedy_soup_keeps_only_ingredients_that_do_not_lower_the_score(tmp_path):
    states = [write_tiny_checkpoint(tmp_path / f"{seed}.safetensors", seed=seed) for seed in (1, 2, 3)]
    ingredients = read_ingredients([tmp_path / f"{seed}.safetensors" for seed in (1, 2, 3)])
    model, _ = load_model(ingredients[0].path, preset="tiny")
    name = next(n for n, t in states[0].items() if t.is_floating_point() and not torch.equal(t, states[1][n]))
    # a score that prefers weights near the mean of models 1 and 2, far from model 3
    target = (states[0][name] + states[1][name]) / 2

    def score(candidate) -> float:
        return -float((candidate.state_dict()[name] - target).norm())

    soup, best, log = greedy_soup(model, ingredients, score)
    assert sorted(i.path.name for i in soup) == ["1.safetensors", "2.safetensors"]
    assert len(log) == 3 + 2  # each alone, then two tries of growing the soup
    assert [kept for _, _, kept in log[3:]].count(True) == 1
    cooked = cook(model, soup).state_dict()
    for key, tensor in cooked.items():
        torch.testing.assert_close(tensor, (states[0][key] + states[1][key]) / 2 if tensor.is_floating_point()
                                   else states[0][key])
    assert best == score(cook(model, soup)) > max(s for _, s, _ in log[:3])
