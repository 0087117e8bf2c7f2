"""`python -m mobilenets export` on the trained model of the `run` fixture: every mode, the
Android metadata, the debugger report of a failed check, float layers, and user errors."""

import csv
import json

import keras
import numpy as np
import pytest

from mobilenets import compat
from mobilenets import data as data_lib
from mobilenets.cli import main
from mobilenets.data import pipeline
from mobilenets.tflite.metadata import read_metadata
from mobilenets.tflite.runner import TFLiteModel

pytestmark = pytest.mark.slow  # end-to-end runs


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """float16, dynamic_range and int16x8 exports of the run's model: (workdir, report)."""
    config, workdir = run
    out = tmp_path_factory.mktemp("export")
    assert main(["export", "--config", str(config), "--model", str(workdir / "model.keras"),
                 "--modes", "float16", "dynamic_range", "int16x8", "--workdir", str(out)]) == 0
    return out, json.loads((out / "export/report.json").read_text())


def test_every_mode_runs_and_agrees_with_keras(run, exported):
    """Each file's probabilities are those of the Keras model, within its precision."""
    _, workdir = run
    out, report = exported
    assert list(report["files"]) == ["model_float16.tflite", "model_dynamic_range.tflite",
                                     "model_int16x8.tflite"]
    model = keras.models.load_model(workdir / "model.keras", compile=False)
    images = np.stack([image[0] for image in pipeline.calibration_images(
        data_lib.load(_sample_config()).eval, (32, 32, 1), 64)])
    expected = model.predict(images, verbose=0)
    for name, tolerance in (("float16", 0.01), ("dynamic_range", 0.05), ("int16x8", 0.02)):
        content = (out / f"export/model_{name}.tflite").read_bytes()
        # The files take RGB (the gray model's luma): a gray image as the camera gives it.
        probabilities = TFLiteModel(content)(np.repeat(images, 3, axis=-1))
        assert np.abs(probabilities - expected).max() < tolerance, name
        entry = report["files"][f"model_{name}.tflite"]
        assert entry["agreement"] >= 0.95, name
    float16 = report["files"]["model_float16.tflite"]
    assert float16["size_mb"] < report["files"]["model_int16x8.tflite"]["size_mb"] * 2.5


def _sample_config():
    from mobilenets.config import DataConfig

    return DataConfig(source="sample", eval_limit=64)


