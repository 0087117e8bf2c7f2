"""Writes the golden files of tests/models/test_torch_weights.py: for each reference model
(torchvision's, timm's, and the MobileNeXt and ShuffleNetV1 authors' code), its state_dict's
names and shapes, and its outputs on seeded images with seeded random weights
(tests/golden/state.py).

Needs PyTorch, torchvision and timm, which the project does not depend on:

    python -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.14.1 torchvision==0.29.1 timm
    git clone https://github.com/zhoudaquan/rethinking_bottleneck_design /tmp/mobilenext
    git clone https://github.com/megvii-model/ShuffleNet-Series /tmp/shufflenet
    /tmp/torch/bin/python tests/golden/make.py \\
        --mobilenext /tmp/mobilenext/mobilenext/codebase/models \\
        --shufflenet /tmp/shufflenet/ShuffleNetV1 [--only timm_mobilenetv4_conv_small]

(--mobilenext and --shufflenet only for the authors' models: `--only timm_tf_efficientnet_lite0`
needs neither.)
"""

import argparse
import contextlib
import io
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

from state import random_images, random_state  # noqa: E402

NUM_CLASSES = 10
IMAGES = (2, 3, 224, 224)


def references(args):
    """name -> (what builds it, a constructor, our model's build options)."""
    import timm
    import torchvision.models as tv

    def authors(folder, module):  # the authors' code, from a clone of their repository
        if not folder:
            raise SystemExit(f"the authors' {module}.py is needed: see --help")
        sys.path.insert(0, folder)
        return __import__(module)

    def quiet(constructor):  # the official ShuffleNetV1 prints its size
        def build():
            with contextlib.redirect_stdout(io.StringIO()):
                return constructor()
        return build

    return {
        "torchvision_mobilenet_v2": (
            "torchvision.models.mobilenet_v2(num_classes=10)",
            lambda: tv.mobilenet_v2(num_classes=NUM_CLASSES),
            {"name": "mobilenet_v2"}),
        "torchvision_mobilenet_v3_large": (
            "torchvision.models.mobilenet_v3_large(num_classes=10)",
            lambda: tv.mobilenet_v3_large(num_classes=NUM_CLASSES),
            {"name": "mobilenet_v3_large"}),
        "torchvision_mobilenet_v3_small": (
            "torchvision.models.mobilenet_v3_small(num_classes=10)",
            lambda: tv.mobilenet_v3_small(num_classes=NUM_CLASSES),
            {"name": "mobilenet_v3_small"}),
        "torchvision_shufflenet_v2_x1_0": (
            "torchvision.models.shufflenet_v2_x1_0(num_classes=10)",
            lambda: tv.shufflenet_v2_x1_0(num_classes=NUM_CLASSES),
            {"name": "shufflenet_v2", "alpha": 1.0}),
        "torchvision_squeezenet1_0": (
            "torchvision.models.squeezenet1_0(num_classes=10)",
            lambda: tv.squeezenet1_0(num_classes=NUM_CLASSES),
            {"name": "squeezenet", "version": "1.0"}),
        "torchvision_squeezenet1_1": (
            "torchvision.models.squeezenet1_1(num_classes=10)",
            lambda: tv.squeezenet1_1(num_classes=NUM_CLASSES),
            {"name": "squeezenet", "version": "1.1"}),
        "timm_mobilenetv4_conv_small": (
            "timm.create_model('mobilenetv4_conv_small', num_classes=10)",
            lambda: timm.create_model("mobilenetv4_conv_small", num_classes=NUM_CLASSES),
            {"name": "mobilenet_v4", "variant": "conv_small"}),
        "timm_mobilenetv4_hybrid_medium": (
            "timm.create_model('mobilenetv4_hybrid_medium', num_classes=10)",
            lambda: timm.create_model("mobilenetv4_hybrid_medium", num_classes=NUM_CLASSES),
            {"name": "mobilenet_v4", "variant": "hybrid_medium"}),
        "timm_mobilenetv4_hybrid_large": (
            "timm.create_model('mobilenetv4_hybrid_large', num_classes=10)",
            lambda: timm.create_model("mobilenetv4_hybrid_large", num_classes=NUM_CLASSES),
            {"name": "mobilenet_v4", "variant": "hybrid_large"}),
        "timm_mobilenetv2_100": (
            "timm.create_model('mobilenetv2_100', num_classes=10)",
            lambda: timm.create_model("mobilenetv2_100", num_classes=NUM_CLASSES),
            {"name": "mobilenet_v2"}),
        "timm_mobilenetv3_small_100": (
            "timm.create_model('mobilenetv3_small_100', num_classes=10)",
            lambda: timm.create_model("mobilenetv3_small_100", num_classes=NUM_CLASSES),
            {"name": "mobilenet_v3_small"}),
        "timm_mobilenetv3_large_100": (
            "timm.create_model('mobilenetv3_large_100', num_classes=10)",
            lambda: timm.create_model("mobilenetv3_large_100", num_classes=NUM_CLASSES),
            {"name": "mobilenet_v3_large"}),
        "timm_tf_efficientnet_lite0": (  # TF's "same" padding, as the TF-ported weights need
            "timm.create_model('tf_efficientnet_lite0', num_classes=10)",
            lambda: timm.create_model("tf_efficientnet_lite0", num_classes=NUM_CLASSES),
            {"name": "efficientnet_lite", "variant": "lite0", "padding": "same"}),
        "official_mobilenext": (
            "mnext.mnext(num_classes=10) of zhoudaquan/rethinking_bottleneck_design",
            lambda: authors(args.mobilenext, "mnext").mnext(num_classes=NUM_CLASSES),
            {"name": "mobilenext"}),
        "official_shufflenet_v1_g3": (
            "network.ShuffleNetV1(n_class=10, model_size='1.0x', group=3) of "
            "megvii-model/ShuffleNet-Series",
            quiet(lambda: authors(args.shufflenet, "network").ShuffleNetV1(
                n_class=NUM_CLASSES, model_size="1.0x", group=3)),
            {"name": "shufflenet_v1", "groups": 3, "wiring": "official"}),
    }


