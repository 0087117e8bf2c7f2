"""train.py and evaluate.py end to end on a slice of the bundled sample (the `run` fixture of
conftest.py): artifacts, resume, NaN stop, and the exit codes of user errors."""

import csv
import errno
import json
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import pytest

import mobilenets
from mobilenets import config as config_lib
from mobilenets.cli import evaluate_main, train_main

pytestmark = pytest.mark.slow  # end-to-end runs

STEPS_PER_EPOCH = 256 // 32
ROOT = pathlib.Path(__file__).resolve().parents[1]


def history(workdir):
    with open(workdir / "history.csv") as f:
        return list(csv.DictReader(f))


def final_weights(workdir):
    model = keras.models.load_model(workdir / "model.keras", compile=False)
    return model.get_weights()


def test_run_directory_holds_every_artifact(run):
    config, workdir = run
    for name in ("config.yaml", "model.keras", "metrics.json", "history.csv", "labels.txt",
                 "training_curve.png", "checkpoints/best.keras", "export/model_float32.tflite",
                 "export/model_int8.tflite", "export/labels.txt", "export/report.json"):
        assert (workdir / name).is_file(), name
    resolved = config_lib.load(workdir / "config.yaml")
    assert resolved == config_lib.load(config)
    assert (workdir / "labels.txt").read_text().splitlines()[:2] == ["t-shirt/top", "trouser"]
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["images"] == 128 and metrics["replicas"] == 1
    assert metrics["steps"] == 2 * STEPS_PER_EPOCH and metrics["global_batch_size"] == 32
    assert metrics["train_images_per_sec"] > 0
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 1
    assert np.sum(metrics["confusion_matrix"]) == 128
    assert [row["epoch"] for row in history(workdir)] == ["0", "1"]
    # Keeps the last 3 of the checkpoints at steps 5, 8 (epoch end), 10, 15, 16.
    assert sorted(p.name for p in (workdir / "checkpoints").glob("ckpt-*")) == [
        "ckpt-000000010.weights.h5", "ckpt-000000015.weights.h5", "ckpt-000000016.weights.h5"]


def test_exports_are_verified_in_the_report(run):
    _, workdir = run
    report = json.loads((workdir / "export/report.json").read_text())
    float32, int8 = report["files"]["model_float32.tflite"], report["files"]["model_int8.tflite"]
    assert report["images"] == 128
    assert float32["agreement"] >= 127 / 128
    assert abs(float32["top1"] - report["float"]["top1"]) <= 1 / 128
    assert int8["input"] == {"dtype": "uint8", "shape": [1, 32, 32, 3], "scale": 1.0,
                             "zero_point": 0}
    assert int8["size_mb"] < float32["size_mb"] / 2
    assert float32["partitions"] == 1 and float32["ops_outside_xnnpack"] == []
    assert int8["partitions"] == 1 and int8["ops_outside_xnnpack"] == []
    assert int8["output"]["dtype"] == "float32" and int8["agreement"] >= 0.9
    # int8 files also run on LiteRT's built-in kernels, float files only on XNNPACK.
    builtin = int8["builtin_kernels"]
    assert builtin["agreement_with_xnnpack"] >= 0.9 and 0 <= builtin["top1"] <= 1
    assert "builtin_kernels" not in float32
    assert report["preprocessing"].startswith("as Android's clients: the whole image resized "
                                              "to 32x32, RGB")


def test_files_have_a_serving_signature(run):
    from ai_edge_litert.interpreter import Interpreter

    _, workdir = run
    for name in ("model_float32.tflite", "model_int8.tflite"):
        interpreter = Interpreter(model_path=str(workdir / "export" / name))
        assert interpreter.get_signature_list() == {
            "serving_default": {"inputs": ["image"], "outputs": ["predictions"]}}, name
        runner = interpreter.get_signature_runner("serving_default")
        dtype = interpreter.get_input_details()[0]["dtype"]
        image = np.full((1, 32, 32, 3), 128, dtype)
        probabilities = runner(image=image)["predictions"]
        assert probabilities.shape == (1, 10) and abs(float(probabilities.sum()) - 1) < 1e-3


def test_evaluate_scores_keras_and_tflite_like_training(run, capsys):
    config, workdir = run
    metrics = json.loads((workdir / "metrics.json").read_text())
    for name in ("model.keras", "export/model_float32.tflite"):
        model = workdir / name
        assert evaluate_main(["--config", str(config), "--model", str(model)]) == 0
        scored = json.loads(model.with_name(model.name + ".eval.json").read_text())
        assert scored["images"] == 128
        assert scored["top1"] == pytest.approx(metrics["top1"], abs=1 / 128)
        assert model.with_name(model.name + ".confusion.png").stat().st_size > 1000
    assert scored["median_latency_ms"] > 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["images"] == 128


