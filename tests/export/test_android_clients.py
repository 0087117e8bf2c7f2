"""The phone's contract, checked by Android's own clients: MediaPipe Tasks' ImageClassifier loads
the exported files of a grayscale-trained and of an RGB-trained model, names the classes from
the file, and predicts what LiteRT does on the same camera-like images; tflite-support reads the
metadata back.

The clients run in their own virtualenv (tests/clients/requirements.txt; make it with
scripts/client_venv.sh, which .ci/run calls): its Python is $MOBILENETS_CLIENTS_PYTHON, by
default /tmp/mobilenets-clients/bin/python.
"""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from PIL import Image

from mobilenets import export_tflite
from mobilenets.cli import train_main
from mobilenets.data.transforms import client_transform
from mobilenets.tflite.runner import TFLiteModel
from tests.conftest import TINY
from tests.reference import set_batch_norm_statistics

pytestmark = pytest.mark.slow  # end-to-end runs

CLIENTS = pathlib.Path(__file__).resolve().parents[1] / "clients"
IMAGES = 300


@pytest.fixture(scope="module")
def client_python():
    python = pathlib.Path(os.environ.get("MOBILENETS_CLIENTS_PYTHON",
                                         "/tmp/mobilenets-clients/bin/python"))
    if not python.is_file():
        message = (f"no clients' virtualenv at {python} (make it with scripts/client_venv.sh "
                   "or set MOBILENETS_CLIENTS_PYTHON)")
        if os.environ.get("MOBILENETS_REQUIRE_CLIENTS"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def client(python, script, *args):
    done = subprocess.run([str(python), str(CLIENTS / script), *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """The tiny run of conftest.py with an RGB model (the gray images given as RGB)."""
    root = tmp_path_factory.mktemp("rgb")
    config = root / "tiny_rgb.yaml"
    config.write_text(TINY.replace("input_shape: [32, 32, 1]", "input_shape: [32, 32, 3]"))
    assert train_main(["--config", str(config), "--workdir", str(root / "work")]) == 0
    return root / "work"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """300 Fashion-MNIST test images as RGB PNG files, as a camera app would hand them over."""
    from mobilenets import data as data_lib
    from mobilenets.config import DataConfig

    split = data_lib.load(DataConfig(source="sample", full_test_set=False),
                          splits=("eval",)).eval
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for index in np.linspace(0, len(split) - 1, IMAGES).astype(int):
        path = folder / f"{index}.png"
        Image.fromarray(np.repeat(split.arrays[index], 3, axis=-1)).save(path)
        paths.append(path)
    return paths


def litert_scores(model_path, photos):
    """LiteRT's class scores of the photos, preprocessed as the clients do (`client_transform`:
    the whole image resized)."""
    runner = TFLiteModel(model_path)
    shape = tuple(int(d) for d in runner.input["shape"][1:])
    images = np.stack([client_transform(np.asarray(Image.open(p).convert("RGB")), shape).numpy()
                       for p in photos])
    return runner(images)


@pytest.fixture(scope="module")
def litert_quantized(run, tmp_path_factory):
    """The tiny run's int8 file made by the LiteRT Quantizer (`export.quantizer: litert`)."""
    from mobilenets.cli import main

    workdir = tmp_path_factory.mktemp("litert")
    assert main(["export", "--config", str(run[0]), "--model", str(run[1] / "model.keras"),
                 "--modes", "int8", "--set", "export.quantizer=litert", "--workdir",
                 str(workdir)]) == 0
    return workdir / "export" / "model_int8.tflite"


@pytest.mark.parametrize("which, mode", [
    ("gray", "float32"), ("gray", "int8"), ("rgb", "float32"), ("rgb", "int8"),
    ("litert_quantizer", "int8")])
def test_mediapipe_classifies_like_litert(client_python, run, rgb_run, photos, which, mode,
                                          request):
    workdir = rgb_run if which == "rgb" else run[1]
    path = (request.getfixturevalue("litert_quantized") if which == "litert_quantizer"
            else workdir / "export" / f"model_{mode}.tflite")
    labels = (workdir / "labels.txt").read_text().splitlines()
    results = client(client_python, "classify.py", path, *photos)
    assert len(results) == IMAGES
    for categories in results:  # names from the labels packed in the file
        assert [name for _, name, _ in categories] == [labels[i] for i, _, _ in categories]
    mediapipe_top1 = np.array([categories[0][0] for categories in results])
    scores = litert_scores(path, photos)
    agreement = float((mediapipe_top1 == scores.argmax(axis=1)).mean())
    assert agreement >= 0.999, f"MediaPipe and LiteRT agree on {agreement:.1%}"
    difference = max(abs(categories[0][2] - scores[row, categories[0][0]])
                     for row, categories in enumerate(results))
    assert difference <= 0.005, f"top-1 scores differ by up to {difference:.4f}"


def probe_file(path, height, width):
    """A .tflite 'classifier' of uint8 RGB input whose class scores are its input's pixels, row
    by row: what a client feeds a model, read off its scores."""
    import keras

    from mobilenets.tflite import metadata, xnnpack

    image = keras.Input((height, width, 3))
    pixels = keras.layers.Rescaling(1.0, name="pixels")(keras.layers.Flatten()(image))
    content = export_tflite(keras.Model(image, pixels), "float32")
    content = xnnpack.rewire_int8(content, pixels_input=True, float_softmax=False)
    path.write_bytes(metadata.add_metadata(content, labels=[str(i) for i in
                                                            range(height * width * 3)],
                                           name="probe", description="pixels out"))
    return path


def test_the_client_resize_is_mediapipes_byte_for_byte(client_python, tmp_path):
    """`client_transform` (what `predict`, export verification and calibration feed) gives
    exactly the pixels MediaPipe's ImageClassifier feeds a model, for images of any size and
    aspect: upscaled, downscaled 100x, squeezed, with an alpha channel."""
    height, width = 24, 40
    probe = probe_file(tmp_path / "probe.tflite", height, width)
    rng = np.random.default_rng(3)
    sizes = [(9, 17), (24, 40), (75, 131), (401, 600), (1600, 2400), (37, 1000), (300, 7)]
    paths = []
    for index, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        smooth = 127 + 120 * np.sin(xx[..., None] * [0.05, 0.11, 0.2] + yy[..., None] * 0.07)
        noisy = np.clip(smooth + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        mode = "RGBA" if index == 2 else "RGB"
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(noisy).convert(mode).save(paths[-1])
    fed = client(client_python, "pixels.py", probe, height, width, *paths)
    for path, pixels in zip(paths, fed):
        ours = client_transform(np.asarray(Image.open(path).convert("RGB")),
                                (height, width, 3)).numpy()
        np.testing.assert_array_equal(ours, np.reshape(pixels, (height, width, 3)),
                                      err_msg=str(Image.open(path).size))


@pytest.mark.parametrize("quantizer", ["converter", "litert"])
def test_tflite_support_reads_the_metadata_and_labels(client_python, run, quantizer, request):
    path = (request.getfixturevalue("litert_quantized") if quantizer == "litert"
            else run[1] / "export/model_int8.tflite")
    found = client(client_python, "metadata.py", path)
    metadata = json.loads(found["metadata"])
    image, = metadata["subgraph_metadata"][0]["input_tensor_metadata"]
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    assert found["files"] == {"labels.txt": (run[1] / "export/labels.txt").read_text()}


@pytest.fixture(scope="module")
def detector_files(tmp_path_factory):
    """A small SSDLite's float32 and int8 files with detector metadata and labels (random
    weights, BatchNorm statistics of the images, sharpened class logits so that scores
    differ), and three 64x64 camera-like images."""
    import keras

    from mobilenets.tasks.detection import export, ssdlite
    from mobilenets.tflite import metadata

    root = tmp_path_factory.mktemp("detector")
    keras.utils.set_random_seed(5)
    model = ssdlite.build("mobilenet_v3_small", 3, input_shape=(64, 64, 3), alpha=0.5)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (16, 64, 64, 3)).astype(np.uint8)
    set_batch_norm_statistics(model, images.astype(np.float32))
    for index in range(6):
        layer = model.get_layer(f"class{index}_conv")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 20, bias])

    def calibration():
        for image in images:
            yield [image[None].astype(np.float32)]

    files = {}
    for mode in ("float32", "int8"):
        content = export.to_tflite(model, mode, calibration, max_detections=10)
        path = root / f"detector_{mode}.tflite"
        path.write_bytes(metadata.add_detection_metadata(
            content, labels=["cat", "dog", "bird"], name="ssdlite test", description="test"))
        files[mode] = path
    paths = []
    for number, image in enumerate(images[:3]):
        paths.append(root / f"{number}.png")
        Image.fromarray(image).save(paths[-1])
    return files, paths


def litert_detections(path, image):
    """LiteRT's detections of a detector file on one image: (count, boxes [ymin, xmin, ymax,
    xmax] in pixels, class indices, scores)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=path.read_bytes())
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()[0]
    interpreter.set_tensor(details["index"], image[None].astype(details["dtype"]))
    interpreter.invoke()
    out = {tuple(d["shape"]): interpreter.get_tensor(d["index"])
           for d in interpreter.get_output_details() if tuple(d["shape"]) != (1, 10)}
    pair = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
            if tuple(d["shape"]) == (1, 10)]
    classes, scores = sorted(pair, key=lambda a: float(np.abs(a - np.round(a)).sum()))
    return int(out[(1,)][0]), out[(1, 10, 4)][0] * image.shape[0], classes[0], scores[0]


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_mediapipe_object_detector_finds_what_litert_does(client_python, detector_files, mode):
    files, paths = detector_files
    found = client(client_python, "detect.py", files[mode], *paths)
    for detections, path in zip(found, paths, strict=True):
        count, boxes, classes, scores = litert_detections(files[mode], np.asarray(Image.open(path)))
        assert len(detections) == count > 0
        for (x, y, width, height, _, label, score), box, index, expected in zip(
                detections, boxes, classes, scores):
            ymin, xmin, ymax, xmax = box
            # MediaPipe moves a box's corner inside the image, keeps its size, rounds to pixels
            assert abs(x - max(xmin, 0)) <= 1 and abs(y - max(ymin, 0)) <= 1
            assert abs(width - (xmax - xmin)) <= 1 and abs(height - (ymax - ymin)) <= 1
            assert label == ["cat", "dog", "bird"][int(index)]
            assert score == pytest.approx(float(expected), rel=1e-5)


@pytest.fixture(scope="module")
def segmenter_files(tmp_path_factory):
    """A small LR-ASPP (random weights, BatchNorm statistics of the images) exported as the
    segmentation task's export stage writes its files: float32 and int8, a softmax over the
    logits, segmenter metadata and labels (int8 by the converter and by the LiteRT Quantizer);
    and two images."""
    import keras

    from mobilenets import tasks
    from mobilenets.config import ExportConfig, ModelConfig, TaskConfig
    from mobilenets.export import stage

    root = tmp_path_factory.mktemp("segmenter")
    keras.utils.set_random_seed(6)
    from mobilenets.tasks.segmentation.settings import SegmentationConfig

    task = tasks.get(TaskConfig(name="segmentation",
                                segmentation=SegmentationConfig(head="lraspp")))
    model = task.build_model(ModelConfig(name="mobilenet_v3_small", alpha=0.5,
                                         input_shape=[64, 64, 3]), 3)
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (16, 64, 64, 3)).astype(np.uint8)
    set_batch_norm_statistics(model, images.astype(np.float32))

    def calibration():
        for image in images:
            yield [image[None].astype(np.float32)]

    files = {}
    for mode, quantizer in (("float32", "converter"), ("int8", "converter"),
                            ("int8_litert", "litert")):
        path = root / f"segmenter_{mode}.tflite"
        content = stage.to_tflite(task, model, mode.removesuffix("_litert"), calibration,
                                  ExportConfig(quantizer=quantizer))
        path.write_bytes(task.metadata(content, labels=["background", "cat", "dog"],
                                       name="lraspp test", description="test", version="1"))
        files[mode] = path
    paths = []
    for number, image in enumerate(images[:2]):
        paths.append(root / f"{number}.png")
        Image.fromarray(image).save(paths[-1])
    return files, paths


@pytest.mark.parametrize("mode", ["float32", "int8", "int8_litert"])
def test_mediapipe_image_segmenter_gives_litert_masks(client_python, segmenter_files, mode,
                                                      tmp_path):
    files, paths = segmenter_files
    labels = client(client_python, "segment.py", files[mode], tmp_path, *paths)
    assert labels == ["background", "cat", "dog"]
    runner = TFLiteModel(files[mode].read_bytes())
    for number, path in enumerate(paths):
        probabilities = runner(np.asarray(Image.open(path))[None].astype(np.float32))[0]
        category = np.load(tmp_path / f"{number}.npy")[..., 0]
        confidence = np.load(tmp_path / f"{number}.conf.npy")[..., 0].transpose(1, 2, 0)
        np.testing.assert_allclose(confidence, probabilities, atol=1e-6)
        np.testing.assert_array_equal(category, probabilities.argmax(-1))


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_the_task_library_classifies_like_litert(client_python, rgb_run, mode, tmp_path):
    """The TFLite Task Library's ImageClassifier loads the exported file as it is and scores
    what LiteRT scores, given images of the input's size (its resize, pixel centres aligned,
    differs from MediaPipe's: android.md)."""
    path = rgb_run / "export" / f"model_{mode}.tflite"
    labels = (rgb_run / "labels.txt").read_text().splitlines()
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    paths = []
    for number, image in enumerate(images):
        paths.append(tmp_path / f"{number}.png")
        Image.fromarray(image).save(paths[-1])
    found = client(client_python, "task_library.py", "classify", path, *paths)
    scores = TFLiteModel(path)(images.astype(np.float32))
    for categories, expected in zip(found, scores, strict=True):
        index, name, score = categories[0]
        assert name == labels[index] and expected[index] == expected.max()
        assert score == pytest.approx(float(expected[index]), abs=1e-6)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_the_task_library_detects_like_litert(client_python, detector_files, mode):
    files, paths = detector_files
    found = client(client_python, "task_library.py", "detect", files[mode], *paths)
    for detections, path in zip(found, paths, strict=True):
        count, boxes, classes, scores = litert_detections(files[mode], np.asarray(Image.open(path)))
        assert len(detections) == count > 0
        for (x, y, width, height, _, label, score), box, index, expected in zip(
                detections, boxes, classes, scores):
            ymin, xmin, ymax, xmax = box  # the Task Library keeps boxes as they are, in pixels
            assert abs(x - xmin) <= 1 and abs(y - ymin) <= 1
            assert abs(width - (xmax - xmin)) <= 1 and abs(height - (ymax - ymin)) <= 1
            assert label == ["cat", "dog", "bird"][int(index)]
            assert score == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_the_task_library_segments_like_litert(client_python, segmenter_files, mode):
    files, paths = segmenter_files
    found = client(client_python, "task_library.py", "segment", files[mode], *paths)
    runner = TFLiteModel(files[mode].read_bytes())
    for result, path in zip(found, paths, strict=True):
        assert result["labels"] == ["background", "cat", "dog"]
        probabilities = runner(np.asarray(Image.open(path))[None].astype(np.float32))[0]
        np.testing.assert_array_equal(np.array(result["mask"]), probabilities.argmax(-1))
