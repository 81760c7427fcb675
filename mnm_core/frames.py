"""One way in for frames (no ROS): the encodings, the 16-bit → 8-bit policy, the layout rule, `Frame`.

Every source of frames goes through this module: the node's messages (`mnm_ros.conversions`), bag
messages (`mnm_core.bags.reader`) and image files (`mnm_core.pairs`, hence `mnm eval`). So a frame gives
the same pixels — and the same Fuser output — live, in `mnm bag-eval` and in `mnm eval`.

- **Encodings**: `ENCODINGS`, keyed by the sensor_msgs/Image encoding (lower case). A decoded image file
  or CompressedImage is named from the same table by its dtype and channels (mono8, bgr8, bgra8, mono16,
  bgr16, bgra16: OpenCV decodes colour as BGR).
- **16 → 8 bits**: a per-frame percentile stretch (`to_eight_bit`). Thermal cameras publish raw
  radiometric counts in a narrow band of the 16-bit range (e.g. 3000..3300); the high byte would make
  them flat. The 1st..99th percentile of the frame's values map to 0..255 (one range for all colour
  channels), so a few dead or hot pixels do not steal the contrast, as a thermal viewer's automatic gain
  does. It is per frame and has no memory on purpose: the node drops frames when inference is slower
  than the camera, and a gain smoothed over the frames it happened to see would make live and offline
  outputs differ. 8-bit sources pass through unchanged.
- **Layout**: the Fuser gets H×W (gray) or H×W×3 in 'rgb' or 'bgr' order. Alpha is split off and kept
  for the output. A colour image whose three channels are equal (a gray image stored as colour, a camera
  in night mode) is gray. Packed YUV 4:2:2 is converted to RGB.
- **Size**: `max_pixels` bounds width × height; it is checked from the message fields or the
  compressed header before anything is decoded or allocated.

Every refusal is a `FrameError` whose `kind` (encoding, empty, step, size, decode, too_large) lets a
caller count and log each kind of problem once.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mnm_core.errors import InputError

Layout = Literal["rgb", "bgr", "gray"]
LAYOUTS: tuple[str, ...] = ("rgb", "bgr", "gray")

STRETCH_PERCENTILES = (1.0, 99.0)
"""Percentiles of a 16-bit frame's values that map to 0 and 255."""

COMPRESSED_CODECS = ("jpeg", "jpg", "png", "tiff", "webp", "bmp")
"""CompressedImage formats accepted (a substring of `format`, e.g. 'rgb8; jpeg compressed bgr8')."""

SHOWN_CHARS = 40
"""Longest piece of a foreign string (an encoding, a format) quoted in an error message."""


@dataclass(frozen=True)
class Encoding:
    """How a raw encoding is stored and what becomes of it."""

    channels: int
    """Values per pixel as stored (alpha included; 2 for packed YUV 4:2:2)."""
    bytes_per_channel: int
    """1 or 2 (16-bit values, byte order from the message's is_bigendian)."""
    layout: Layout
    """Channel order of the image handed to the Fuser."""
    output: str
    """Encoding of the fused output."""
    yuv: str = ""
    """'uyvy' or 'yuyv' for packed YUV 4:2:2 (converted to RGB)."""

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * self.bytes_per_channel


_UYVY = Encoding(2, 1, "rgb", "rgb8", yuv="uyvy")
_YUYV = Encoding(2, 1, "rgb", "rgb8", yuv="yuyv")

