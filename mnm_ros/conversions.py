"""sensor_msgs Image / CompressedImage ↔ numpy (no cv_bridge: its PyPI namesake isn't ROS's).

Inbound messages become an `mnm_core.frames.Frame` through the same code as bag messages and image
files: the encodings, the 16-bit → 8-bit policy, the layout rule and the size bound are decided there
(see mnm_core/frames.py). Raw frames are validated in O(1) and viewed without copying where the layout
allows it. Every rejection is a `FrameError` whose `kind` lets the node log each kind of problem once.
Outbound: numpy arrays → Image or CompressedImage, and an output Image back to numpy.
"""

from __future__ import annotations

import array

import numpy as np

from mnm_core.frames import (
    ENCODINGS,
    OUTPUT_ENCODINGS,
    Frame,
    FrameError,
    check_compressed_format,
    check_pixels,
    decode_to_frame,
    fused_output,
    image_size,
    raw_to_frame,
)


def image_to_frame(msg, max_pixels: int | None = None) -> Frame:
    """sensor_msgs/Image → Frame; FrameError for unknown encodings, inconsistent or too large frames."""
    return raw_to_frame(msg.data, msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian),
                        max_pixels)


def check_compressed(msg, max_pixels: int | None = None) -> None:
    """Checks of a CompressedImage before it is decoded: a known codec, some data, and (with
    `max_pixels`) the size its header announces."""
    check_compressed_format(msg.format)
    if len(msg.data) == 0:
        raise FrameError("empty", "compressed image without data")
    if max_pixels is not None:
        check_pixels(*image_size(msg.data), max_pixels)


def compressed_to_frame(msg, max_pixels: int | None = None) -> Frame:
    """sensor_msgs/CompressedImage (jpeg, png, ...) → Frame decoded with OpenCV; raises FrameError."""
    check_compressed(msg, max_pixels)
    return decode_to_frame(msg.data)


def to_byte_array(values: np.ndarray) -> array.array:
    """A numpy array's bytes as the array.array('B') message fields hold (one copy)."""
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8))
    return data


def array_to_image(values: np.ndarray, encoding: str, header=None):
    """numpy → sensor_msgs/Image in one of OUTPUT_ENCODINGS: H×W (mono) or H×W×C, uint16 for the 16-bit ones."""
    from sensor_msgs.msg import Image

    encoding = encoding.lower()
    if encoding not in OUTPUT_ENCODINGS:
        raise FrameError("encoding", f"cannot publish encoding {encoding!r}; use one of {list(OUTPUT_ENCODINGS)}")
    spec = ENCODINGS[encoding]
    dtype = np.uint16 if spec.bytes_per_channel == 2 else np.uint8
    shape_ok = values.ndim == 2 if spec.channels == 1 else values.ndim == 3 and values.shape[2] == spec.channels
    if values.dtype != dtype or not shape_ok:
        raise FrameError("size", f"{encoding} needs {np.dtype(dtype)} with {spec.channels} channel(s), got "
                                 f"{values.dtype} {values.shape}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(values.shape[0]), int(values.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * spec.bytes_per_pixel
    msg.data = to_byte_array(values.astype("<u2", copy=False) if dtype == np.uint16 else values)
    return msg


def fused_to_image(fused: np.ndarray, frame: Frame, header=None):
    """The Fuser's fused array for `frame` → Image in the frame's output encoding (mnm_core.frames.fused_output)."""
    return array_to_image(fused_output(fused, frame), frame.output_encoding, header)


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
    """An Image in one of OUTPUT_ENCODINGS → H×W or H×W×C array (a copy; uint16 for the 16-bit ones)."""
    encoding = msg.encoding.lower()
    if encoding not in OUTPUT_ENCODINGS:
        raise FrameError("encoding", f"image_to_array does not read {msg.encoding!r}")
    spec = ENCODINGS[encoding]
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * spec.bytes_per_pixel]
    if spec.bytes_per_channel == 2:
        rows = rows.copy().view(">u2" if msg.is_bigendian else "<u2").astype(np.uint16)
    shape = (msg.height, msg.width) if spec.channels == 1 else (msg.height, msg.width, spec.channels)
    return rows.reshape(shape).copy()


__all__ = [
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
