"""mnm_core.frames, the one way in for frames: encodings, the 16-bit policy, the layout rule, the size bound,
and the same Frame for the same pixels through a raw message, a bag and an image file (no ROS needed)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from mnm_core.bags import BagReader, BagWriter
from mnm_core.bags.reader import COMPRESSED_TYPE, IMAGE_TYPE
from mnm_core.errors import DataError
from mnm_core.frames import (
    ENCODINGS,
    OUTPUT_ENCODINGS,
    FrameError,
    compressed_to_frame,
    decode_to_frame,
    fused_output,
    raw_to_frame,
    to_eight_bit,
)
from mnm_core.pairs import read_frame

H, W = 6, 8


def stored_pixels(encoding: str, seed: int = 0, height: int = H, width: int = W) -> np.ndarray:
    """height×width×C values as a camera would store them in `encoding`: colour, not gray; 16-bit ones in a
    narrow band of counts (as radiometric thermal cameras give), alpha varying."""
    spec = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    if spec.bytes_per_channel == 2:
        return rng.integers(3000, 3300, (height, width, spec.channels)).astype(np.uint16)
    return rng.integers(0, 256, (height, width, spec.channels), dtype=np.uint8)


def raw_bytes(pixels: np.ndarray, bigendian: bool = False) -> bytes:
    return pixels.astype(">u2" if bigendian else "<u2").tobytes() if pixels.dtype == np.uint16 else pixels.tobytes()


def png_bytes(gray_or_bgr: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", gray_or_bgr)
    assert ok
    return buffer.tobytes()


def test_mono16_counts_are_stretched_not_cut_to_their_high_byte():
    """The issue's example: counts 3000..3300 used to be [11 12 12 12] live and min–max offline."""
    counts = np.array([[3000, 3100], [3200, 3300]], np.uint16)
    frame = raw_to_frame(raw_bytes(counts[:, :, None]), "mono16", 2, 2, 4)
    assert frame.layout == "gray" and frame.output_encoding == "mono16" and frame.stretch == (3000, 3300)
    assert frame.image.tolist() == [[0, 85], [170, 255]]
    big = raw_to_frame(raw_bytes(counts[:, :, None], bigendian=True), "mono16", 2, 2, 4, bigendian=True)
    np.testing.assert_array_equal(big.image, frame.image)


def test_stretch_ignores_a_few_dead_and_hot_pixels():
    scene = np.tile(np.linspace(3000, 3300, 100).astype(np.uint16), (100, 1))
    scene[0, :5], scene[1, :5] = 0, 65535  # 0.05 % dead, 0.05 % saturated
    image, (low, high) = to_eight_bit(scene)
    assert (low, high) == (3000, 3300)  # the scene's range (1st and 99th percentiles), not 0..65535
    assert image[50].min() == 0 and image[50].max() == 255 and len(np.unique(image[50])) > 90
    flat, _ = to_eight_bit(np.full((4, 4), 3000, np.uint16))
    assert not flat.any()
    few_warm = np.full((40, 40), 3000, np.uint16)
    few_warm[:3, :3] = 3500  # 0.6 % warm pixels: the percentiles coincide, min..max is used
    image, stretch = to_eight_bit(few_warm)
    assert stretch == (3000, 3500) and image.max() == 255 and image.min() == 0


def test_layout_rule_alpha_and_equal_channels():
    rgba = stored_pixels("rgba8")
    frame = raw_to_frame(raw_bytes(rgba), "rgba8", H, W, W * 4)
    assert frame.layout == "rgb" and frame.stretch is None
    np.testing.assert_array_equal(frame.image, rgba[:, :, :3])
    np.testing.assert_array_equal(frame.alpha, rgba[:, :, 3])
    gray = np.repeat(rgba[:, :, :1], 3, axis=2)  # a gray image stored as colour (a camera in night mode)
    frame = raw_to_frame(raw_bytes(gray), "bgr8", H, W, W * 3)
    assert frame.layout == "gray" and frame.output_encoding == "bgr8"
    np.testing.assert_array_equal(frame.image, gray[:, :, 0])
    np.testing.assert_array_equal(frame.stored_rgb(), gray)  # scoring sees the file as stored
    out = fused_output(frame.image, frame)  # written back as bgr8: the gray result on every channel
    assert out.shape == (H, W, 3) and np.array_equal(out[:, :, 2], frame.image)


