"""sensor_msgs Image / CompressedImage ↔ numpy, with validation (no cv_bridge: its PyPI namesake isn't ROS's).

Inbound messages become a `Frame`: an array the Fuser takes (H×W×3 uint8 RGB/BGR or H×W uint8 gray) plus
what is needed to publish the fused result in the input's encoding family. Raw frames are validated
(size, step, data length, encoding) in O(1) and viewed without copying where the layout allows it.
Every rejection is a `FrameError` whose `kind` lets the node log each kind of problem once.

Encodings in: rgb8, bgr8, rgba8, bgra8, mono8, mono16, yuv422 (= uyvy), yuv422_yuy2 (= yuyv).
Fused out: the same encoding for rgb8/bgr8/rgba8/bgra8 (alpha copied)/mono8/mono16; rgb8 for the YUV
encodings; bgr8 (colour) or mono8 (gray) for CompressedImage.
"""

from __future__ import annotations

import array
from dataclasses import dataclass

import numpy as np

from mnm_core.errors import InputError

# encoding → (bytes per pixel, Fuser layout)
RAW_ENCODINGS: dict[str, tuple[int, str]] = {
    "rgb8": (3, "rgb"),
    "bgr8": (3, "bgr"),
    "rgba8": (4, "rgb"),
    "bgra8": (4, "bgr"),
    "mono8": (1, "gray"),
    "mono16": (2, "gray"),
    "yuv422": (2, "rgb"),
    "uyvy": (2, "rgb"),
    "yuv422_yuy2": (2, "rgb"),
    "yuyv": (2, "rgb"),
}
"""Raw encodings the node accepts."""

OUTPUT_CHANNELS: dict[str, int] = {"mono8": 1, "mono16": 1, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}
"""Encodings the node publishes (and `array_to_image` / `image_to_array` handle), with their channel counts."""

_UYVY = ("yuv422", "uyvy")
_YUYV = ("yuv422_yuy2", "yuyv")
_COMPRESSED_CODECS = ("jpeg", "jpg", "png", "tiff", "webp", "bmp")


class FrameError(InputError):
    """A frame the node cannot use; `kind` is one of encoding, empty, step, size, decode."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Frame:
    """An input frame ready for the Fuser, and how to publish its fused result."""

    array: np.ndarray
    """H×W×3 uint8 (layout rgb or bgr) or H×W uint8 (gray); may be a view into the message."""
    layout: str
    """'rgb', 'bgr' or 'gray' (mnm_core.pipeline.LAYOUTS)."""
    output_encoding: str
    """Encoding of the fused output message."""
    alpha: np.ndarray | None = None
    """H×W uint8 alpha channel to copy into rgba8/bgra8 outputs."""


def image_to_frame(msg) -> Frame:
    """sensor_msgs/Image → Frame; raises FrameError for unknown encodings and inconsistent sizes."""
    encoding = msg.encoding.lower()
    if encoding not in RAW_ENCODINGS:
        raise FrameError("encoding", f"unsupported encoding {msg.encoding!r}; supported: {sorted(RAW_ENCODINGS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1:
        raise FrameError("empty", f"empty image ({width}×{height})")
    bpp, layout = RAW_ENCODINGS[encoding]
    if step < width * bpp:
        raise FrameError("step", f"step {step} is shorter than width × {bpp} bytes = {width * bpp} ({encoding})")
    if len(msg.data) != step * height:
        raise FrameError("size", f"data holds {len(msg.data)} bytes, step × height = {step * height}")
    if encoding in _UYVY + _YUYV and width % 2:
        raise FrameError("size", f"{encoding} needs an even width, got {width}")
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, : width * bpp]
    if encoding == "mono16":
        values = np.ascontiguousarray(rows).view(">u2" if msg.is_bigendian else "<u2")
        return Frame((values >> 8).astype(np.uint8), "gray", "mono16")
    if encoding in _UYVY + _YUYV:
        import cv2

        code = cv2.COLOR_YUV2RGB_UYVY if encoding in _UYVY else cv2.COLOR_YUV2RGB_YUYV
        return Frame(cv2.cvtColor(np.ascontiguousarray(rows).reshape(height, width, 2), code), "rgb", "rgb8")
    if bpp == 1:
        return Frame(rows, "gray", encoding)
    pixels = rows.reshape(height, width, bpp)
    if bpp == 4:
        return Frame(pixels[:, :, :3], layout, encoding, alpha=pixels[:, :, 3])
    return Frame(pixels, layout, encoding)


def check_compressed(msg) -> None:
    """O(1) checks of a CompressedImage before it is decoded: a known codec and some data."""
    fmt = msg.format.lower()
    if "compresseddepth" in fmt or not any(codec in fmt for codec in _COMPRESSED_CODECS):
        raise FrameError("encoding", f"unsupported compressed format {msg.format!r}; use jpeg or png")
    if len(msg.data) == 0:
        raise FrameError("empty", "compressed image without data")


def compressed_to_frame(msg) -> Frame:
    """sensor_msgs/CompressedImage (jpeg, png, ...) → Frame decoded with OpenCV; raises FrameError."""
    import cv2

    check_compressed(msg)
    image = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise FrameError("decode", f"cannot decode {len(msg.data)} bytes as {msg.format!r}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return Frame(image, "gray", "mono8")
    return Frame(image[:, :, :3], "bgr", "bgr8")


def to_byte_array(values: np.ndarray) -> array.array:
    """A numpy array's bytes as the array.array('B') message fields hold (one copy)."""
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))
    return data


