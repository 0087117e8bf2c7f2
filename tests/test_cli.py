"""`python -m mobilenets` as a user runs it."""

import json
import subprocess
import sys

import pytest

from mobilenets.errors import UserError


def run(*args):
    return subprocess.run([sys.executable, "-m", "mobilenets", *args], capture_output=True,
                          text=True, timeout=600)


def test_models_table_json():
    result = run("models", "--json", "--name", "shufflenet_v2")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["options"]["alpha"] for row in rows] == [0.5, 1.0, 1.5, 2.0]
    one = rows[1]
    assert one["trainable_params"] == 2_278_604 and one["paper_top1"] == 69.4
    assert abs(one["macs"] / 1e6 - one["paper_macs_millions"]) / 146 < 0.03


@pytest.mark.slow
def test_models_table_text():
    result = run("models", "--name", "mobilenet_v1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["model", "task", "options", "input", "params"]
    assert len(lines) == 5 and "4.25M" in lines[1] and "70.6%" in lines[1]


@pytest.mark.slow
def test_models_table_lists_ssdlite_and_deeplab_within_5_percent_of_the_paper():
    """MobileNetV2 SSDLite at 320x320 for COCO (paper Table 6: 4.3M parameters, 0.8B MAdds);
    DeepLabv3 at 513x513 for VOC (Table 7: 2.11M and 2.75B; with ASPP 4.52M)."""
    result = run("models", "--json", "--name", "mobilenet_v2")
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    (ssdlite,) = [row for row in table if row["task"] == "detection"]
    assert ssdlite["input"] == [320, 320, 3] and ssdlite["paper_map"] == 22.1
    assert abs(ssdlite["trainable_params"] / 4.3e6 - 1) < 0.05
    assert abs(ssdlite["macs"] / 1e6 / ssdlite["paper_macs_millions"] - 1) < 0.05
    light, aspp = [row for row in table if row["task"] == "segmentation"]
    assert light["input"] == [513, 513, 3] and light["paper_miou"] == 75.32
    assert abs(light["trainable_params"] / 2.11e6 - 1) < 0.005
    assert abs(light["macs"] / 1e6 / light["paper_macs_millions"] - 1) < 0.01
    assert aspp["options"]["aspp"] and abs(aspp["trainable_params"] / 4.52e6 - 1) < 0.005


def test_unknown_model_is_a_user_error():
    result = run("models", "--name", "mobilenet_v9")
    assert result.returncode == 2
    assert "unknown model(s) mobilenet_v9" in result.stderr
    assert "Traceback" not in result.stderr


def test_set_takes_several_values_and_repeats(tmp_path, capsys):
    """`--set a=1 b=2` and repeated `--set`: the last override named is checked too."""
    from mobilenets.cli import main

    config = tmp_path / "c.yaml"
    config.write_text("model:\n  alpha: 0.5\n")
    argv = ["train", "--config", str(config), "--workdir", str(tmp_path / "w")]
    assert main([*argv, "--set", "model.alpha=0.25", "train.batch_sise=3"]) == 2
    assert "unknown config key train.batch_sise" in capsys.readouterr().err
    assert main([*argv, "--set", "model.alpha=0.25", "--set", "train.epoch=3"]) == 2
    assert "unknown config key train.epoch " in capsys.readouterr().err
    with pytest.raises(UserError, match="config file not found"):  # --debug: the traceback
        main(["train", "--debug", "--config", str(tmp_path / "none.yaml")])


def tiny_classifier(folder):
    """A saved 3-class model taking 32x32 gray pixels, its labels.txt, and its float32 file
    with the labels packed in."""
    import numpy as np

    from mobilenets import build_model, export_tflite
    from mobilenets.tflite.metadata import add_metadata

    model = build_model("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 1), num_classes=3,
                        include_preprocessing=True)
    model.get_layer("logits").bias.assign(np.array([0.0, 5.0, 0.0], "float32"))
    model.save(folder / "model.keras")
    labels = ["cat", "dog", "bird"]
    (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    content = add_metadata(export_tflite(model, "float32"), labels=labels, name="tiny",
                           description="test")
    (folder / "export").mkdir()
    (folder / "export/model.tflite").write_bytes(content)
    return model


def test_predict_prints_labels_for_images_of_any_size(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from mobilenets.cli import main

    tiny_classifier(tmp_path)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype="uint8")).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (20, 16), dtype="uint8")).save(tmp_path / "b.jpg")
    for model in ("model.keras", "export/model.tflite"):
        capsys.readouterr()
        assert main(["predict", str(tmp_path / model), str(tmp_path / "a.png"),
                     str(tmp_path / "b.jpg"), "--json", "--top", "2"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [row["image"] for row in rows] == [str(tmp_path / "a.png"),
                                                  str(tmp_path / "b.jpg")]
        for row in rows:  # the logits' bias makes "dog" the first class of every image
            assert row["top"][0]["label"] == "dog" and len(row["top"]) == 2
            assert 0 < row["top"][1]["score"] <= row["top"][0]["score"] <= 1
    assert main(["predict", str(tmp_path / "export/model.tflite"), str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'a.png'}: dog ")
    (tmp_path / "notes.png").write_text("not an image")
    assert main(["predict", str(tmp_path / "model.keras"), str(tmp_path / "notes.png")]) == 2
    assert (f"{tmp_path / 'notes.png'}: cannot read it as an image"
            in capsys.readouterr().err)


@pytest.mark.slow
def test_benchmark_times_a_model_name():
    """Also an untrained MobileNetV3 runs whole in XNNPACK: the benchmark gives BatchNorm
    statistics, as training would."""
    result = run("benchmark", "mobilenet_v3_small", "--input-size", "64", "--runs", "3",
                 "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    assert [row["mode"] for row in rows] == ["float32", "int8"]
    for row in rows:
        assert row["partitions"] == 1 and row["ops_outside_xnnpack"] == []
        assert 0 < row["median_ms"] <= row["p90_ms"] and row["input"] == "64x64x3"


def test_benchmark_times_a_file(tmp_path, capsys):
    from mobilenets.cli import main

    tiny_classifier(tmp_path)
    assert main(["benchmark", str(tmp_path / "export/model.tflite"), "--runs", "2",
                 "--json"]) == 0
    row, = json.loads(capsys.readouterr().out)
    assert row["partitions"] == 1 and row["median_ms"] > 0 and row["size_mb"] > 0
