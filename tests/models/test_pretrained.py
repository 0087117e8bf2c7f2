"""ImageNet weights from keras.applications: downloaded and cached by Keras' own code (the
download served here by a fake server with random weights in Google's file format), copied
into our builders exactly."""

import re
import shutil

import h5py
import numpy as np
import pytest

from mobilenets import build_model
from mobilenets.models.pretrained import (
    WeightsMismatch,
    keras_applications_twin,
    load_keras_applications,
    transfer,
)
from tests.reference import randomize

rng = np.random.default_rng(0)
SIZES = {"xception": 299}


def save_legacy_h5(model, path):
    """Writes `model`'s weights as keras.applications' published .h5 files are written (the
    legacy HDF5 layout keras' load_weights reads for a name ending in .h5). Keras' own writer of
    that layout is private; tests only."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    with h5py.File(path, "w") as file:
        save_weights_to_hdf5_group(file, model)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Keras' cache in tmp_path/keras and a fake download server: `serve(model)` makes the next
    downloads return `model`'s weights; `downloads` lists the URLs fetched. The hash check is
    bypassed (the hashes are of Google's files)."""
    from keras.src.backend import config
    from keras.src.utils import file_utils

    (tmp_path / "keras").mkdir()  # keras falls back to /tmp/.keras if it cannot write there
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras"))
    served, downloads = {}, []

    def urlretrieve(url, target, progress=None):
        downloads.append(url)
        shutil.copy(served["file"], target)

    monkeypatch.setattr(file_utils, "urlretrieve", urlretrieve)
    monkeypatch.setattr(file_utils, "validate_file", lambda *args, **kwargs: True)

    def serve(model):
        served["file"] = tmp_path / "served.h5"
        save_legacy_h5(model, served["file"])

    serve.downloads = downloads
    serve.cache = tmp_path / "keras" / "models"
    return serve


def reference(name, options, include_top=True):
    """keras.applications' model with random weights (non-trivial BatchNorm statistics)."""
    twin = keras_applications_twin(name, options, include_top=include_top, weights=None)
    size = SIZES.get(name, 224)
    randomize(twin, rng, rng.uniform(-1, 1, (4, size, size, 3)).astype("float32"))
    return twin


def ours(name, options, **common):
    size = SIZES.get(name, 224)
    common.setdefault("input_shape", (size, size, 3))
    return build_model(name, **options, **common)


CASES = [
    ("mobilenet_v2", {"alpha": 0.35}),
    *[pytest.param(name, options, marks=pytest.mark.slow) for name, options in [
        ("mobilenet_v1", {"alpha": 1.0}), ("mobilenet_v1", {"alpha": 0.5}),
        ("mobilenet_v2", {"alpha": 1.0}), ("mobilenet_v3_large", {}),
        ("mobilenet_v3_small", {}), ("xception", {})]],
]


@pytest.mark.parametrize("name, options", CASES)
def test_imagenet_weights_load_through_keras_cache_exactly(server, name, options):
    served = reference(name, options)
    server(served)
    model = ours(name, options)
    assert load_keras_applications(model, name, options) == []
    assert len(server.downloads) == 1 and server.downloads[0].startswith("https://")
    assert len(list(server.cache.iterdir())) == 1  # cached in keras' folder
    size = SIZES.get(name, 224)
    images = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    expected = served(images).numpy()
    np.testing.assert_allclose(model(images).numpy(), expected, atol=1e-5)
    load_keras_applications(ours(name, options), name, options)
    assert len(server.downloads) == 1  # the second time from the cache


def test_another_number_of_classes_keeps_a_fresh_classifier(server):
    options = {"alpha": 0.35}
    served = reference("mobilenet_v2", options)
    server(served)
    model = ours("mobilenet_v2", options, num_classes=10, classifier_activation=None)
    fresh = model.get_layer("logits").get_weights()
    assert load_keras_applications(model, "mobilenet_v2", options) == ["logits"]
    for value, before in zip(model.get_layer("logits").get_weights(), fresh):
        np.testing.assert_array_equal(value, before)
    np.testing.assert_array_equal(model.get_layer("head_conv").kernel.numpy(),
                                  served.get_layer("Conv_1").kernel.numpy())


def test_a_gray_model_computes_the_network_on_the_gray_image_in_every_channel(server):
    options = {"alpha": 0.35}
    served = reference("mobilenet_v2", options)
    server(served)
    model = ours("mobilenet_v2", options, input_shape=(224, 224, 1))
    load_keras_applications(model, "mobilenet_v2", options)
    gray = rng.uniform(-1, 1, (2, 224, 224, 1)).astype("float32")
    np.testing.assert_allclose(model(gray).numpy(), served(np.repeat(gray, 3, -1)).numpy(),
                               atol=1e-5)