def array_to_image(values: np.ndarray, encoding: str, header=None):
    """numpy → sensor_msgs/Image. `values`: H×W (mono8, uint16 for mono16) or H×W×C uint8."""
    from sensor_msgs.msg import Image

    encoding = encoding.lower()
    channels = OUTPUT_CHANNELS.get(encoding)
    if channels is None:
        raise FrameError("encoding", f"cannot publish encoding {encoding!r}")
    dtype = np.uint16 if encoding == "mono16" else np.uint8
    shape_ok = values.ndim == 2 if channels == 1 else values.ndim == 3 and values.shape[2] == channels
    if values.dtype != dtype or not shape_ok:
        raise FrameError("size", f"{encoding} needs {np.dtype(dtype)} with {channels} channel(s), got "
                                 f"{values.dtype} {values.shape}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(values.shape[0]), int(values.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels * values.itemsize
    msg.data = to_byte_array(values.astype("<u2") if encoding == "mono16" else values)
    return msg


def fused_to_image(fused: np.ndarray, frame: Frame, header=None):
    """The Fuser's fused array (same layout as `frame.array`) → Image in the frame's output encoding."""
    encoding = frame.output_encoding
    if encoding == "mono16":
        values = fused.astype(np.uint16) * 257
    elif frame.alpha is not None:
        values = np.dstack([fused, frame.alpha])
    else:
        values = fused
    return array_to_image(values, encoding, header)


def array_to_compressed(bgr_or_gray: np.ndarray, fmt: str = "jpeg", header=None, quality: int = 90):
    """numpy (H×W×3 BGR or H×W) → sensor_msgs/CompressedImage encoded with OpenCV."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    ext = {"jpeg": ".jpg", "png": ".png"}.get(fmt)
    if ext is None:
        raise FrameError("encoding", f"cannot compress as {fmt!r}; use jpeg or png")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buffer = cv2.imencode(ext, bgr_or_gray, params)
    if not ok:
        raise FrameError("decode", f"OpenCV could not encode a {bgr_or_gray.shape} image as {fmt}")
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = fmt
    msg.data = to_byte_array(buffer)
    return msg


def image_to_array(msg) -> np.ndarray:
    """An output Image (mono8, mono16, rgb8, bgr8, rgba8, bgra8) → H×W or H×W×C array (a copy)."""
    encoding = msg.encoding.lower()
    if encoding not in OUTPUT_CHANNELS:
        raise FrameError("encoding", f"image_to_array does not read {msg.encoding!r}")
    channels, bpp = OUTPUT_CHANNELS[encoding], RAW_ENCODINGS[encoding][0]
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * bpp]
    if encoding == "mono16":
        return rows.copy().view(">u2" if msg.is_bigendian else "<u2").astype(np.uint16)
    return rows.copy() if channels == 1 else rows.reshape(msg.height, msg.width, channels).copy()


__all__ = [
    "OUTPUT_CHANNELS",
    "RAW_ENCODINGS",
    "Frame",
    "FrameError",
    "array_to_compressed",
    "array_to_image",
    "check_compressed",
    "compressed_to_frame",
    "fused_to_image",
    "image_to_array",
    "image_to_frame",
    "to_byte_array",
]