def test_more_epochs_resume_a_finished_run(run, tmp_path, caplog):
    config, workdir = run
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy)
    state = copy / "checkpoints/state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "seconds": 10_000.0}))
    caplog.set_level("INFO", logger="mobilenets")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train_main(["--config", str(config), "--workdir", str(copy),
                           "--set", "train.epochs=3", "--set", "export.modes=[]"]) == 0
    assert "resumed from epoch 3, step 0" in caplog.text
    # The endless training stream never runs out; Keras must not say it did.
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert [row["epoch"] for row in history(copy)] == ["0", "1", "2"]
    metrics = json.loads((copy / "metrics.json").read_text())
    assert metrics["steps"] == 3 * STEPS_PER_EPOCH
    # Training time adds up over sessions: the earlier sessions' time (as recorded with the
    # checkpoints) is counted in.
    assert 10_000 < metrics["train_seconds"] < 10_000 + 3600


def test_mid_epoch_resume_ends_where_an_uninterrupted_run_does(run, tmp_path, caplog):
    """Drop the checkpoints after step 10 (epoch 2, step 2) and run again: with a fixed seed
    and deterministic ops, the resumed run's final weights equal the uninterrupted run's."""
    config, workdir = run
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy)
    for name in ("checkpoints/ckpt-000000015.weights.h5", "checkpoints/ckpt-000000016.weights.h5",
                 "model.keras", "metrics.json"):
        (copy / name).unlink()
    caplog.set_level("INFO", logger="mobilenets")
    assert train_main(["--config", str(config), "--workdir", str(copy),
                       "--set", "export.modes=[]"]) == 0
    assert "resumed from epoch 2, step 2" in caplog.text
    assert [row["epoch"] for row in history(copy)] == ["0", "1"]
    for resumed, uninterrupted in zip(final_weights(copy), final_weights(workdir), strict=True):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)


def test_nan_loss_stops_with_exit_1_and_keeps_good_checkpoints(run, tmp_path, capsys):
    config, _ = run
    workdir = tmp_path / "work"
    code = train_main(["--config", str(config), "--workdir", str(workdir),
                       "--set", "train.learning_rate=1e30", "--set", "train.schedule=constant"])
    message = capsys.readouterr().err
    assert code == 1
    assert "the loss became NaN or infinite at step" in message
    assert "train.learning_rate" in message and "Traceback" not in message
    assert not (workdir / "model.keras").exists()


@pytest.mark.parametrize("overrides, message", [
    (["data.source=folder", "data.dir=/nonexistent/images"],
     r"data.dir: image folder '/nonexistent/images' not found"),
    (["model.num_classes=7"], r"model.num_classes is 7 but the data has 10 classes"),
    (["model.alpha=-1"], r"model.alpha must be > 0, got -1"),
    (["train.batch_sise=8"], r"unknown config key train.batch_sise \(did you mean "
                             r"train.batch_size\?\)"),
    (["qat.enabled=true"], r"train.ema_decay must be 0 with qat.enabled"),
    (["qat.enabled=true", "train.ema_decay=0", "export.int8_output=int8"],
     r"export.int8_output must be float32 with qat.enabled"),
])
def test_user_errors_exit_2_with_one_line(run, tmp_path, capsys, overrides, message):
    config, _ = run
    argv = ["--config", str(config), "--workdir", str(tmp_path / "work")]
    for override in overrides:
        argv += ["--set", override]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert re.search(message, err), err


def test_init_from_another_architecture_is_a_user_error(run, tmp_path, capsys):
    config, workdir = run
    code = train_main(["--config", str(config), "--workdir", str(tmp_path / "work"),
                       "--set", "model.name=mobilenet_v1", "--set", "model.alpha=0.25",
                       "--set", f"model.init_from={workdir / 'model.keras'}"])
    assert code == 2
    assert "does not match" in capsys.readouterr().err


def test_bad_model_files_are_user_errors(run, tmp_path, capsys):
    config, _ = run
    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"this is not a flatbuffer")
    assert evaluate_main(["--config", str(config), "--model", str(fake)]) == 2
    assert "is not a TFLite file" in capsys.readouterr().err
    assert evaluate_main(["--config", str(config), "--model", str(tmp_path / "no.keras")]) == 2
    assert "not found" in capsys.readouterr().err
    assert train_main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_unwritable_workdir_is_a_user_error(run, capsys):
    config, _ = run
    assert train_main(["--config", str(config), "--workdir", "/proc/mobilenets-run"]) == 2
    assert "workdir /proc/mobilenets-run cannot be created" in capsys.readouterr().err


