"""Train both stages of the method: `python training/train.py --config training/configs/<name>.yaml`.

    --stage jsrl|dict|vgii|fusion|all
                                 which stage(s) to run (all = jsrl → dict → vgii → fusion, skipping finished
                                 ones; jsrl and dict are skipped when train.init_from gives the dictionary)
    --resume                     continue from the run folder's last state (after Ctrl-C or a kill)
    --seed N                     override train.seed

The YAML file holds up to three mappings, `train:` (TrainConfig), `data:` (DataConfig) and `text:`
(TextConfig), read with mnm_core.config.from_mapping: unknown keys are errors. Multi-process training:
`torchrun --nproc_per_node N training/train.py ...` (NCCL on GPUs, gloo on CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make `training` and `mnm_core` importable
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from mnm_core.config import DataConfig, TextConfig, TrainConfig, from_mapping, load_yaml  # noqa: E402
from mnm_core.errors import ConfigError, MnmError  # noqa: E402

LOGGER = logging.getLogger("training")
SECTIONS = {"train": TrainConfig, "data": DataConfig, "text": TextConfig}


def load_config(path: str | Path, seed: int | None = None) -> tuple[TrainConfig, DataConfig, TextConfig]:
    """The three config sections of a training YAML file; `seed` overrides train.seed."""
    raw = load_yaml(path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; valid sections: {sorted(SECTIONS)}")
    for name, value in raw.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: section {name!r} must be a mapping")
    train = from_mapping(TrainConfig, raw.get("train", {}))
    if seed is not None:
        train = dataclasses.replace(train, seed=seed)
    for key in ("export_path", "init_from"):  # relative paths are relative to the repository root
        value = getattr(train, key)
        if value and not Path(value).is_absolute():
            train = dataclasses.replace(train, **{key: str(REPO_ROOT / value)})
    return train, from_mapping(DataConfig, raw.get("data", {})), from_mapping(TextConfig, raw.get("text", {}))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML (train:, data:, text: sections)")
    parser.add_argument("--stage", choices=["jsrl", "dict", "vgii", "fusion", "all"], default="all")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's saved state")
    parser.add_argument("--seed", type=int, default=None, help="override train.seed")
    parser.add_argument("--out-dir", default=None, help="override train.out_dir")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="stop (as if interrupted, state saved) once a stage reaches this step; for tests")
    return parser.parse_args(argv)


def init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def prepare_out_dir(out_dir: Path, resume: bool, stage: str) -> None:
    states = sorted(p.name for p in out_dir.glob("*_state.pt")) if out_dir.is_dir() else []
    if states and not resume and stage in ("all", "jsrl"):
        raise ConfigError(f"{out_dir} already holds a run ({', '.join(states)}); pass --resume to continue it "
                          "or choose another train.out_dir / --out-dir")


def resolve_path(path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else REPO_ROOT / path


def load_data(data: DataConfig) -> tuple[list, list]:
    """(training pairs, validation pairs): the held-out split of the training sets (or data.val_set),
    at most data.val_images per set, centre-cropped to data.val_max_side."""
    from training.data import centre_crop, load_sets, split_holdout

    root = resolve_path(data.root)
    images, held_out = split_holdout(load_sets(root, data.train_sets, data.layout), data.val_every)
    if data.val_set:
        held_out = load_sets(root, (data.val_set,), data.layout)
    return images, [centre_crop(im, data.val_max_side) for im in _per_set(held_out, data.val_images)]


def _per_set(images: list, limit: int) -> list:
    """At most `limit` images of each set, spread over the set (every n-th), in order."""
    by_set: dict[str, list] = {}
    for image in images:
        by_set.setdefault(image.set_name, []).append(image)
    chosen = []
    for members in by_set.values():
        step = max(1, len(members) // limit) if limit > 0 else 1
        chosen.extend(members[::step][:limit] if limit > 0 else members)
    return chosen


def run(args: argparse.Namespace) -> int:
    train, data, text = load_config(args.config, args.seed)
    if args.out_dir:
        train = dataclasses.replace(train, out_dir=args.out_dir)
    return run_training(train, data, text, args.stage, args.resume, args.stop_after, source=args.config)


def run_training(train: TrainConfig, data: DataConfig, text: TextConfig, stage: str = "all", resume: bool = False,
                 stop_after: int = 0, source: str = "") -> int:
    """Run the `stage`s of a training (all = every stage not done yet); 0 when done, 130 when stopped early.

    `source` names where the configuration came from (recorded in the summary)."""
    from mnm_core.config import preset
    from training.data import CropSampler
    from training.logging_utils import RunLogger, StopFlag
    from training.stage2 import run_fusion, run_vgii
    from training.stages import RunContext, TrainingStoppedError, run_dict, run_jsrl

    preset(train.preset)  # fail early on an unknown preset
    out_dir = resolve_path(train.out_dir)
    rank, world, device = init_distributed()
    if rank == 0:
        prepare_out_dir(out_dir, resume, stage)
    text_features = None
    if data.pack:
        from training.pack import read_pack

        images, val_images, text_features = read_pack(resolve_path(data.pack))
    else:
        images, val_images = load_data(data)
    stop = StopFlag()
    stop.install()
    logger = RunLogger(resolve_path(train.log_dir) if train.log_dir else out_dir, enabled=rank == 0)
    logger.update_summary("run", {"config": source, "preset": train.preset, "seed": train.seed,
                                  "world_size": world, "device": str(device), "train_images": len(images),
                                  "threads": torch.get_num_threads(), "train": dataclasses.asdict(train),
                                  "data": dataclasses.asdict(data), "text": dataclasses.asdict(text)})
    ctx = RunContext(train, data, text, out_dir, CropSampler(images, data), val_images, logger, stop, device,
                     rank, world, stop_after, text_features)
    stages = ["jsrl", "dict", "vgii", "fusion"] if stage == "all" else [stage]
    if stage == "all" and train.init_from:
        stages = ["vgii", "fusion"]
    products = {"jsrl": out_dir / "jsrl.safetensors", "dict": out_dir / "dictionary.safetensors"}
    try:
        for name in stages:
            if stage == "all" and name in products and products[name].is_file():
                LOGGER.info("stage %s already done (%s)", name, products[name])
                continue
            {"jsrl": run_jsrl, "dict": run_dict, "vgii": run_vgii, "fusion": run_fusion}[name](ctx)
            if world > 1:
                dist.barrier()
    except TrainingStoppedError as exc:
        LOGGER.warning("%s", exc)
        return 130
    finally:
        logger.close()
        if world > 1:
            dist.destroy_process_group()
    LOGGER.info("done: %s", out_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        return run(args)
    except MnmError as exc:
        LOGGER.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