def test_files_carry_android_metadata_and_labels(exported):
    out, _ = exported
    content = (out / "export/model_int16x8.tflite").read_bytes()
    found = read_metadata(content)
    labels = (out / "export/labels.txt").read_text()
    assert found["files"] == {"labels.txt": labels}
    assert labels.splitlines()[:2] == ["t-shirt/top", "trouser"]
    image, = found["inputs"]
    assert image["content"] == "image" and image["color_space"] == "RGB"
    assert image["size"] == [32, 32]
    # pixels as they are, in each of the file's three channels (RGB input)
    assert image["normalization"] == {"mean": [0.0] * 3, "std": [1.0] * 3}
    probability, = found["outputs"]
    assert probability["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert found["name"].startswith("mobilenet_v2")


def test_debug_writes_the_per_layer_error_report(run, tmp_path):
    config, workdir = run
    assert main(["export", "--config", str(config), "--model", str(workdir / "model.keras"),
                 "--modes", "int8", "--workdir", str(tmp_path), "--set", "export.debug=true",
                 "--set", "export.debug_samples=8"]) == 0
    with open(tmp_path / "export/debug_int8.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 20
    errors = [float(row["rmse_over_scale"]) for row in rows]
    assert errors == sorted(errors, reverse=True) and errors[-1] > 0
    assert any(row["layers"] == "block1_expand_conv block1_expand_bn block1_expand_relu"
               for row in rows)  # the converter's fused conv + BN + ReLU6 op
    report = json.loads((tmp_path / "export/report.json").read_text())
    assert report["files"]["model_int8.tflite"]["debug_report"] == "debug_int8.csv"


def test_a_failed_check_exits_1_naming_the_debugger_report(run, tmp_path, capsys,
                                                            monkeypatch):
    from mobilenets.export import stage

    verify = stage.verify_file

    def collapsed(*args, **kwargs):  # an int8 file that lost everything, as per-layer PTQ can
        return {**verify(*args, **kwargs), "top1": 0.0}

    monkeypatch.setattr(stage, "verify_file", collapsed)
    config, workdir = run
    code = main(["export", "--config", str(config), "--model", str(workdir / "model.keras"),
                 "--modes", "int8", "--workdir", str(tmp_path), "--set", "export.debug_samples=8",
                 "--set", "export.max_drop=2"])
    message = capsys.readouterr().err
    assert code == 1
    assert "model_int8.tflite loses" in message
    assert f"per-layer errors in {tmp_path / 'export/debug_int8.csv'}" in message
    assert (tmp_path / "export/debug_int8.csv").stat().st_size > 1000


def test_float_layers_stay_in_float(run, tmp_path):
    config, workdir = run
    assert main(["export", "--config", str(config), "--model", str(workdir / "model.keras"),
                 "--modes", "int8", "--workdir", str(tmp_path),
                 "--set", "export.float_layers=[block1_.*, block2_project_conv]"]) == 0
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / "export/model_int8.tflite"))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    float_convs = [tensors[op["outputs"][0]]["name"] for op in compat.ops_details(interpreter)
                   if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
                   and tensors[op["outputs"][0]]["dtype"] == np.float32]
    assert len(float_convs) == 4  # block1: expand, depthwise, project; block2: project
    assert all("block1_" in name or "block2_project" in name for name in float_convs)
    report = json.loads((tmp_path / "export/report.json").read_text())
    assert report["files"]["model_int8.tflite"]["agreement"] >= 0.9


def test_npu_targets_are_compiled_after_the_files_are_verified(run, tmp_path, capsys):
    """`--npu`: the int8 file is written and verified as always, then LiteRT's AOT compiler
    runs for the target; without the vendor's SDK (this project's CI machines) the command
    exits 2 naming what is missing, and report.json keeps the reason."""
    from mobilenets.tflite import npu

    config, workdir = run
    status = main(["export", "--config", str(config), "--model", str(workdir / "model.keras"),
                   "--modes", "int8", "--workdir", str(tmp_path), "--npu", "qualcomm:SM8650"])
    report = json.loads((tmp_path / "export/report.json").read_text())
    assert report["files"]["model_int8.tflite"]["agreement"] >= 0.9
    (entry,) = report["npu"]["model_int8.tflite"]
    assert entry["target"] == "qualcomm:SM8650"
    if entry["files"]:  # the SDK is installed
        assert status == 0 and (tmp_path / "export/npu" / next(iter(entry["files"]))).is_file()
        return
    assert status == 2
    error = capsys.readouterr().err
    assert ("the int8 files are written and verified, but no NPU file was compiled for "
            "qualcomm:SM8650 (") in error
    assert f"pip install {npu.VENDORS['qualcomm'].package}" in entry["failed"]["SM8650"]


@pytest.mark.parametrize("arguments, message", [
    (["--modes", "int9"], "--modes: unknown mode 'int9'"),
    (["--modes", "float32", "--npu", "qualcomm"], "--npu compiles int8 files: add int8 to "
                                                   "--modes"),
    (["--npu", "snapdragon"], "NPU target 'snapdragon': unknown vendor 'snapdragon'"),
    (["--set", "export.float_layers=[blok1_.*]"], "export.float_layers: 'blok1_.*' matches no"),
    (["--model", "notes.txt"], "expected a .keras file"),
])
def test_export_user_errors_exit_2(run, tmp_path, capsys, arguments, message):
    config, workdir = run
    command = ["export", "--config", str(config), "--model", str(workdir / "model.keras"),
               "--workdir", str(tmp_path)]
    if "--modes" not in arguments:
        command += ["--modes", "int8"]
    assert main(command + arguments) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
