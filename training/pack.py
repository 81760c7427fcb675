"""Pack the training data into one file for a machine that has neither ../shared/data nor a text model.

    python training/pack.py --config training/configs/gpu_small.yaml --out data_cache/pack.npz

One .npz (an ignored folder; never commit it) holding, for the config's training sets:
- every training pair losslessly, in the smaller of two forms: the original files' bytes where they are
  JPEG (decoding them gives the same pixels as here), else PNG of the visible LUMINANCE (the networks
  see only Y; colour matters only for the prompts, precomputed here) and of the IR;
- the held-out validation pairs (data.val_every, data.val_images), centre-cropped, visible in colour
  (the fusion metrics score colour images);
- the text features of every training and validation image, computed here with the config's encoder on
  the prompts of the model in train.init_from (or the shipped model), and the encoder's fingerprint.
The run then needs only torch, numpy and OpenCV: `data.pack` in its config points at the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mnm_core.errors import DataError  # noqa: E402
from training.data import PairedImage, luminance_u8  # noqa: E402
from training.exposure import night_exposure_gammas  # noqa: E402

PACK_VERSION = 1


def _png(image: np.ndarray) -> np.ndarray:
    import cv2

    ok, encoded = cv2.imencode(".png", image if image.ndim == 2 else image[..., ::-1],
                               [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise DataError("PNG encoding failed")
    return encoded.ravel()


def _original_jpeg_bytes(image: PairedImage) -> tuple[np.ndarray, np.ndarray] | None:
    """The pair's own JPEG files as bytes, when both are JPEG and decode to exactly the pixels loaded."""
    if image.files is None or any(f.suffix.lower() not in (".jpg", ".jpeg") for f in image.files):
        return None
    vis, ir = (np.fromfile(f, dtype=np.uint8) for f in image.files)
    if not (np.array_equal(_decode(vis), image.vis) and np.array_equal(_decode(ir), image.ir)):
        return None  # e.g. an IR JPEG stored with three channels: keep the pixels as loaded
    return vis, ir


def _decode(data: np.ndarray) -> np.ndarray:
    import cv2

    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError("the pack holds an image that does not decode; pack again")
    return image if image.ndim == 2 else np.ascontiguousarray(image[..., ::-1])


def gray_pair(image: PairedImage) -> PairedImage:
    """The pair with its visible image reduced to 8-bit luminance (what the networks see)."""
    return PairedImage(luminance_u8(image.vis), image.ir, image.set_name, image.name)


def write_pack(path: Path, train: list[PairedImage], val: list[PairedImage],
               features: tuple[torch.Tensor, torch.Tensor, str] | None) -> Path:
    """Write the pack (atomically); `features` = (train, validation, fingerprint) or None."""
    arrays: dict[str, np.ndarray] = {}
    index = []
    for split, images in (("train", train), ("val", val)):
        for i, image in enumerate(images):
            stored = _original_jpeg_bytes(image) if split == "train" else None
            if stored is None:
                image = gray_pair(image) if split == "train" else image
                stored = _png(image.vis), _png(image.ir)
            arrays[f"{split}_vis_{i}"], arrays[f"{split}_ir_{i}"] = stored
            index.append({"split": split, "i": i, "set": image.set_name, "name": image.name})
    meta = {"version": PACK_VERSION, "index": index, "text_encoder": features[2] if features else "none"}
    if features is not None:
        arrays["features_train"], arrays["features_val"] = features[0].numpy(), features[1].numpy()
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def read_pack(path: str | Path) -> tuple[list[PairedImage], list[PairedImage],
                                         tuple[torch.Tensor, torch.Tensor, str] | None]:
    """(training pairs, their visible images RGB or gray, validation pairs, text features or None)."""
    path = Path(path)
    try:
        data = np.load(path)
        meta = json.loads(bytes(data["meta"]).decode())
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is not a readable data pack ({exc}); make one with training/pack.py") from exc
    if meta.get("version") != PACK_VERSION:
        raise DataError(f"{path} is a version-{meta.get('version')} pack; this code reads version {PACK_VERSION}")
    splits: dict[str, list[PairedImage]] = {"train": [], "val": []}
    for entry in meta["index"]:
        key = f"{entry['split']}_{{}}_{entry['i']}"
        splits[entry["split"]].append(PairedImage(_decode(data[key.format("vis")]), _decode(data[key.format("ir")]),
                                                  entry["set"], entry["name"]))
    features = None
    if "features_train" in data:
        features = (torch.from_numpy(data["features_train"]), torch.from_numpy(data["features_val"]),
                    meta["text_encoder"])
    return splits["train"], splits["val"], features


def main(argv: list[str] | None = None) -> int:
    import logging

    from mnm_core.checkpoint import load_model
    from training.text_features import compute_features, create_text_encoder
    from training.train import load_config, load_data

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML whose data: and text: sections to pack")
    parser.add_argument("--out", default="data_cache/pack.npz", help="the pack file to write")
    args = parser.parse_args(argv)
    train_config, data_config, text_config = load_config(args.config)
    if data_config.pack:
        raise DataError(f"{args.config} reads a pack already (data.pack); give the config with the data root")
    train, val = load_data(data_config)
    features = None
    model, _ = load_model(train_config.init_from or None)
    encoder = create_text_encoder(text_config, model.config.text_dim)
    if encoder is not None:
        model.float().eval()
        exposure = night_exposure_gammas(train, train_config.seed) if train_config.night_exposure > 0 else None
        train_text = compute_features(model, train, encoder, text_config, train_config.text_thumb_size,
                                      with_grey=train_config.text_grey > 0, exposure=exposure)
        val_text = compute_features(model, val, encoder, text_config, train_config.text_thumb_size)
        features = (train_text.features, val_text.features, train_text.fingerprint)
    out = write_pack(Path(args.out), train, val, features)
    print(f"{out}: {len(train)} training and {len(val)} validation pairs, text features: "
          f"{features[2] if features else 'none'}; {out.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
