"""SSDLite's parts: anchors, box coding, matching, the loss, the model's size."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mobilenets.models.profile import profile
from mobilenets.tasks.detection import (
    anchors,
    boxes,
    evaluation,
    losses,
    postprocess,
    ssdlite,
    targets,
)

SSD300 = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]


def test_anchor_counts_are_the_ssd_models():
    # 19x19x3 + (10x10 + 5x5 + 3x3 + 2x2 + 1x1) x 6: the 1917 boxes of TF's SSD MobileNet 300
    assert len(anchors.generate(SSD300)) == 1917
    assert anchors.AnchorSpec().counts(6) == [3, 6, 6, 6, 6, 6]


def test_anchor_shapes_follow_the_scales_and_ratios():
    generated = anchors.generate(SSD300)
    first = generated[:3]  # the first map's top-left location
    centre = 0.5 / 19
    np.testing.assert_allclose((first[:, 0] + first[:, 2]) / 2, centre, atol=1e-6)
    heights, widths = first[:, 2] - first[:, 0], first[:, 3] - first[:, 1]
    np.testing.assert_allclose(heights, [0.1, 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)], rtol=1e-5)
    np.testing.assert_allclose(widths, [0.1, 0.2 * math.sqrt(2), 0.2 / math.sqrt(2)], rtol=1e-5)
    second = generated[19 * 19 * 3:19 * 19 * 3 + 6]  # scale 0.2 + 0.75 / 5 = 0.35
    np.testing.assert_allclose(second[0, 2] - second[0, 0], 0.35, rtol=1e-5)
    np.testing.assert_allclose(second[5, 2] - second[5, 0], math.sqrt(0.35 * 0.5), rtol=1e-5)
    last = generated[-6:]  # the 1x1 map: scale 0.95, the extra box sqrt(0.95 * 1.0)
    np.testing.assert_allclose((last[:, 0] + last[:, 2]) / 2, 0.5, atol=1e-6)
    np.testing.assert_allclose(last[5, 2] - last[5, 0], math.sqrt(0.95), rtol=1e-5)


def test_box_codes_round_trip_and_known_values():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 0.6, (50, 2))
    sample = np.concatenate([corner, corner + rng.uniform(0.05, 0.4, (50, 2))], 1)
    reference = np.concatenate([corner, corner + rng.uniform(0.05, 0.4, (50, 2))], 1)
    codes = boxes.encode(sample, reference)
    np.testing.assert_allclose(boxes.decode(codes, reference), sample, atol=1e-5)
    anchor = np.array([[0.2, 0.2, 0.4, 0.6]])  # height 0.2, width 0.4
    np.testing.assert_allclose(boxes.encode(anchor, anchor), [[0, 0, 0, 0]], atol=1e-5)
    moved = np.array([[0.3, 0.2, 0.5, 0.6]])  # down by half the height: 0.5 x 10
    np.testing.assert_allclose(boxes.encode(moved, anchor), [[5, 0, 0, 0]], atol=1e-4)
    wider = np.array([[0.2, 0.0, 0.4, 0.8]])  # twice as wide: log(2) x 5
    np.testing.assert_allclose(boxes.encode(wider, anchor), [[0, 0, 0, 5 * math.log(2)]],
                               atol=1e-4)


def test_iou_by_hand():
    a = np.array([[0.0, 0.0, 1.0, 1.0]])
    b = np.array([[0.5, 0.5, 1.5, 1.5], [2, 2, 3, 3], [0, 0, 1, 1]])
    np.testing.assert_allclose(boxes.iou(a, b), [[0.25 / 1.75, 0.0, 1.0]], rtol=1e-6)


def test_matching_on_hand_made_boxes():
    anchor_boxes = np.array([[0.0, 0.0, 0.5, 0.5],   # object 0 covers it: IoU 0.8
                             [0.5, 0.5, 1.0, 1.0],   # nothing near
                             [0.0, 0.5, 0.5, 1.0],   # object 1's best, IoU 0.3: forced
                             [0.0, 0.0, 0.4, 0.4]])  # inside object 0: IoU 0.8
    objects = np.array([[0.0, 0.0, 0.5, 0.4],       # area 0.2
                        [0.0, 0.7, 0.3, 1.0]])      # area 0.09, inside anchor 2
    classes, codes = targets.assign(objects, [4, 7], anchor_boxes)
    iou = boxes.iou(objects, anchor_boxes).numpy()
    assert iou[0, 0] == pytest.approx(0.8) and iou[0, 3] == pytest.approx(0.16 / 0.2)
    assert iou[1, 2] == pytest.approx(0.09 / 0.25) and iou[1, 2] < 0.5
    np.testing.assert_array_equal(classes, [5, 0, 8, 5])  # background 0, class c as c + 1
    np.testing.assert_allclose(codes[2], boxes.encode(objects[1], anchor_boxes[2]), atol=1e-6)
    np.testing.assert_array_equal(codes[1], 0)
    empty_classes, empty_codes = targets.assign(np.zeros((0, 4)), np.zeros((0,)), anchor_boxes)
    np.testing.assert_array_equal(empty_classes, 0)
    np.testing.assert_array_equal(empty_codes, 0)


def softmax_ce(logits, label):
    return -(logits[label] - np.log(np.exp(logits).sum()))


def test_hard_negative_mining_counts_three_negatives_per_positive():
    rng = np.random.default_rng(1)
    class_targets = np.zeros((1, 10), np.int32)
    class_targets[0, 2] = 3
    logits = rng.normal(size=(1, 10, 4)).astype(np.float32)
    box_targets = rng.normal(size=(1, 10, 4)).astype(np.float32)
    codes = box_targets + rng.normal(scale=0.8, size=(1, 10, 4)).astype(np.float32)
    loss = losses.ssd_loss(class_targets, box_targets, logits, codes).numpy()
    per_anchor = [softmax_ce(logits[0, i], class_targets[0, i]) for i in range(10)]
    negatives = sorted((per_anchor[i] for i in range(10) if i != 2), reverse=True)[:3]
    diff = np.abs(codes[0, 2] - box_targets[0, 2])
    smooth = np.where(diff < 1, 0.5 * diff**2, diff - 0.5).sum()
    assert loss == pytest.approx(smooth + per_anchor[2] + sum(negatives), rel=1e-5)


def test_focal_loss_by_hand():
    class_targets = np.array([[2, 0]], np.int32)
    logits = np.array([[[9.0, -1.0, 0.5], [9.0, 0.2, -2.0]]], np.float32)
    loss = losses.ssd_loss(class_targets, np.zeros((1, 2, 4)), logits, np.zeros((1, 2, 4)),
                           focal=True).numpy()
    expected = 0.0
    for anchor, target in enumerate([2, 0]):
        for column in (1, 2):
            p = 1 / (1 + np.exp(-logits[0, anchor, column]))
            if column == target:
                expected += 0.25 * (1 - p) ** 2 * -np.log(p)
            else:
                expected += 0.75 * p**2 * -np.log(1 - p)
    assert loss == pytest.approx(expected, rel=1e-5)  # one positive: divided by 1


def test_mobilenet_v2_ssdlite_has_the_papers_size():
    """The V2 paper's Table 6: MobileNetV2 + SSDLite at 320x320, COCO's 90 classes: 4.3M
    parameters and 0.8B multiply-adds."""
    model = ssdlite.build("mobilenet_v2", 90)
    size = profile(model)
    assert size["trainable_params"] == pytest.approx(4.3e6, rel=0.05)
    assert size["macs"] == pytest.approx(0.8e9, rel=0.05)
    assert ssdlite.grid_sizes(model) == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert model.output["boxes"].shape[1:] == (2034, 4)
    assert model.output["classes"].shape[1:] == (2034, 91)
    assert model.get_layer("box0_dw_conv").input.shape[-1] == 576  # block 15's expansion


def test_outputs_line_up_with_the_anchors_at_any_size():
    model = ssdlite.build("mobilenet_v3_small", 3, input_shape=(64, 64, 3), alpha=0.5)
    count = len(anchors.generate(ssdlite.grid_sizes(model)))
    out = model(tf.zeros((2, 64, 64, 3)))
    assert out["boxes"].shape == (2, count, 4) and out["classes"].shape == (2, count, 4)


def test_detections_decode_and_suppress_duplicates():
    grid = [(2, 2)]
    spec = anchors.AnchorSpec(reduce_first=False, aspect_ratios=(1.0,))
    anchor_boxes = anchors.generate(grid, spec)  # 4 locations x 2 boxes
    target = np.array([0.1, 0.1, 0.45, 0.45], np.float32)
    codes = boxes.encode(np.tile(target, (len(anchor_boxes), 1)), anchor_boxes).numpy()
    logits = np.full((len(anchor_boxes), 3), -5.0, np.float32)
    logits[:, 2] = 5.0  # every anchor says: class 1 at the same box
    logits[3, 1:] = [6.0, -5.0]  # one anchor says class 0, more surely, at the same box
    found, scores, classes, count = postprocess.detect(codes[None], logits[None], anchor_boxes)
    # 8 anchors, one box: each anchor keeps its best class, and one box is left
    assert int(count[0]) == 1
    np.testing.assert_allclose(found[0, 0], target, atol=1e-5)
    assert classes[0, 0] == 0
    np.testing.assert_allclose(scores[0, 0], np.exp(6) / (np.exp(6) + 2 * np.exp(-5)), rtol=1e-4)
    assert (found.numpy()[0, 1:] == 0).all() and (scores.numpy()[0, 1:] == 0).all()


def test_coco_map_on_known_cases():
    truth = [(np.array([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]]), np.array([0, 1]))]
    sizes = [(100, 100)]
    perfect = [(truth[0][0], np.array([0.9, 0.8]), truth[0][1])]
    result = evaluation.coco_map(truth, perfect, sizes, ["a", "b"])
    assert result["map"] == pytest.approx(1.0)
    assert result["per_class"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    # class a's box 20% taller than the truth: IoU 1 / 1.2 = 0.833, matched at IoU 0.5 to
    # 0.8 (7 of COCO's 10 thresholds); class b missed
    taller = [(np.array([[0.1, 0.1, 0.58, 0.5]]), np.array([0.9]), np.array([0]))]
    result = evaluation.coco_map(truth, taller, sizes, ["a", "b"])
    assert result["per_class"]["a"] == pytest.approx(0.7, abs=1e-6)
    assert result["per_class"]["b"] == pytest.approx(0.0)
    assert result["map50"] == pytest.approx(0.5) and result["map"] == pytest.approx(0.35)
    none = evaluation.coco_map(truth, [(np.zeros((0, 4)), np.zeros(0), np.zeros(0))], sizes,
                               ["a", "b"])
    assert none["map"] == 0.0
