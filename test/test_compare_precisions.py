"""training/compare_precisions.py on made-up pairs: a tiny random model, fp32 against int8, validation split
and a test-set folder, identity modulation (the checkpoint has no text encoder)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mnm_core.calibration import calibration_images
from mnm_core.checkpoint import CheckpointInfo, load_model, save_checkpoint
from mnm_core.config import TextConfig, preset
from mnm_core.export import export_onnx
from mnm_core.quantize import calibration_samples, quantize_int8
from test.test_export import random_vgii
from training.compare_precisions import main


@pytest.fixture(scope="module")
def checkpoint_and_int8(tmp_path_factory: pytest.TempPathFactory, pair_root: Path) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("precisions")
    checkpoint = save_checkpoint(folder / "tiny.safetensors", random_vgii("tiny"),
                                 CheckpointInfo(kind="vgii", preset="tiny", model_config=preset("tiny")))
    model, _ = load_model(checkpoint)  # the int8 file must be of the checkpoint's weights as loaded
    images = calibration_images([pair_root / "synth_a"], count=4, size=(48, 64))
    fp32 = export_onnx(model, folder / "fp32.onnx")
    int8 = quantize_int8(fp32, folder / "int8.onnx", calibration_samples(model, images, TextConfig(encoder="none")))
    return checkpoint, int8


def test_table_rows_per_modulation_precision_and_group(checkpoint_and_int8, pair_root, tmp_path, capsys):
    checkpoint, int8 = checkpoint_and_int8
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"root": str(pair_root), "train_sets": ["synth_a", "synth_b"],
                                               "val_set": "synth_val", "val_max_side": 32}}))
    assert main(["--checkpoint", str(checkpoint), "--config", str(config), "--sets", "synth_b",
                 "--precisions", "int8", "--int8", str(int8), "--threads", "1"]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| identity")
            or line.startswith("| text")]
    cells = {(r[0].strip("| "), r[1], r[2]): r for r in rows}
    for modulation in ("identity", "text"):  # without a text encoder, "text" runs the identity too
        for precision in ("fp32", "int8"):
            assert (modulation, precision, "val") in cells and (modulation, precision, "synth_b") in cells
        assert cells[(modulation, "fp32", "synth_b")][3] == "3"  # synth_b's three pairs
        assert cells[(modulation, "fp32", "val")][5] == "+0.0000"
        delta = float(cells[(modulation, "int8", "synth_b")][5])
        assert delta != 0.0 and abs(delta) < 0.2