def main():
    import torch
    import torchvision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mobilenext", help="folder holding mnext.py")
    parser.add_argument("--shufflenet", help="folder holding ShuffleNetV1's network.py and "
                        "blocks.py")
    parser.add_argument("--only", nargs="+", help="write these golden files only")
    args = parser.parse_args()
    seeds = {path.stem: json.loads(path.read_text())["weights_seed"]
             for path in HERE.glob("*.json")}  # a golden file remade keeps its seeds
    for name, (source, build, ours) in sorted(references(args).items()):
        if args.only and name not in args.only:
            continue
        seed = seeds.setdefault(name, max(seeds.values(), default=-1) + 1)
        model = build().eval()
        keys = [[key, list(value.shape)] for key, value in model.state_dict().items()
                if not key.endswith("num_batches_tracked")]
        state = {k: torch.from_numpy(v) for k, v in random_state(keys, seed).items()}
        model.load_state_dict(state, strict=False)
        model.double()  # float64 outputs: the reference's own float32 rounding reaches 5e-4
        epsilons = {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
        images = random_images(IMAGES, seed + 100)
        with torch.no_grad():
            outputs = model(torch.from_numpy(images).double()).numpy()
        golden = {
            "reference": source, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "ours": ours,
            "bn_epsilon": epsilons.pop() if len(epsilons) == 1 else None,
            "weights_seed": seed, "images_seed": seed + 100, "images_shape": list(IMAGES),
            "keys": keys, "outputs": outputs.round(7).tolist()}
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(golden, indent=0) + "\n")
        print(f"{path.name}: {len(keys)} tensors, outputs up to {abs(outputs).max():.3g}")


if __name__ == "__main__":
    main()