ENCODINGS: dict[str, Encoding] = {
    "rgb8": Encoding(3, 1, "rgb", "rgb8"),
    "bgr8": Encoding(3, 1, "bgr", "bgr8"),
    "rgba8": Encoding(4, 1, "rgb", "rgba8"),
    "bgra8": Encoding(4, 1, "bgr", "bgra8"),
    "mono8": Encoding(1, 1, "gray", "mono8"),
    "8uc1": Encoding(1, 1, "gray", "mono8"),
    "8uc3": Encoding(3, 1, "bgr", "bgr8"),
    "8uc4": Encoding(4, 1, "bgr", "bgra8"),
    "rgb16": Encoding(3, 2, "rgb", "rgb16"),
    "bgr16": Encoding(3, 2, "bgr", "bgr16"),
    "rgba16": Encoding(4, 2, "rgb", "rgba16"),
    "bgra16": Encoding(4, 2, "bgr", "bgra16"),
    "mono16": Encoding(1, 2, "gray", "mono16"),
    "16uc1": Encoding(1, 2, "gray", "mono16"),
    "yuv422": _UYVY,
    "uyvy": _UYVY,
    "yuv422_yuy2": _YUYV,
    "yuyv": _YUYV,
}
"""Raw encodings accepted. 8UC3/8UC4 are taken as BGR(A), as OpenCV writes them."""

OUTPUT_ENCODINGS: tuple[str, ...] = tuple(dict.fromkeys(e.output for e in ENCODINGS.values()))
"""Encodings a fused output is written in (each is also in ENCODINGS)."""

_DECODED = {(np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "bgr8", (np.dtype(np.uint8), 4): "bgra8",
            (np.dtype(np.uint16), 1): "mono16", (np.dtype(np.uint16), 3): "bgr16",
            (np.dtype(np.uint16), 4): "bgra16"}
"""(dtype, channels) of an OpenCV-decoded image → its encoding."""


class FrameError(InputError):
    """A frame that cannot be used; `kind` is one of encoding, empty, step, size, decode, too_large."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Frame:
    """A frame ready for the Fuser, with what is needed to write its fused result back."""

    image: np.ndarray
    """H×W uint8 (layout gray) or H×W×3 uint8 in `layout` order; may be a view into the source buffer."""
    layout: Layout
    encoding: str
    """Encoding of the source (a key of ENCODINGS)."""
    alpha: np.ndarray | None = None
    """H×W alpha channel of a 4-channel source (its dtype), for the output."""
    stretch: tuple[int, int] | None = None
    """16-bit source: the values mapped to 0 and 255 (`to_eight_bit`); None for 8-bit sources."""
    stamp_ns: int = 0
    """header.stamp (ns) of a message; 0 for files."""
    frame_id: str = ""
    topic: str = ""
    """Topic of a bag message; empty otherwise."""
    bag_time_ns: int = 0
    """Time the recorder received a bag message (ns since the epoch); 0 otherwise."""

    @property
    def output_encoding(self) -> str:
        """Encoding of the fused output: the source's family (see ENCODINGS)."""
        return ENCODINGS[self.encoding].output

    def rgb(self) -> np.ndarray:
        """The image in RGB order (gray stays H×W)."""
        return to_rgb(self.image, self.layout)

    def stored_rgb(self) -> np.ndarray:
        """The image in RGB order with the channels the source had: a colour source taken as gray comes back
        as three equal channels. For scoring images as stored (VIFB's metrics treat the two differently)."""
        if self.layout == "gray" and ENCODINGS[self.encoding].layout != "gray":
            return np.repeat(self.image[:, :, None], 3, axis=2)
        return self.rgb()


def to_rgb(image: np.ndarray, layout: str) -> np.ndarray:
    """An image (or a Fuser output) of `layout` in RGB order; gray and rgb are returned as they are."""
    return np.ascontiguousarray(image[:, :, ::-1]) if layout == "bgr" else image


def shown(text: str) -> str:
    """`text` quoted for a message, cut to SHOWN_CHARS characters (foreign strings can be huge)."""
    return repr(text) if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]!r}… ({len(text)} characters)"


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    """FrameError (too_large) when width × height exceeds `max_pixels` (None: no bound)."""
    if max_pixels is not None and width * height > max_pixels:
        raise FrameError("too_large", f"{width}×{height} frame has {width * height} pixels, more than the "
                                      f"{max_pixels} allowed (max_frame_pixels)")


