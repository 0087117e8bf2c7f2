"""SSDLite (Sandler et al. 2018, section 6.2): SSD whose extra layers and prediction layers are
depthwise separable, on a backbone's expansion of the block that strides to 32 (output stride
16; MobileNetV2's block 15 in the paper's count) and its last map, plus four extra maps of 512,
256, 256 and 128 channels down to 1x1.

Layers as TF's Object Detection API and torchvision's ssdlite build them: an extra map is a 1x1
conv to half its channels, a 3x3 depthwise conv of stride 2 and a 1x1 conv to its channels
(each with BatchNorm and ReLU6); each map's predictor is a 3x3 depthwise conv (BatchNorm,
ReLU6) then a 1x1 conv with bias to its anchors' box codes, and another such pair to their
class logits (background first).
"""

import keras
from keras import layers

from mobilenets.models.layers import conv_bn, depthwise_bn
from mobilenets.models.registry import build_backbone
from mobilenets.tasks.detection.anchors import AnchorSpec

EXTRA_CHANNELS = (512, 256, 256, 128)
BN_MOMENTUM = 0.997  # TF's Object Detection API's SSD configs (decay 0.997)


def feature_names(backbone):
    """The backbone's two maps SSDLite starts from: the expansion of the block that strides to
    32 where the family records it (MobileNetV2, V3), else its last map at stride 16."""
    first = "expansion_to_32" if "expansion_to_32" in backbone.output else "stride_16"
    return [first, "last"]


def build(name, num_classes, *, input_shape=(320, 320, 3), anchors=AnchorSpec(),
          include_preprocessing=True, padding="same", **backbone_options):
    """SSDLite on backbone `name` for `num_classes` object classes. The model's outputs:
    `boxes` [batch, anchors, 4] box codes (`boxes.encode`) and `classes` [batch, anchors,
    num_classes + 1] logits, anchors in `anchors.generate`'s order."""
    backbone = build_backbone(name, input_shape=tuple(input_shape),
                              include_preprocessing=include_preprocessing, padding=padding,
                              **backbone_options)
    maps = [backbone.output[key] for key in feature_names(backbone)]
    x = maps[-1]
    for index, channels in enumerate(EXTRA_CHANNELS):
        x = conv_bn(x, channels // 2, 1, activation_kind="relu6", bn_momentum=BN_MOMENTUM,
                    name=f"extra{index}_reduce")
        x = depthwise_bn(x, 3, strides=2, activation_kind="relu6", bn_momentum=BN_MOMENTUM,
                         name=f"extra{index}_dw")
        x = conv_bn(x, channels, 1, activation_kind="relu6", bn_momentum=BN_MOMENTUM,
                    name=f"extra{index}_project")
        maps.append(x)
    counts = anchors.counts(len(maps))
    boxes, classes = [], []
    for index, (feature, count) in enumerate(zip(maps, counts, strict=True)):
        boxes.append(predictor(feature, count, 4, name=f"box{index}"))
        classes.append(predictor(feature, count, num_classes + 1, name=f"class{index}"))
    outputs = {"boxes": concatenate(boxes, name="boxes"),
               "classes": concatenate(classes, name="classes", dtype="float32")}
    return keras.Model(backbone.input, outputs, name=f"ssdlite_{backbone.name}")


def concatenate(tensors, *, name, dtype=None, most=4):
    """The tensors joined along the anchors, by Concatenate layers of at most `most` inputs
    each: XNNPACK runs a concatenation of up to 4 (a 6-input one would leave it)."""
    groups = [tensors[i:i + most] for i in range(0, len(tensors), most)]
    if len(groups) == 1:
        return layers.Concatenate(axis=1, name=name, dtype=dtype)(tensors)
    parts = [group[0] if len(group) == 1 else
             layers.Concatenate(axis=1, name=f"{name}_{index}", dtype=dtype)(group)
             for index, group in enumerate(groups)]
    return concatenate(parts, name=name, dtype=dtype, most=most)


def predictor(x, anchors, values, *, name):
    """3x3 depthwise + BN + ReLU6 -> 1x1 conv (bias) to `anchors` x `values` per location,
    reshaped to [batch, height * width * anchors, values]."""
    x = depthwise_bn(x, 3, activation_kind="relu6", bn_momentum=BN_MOMENTUM, name=f"{name}_dw")
    x = layers.Conv2D(anchors * values, 1, name=f"{name}_conv")(x)
    height, width = x.shape[1:3]
    return layers.Reshape((height * width * anchors, values), name=f"{name}_reshape")(x)


def grid_sizes(model):
    """The (height, width) of each feature map the model predicts from, in order (`model`
    Keras 3, or its QAT twin, whose layers tfmot wraps as `quant_<name>`)."""
    names = {layer.name.removeprefix("quant_"): layer for layer in model.layers}
    sizes = []
    while (layer := names.get(f"box{len(sizes)}_dw_conv")) is not None:
        sizes.append(tuple(layer.output.shape[1:3]))
    return sizes


def backbone_part(model):
    """The backbone of SSDLite `model`, as a model sharing its layers (up to the map the extra
    layers start from): what a classifier's pretrained weights load into."""
    return keras.Model(model.input, model.get_layer("extra0_reduce_conv").input,
                       name=f"{model.name}_backbone")
