"""Calibration crops for int8 quantisation, read from folders of images (`mnm_core.quantize` runs each
under the modulations the deployed pipeline would feed it).

A folder is a set of aligned pairs (`DIR/vis/` + `DIR/ir/`, the layout of ../shared/data: only the
visible images are read) or a plain folder of visible images (a camera's own frames). Files are
decoded as the node decodes them (`mnm_core.pairs.read_frame`). The default folders are the training
sets of `DataConfig`, found next to the source tree as training finds them (`../shared/data` relative
to the repository root); an installed package has none and must be given folders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnm_core.config import SIZE_MULTIPLE, DataConfig
from mnm_core.errors import DataError
from mnm_core.pairs import IMAGE_SUFFIXES, read_frame

LOGGER = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_SIZE = (256, 320)
"""H×W of the calibration crops (320×256 W×H: a small camera frame, cheap to run)."""
CALIBRATION_COUNT = 24


def default_calibration_folders() -> list[Path]:
    """The training sets (`DataConfig.train_sets` under `DataConfig.root`) that exist on this machine."""
    data = DataConfig()
    root = REPO_ROOT / data.root
    return [root / name for name in data.train_sets if (root / name).is_dir()]


def _image_files(folder: Path) -> list[Path]:
    """The visible images of `folder`: those in its vis/ sub-folder when it has one, else its own images."""
    images = folder / "vis" if (folder / "vis").is_dir() else folder
    if not images.is_dir():
        raise DataError(f"calibration folder {folder} does not exist")
    return sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _crop(y: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random H×W crop; an image smaller than the crop is first scaled up to cover it."""
    import cv2

    height, width = size
    scale = max(height / y.shape[0], width / y.shape[1])
    if scale > 1:
        covering = (max(width, round(y.shape[1] * scale)), max(height, round(y.shape[0] * scale)))
        y = cv2.resize(y, covering, interpolation=cv2.INTER_LINEAR)
    top = int(rng.integers(0, y.shape[0] - height + 1))
    left = int(rng.integers(0, y.shape[1] - width + 1))
    return y[top:top + height, left:left + width]


def calibration_images(folders: Sequence[str | Path], count: int = CALIBRATION_COUNT,
                       size: tuple[int, int] = CALIBRATION_SIZE, seed: int = 0) -> list[np.ndarray]:
    """`count` RGB crops (H×W×3 float32 in [0, 1]; gray images as three equal channels), drawn evenly
    from `folders` with a fixed seed.

    Each folder gives its share of randomly chosen images (all of them when it has fewer), each a
    random `size` crop. DataError when `folders` is empty or holds no readable image.
    """
    height, width = size
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise DataError(f"calibration size {width}×{height} (W×H) must be a multiple of {SIZE_MULTIPLE}")
    if not folders:
        raise DataError("no calibration folders given; pass folders of visible images or of vis/+ir/ pairs")
    rng = np.random.default_rng(seed)
    images = []
    for index, folder in enumerate(folders):
        files = _image_files(Path(folder))
        share = count // len(folders) + (index < count % len(folders))
        for choice in rng.choice(len(files), size=min(share, len(files)), replace=False):
            pixels = read_frame(files[choice]).rgb().astype(np.float32) / 255.0
            if pixels.ndim == 2:
                pixels = np.repeat(pixels[:, :, None], 3, axis=2)
            images.append(np.ascontiguousarray(_crop(pixels, size, rng)))
    if not images:
        raise DataError(f"no calibration images in {', '.join(str(f) for f in folders)}")
    LOGGER.info("%d calibration crops of %d×%d from %s", len(images), width, height,
                ", ".join(Path(f).name for f in folders))
    return images


__all__ = ["CALIBRATION_COUNT", "CALIBRATION_SIZE", "calibration_images", "default_calibration_folders"]