@pytest.mark.parametrize("encoding", OUTPUT_ENCODINGS)
def test_fused_output_is_in_the_input_family(encoding):
    frame = raw_to_frame(raw_bytes(stored_pixels(encoding)), encoding, H, W, W * ENCODINGS[encoding].bytes_per_pixel)
    fused = np.full(frame.image.shape, 200, np.uint8)
    out = fused_output(fused, frame)
    spec = ENCODINGS[encoding]
    assert out.dtype == (np.uint16 if spec.bytes_per_channel == 2 else np.uint8)
    assert out.shape == ((H, W) if spec.channels == 1 else (H, W, spec.channels))
    assert out[..., 0].max() == (200 * 257 if spec.bytes_per_channel == 2 else 200)
    if spec.channels == 4:
        np.testing.assert_array_equal(out[:, :, 3], frame.alpha)


def test_refusals_are_typed_and_checked_before_the_pixels():
    good = raw_bytes(stored_pixels("rgb8"))
    cases = {
        "encoding": dict(encoding="bayer_rggb8"),
        "empty": dict(height=0),
        "step": dict(step=W * 3 - 1),
        "size": dict(data=good[:-1]),
        # the size bound comes before any check of the data: 10000×10000 with 144 bytes is refused as too large
        "too_large": dict(height=10000, width=10000, step=30000),
    }
    for kind, change in cases.items():
        fields = dict(data=good, encoding="rgb8", height=H, width=W, step=W * 3) | change
        with pytest.raises(FrameError) as info:
            raw_to_frame(max_pixels=H * W, **fields)  # type: ignore[arg-type]
        assert info.value.kind == kind, (kind, info.value)
    with pytest.raises(FrameError, match="even width"):
        raw_to_frame(bytes(2 * 7 * H), "yuv422", H, 7, 14)


def test_a_huge_encoding_string_gives_a_short_message():
    with pytest.raises(FrameError) as info:
        raw_to_frame(bytes(H * W * 3), "x" * 20_000, H, W, W * 3)
    assert info.value.kind == "encoding" and len(str(info.value)) < 600


