"""The model table of `mobilenets models`: every published variant, profiled, beside its paper's
figures; classifiers, SSDLite detectors and segmentation heads on the backbones the papers pair
them with."""

import dataclasses

from mobilenets.models.profile import profile
from mobilenets.models.registry import build_model
from mobilenets.tasks.detection import ssdlite
from mobilenets.tasks.segmentation import heads


@dataclasses.dataclass(frozen=True)
class Variant:
    """A published configuration, with the figures its paper reports (None where none)."""

    name: str
    options: dict
    top1: float | None = None  # ImageNet top-1 %, float; detection: COCO mAP; segmentation: mIoU
    paper_macs: float | None = None  # millions of multiply-adds at 224 (299 for Xception)
    task: str = "classification"


# Sources: the papers (V1 widths: Table 6; ShuffleNet V2 widths: Table 8; MobileNeXt: its
# width table; MobileNetV4: top-1 at its training resolution), TF-slim's model tables (V2
# widths, V3 variants), keras.applications and tensorflow/tpu's EfficientNet-Lite README
# (each variant at its own resolution).
VARIANTS = (
    Variant("efficientnet_lite", {"variant": "lite0"}, 75.1, 407),
    Variant("efficientnet_lite", {"variant": "lite1", "input_shape": (240, 240, 3)}),
    Variant("efficientnet_lite", {"variant": "lite2", "input_shape": (260, 260, 3)}),
    Variant("efficientnet_lite", {"variant": "lite3", "input_shape": (280, 280, 3)}),
    Variant("efficientnet_lite", {"variant": "lite4", "input_shape": (300, 300, 3)}, 81.5, 2640),
    Variant("mobilenet_v1", {"alpha": 1.0}, 70.6, 569),
    Variant("mobilenet_v1", {"alpha": 0.75}, 68.4, 325),
    Variant("mobilenet_v1", {"alpha": 0.5}, 63.7, 149),
    Variant("mobilenet_v1", {"alpha": 0.25}, 50.6, 41),
    Variant("mobilenet_v2", {"alpha": 1.4}, 74.7, 582),
    Variant("mobilenet_v2", {"alpha": 1.0}, 72.0, 300),
    Variant("mobilenet_v2", {"alpha": 0.75}, None, 209),
    Variant("mobilenet_v2", {"alpha": 0.5}, None, 97),
    Variant("mobilenet_v2", {"alpha": 0.35}, None, 59),
    Variant("mobilenet_v3_large", {"alpha": 1.0}, 75.2, 219),
    Variant("mobilenet_v3_large", {"alpha": 0.75}, 73.3, 155),
    Variant("mobilenet_v3_large", {"minimalistic": True}, 72.3, 209),
    Variant("mobilenet_v3_small", {"alpha": 1.0}, 67.4, 56),
    Variant("mobilenet_v3_small", {"minimalistic": True}, 61.9, 65),
    # MobileNetV4: the paper's MACs, given in tenths of a billion (0.2G, 1.0G, ...)
    Variant("mobilenet_v4", {"variant": "conv_small"}, 73.8, 200),
    Variant("mobilenet_v4", {"variant": "conv_medium", "input_shape": (256, 256, 3)}, 79.9, 1000),
    Variant("mobilenet_v4", {"variant": "conv_large", "input_shape": (384, 384, 3)}, 82.9, 5900),
    Variant("mobilenet_v4", {"variant": "hybrid_medium", "input_shape": (256, 256, 3)}, 80.7,
            1200),
    Variant("mobilenet_v4", {"variant": "hybrid_large", "input_shape": (384, 384, 3)}, 83.4,
            7200),
    Variant("mobilenext", {"alpha": 1.0}, 74.02, 300),
    Variant("mobilenext", {"alpha": 1.0, "identity_ratio": 0.5}, 74.09, None),
    Variant("mobilenext", {"alpha": 0.75}, None, 210),
    Variant("mobilenext", {"alpha": 0.5}, None, 110),
    Variant("shufflenet_v1", {"alpha": 1.0, "groups": 3}, None, 140),
    Variant("shufflenet_v1", {"alpha": 1.0, "groups": 8}, None, 140),
    Variant("shufflenet_v2", {"alpha": 0.5}, 60.3, 41),
    Variant("shufflenet_v2", {"alpha": 1.0}, 69.4, 146),
    Variant("shufflenet_v2", {"alpha": 1.5}, 72.6, 299),
    Variant("shufflenet_v2", {"alpha": 2.0}, 74.9, 591),
    Variant("squeezenet", {"version": "1.0"}, 57.5, None),
    Variant("squeezenet", {"version": "1.1"}, None, None),
    Variant("xception", {"input_shape": (299, 299, 3)}, 79.0, None),
    # SSDLite at 320x320 for COCO's 90 category ids: MobileNetV2 paper Table 6 (22.1 mAP, 4.3M
    # parameters, 0.8B MAdds), MobileNetV3 paper Table 6 (22.0 and 16.1 mAP).
    Variant("mobilenet_v2", {"input_shape": (320, 320, 3)}, 22.1, 800, task="detection"),
    Variant("mobilenet_v3_large", {"input_shape": (320, 320, 3)}, 22.0, task="detection"),
    Variant("mobilenet_v3_small", {"input_shape": (320, 320, 3)}, 16.1, task="detection"),
    # Segmentation for PASCAL VOC's 21 classes: MobileNetV2 paper Table 7 (DeepLabv3 at output
    # stride 16, the light head: 75.32 mIoU on VOC 2012 val, 2.11M parameters, 2.75B MAdds; with
    # ASPP 75.70, 4.52M, 5.8B); LR-ASPP on MobileNetV3-Large as torchvision's (3.22M; its 57.9
    # mIoU is on a COCO subset, not VOC, so none is listed).
    Variant("mobilenet_v2", {"input_shape": (513, 513, 3), "head": "deeplab_v3"}, 75.32, 2750,
            task="segmentation"),
    Variant("mobilenet_v2", {"input_shape": (513, 513, 3), "head": "deeplab_v3", "aspp": True},
            75.70, 5800, task="segmentation"),
    Variant("mobilenet_v3_large", {"input_shape": (512, 512, 3), "head": "lraspp"},
            task="segmentation"),
)
COCO_CLASSES = 90  # TF's Object Detection API's SSD configs: COCO's category ids, 1 to 90
VOC_CLASSES = 21  # PASCAL VOC's 20 classes and the background
SCORES = {"classification": "paper_top1", "detection": "paper_map",
          "segmentation": "paper_miou"}