def test_sigkill_then_rerun_ends_like_an_uninterrupted_run(run, tmp_path):
    """Kill a real training process (SIGKILL) once its first checkpoint exists, rerun the same
    command: it resumes and ends with the uninterrupted run's epochs and weights."""
    config, uninterrupted = run
    workdir = tmp_path / "work"
    command = [sys.executable, str(ROOT / "train.py"), "--config", str(config),
               "--workdir", str(workdir), "--set", "export.modes=[]"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list((workdir / "checkpoints").glob("ckpt-*.weights.h5")):
            assert process.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert process.poll() is None, "training ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (workdir / "model.keras").exists()
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert re.search(r"resumed from epoch \d, step \d", rerun.stderr)
    assert [row["epoch"] for row in history(workdir)] == ["0", "1"]
    for resumed, expected in zip(final_weights(workdir), final_weights(uninterrupted),
                                 strict=True):
        np.testing.assert_allclose(resumed, expected, rtol=1e-5, atol=1e-6)


def test_full_disk_during_export_keeps_the_previous_export(run, tmp_path, capsys, monkeypatch):
    config, workdir = run
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy)
    before = (copy / "export/model_int8.tflite").read_bytes()
    report = (copy / "export/report.json").read_text()
    write_bytes = pathlib.Path.write_bytes

    def disk_fills_up(path, data):
        if path.name.endswith("model_int8.tflite"):
            write_bytes(path, data[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(path, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", disk_fills_up)
    assert train_main(["--config", str(config), "--workdir", str(copy)]) == 1
    message = capsys.readouterr().err
    assert f"cannot write {copy / 'export/model_int8.tflite'}: No space left on device" in message
    assert (copy / "export/model_int8.tflite").read_bytes() == before
    assert (copy / "export/report.json").read_text() == report
    assert not list((copy / "export").glob(".tmp-*"))


def test_checkpoints_of_another_model_are_never_overwritten(run, tmp_path, capsys):
    config, workdir = run
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy)
    kept = sorted((copy / "checkpoints").glob("ckpt-*"))
    assert train_main(["--config", str(config), "--workdir", str(copy),
                       "--set", "model.alpha=0.5"]) == 2
    assert "fits this model" in capsys.readouterr().err
    assert sorted((copy / "checkpoints").glob("ckpt-*")) == kept


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(run, tmp_path, caplog):
    config, workdir = run
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy)
    (copy / "model.keras").unlink()
    newest = copy / "checkpoints/ckpt-000000016.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])
    caplog.set_level("INFO", logger="mobilenets")
    assert train_main(["--config", str(config), "--workdir", str(copy),
                       "--set", "export.modes=[]"]) == 0
    assert "ckpt-000000016.weights.h5 is unreadable" in caplog.text
    assert "resumed from epoch 2, step 7" in caplog.text


def start_training(config, workdir):
    """`mobilenets train` in another process; returns it once it has trained 5 steps."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mobilenets", "train", "--config", str(config), "--workdir",
         str(workdir), "--set", "export.modes=[]"], stderr=subprocess.PIPE, text=True)
    first = workdir / "checkpoints/ckpt-000000005.weights.h5"
    deadline = time.monotonic() + 600
    while not first.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return process


def test_sigterm_mid_epoch_checkpoints_its_step_and_the_rerun_resumes_there(run, tmp_path,
                                                                            caplog):
    config, workdir = run
    copy = tmp_path / "work"
    process = start_training(config, copy)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    message = process.stderr.read()
    step = int(re.search(r"stopped by SIGTERM at step (\d+), its checkpoint written", message)[1])
    assert (copy / f"checkpoints/ckpt-{step:09d}.weights.h5").exists()
    caplog.set_level("INFO", logger="mobilenets")
    assert train_main(["--config", str(config), "--workdir", str(copy),
                       "--set", "export.modes=[]"]) == 0
    epoch, in_epoch = divmod(step, STEPS_PER_EPOCH)
    assert f"resumed from epoch {epoch + 1}, step {in_epoch}" in caplog.text
    for resumed, uninterrupted in zip(final_weights(copy), final_weights(workdir), strict=True):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)


def test_a_second_command_on_a_running_directory_exits_2_and_a_dead_ones_lock_is_taken_over(
        run, tmp_path, capsys, caplog):
    config, _ = run
    copy = tmp_path / "work"
    process = start_training(config, copy)
    try:
        assert train_main(["--config", str(config), "--workdir", str(copy)]) == 2
        assert f"is in use by mobilenets (PID {process.pid})" in capsys.readouterr().err
    finally:
        process.kill()  # SIGKILL: its lock file still names it
        process.wait()
    caplog.set_level("INFO", logger="mobilenets")
    assert train_main(["--config", str(config), "--workdir", str(copy),
                       "--set", "export.modes=[]"]) == 0
    assert f"took over the lock of mobilenets (PID {process.pid})" in caplog.text
    assert [row["epoch"] for row in history(copy)] == ["0", "1"]


def test_a_damaged_state_file_is_read_as_none(run, tmp_path, caplog):
    config, workdir = run
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy)
    (copy / "checkpoints/state.json").write_text('{"step": 16, "be')  # a torn write
    caplog.set_level("INFO", logger="mobilenets")
    assert train_main(["--config", str(config), "--workdir", str(copy),
                       "--set", "train.epochs=3", "--set", "export.modes=[]"]) == 0
    assert "state.json is damaged" in caplog.text
    assert "resumed from epoch 3, step 0" in caplog.text


# Runs `mobilenets train` and SIGKILLs it at its N-th file write (an atomic rename, or a row of
# history.csv), after logging each write's name to a file: how the test finds the moments.
KILL_AT_WRITE = """
import os, signal, sys
import keras
from mobilenets.cli import main

kill_at, log = int(sys.argv[1]), open(sys.argv[2], "a")
count = 0

def wrote(name):
    global count
    count += 1
    log.write(f"{count} {name}\\n")
    log.flush()
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

rename = os.replace
def replace(source, target):
    rename(source, target)
    wrote(os.path.basename(target))
os.replace = replace

row = keras.callbacks.CSVLogger.on_epoch_end
def on_epoch_end(self, epoch, logs=None):
    row(self, epoch, logs)
    wrote("history.csv")
keras.callbacks.CSVLogger.on_epoch_end = on_epoch_end

sys.exit(main(["train"] + sys.argv[3:]))
"""


# A smaller model than the tiny run's (11 runs of it): what matters is the order of writes.
QUICK = ["--set", "export.modes=[]", "train.checkpoint_steps=0", "model.name=mobilenet_v1",
         "model.alpha=0.25"]


def train_killed_at(write, config, workdir, writes):
    arguments = ["--config", str(config), "--workdir", str(workdir), *QUICK]
    return subprocess.run([sys.executable, "-c", KILL_AT_WRITE, str(write), str(writes),
                           *arguments], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_sigkill_at_every_write_of_an_epoch_end_then_rerun_ends_like_an_uninterrupted_run(
        run, tmp_path):
    """The epoch end is one transaction: killed at any of its writes (history row, best-model
    candidate, state, checkpoint), the rerun ends with the uninterrupted run's history,
    best.keras and final weights."""
    config, _ = run
    reference, writes = tmp_path / "reference", tmp_path / "writes.txt"
    finished = train_killed_at(0, config, reference, writes)
    assert finished.returncode == 0, finished.stderr[-2000:]
    moments = [line.split() for line in writes.read_text().splitlines()]
    # The first epoch's end: its writes from its history row to its checkpoint's state.
    first = next(int(n) for n, name in moments if name == "history.csv")
    checkpoint = next(int(n) for n, name in moments if name.startswith("ckpt-"))
    epoch_end = [(int(n), name) for n, name in moments if first <= int(n) <= checkpoint + 1]
    assert {name for _, name in epoch_end} == {"history.csv", "best.keras", "state.json",
                                                "ckpt-000000008.weights.h5"}
    for write, name in epoch_end:
        workdir = tmp_path / f"killed-at-{write}"
        killed = train_killed_at(write, config, workdir, tmp_path / "ignored.txt")
        assert killed.returncode == -signal.SIGKILL, (name, killed.stderr[-2000:])
        assert train_main(["--config", str(config), "--workdir", str(workdir), *QUICK]) == 0
        resumed, expected = history(workdir), history(reference)
        assert [row["epoch"] for row in resumed] == ["0", "1"], name
        for row, want in zip(resumed, expected):
            for key in want:
                np.testing.assert_allclose(float(row[key]), float(want[key]), rtol=1e-5,
                                           err_msg=f"killed after {name}: {key}")
        for path in ("model.keras", "checkpoints/best.keras"):
            got = keras.models.load_model(workdir / path, compile=False).get_weights()
            want = keras.models.load_model(reference / path, compile=False).get_weights()
            for a, b in zip(got, want, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6,
                                           err_msg=f"killed after {name}: {path}")


def test_a_full_disk_at_a_checkpoint_exits_1_naming_it_and_the_rerun_resumes(
        run, tmp_path, capsys, monkeypatch):
    """On a full disk h5py reported the error, then crashed the process (exit 139): the
    checkpoint's size is checked against the free space before it is written."""
    from mobilenets import files

    config, _ = run
    workdir = tmp_path / "work"
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda folder: usage._replace(free=2**20))
    assert train_main(["--config", str(config), "--workdir", str(workdir),
                       "--set", "export.modes=[]"]) == 1
    message = capsys.readouterr().err
    assert f"cannot write {workdir / 'checkpoints/ckpt-000000005.weights.h5'}" in message
    assert re.search(r"ckpt-000000005.weights.h5: No space left on device \(about [\d.]+ MiB "
                     r"needed, 1.0 MiB free\)", message), message
    assert not list((workdir / "checkpoints").glob("*.h5"))
    monkeypatch.undo()
    assert train_main(["--config", str(config), "--workdir", str(workdir),
                       "--set", "export.modes=[]"]) == 0
    assert [row["epoch"] for row in history(workdir)] == ["0", "1"]


