"""Segmentation heads: the papers' and torchvision's sizes, output shapes at any input size."""

import numpy as np
import pytest

from mobilenets.models.profile import profile
from mobilenets.tasks.segmentation import heads
from tests.reference import set_batch_norm_statistics


def test_deeplab_v3_light_head_on_mobilenet_v2_has_the_papers_size():
    """The V2 paper's Table 7 (PASCAL VOC, 21 classes, 513x513, output stride 16): 2.11M
    parameters and 2.75B multiply-adds for the 1x1 + image-pooling head."""
    model = heads.deeplab_v3("mobilenet_v2", 21, input_shape=(513, 513, 3))
    size = profile(model)
    assert size["trainable_params"] == pytest.approx(2.11e6, rel=0.005)
    assert size["macs"] == pytest.approx(2.75e9, rel=0.01)
    assert model.output.shape[1:] == (513, 513, 21)
    assert model.get_layer("aspp_1x1_conv").input.shape[1:] == (33, 33, 320)  # stride 16


def test_deeplab_v3_with_aspp_has_the_papers_parameters():
    """Table 7's ASPP row: 4.52M parameters (its 5.8B multiply-adds are 7.5% above the
    5.36B these layers take at 513x513: the paper does not say what else it counts)."""
    model = heads.deeplab_v3("mobilenet_v2", 21, input_shape=(513, 513, 3), aspp=True)
    assert profile(model)["trainable_params"] == pytest.approx(4.52e6, rel=0.005)
    assert model.get_layer("aspp_rate18_conv").dilation_rate == (18, 18)


def test_lraspp_on_mobilenet_v3_large_has_torchvisions_parameters():
    """torchvision 0.29's lraspp_mobilenet_v3_large(num_classes=21) has 3,221,538 parameters
    (counted with torchvision; REFERENCE: 3.22M), which are all trainable."""
    model = heads.lraspp("mobilenet_v3_large", 21, input_shape=(512, 512, 3))
    assert profile(model)["trainable_params"] == 3_221_538
    assert model.get_layer("lraspp_low_logits").input.shape[1:] == (64, 64, 40)  # stride 8
    assert model.get_layer("lraspp_project_conv").input.shape[1:] == (32, 32, 960)  # 16


@pytest.mark.parametrize("build, options", [
    (heads.deeplab_v3, {"output_stride": 8}),
    (heads.deeplab_v3, {"aspp": True}),
    (heads.lraspp, {}),
])
def test_small_inputs_give_per_pixel_logits(build, options):
    name = "mobilenet_v3_small" if build is heads.lraspp else "mobilenet_v2"
    model = build(name, 4, input_shape=(64, 48, 3), alpha=0.5, **options)
    out = model(np.random.default_rng(0).uniform(0, 255, (2, 64, 48, 3)).astype(np.float32))
    assert out.shape == (2, 64, 48, 4) and np.isfinite(out).all()


@pytest.mark.parametrize("build, name, options", [
    (heads.deeplab_v3, "mobilenet_v2", {}),
    (heads.deeplab_v3, "mobilenet_v2", {"aspp": True}),
    (heads.lraspp, "mobilenet_v3_small", {}),
])
def test_float_and_int8_files_run_whole_in_xnnpack(build, name, options):
    """Bilinear resizes, image pooling, the sigmoid gate and dilated convs included; BatchNorm
    statistics of real inputs, as training leaves them (see tests/export/test_export.py)."""

    from mobilenets.export.convert import export_tflite
    from mobilenets.tflite.xnnpack import delegate_partitions

    model = build(name, 4, input_shape=(64, 64, 3), alpha=0.5, **options)
    images = np.random.default_rng(0).uniform(0, 255, (8, 64, 64, 3)).astype(np.float32)
    set_batch_norm_statistics(model, images)

    def calibration():
        for image in images:
            yield [image[None]]

    for mode in ("float32", "int8"):
        assert delegate_partitions(export_tflite(model, mode, calibration)) == (1, []), mode