TASK_NAMES = {"classification": "classifier", "detection": "SSDLite"}


def build(variant):
    """The variant's Keras model: the classifier, SSDLite for COCO, or a segmentation head
    (`head` in its options) for VOC."""
    if variant.task == "detection":
        return ssdlite.build(variant.name, COCO_CLASSES, **variant.options)
    if variant.task == "segmentation":
        options = dict(variant.options)
        head = getattr(heads, options.pop("head"))
        return head(variant.name, VOC_CLASSES, **options)
    return build_model(variant.name, **variant.options)


def rows(names=None):
    """Yields one dict per registered variant (of models `names`, default all): name, options,
    params, MACs, and the paper's figures."""
    for variant in VARIANTS:
        if names and variant.name not in names:
            continue
        stats = profile(build(variant))
        yield {
            "name": variant.name,
            "task": variant.task,
            "options": variant.options,
            "input": list(variant.options.get("input_shape", (224, 224, 3))),
            "params": stats["params"],
            "trainable_params": stats["trainable_params"],
            "macs": stats["macs"],
            "paper_macs_millions": variant.paper_macs,
            SCORES[variant.task]: variant.top1,
        }


def format_table(table):
    """Formats `rows()` output as a fixed-width text table."""
    header = ("model", "task", "options", "input", "params", "MACs", "paper MACs",
              "paper score")
    lines = [header]
    for row in table:
        options = ", ".join(f"{k}={v}" for k, v in row["options"].items()
                            if k not in ("input_shape", "head")) or "-"
        score = (f"{row['paper_top1']:.1f}% top-1" if row.get("paper_top1") is not None else
                 f"{row['paper_map']:.1f} mAP" if row.get("paper_map") is not None else
                 f"{row['paper_miou']:.2f} mIoU" if row.get("paper_miou") is not None else "-")
        lines.append((
            row["name"], TASK_NAMES.get(row["task"], row["options"].get("head")), options,
            "x".join(map(str, row["input"])),
            f"{row['params'] / 1e6:.2f}M", f"{row['macs'] / 1e6:.0f}M",
            "-" if row["paper_macs_millions"] is None else f"{row['paper_macs_millions']}M",
            score,
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
                     for line in lines)
