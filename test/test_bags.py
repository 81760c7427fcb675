"""Bags: make, read, pair and evaluate real sqlite3/mcap bags built from generated frames (no ROS needed)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mnm_core.bags import BagReader, BagWriter, evaluate_bag, make_bag_from_pairs, make_bag_from_video, pair_by_stamp
from mnm_core.bags.reader import typestore
from mnm_core.checkpoint import CheckpointInfo, save_checkpoint
from mnm_core.cli import main
from mnm_core.config import preset
from mnm_core.errors import DataError
from mnm_core.evaluation import evaluate
from mnm_core.model import VgiiModel

VIS, IR = "/camera/image_raw", "/thermal/image_raw"
START = 1_700_000_000_000_000_000
PERIOD = 100_000_000  # 10 fps


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The machine is shared: one torch thread is faster than two contended ones for these tiny frames."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = preset("tiny")
    model = VgiiModel(config)
    model.set_dictionary(torch.randn(config.n_atoms, 5, 5) * 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, model, CheckpointInfo(kind="vgii", preset="tiny", model_config=config,
                                                       text_encoder="none"))


def _write_pairs(folder: Path, count: int, size: tuple[int, int] = (36, 52), seed: int = 0) -> Path:
    """Smooth random scenes (vis RGB PNG, IR gray PNG) under folder/vis and folder/ir."""
    rng = np.random.default_rng(seed)
    (folder / "vis").mkdir(parents=True)
    (folder / "ir").mkdir()
    for k in range(count):
        small = rng.integers(0, 256, (size[0] // 4, size[1] // 4, 3), dtype=np.uint8)
        vis = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        ir = cv2.GaussianBlur(vis[:, :, 1], (5, 5), 0)
        cv2.imwrite(str(folder / "vis" / f"frame{k:03d}.png"), vis)
        cv2.imwrite(str(folder / "ir" / f"frame{k:03d}.png"), ir)
    return folder


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_pairs(tmp_path_factory.mktemp("pairs"), 6)


def _read_all(bag: Path) -> dict[str, list]:
    with BagReader(bag) as reader:
        topics = list(reader.topics)
        frames: dict[str, list] = {t: [] for t in topics}
        for message in reader.messages(topics):
            frames[message.topic].append(reader.decode(message))
        assert reader.damage is None
    return frames


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_make_and_evaluate_bag(storage: str, pairs: Path, checkpoint: Path, tmp_path: Path) -> None:
    made = make_bag_from_pairs(pairs, tmp_path / "in", storage=storage, start_ns=START, progress=False)
    assert made.counts == {VIS: 6, IR: 6}
    inputs = _read_all(tmp_path / "in")
    assert [f.stamp_ns for f in inputs[VIS]] == [START + k * PERIOD for k in range(6)]

    result = evaluate_bag(tmp_path / "in", tmp_path / "out", VIS, IR, checkpoint=checkpoint, progress=False)
    out = _read_all(result.out_bag)
    assert set(out) == {VIS, IR, "/mnm/pseudo_ir", "/mnm/fused"}
    assert {t: len(v) for t, v in out.items()} == {VIS: 6, IR: 6, "/mnm/pseudo_ir": 6, "/mnm/fused": 6}
    for topic in ("/mnm/pseudo_ir", "/mnm/fused"):
        assert [f.stamp_ns for f in out[topic]] == [f.stamp_ns for f in inputs[VIS]]
        assert [f.bag_time_ns for f in out[topic]] == [f.bag_time_ns for f in inputs[VIS]]
        assert all(f.frame_id == "camera" for f in out[topic])
    assert out["/mnm/pseudo_ir"][0].layout == "gray" and out["/mnm/fused"][0].layout == "rgb"
    assert out["/mnm/fused"][0].image.shape == inputs[VIS][0].image.shape
    assert all(np.array_equal(a.image, b.image) for a, b in zip(out[VIS], inputs[VIS]))

    with (tmp_path / "out" / "per_frame.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and all(float(r["ir_offset_ms"]) == 0 for r in rows)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["paired"] == 6 and summary["damage"] is None
    assert 0 <= summary["mean"]["hotspot_auc"] <= 1 and summary["mean"]["hotspot_auc_inv_vis_y"] is not None
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "latency.png").is_file()
    assert "<th>1 − Y</th>" in (tmp_path / "out" / "report.html").read_text()

    # same frames, same numbers as `mnm eval --method model` on the folder the bag was made from
    folder = evaluate(pairs, "model", tmp_path / "eval", checkpoint=checkpoint, baselines=False, progress=False,
                      report=False)
    expected = json.loads(folder.summary_path.read_text())["mean"]
    assert list(summary["mean"]) == list(expected)
    assert summary["mean"] == expected


def test_every_nth_and_no_thermal_topic(pairs: Path, checkpoint: Path, tmp_path: Path) -> None:
    make_bag_from_pairs(pairs, tmp_path / "in", start_ns=START, progress=False)
    result = evaluate_bag(tmp_path / "in", tmp_path / "out", VIS, every=4, checkpoint=checkpoint, progress=False)
    assert [r["index"] for r in result.rows] == [0, 4]
    assert result.summary["out_bag_counts"] == {VIS: 6, "/mnm/pseudo_ir": 2, "/mnm/fused": 2}
    mean = result.summary["mean"]
    assert mean["CE"] is None and mean["Qcb"] is None and mean["pseudo_ir_psnr"] is None
    assert mean["hotspot_auc"] is None and mean["hotspot_auc_vis_y"] is None  # nothing to score them against
    assert result.report_path and not (tmp_path / "out" / "pseudo_ir_chart.png").exists()
    assert all(mean[k] is not None for k in ("AG", "EI", "EN", "SF"))


@pytest.mark.parametrize(("fmt", "encoding"), [("png", "bgr8"), ("jpeg", "rgb8")])
def test_compressed_bag(fmt: str, encoding: str, pairs: Path, checkpoint: Path, tmp_path: Path) -> None:
    make_bag_from_pairs(pairs, tmp_path / "in", storage="mcap", compressed=True, compressed_format=fmt,
                        encoding=encoding, start_ns=START, progress=False)
    with BagReader(tmp_path / "in") as reader:
        assert reader.topics[VIS] == ("sensor_msgs/msg/CompressedImage", 6)
    result = evaluate_bag(tmp_path / "in", tmp_path / "out", VIS, IR, checkpoint=checkpoint, progress=False,
                          report=False)
    assert result.summary["paired"] == 6
    fused = _read_all(result.out_bag)["/mnm/fused"]
    assert fused[0].layout == "bgr"  # OpenCV decodes colour as BGR; the output keeps the input's family
    if fmt == "png":  # lossless: the very frames of the folder, so the very numbers
        folder = evaluate(pairs, "model", tmp_path / "eval", checkpoint=checkpoint, baselines=False,
                          progress=False, report=False)
        assert result.summary["mean"] == json.loads(folder.summary_path.read_text())["mean"]


def _bag_with_offset(path: Path, offset_ns: int, count: int = 4) -> None:
    rng = np.random.default_rng(1)
    with BagWriter(path, "sqlite3") as writer:
        for k in range(count):
            vis = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
            writer.write_image(VIS, vis, "rgb", START + k * PERIOD, frame_id="camera")
            writer.write_image(IR, vis[:, :, 0], "gray", START + k * PERIOD + offset_ns, frame_id="thermal")


def test_unpaired_frames(checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _bag_with_offset(tmp_path / "in", 50_000_000)
    result = evaluate_bag(tmp_path / "in", tmp_path / "out", VIS, IR, checkpoint=checkpoint, tolerance_ms=20,
                          progress=False, report=False)
    assert result.summary["paired"] == 0 and result.summary["unpaired"] == 4
    assert "0 of 4 visible frames have a thermal partner within 20 ms" in caplog.text
    assert "50.0–50.0 ms from the nearest thermal frame" in caplog.text
    assert result.summary["mean"]["CE"] is None and result.summary["mean"]["AG"] is not None
    wider = evaluate_bag(tmp_path / "in", tmp_path / "out2", VIS, IR, checkpoint=checkpoint, tolerance_ms=60,
                         progress=False, report=False)
    assert wider.summary["paired"] == 4
    assert [r["ir_offset_ms"] for r in wider.rows] == [50.0] * 4


def test_corrupt_message_is_skipped(checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    with BagWriter(tmp_path / "in", "mcap") as writer:
        for k in range(3):
            writer.write_image(VIS, rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), "rgb", START + k * PERIOD)
        writer.write(VIS, START + 3 * PERIOD, b"\x00\x01\x00\x00garbage")
    result = evaluate_bag(tmp_path / "in", tmp_path / "out", VIS, checkpoint=checkpoint, progress=False,
                          report=False)
    assert result.summary["frames_in_bag"] == 4 and result.summary["frames"] == 3
    assert result.summary["undecodable"] == 1
    assert "corrupt sensor_msgs/msg/Image message on /camera/image_raw" in caplog.text


def test_pairing_is_one_to_one_and_nearest() -> None:
    pairing = pair_by_stamp([0, 100, 200, 300], [95, 102, 290, 1000], tolerance_ns=20)
    assert pairing.partner == [None, 1, None, 2]
    assert pairing.offsets_ns == [None, 2, None, -10]
    assert pairing.nearest_unpaired_ns == [95, 90]


def test_missing_topic_and_unknown_type(tmp_path: Path) -> None:
    types = typestore()
    with BagWriter(tmp_path / "in", "mcap") as writer:
        writer.write_image(VIS, np.zeros((4, 4, 3), np.uint8), "rgb", START)
        writer.add_topic("/chatter", "std_msgs/msg/String")
        text = types.types["std_msgs/msg/String"](data="hello")
        writer.write("/chatter", START, bytes(types.serialize_cdr(text, "std_msgs/msg/String")))
    with BagReader(tmp_path / "in") as reader:
        missing = r"'/nope' is not in bag .*it has: /camera/image_raw \[sensor_msgs/msg/Image"
        with pytest.raises(DataError, match=missing):
            reader.require_image_topic("/nope")
        with pytest.raises(DataError, match="carries std_msgs/msg/String, not an image type"):
            reader.require_image_topic("/chatter")
    with pytest.raises(DataError, match="/chatter"):
        evaluate_bag(tmp_path / "in", tmp_path / "out", "/nope", progress=False)
    with pytest.raises(DataError, match="not a standard ROS 2 message type"):
        BagWriter(tmp_path / "other", "sqlite3").add_topic("/x", "my_pkg/msg/Custom")


def _big_pairs(tmp_path: Path) -> Path:
    """Enough data for several 1 MiB mcap chunks, so a truncated file keeps complete chunks."""
    return _write_pairs(tmp_path / "pairs", 16, size=(160, 224), seed=2)


@pytest.mark.parametrize(("storage", "suffix"), [("sqlite3", ".db3"), ("mcap", ".mcap")])
def test_truncated_bag_is_evaluated_up_to_the_damage(storage: str, suffix: str, checkpoint: Path,
                                                     tmp_path: Path) -> None:
    make_bag_from_pairs(_big_pairs(tmp_path), tmp_path / "in", storage=storage, start_ns=START, progress=False)
    (file,) = (tmp_path / "in").glob(f"*{suffix}")
    file.write_bytes(file.read_bytes()[: int(file.stat().st_size * 0.7)])
    result = evaluate_bag(tmp_path / "in", tmp_path / "out", VIS, IR, checkpoint=checkpoint, every=2,
                          progress=False, report=False)
    summary = result.summary
    assert summary["damage"] and "damaged after" in summary["damage"]
    assert summary["recovered"]
    assert 0 < summary["frames"] < 8
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["damage"] == summary["damage"]


@pytest.mark.parametrize("page_size_field", [None, b"\x00\x01"])  # as stored, or 65536 (281 TB declared)
def test_db3_header_claiming_4g_pages_is_not_believed(page_size_field: bytes | None, pairs: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A .db3 whose header claims 0xFFFFFFFF pages: no 16–281 TB padded copy, no traceback."""
    make_bag_from_pairs(pairs, tmp_path / "in", storage="sqlite3", start_ns=START, progress=False)
    (file,) = (tmp_path / "in").glob("*.db3")
    data = bytearray(file.read_bytes())
    data[28:32] = b"\xff\xff\xff\xff"
    if page_size_field:
        data[16:18] = page_size_field
    hostile = tmp_path / "hostile.db3"
    hostile.write_bytes(bytes(data))
    try:
        with BagReader(hostile) as reader:
            frames = [reader.decode(m) for m in reader.messages([VIS])]
            assert reader.recovered and len(frames) == 6
    except DataError as exc:  # a page size SQLite cannot use: nothing readable, said in one message
        assert page_size_field and "unreadable" in str(exc)
    assert "claims 4294967295 pages" in caplog.text


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_written_by_another_tool(storage: str, checkpoint: Path, tmp_path: Path) -> None:
    """A version-9 bag with Jazzy's type definitions and hashes, written by plain rosbags (as `ros2 bag record`
    on Jazzy would): Image on one topic, CompressedImage on the other."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.ROS2_JAZZY)
    image_cls, compressed_cls = types.types["sensor_msgs/msg/Image"], types.types["sensor_msgs/msg/CompressedImage"]
    time_cls, header_cls = types.types["builtin_interfaces/msg/Time"], types.types["std_msgs/msg/Header"]
    plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
    rng = np.random.default_rng(4)
    with Writer(tmp_path / "in", version=9, storage_plugin=plugin) as writer:
        vis_conn = writer.add_connection(VIS, "sensor_msgs/msg/Image", typestore=types)
        ir_conn = writer.add_connection(IR, "sensor_msgs/msg/CompressedImage", typestore=types)
        for k in range(3):
            header = header_cls(stamp=time_cls(sec=100 + k, nanosec=5), frame_id="cam")
            vis = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
            msg = image_cls(header=header, height=16, width=24, encoding="bgr8", is_bigendian=0, step=72,
                            data=vis.ravel())
            writer.write(vis_conn, 10**9 * (100 + k), types.serialize_cdr(msg, "sensor_msgs/msg/Image"))
            png = cv2.imencode(".png", vis[:, :, 0])[1].ravel()
            msg = compressed_cls(header=header, format="mono8; png compressed", data=png)
            writer.write(ir_conn, 10**9 * (100 + k) + 1000, types.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))
    result = evaluate_bag(tmp_path / "in", tmp_path / "out", VIS, IR, checkpoint=checkpoint, progress=False,
                          report=False)
    assert result.summary["frames"] == 3 and result.summary["paired"] == 3
    fused = _read_all(result.out_bag)["/mnm/fused"]
    assert [f.stamp_ns for f in fused] == [10**9 * (100 + k) + 5 for k in range(3)]
    assert fused[0].layout == "bgr" and fused[0].frame_id == "cam"


def test_unreadable_bags(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        BagReader(tmp_path / "missing")
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not a bag at all" * 10)
    with pytest.raises(DataError, match="not an MCAP file"):
        BagReader(garbage)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a ROS 2 bag"):
        BagReader(folder)


def test_bag_folder_without_metadata(pairs: Path, tmp_path: Path) -> None:
    """A recorder killed before writing metadata.yaml: the storage file is read directly."""
    make_bag_from_pairs(pairs, tmp_path / "in", start_ns=START, progress=False)
    (tmp_path / "in" / "metadata.yaml").unlink()
    assert len(_read_all(tmp_path / "in")[VIS]) == 6


def test_make_bag_from_video(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG video")
    for k in range(5):
        writer.write(np.full((24, 32, 3), k * 40, np.uint8))
    writer.release()
    made = make_bag_from_video(video, tmp_path / "bag", storage="mcap", fps=20, start_ns=START, progress=False)
    frames = _read_all(made.path)[VIS]
    assert len(frames) == 5 and frames[0].encoding == "rgb8"  # uniform gray frames: read back as gray
    assert [f.stamp_ns - START for f in frames] == [k * 50_000_000 for k in range(5)]


def test_cli(pairs: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["make-bag", "--data", str(pairs), "--out", str(tmp_path / "bag"), "--storage", "mcap",
                 "--fps", "5", "--no-progress"]) == 0
    assert main(["bag-eval", str(tmp_path / "bag"), "--topic", VIS, "--ir-topic", IR, "--out", str(tmp_path / "out"),
                 "--checkpoint", str(checkpoint), "--every", "3", "--no-progress", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 6 frames evaluated, 2 with a thermal partner" in printed and "| model |" in printed
    assert main(["bag-eval", str(tmp_path / "bag"), "--topic", "/nope", "--out", str(tmp_path / "out2")]) == 1
    shutil.rmtree(tmp_path / "out")
