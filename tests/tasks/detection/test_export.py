"""SSDLite's .tflite files: the post-process op at the end, everything before it in one
XNNPACK partition, detections equal to the model's own decoded and suppressed outputs."""

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from mobilenets import compat
from mobilenets.tasks.detection import anchors, export, postprocess, ssdlite
from mobilenets.tflite import xnnpack
from tests.reference import set_batch_norm_statistics


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(3)
    model = ssdlite.build("mobilenet_v3_small", 3, input_shape=(64, 64, 3), alpha=0.5)
    for index in range(len(ssdlite.grid_sizes(model))):  # decisive scores: no near-ties
        layer = model.get_layer(f"class{index}_conv")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * 50, bias])
    return model


def detections(content, image):
    """(boxes, classes, scores, count) of a detection .tflite file on one image."""
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    out = {tuple(d["shape"]): interpreter.get_tensor(d["index"])
           for d in interpreter.get_output_details()}
    assert sorted(out) == [(1,), (1, 10), (1, 10, 4)]  # classes and scores share a shape
    pair = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
            if tuple(d["shape"]) == (1, 10)]
    classes, scores = sorted(pair, key=lambda a: float(np.abs(a - np.round(a)).sum()))
    return out[(1, 10, 4)][0], classes[0], scores[0], int(out[(1,)][0])


def test_float_file_runs_whole_in_xnnpack_up_to_the_post_process_op(model):
    content = export.to_tflite(model, max_detections=10)
    assert xnnpack.delegate_partitions(content) == (1, ["TFLite_Detection_PostProcess"])
    names = {op["op_name"] for op in compat.ops_details(Interpreter(model_content=content))}
    assert "READ_VARIABLE" not in names  # the weights are constants


@pytest.mark.parametrize("seed", range(3))
def test_float_file_finds_the_models_best_detection(model, seed):
    content = export.to_tflite(model, max_detections=10)
    image = np.random.default_rng(seed).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    boxes, classes, scores, count = detections(content, image)
    outputs = model(image)
    ours = postprocess.detect(outputs["boxes"], outputs["classes"],
                              anchors.generate(ssdlite.grid_sizes(model)), max_detections=10)
    ours_boxes, ours_scores, ours_classes, _ = (v.numpy()[0] for v in ours)
    assert count >= 1
    # the best-scored box is the same whichever way NMS runs (the file's: over the best class
    # of each box; ours: per class)
    np.testing.assert_allclose(boxes[0], ours_boxes[0], atol=1e-4)
    assert classes[0] == ours_classes[0]
    assert scores[0] == pytest.approx(ours_scores[0], rel=1e-4)


def test_int8_file_takes_camera_bytes_and_runs_whole_in_xnnpack_up_to_the_post_process_op():
    model = ssdlite.build("mobilenet_v3_small", 3, input_shape=(64, 64, 3), alpha=0.5)
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 255, (16, 64, 64, 3)).astype(np.float32)
    set_batch_norm_statistics(model, images)

    def calibration():
        for image in images:
            yield [image[None]]

    content = export.to_tflite(model, "int8", calibration, max_detections=10)
    assert xnnpack.delegate_partitions(content) == (1, ["TFLite_Detection_PostProcess"])
    interpreter = Interpreter(model_content=content)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    ops = [op["op_name"] for op in compat.ops_details(interpreter)]
    assert ops[-2:] == ["SOFTMAX", "TFLite_Detection_PostProcess"]