def png_bomb(width: int, height: int) -> bytes:
    """A gray PNG whose header announces width×height but whose (truncated) data is a few bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(4096)))


def test_compressed_size_is_read_from_the_header_before_decoding():
    with pytest.raises(FrameError) as info:
        compressed_to_frame(png_bomb(10000, 10000), "png", max_pixels=1920 * 1200)
    assert info.value.kind == "too_large" and "10000×10000" in str(info.value)
    with pytest.raises(FrameError) as info:
        compressed_to_frame(b"\xff\xd8 not a jpeg", "jpeg", max_pixels=1920 * 1200)
    assert info.value.kind == "decode"
    with pytest.raises(FrameError, match="unsupported compressed format"):
        compressed_to_frame(png_bytes(stored_pixels("mono8")[:, :, 0]), "16UC1; compressedDepth")
    sixteen = stored_pixels("mono16")[:, :, 0]
    frame = decode_to_frame(png_bytes(sixteen), max_pixels=H * W)  # a 16-bit PNG: the mono16 policy
    assert frame.encoding == "mono16"
    np.testing.assert_array_equal(frame.image, to_eight_bit(sixteen)[0])


def _header(types, frame_id: str = "cam"):
    stamp = types.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0)
    return types.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def file_form(encoding: str, pixels: np.ndarray) -> np.ndarray:
    """The same pixels as an image file stores them (gray, BGR or BGRA; packed YUV: its RGB decoding)."""
    spec = ENCODINGS[encoding]
    if spec.yuv:
        height, width = pixels.shape[:2]
        return raw_to_frame(raw_bytes(pixels), encoding, height, width, width * 2).image[:, :, ::-1]
    if spec.channels == 1:
        return pixels[:, :, 0]
    colour = pixels[:, :, :3] if spec.layout == "bgr" else pixels[:, :, 2::-1]
    return np.dstack([colour, pixels[:, :, 3]]) if spec.channels == 4 else colour


def test_message_bag_and_file_give_the_same_frame(tmp_path: Path):
    """Every encoding: the node's path (raw_to_frame, as mnm_ros.conversions calls it), a bag message read
    by BagReader (bag-eval) and an image file read by mnm_core.pairs (mnm eval) give identical pixels."""
    bag = tmp_path / "bag"
    with BagWriter(bag) as writer:
        types = writer.types
        header = _header(types)
        writer.add_topic("/raw", IMAGE_TYPE)
        writer.add_topic("/png", COMPRESSED_TYPE)
        for k, encoding in enumerate(ENCODINGS):
            pixels = stored_pixels(encoding, seed=k)
            spec = ENCODINGS[encoding]
            big = spec.bytes_per_channel == 2 and k % 2 == 1  # both byte orders of 16-bit data
            msg = types.types[IMAGE_TYPE](header=header, height=H, width=W, encoding=encoding.upper(), is_bigendian=big,
                                          step=W * spec.bytes_per_pixel,
                                          data=np.frombuffer(raw_bytes(pixels, big), np.uint8))
            writer.write("/raw", k, bytes(types.serialize_cdr(msg, IMAGE_TYPE)))
            png = png_bytes(file_form(encoding, pixels))
            (tmp_path / f"{encoding}.png").write_bytes(png)
            msg = types.types[COMPRESSED_TYPE](header=header, format="png", data=np.frombuffer(png, np.uint8))
            writer.write("/png", k, bytes(types.serialize_cdr(msg, COMPRESSED_TYPE)))
    with BagReader(bag) as reader:
        decoded: dict[str, list] = {"/raw": [], "/png": []}
        for message in reader.messages(["/raw", "/png"]):
            decoded[message.topic].append(reader.decode(message))
    for k, encoding in enumerate(ENCODINGS):
        pixels = stored_pixels(encoding, seed=k)
        spec = ENCODINGS[encoding]
        live = raw_to_frame(raw_bytes(pixels), encoding.upper(), H, W, W * spec.bytes_per_pixel)
        from_bag, from_png, from_file = decoded["/raw"][k], decoded["/png"][k], read_frame(tmp_path / f"{encoding}.png")
        assert from_bag.layout == live.layout and from_bag.encoding == encoding and from_bag.frame_id == "cam"
        for other in (from_bag, from_png, from_file):
            np.testing.assert_array_equal(other.rgb(), live.rgb(), err_msg=encoding)
            assert other.stretch == live.stretch, encoding


def test_bag_reader_names_the_message_it_cannot_decode(tmp_path: Path):
    with BagWriter(tmp_path / "bag") as writer:
        types = writer.types
        writer.add_topic("/depth", IMAGE_TYPE)
        msg = types.types[IMAGE_TYPE](header=_header(types), height=2, width=2, encoding="32FC1",
                                      is_bigendian=0, step=8, data=np.zeros(16, np.uint8))
        writer.write("/depth", 7, bytes(types.serialize_cdr(msg, IMAGE_TYPE)))
    with BagReader(tmp_path / "bag") as reader:
        message = next(iter(reader.messages(["/depth"])))
        with pytest.raises(DataError, match=r"/depth at bag time 7 ns: unsupported encoding '32FC1'"):
            reader.decode(message)
