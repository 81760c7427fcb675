"""Greedy model soup: the weight average of several fine-tunes of one model, chosen on validation.

Fine-tunes that start from the same weights stay in one basin, and the average of their weights is often
better, and more robust off the training distribution, than any one of them ("Model soups", Wortsman et
al., ICML 2022). The greedy recipe of that paper: score every ingredient on the validation split, start
the soup with the best, and add the others in order of their own score, keeping each only if the soup's
score does not fall. Only the validation split is looked at; the test sets stay for the verdict.

    python -m training.soup --config training/configs/fast_cpu_exposure_colour.yaml \\
        --checkpoint training/init/fast_exposure_colour_20261202.safetensors \\
                     training/init/fast_exposure_cont_20261202.safetensors … --out runs/soup.safetensors

Every ingredient must hold the same model (kind, preset, config, text encoder: `check_same_model`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mnm_core.checkpoint import CheckpointInfo, load_model, read_checkpoint, save_checkpoint
from mnm_core.model import VgiiModel
from training.interpolate import average_tensors, check_same_model


@dataclasses.dataclass
class Ingredient:
    path: Path
    info: CheckpointInfo
    state: dict[str, torch.Tensor]


def read_ingredients(paths: Sequence[Path]) -> list[Ingredient]:
    """The checkpoints' tensors, checked to hold one model."""
    ingredients = [Ingredient(Path(p), *read_checkpoint(p)) for p in paths]
    first = ingredients[0]
    for other in ingredients[1:]:
        check_same_model(first.info, other.info, (first.state, other.state))
    return ingredients


def cook(model: VgiiModel, ingredients: Sequence[Ingredient]) -> VgiiModel:
    """`model` loaded with the uniform average of the ingredients' weights."""
    model.load_state_dict(average_tensors([i.state for i in ingredients], [1.0 / len(ingredients)] * len(ingredients)))
    return model


def greedy_soup(model: VgiiModel, ingredients: Sequence[Ingredient],
                score: Callable[[VgiiModel], float]) -> tuple[list[Ingredient], float, list[tuple[str, float, bool]]]:
    """(the chosen ingredients, the soup's score, one row per try: (what was scored, its score, kept)).

    Ingredients are first scored alone; the soup then grows from the best one as the paper's recipe says.
    """
    alone = [(score(cook(model, [i])), i) for i in ingredients]
    log = [(f"{i.path.name} alone", s, False) for s, i in alone]
    ranked = [i for _, i in sorted(alone, key=lambda pair: -pair[0])]
    soup, best = [ranked[0]], max(s for s, _ in alone)
    for candidate in ranked[1:]:
        tried = score(cook(model, [*soup, candidate]))
        kept = tried >= best
        log.append((f"+ {candidate.path.name} ({len(soup) + 1} in the soup)", tried, kept))
        if kept:
            soup, best = [*soup, candidate], tried
    return soup, best, log


def main(argv: list[str] | None = None) -> None:
    from training.validate import checkpoint_text_encoder, score_model, validation_split

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML whose validation split scores the soups")
    parser.add_argument("--checkpoint", nargs="+", type=Path, required=True, help="the ingredients (≥ 2)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (fp32)")
    args = parser.parse_args(argv)
    if len(args.checkpoint) < 2:
        parser.error("a soup needs at least two checkpoints")
    ingredients = read_ingredients(args.checkpoint)
    model, info = load_model(ingredients[0].path)
    model = model.float().eval()
    split = validation_split(args.config)
    encoder = checkpoint_text_encoder(info)

    def val_score(candidate: VgiiModel) -> float:
        return score_model(candidate, encoder, split)["val_score"]

    soup, best, log = greedy_soup(model, ingredients, val_score)
    print("| tried | val_score | kept |\n|---|---|---|")
    for what, value, kept in log:
        print(f"| {what} | {value:.4f} | {'yes' if kept else ''} |")
    provenance = {"soup": {"ingredients": [str(i.path) for i in soup], "val_score": best},
                  "ingredient_extra": [i.info.extra for i in soup]}
    print(save_checkpoint(args.out, cook(model, soup), dataclasses.replace(info, extra=provenance)))


if __name__ == "__main__":
    main()