def stretch_range(values: np.ndarray) -> tuple[int, int]:
    """The values of a uint16 array at STRETCH_PERCENTILES (nearest rank, from its histogram).

    Falls back to min..max where the percentiles coincide (a flat frame with a few warm pixels).
    """
    counts = np.bincount(values.reshape(-1), minlength=65536)
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    low_share, high_share = (p / 100.0 for p in STRETCH_PERCENTILES)
    low = int(np.searchsorted(cumulative, total * low_share, side="right"))
    high = int(np.searchsorted(cumulative, total * high_share, side="left"))
    if high <= low:
        nonzero = np.flatnonzero(counts)
        low, high = int(nonzero[0]), int(nonzero[-1])
    return low, high


def to_eight_bit(values: np.ndarray) -> tuple[np.ndarray, tuple[int, int] | None]:
    """uint8 unchanged (range None); uint16 stretched to uint8 (see the module docstring) with its range.

    low → 0, high → 255, linear in between with rounding, clipped outside; a flat frame becomes 0.
    """
    if values.dtype == np.uint8:
        return values, None
    if values.dtype != np.uint16:
        raise FrameError("encoding", f"{values.dtype} pixels are not supported; use 8- or 16-bit images")
    low, high = stretch_range(values)
    scale = 255.0 / (high - low) if high > low else 0.0
    table = np.clip(np.floor((np.arange(65536) - low) * scale + 0.5), 0, 255).astype(np.uint8)
    return table[values], (low, high)


def _channels_equal(image: np.ndarray) -> bool:
    """True for an H×W×3 image whose channels are identical; a sparse sample rejects colour images fast."""
    for view in (image[::16, ::16], image):
        if not (np.array_equal(view[..., 0], view[..., 1]) and np.array_equal(view[..., 1], view[..., 2])):
            return False
    return True


def from_pixels(pixels: np.ndarray, encoding: str, **source: object) -> Frame:
    """H×W×C stored values (C = the encoding's channels; uint8 or uint16) → Frame by the rules above.

    `source`: the Frame's provenance fields (stamp_ns, frame_id, topic, bag_time_ns).
    """
    spec = ENCODINGS[encoding]
    if spec.yuv:
        import cv2

        code = cv2.COLOR_YUV2RGB_UYVY if spec.yuv == "uyvy" else cv2.COLOR_YUV2RGB_YUYV
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), code)
    alpha = pixels[:, :, 3] if pixels.shape[2] == 4 else None
    colour, stretch = to_eight_bit(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels[:, :, :3])
    layout = spec.layout
    if colour.ndim == 3 and _channels_equal(colour):
        colour, layout = colour[:, :, 0], "gray"
    return Frame(colour, layout, encoding, alpha, stretch, **source)  # type: ignore[arg-type]


def raw_to_frame(data, encoding: str, height: int, width: int, step: int, bigendian: bool = False,
                 max_pixels: int | None = None, **source: object) -> Frame:
    """The fields of a sensor_msgs/Image → Frame; FrameError when they are inconsistent.

    `data`: the message bytes (bytes, array.array or a uint8 array); viewed without copying where the
    layout allows. Everything is checked from the fields, in O(1), before any pixel is touched.
    """
    spec = ENCODINGS.get(str(encoding).lower())
    if spec is None:
        raise FrameError("encoding", f"unsupported encoding {shown(str(encoding))}; supported: {sorted(ENCODINGS)}")
    encoding = str(encoding).lower()
    height, width, step = int(height), int(width), int(step)
    if height < 1 or width < 1:
        raise FrameError("empty", f"empty image ({width}×{height})")
    check_pixels(width, height, max_pixels)
    row_bytes = width * spec.bytes_per_pixel
    if step < row_bytes:
        raise FrameError("step", f"step {step} is shorter than width × {spec.bytes_per_pixel} bytes = {row_bytes} "
                                 f"({encoding})")
    size = memoryview(data).nbytes
    if size != step * height:
        raise FrameError("size", f"data holds {size} bytes, step × height = {step * height}")
    if spec.yuv and width % 2:
        raise FrameError("size", f"{encoding} needs an even width, got {width}")
    rows = np.frombuffer(data, np.uint8).reshape(height, step)[:, :row_bytes]
    if spec.bytes_per_channel == 2:
        rows = np.ascontiguousarray(rows).view(">u2" if bigendian else "<u2").astype(np.uint16, copy=False)
    return from_pixels(rows.reshape(height, width, spec.channels), encoding, **source)


