"""Segmentation heads on a backbone's named feature maps, each ending in per-pixel class logits
resized (bilinear) to the input.

- DeepLabv3 as the MobileNetV2 paper's Table 7: on the backbone's last block (its second-to-last
  map: MobileNetV2's 320 channels, without the 1x1 head conv) at output stride 16 or 8, the
  "light" head of a 1x1 conv (256, BatchNorm, ReLU) beside image pooling (global average, 1x1
  conv 256, BatchNorm, ReLU, spread back over the map), concatenated and projected by a 1x1
  conv (256, BatchNorm, ReLU); `aspp=True` adds DeepLabv3's three 3x3 convs of rates 6, 12 and
  18 (doubled at output stride 8).
- LR-ASPP as the MobileNetV3 paper (and torchvision's lraspp_mobilenet_v3_large): the last map
  at output stride 16 through a 1x1 conv (128, BatchNorm, ReLU) gated by a sigmoid of its
  global average (1x1 conv 128), upsampled to the stride-8 map, whose own 1x1 classifier is
  added to that of the gated branch.
"""

import keras
from keras import layers

from mobilenets.models.layers import conv_bn
from mobilenets.models.registry import build_backbone

BN_MOMENTUM = 0.997  # TF's DeepLab (batch norm decay 0.9997 for its long runs; 0.997 here)


def _backbone(name, input_shape, output_stride, include_preprocessing, padding, options):
    return build_backbone(name, input_shape=tuple(input_shape), output_stride=output_stride,
                          include_preprocessing=include_preprocessing, padding=padding,
                          **options)


def deeplab_v3(name, num_classes, *, input_shape=(512, 512, 3), output_stride=16, aspp=False,
               include_preprocessing=True, padding="same", **backbone_options):
    """DeepLabv3 on backbone `name`: logits [batch, height, width, num_classes]."""
    backbone = _backbone(name, input_shape, output_stride, include_preprocessing, padding,
                         backbone_options)
    x = backbone.output["stride_32"]  # the last block's map (nominal stride 32, dilated)
    height, width = x.shape[1:3]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    pooled = conv_bn(pooled, 256, 1, activation_kind="relu", bn_momentum=BN_MOMENTUM,
                     name="aspp_pool_project")
    pooled = layers.UpSampling2D((height, width), interpolation="bilinear",
                                 name="aspp_pool_spread")(pooled)
    branches = [conv_bn(x, 256, 1, activation_kind="relu", bn_momentum=BN_MOMENTUM,
                        name="aspp_1x1")]
    if aspp:
        scale = 32 // output_stride // 2  # rates 6, 12, 18 at output stride 16
        for rate in (6, 12, 18):
            branch = layers.Conv2D(256, 3, padding="same", dilation_rate=rate * scale,
                                   use_bias=False, name=f"aspp_rate{rate}_conv")(x)
            branch = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-3,
                                               name=f"aspp_rate{rate}_bn")(branch)
            branches.append(layers.ReLU(name=f"aspp_rate{rate}")(branch))
    x = layers.Concatenate(name="aspp_concat")([*branches, pooled])
    x = conv_bn(x, 256, 1, activation_kind="relu", bn_momentum=BN_MOMENTUM, name="aspp_project")
    x = layers.Conv2D(num_classes, 1, name="logits")(x)
    x = layers.Resizing(*input_shape[:2], interpolation="bilinear", name="upsample",
                        dtype="float32")(x)
    return keras.Model(backbone.input, x, name=f"deeplab_v3_{backbone.name}")


def lraspp(name, num_classes, *, input_shape=(512, 512, 3), inner=128,
           include_preprocessing=True, padding="same", **backbone_options):
    """LR-ASPP on backbone `name` at output stride 16: logits [batch, height, width,
    num_classes]."""
    backbone = _backbone(name, input_shape, 16, include_preprocessing, padding,
                         backbone_options)
    low, high = backbone.output["stride_8"], backbone.output["last"]
    x = conv_bn(high, inner, 1, activation_kind="relu", bn_momentum=BN_MOMENTUM,
                name="lraspp_project")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_pool")(high)
    gate = layers.Conv2D(inner, 1, use_bias=False, name="lraspp_gate_conv")(gate)
    gate = layers.Activation("sigmoid", name="lraspp_gate")(gate)
    x = layers.Multiply(name="lraspp_gated")([x, gate])
    x = layers.UpSampling2D(2, interpolation="bilinear", name="lraspp_upsample")(x)
    x = layers.Add(name="logits")([layers.Conv2D(num_classes, 1, name="lraspp_low_logits")(low),
                                   layers.Conv2D(num_classes, 1, name="lraspp_high_logits")(x)])
    x = layers.Resizing(*input_shape[:2], interpolation="bilinear", name="upsample",
                        dtype="float32")(x)
    return keras.Model(backbone.input, x, name=f"lraspp_{backbone.name}")