def test_export_to_an_unwritable_folder_is_a_user_error(run, capsys):
    from mobilenets.cli import main

    config, workdir = run
    assert main(["export", "--config", str(config), "--model", str(workdir / "model.keras"),
                 "--workdir", "/proc/mobilenets-export"]) == 2
    assert ("--workdir /proc/mobilenets-export/export cannot be created"
            in capsys.readouterr().err)


def test_select_best_reports_and_saves_the_best_validated_epoch(run, tmp_path):
    """train.select: best: the model evaluated, saved and exported is the checkpoint of the
    epoch with the best held-out validation score (the first of equals), and the run says
    which; its held-out score is the one it was chosen by."""
    config, _ = run
    workdir = tmp_path / "work"
    assert train_main(["--config", str(config), "--workdir", str(workdir), "--set",
                       "train.epochs=3", "data.holdout=64", "train.select=best",
                       "export.modes=[]"]) == 0
    scores = [float(row["val_accuracy"]) for row in history(workdir)]
    metrics = json.loads((workdir / "metrics.json").read_text())
    selected = metrics["selected"]
    assert selected["model"] == "best"
    assert selected["epoch"] == 1 + scores.index(max(scores))
    assert selected["val_accuracy"] == pytest.approx(max(scores))
    assert metrics["validation"]["top1"] == pytest.approx(max(scores), abs=1e-6)
    best = keras.models.load_model(workdir / "checkpoints/best.keras", compile=False)
    for ours, chosen in zip(final_weights(workdir), best.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, chosen)

    # Rerun on the finished run: the model reported is whatever best.keras holds.
    halved = [w * 0.5 if w.dtype.kind == "f" else w for w in best.get_weights()]
    best.set_weights(halved)
    best.save(workdir / "checkpoints/best.keras")
    assert train_main(["--config", str(config), "--workdir", str(workdir), "--set",
                       "train.epochs=3", "data.holdout=64", "train.select=best",
                       "export.modes=[]"]) == 0
    for ours, chosen in zip(final_weights(workdir), halved, strict=True):
        np.testing.assert_array_equal(ours, chosen)
    sessions = json.loads((workdir / "sessions.json").read_text())["sessions"]
    assert [s["from_step"] for s in sessions] == [0, 3 * (256 - 64) // 32]
    assert metrics["sessions"][0]["version"] == mobilenets.__version__
    assert sessions[0]["command"] == " ".join(map(shlex.quote, sys.argv))  # this process's


MODEL_LOADS_IN_PLAIN_KERAS = """
import sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1])
assert "mobilenets" not in sys.modules
np.save(sys.argv[2], model.predict(np.load(sys.argv[3]), verbose=0))
print(sorted({type(layer).__name__ for layer in model.layers}))
"""


def test_a_runs_model_loads_in_plain_keras_without_the_package(run, tmp_path):
    """model.keras and best.keras load with keras.saving.load_model in a fresh process that
    never imports mobilenets, and compute what the run's model computes."""
    _, workdir = run
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    for name in ("model.keras", "checkpoints/best.keras"):
        done = subprocess.run(
            [sys.executable, "-c", MODEL_LOADS_IN_PLAIN_KERAS, str(workdir / name),
             str(tmp_path / "out.npy"), str(tmp_path / "images.npy")],
            capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "BatchNormalization" in done.stdout and "Fused" not in done.stdout
        ours = keras.models.load_model(workdir / name, compile=False)
        np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                                   ours.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