def image_size(data) -> tuple[int, int]:
    """(width, height) from a compressed image's header, without decoding it; FrameError (decode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(memoryview(data).tobytes())) as header:
                return header.size
    except Image.DecompressionBombError as exc:  # Pillow's own bound (2 × 89 Mpx): huge by any measure
        raise FrameError("too_large", f"compressed image header claims a huge frame: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise FrameError("decode", f"cannot read the image header of {memoryview(data).nbytes} bytes ({exc})") \
            from None


def decode_to_frame(data, max_pixels: int | None = None, **source: object) -> Frame:
    """Encoded image bytes (PNG, JPEG, TIFF, WebP, BMP) → Frame, decoded with OpenCV.

    With `max_pixels`, the dimensions are read from the header first and a too large frame is refused
    before it is decoded.
    """
    import cv2

    buffer = np.frombuffer(data, np.uint8)
    if buffer.size == 0:
        raise FrameError("empty", "image without data")
    if max_pixels is not None:
        check_pixels(*image_size(data), max_pixels)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise FrameError("decode", f"cannot decode {buffer.size} bytes as an image")
    pixels = image[:, :, None] if image.ndim == 2 else image
    encoding = _DECODED.get((pixels.dtype, pixels.shape[2]))
    if encoding is None:
        raise FrameError("encoding", f"decoded image has {pixels.shape[2]} channel(s) of {pixels.dtype}; "
                                     "use 8- or 16-bit gray, BGR or BGRA images")
    return from_pixels(pixels, encoding, **source)


def check_compressed_format(fmt: str) -> None:
    """FrameError (encoding) for a CompressedImage format that is not a still-image codec."""
    lowered = str(fmt).lower()
    if "compresseddepth" in lowered or not any(codec in lowered for codec in COMPRESSED_CODECS):
        raise FrameError("encoding", f"unsupported compressed format {shown(str(fmt))}; use jpeg or png")


def compressed_to_frame(data, fmt: str, max_pixels: int | None = None, **source: object) -> Frame:
    """The fields of a sensor_msgs/CompressedImage → Frame (`check_compressed_format`, then `decode_to_frame`)."""
    check_compressed_format(fmt)
    return decode_to_frame(data, max_pixels, **source)


def fused_output(fused: np.ndarray, frame: Frame) -> np.ndarray:
    """The Fuser's fused image for `frame` (uint8, same layout) as the pixels of `frame.output_encoding`.

    Gray results of colour sources are repeated over the channels, alpha is copied back, and 16-bit
    outputs span the full range (value × 257).
    """
    spec = ENCODINGS[frame.output_encoding]
    values = fused
    if spec.channels > 1 and values.ndim == 2:
        values = np.repeat(values[:, :, None], 3, axis=2)
    if spec.bytes_per_channel == 2:
        values = values.astype(np.uint16) * np.uint16(257)
    if frame.alpha is not None and spec.channels == 4:
        values = np.dstack([values, frame.alpha.astype(values.dtype, copy=False)])
    return values


__all__ = [
    "COMPRESSED_CODECS",
    "ENCODINGS",
    "LAYOUTS",
    "OUTPUT_ENCODINGS",
    "STRETCH_PERCENTILES",
    "Encoding",
    "Frame",
    "FrameError",
    "Layout",
    "check_compressed_format",
    "check_pixels",
    "compressed_to_frame",
    "decode_to_frame",
    "from_pixels",
    "fused_output",
    "image_size",
    "raw_to_frame",
    "shown",
    "stretch_range",
    "to_eight_bit",
    "to_rgb",
]
