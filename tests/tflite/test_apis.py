"""LiteRT's two Python APIs give the same outputs: the CompiledModel (the default) and the
Interpreter, on float32 and int8 files of every task, with XNNPACK and with the built-in
kernels; the int8 files take uint8 pixels, which the CompiledModel's buffers carry as they are."""

import keras
import numpy as np
import pytest

from mobilenets import tasks
from mobilenets.config import ExportConfig, ModelConfig, TaskConfig
from mobilenets.export import stage
from mobilenets.tasks.segmentation.settings import SegmentationConfig
from mobilenets.tflite.runner import TFLiteModel
from tests.reference import set_batch_norm_statistics

pytestmark = pytest.mark.slow  # a conversion per task and mode

rng = np.random.default_rng(8)
IMAGES = rng.integers(0, 256, (6, 64, 64, 3)).astype(np.float32)
TASKS = {"classification": TaskConfig(name="classification"),
         "detection": TaskConfig(name="detection"),
         "segmentation": TaskConfig(name="segmentation",
                                    segmentation=SegmentationConfig(head="lraspp"))}


@pytest.fixture(scope="module", params=sorted(TASKS))
def files(request):
    """A small model of the task (random weights, BatchNorm statistics of the images) as the
    export stage writes its float32 and int8 files."""
    keras.utils.set_random_seed(8)
    task = tasks.get(TASKS[request.param])
    model = task.build_model(ModelConfig(name="mobilenet_v3_small", alpha=0.5,
                                         input_shape=[64, 64, 3]), 3)
    set_batch_norm_statistics(model, IMAGES)

    def calibration():
        for image in IMAGES:
            yield [image[None]]

    return {mode: stage.to_tflite(task, model, mode, calibration, ExportConfig())
            for mode in ("float32", "int8")}


@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("builtin_kernels", [False, True])
def test_the_compiled_model_gives_the_interpreters_outputs(files, mode, builtin_kernels):
    if mode == "float32" and builtin_kernels:
        pytest.skip("float files are verified on XNNPACK only")
    compiled = TFLiteModel(files[mode], builtin_kernels=builtin_kernels, api="compiled")
    interpreter = TFLiteModel(files[mode], builtin_kernels=builtin_kernels, api="interpreter")
    assert compiled.input["dtype"] == (np.uint8 if mode == "int8" else np.float32)
    ours, theirs = compiled(IMAGES), interpreter(IMAGES)
    if not isinstance(ours, tuple):
        np.testing.assert_array_equal(ours, theirs)
        return
    # a detector's (boxes, classes, scores, count): the rows past the count hold whatever
    # the post-process op left in its buffers
    np.testing.assert_array_equal(ours[3], theirs[3])
    for image, count in enumerate(ours[3].astype(int).ravel()):
        for a, b in zip(ours[:3], theirs[:3], strict=True):
            np.testing.assert_array_equal(a[image, :count], b[image, :count])