def test_a_weights_file_without_classifier_loads_the_backbone(tmp_path):
    options = {"alpha": 0.35}
    served = reference("mobilenet_v2", options, include_top=False)
    path = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    save_legacy_h5(served, path)
    model = ours("mobilenet_v2", options)
    assert load_keras_applications(model, "mobilenet_v2", options, str(path)) == ["logits"]
    np.testing.assert_array_equal(model.get_layer("stem_conv").kernel.numpy(),
                                  served.get_layer("Conv1").kernel.numpy())


def test_weights_of_another_width_are_refused_naming_the_first_layer():
    source = keras_applications_twin("mobilenet_v2", {"alpha": 1.0}, include_top=False,
                                     weights=None)
    target = build_model("mobilenet_v2", alpha=0.5, input_shape=(96, 96, 3))
    before = target.get_layer("stem_conv").kernel.numpy()
    with pytest.raises(WeightsMismatch, match="its layer stem_conv has a weight of shape"):
        transfer(source, target)
    np.testing.assert_array_equal(target.get_layer("stem_conv").kernel.numpy(), before)


def test_families_without_keras_applications_weights_are_named():
    with pytest.raises(ValueError, match="no ImageNet weights for shufflenet_v2; it has them "
                                         "for mobilenet_v1"):
        keras_applications_twin("shufflenet_v2", {}, include_top=True, weights=None)
    with pytest.raises(ValueError, match="no option identity_ratio"):
        keras_applications_twin("mobilenet_v2", {"identity_ratio": 0.5}, include_top=True,
                                weights=None)


def test_a_file_that_is_not_hdf5_is_named(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_text("not hdf5")
    with pytest.raises(WeightsMismatch, match="cannot be read as an HDF5 weights file"):
        load_keras_applications(build_model("mobilenet_v2", alpha=0.35), "mobilenet_v2",
                                {"alpha": 0.35}, str(path))




def test_model_weights_in_a_config_start_the_model(tmp_path, caplog):
    """`model.weights: FILE` for a 1-channel model with 10 classes: the backbone loads (its
    first convolution summed over RGB), the classifier starts fresh, and the log says so."""
    from mobilenets import experiment, tasks
    from mobilenets.config import ModelConfig

    served = reference("mobilenet_v2", {"alpha": 0.35})
    path = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5"
    save_legacy_h5(served, path)
    config = ModelConfig(name="mobilenet_v2", alpha=0.35, input_shape=[64, 64, 1],
                         weights=str(path))
    with caplog.at_level("INFO", logger="mobilenets"):
        model = experiment.build(tasks.get("classification"), config, 10)
    np.testing.assert_allclose(model.get_layer("stem_conv").kernel.numpy(),
                               served.get_layer("Conv1").kernel.numpy().sum(axis=2, keepdims=True))
    assert "logits starts fresh" in caplog.text


def test_a_backbone_loads_the_weights_without_classifier(server):
    from mobilenets import build_backbone

    served = reference("mobilenet_v3_small", {}, include_top=False)
    server(served)
    backbone = build_backbone("mobilenet_v3_small", input_shape=(224, 224, 3))
    assert load_keras_applications(backbone, "mobilenet_v3_small", {}) == []
    assert "notop" in server.downloads[0] or "no_top" in server.downloads[0]
    images = rng.uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    expected = served(images).numpy()  # the last feature map: float rounding of its scale
    np.testing.assert_allclose(backbone(images)["last"].numpy(), expected,
                               atol=1e-5 * np.abs(expected).max())


def test_imagenet_weights_without_internet_exit_2_naming_the_file(tmp_path):
    """A machine without internet (here: every download sent to a closed port) gets exit 2
    and the file to download by hand, not Keras' traceback."""
    import os
    import subprocess
    import sys

    config = tmp_path / "offline.yaml"
    config.write_text("model: {name: mobilenet_v2, alpha: 0.35, input_shape: [32, 32, 1], "
                      "weights: imagenet}\ndata: {train_limit: 64, eval_limit: 32}\n")
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "NO_PROXY": "",
           "no_proxy": "", "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy":
           "http://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-m", "mobilenets", "train", "--config", str(config),
                           "--workdir", str(tmp_path / "run")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5"
    assert "Traceback" not in done.stderr
    assert re.search(rf"model.weights: imagenet: cannot download https://\S+/{name} \(.*\)\. "
                     rf"Without internet, download {name} on another machine, copy it here and "
                     rf"set model.weights: path/to/{name}", done.stderr), done.stderr[-3000:]
