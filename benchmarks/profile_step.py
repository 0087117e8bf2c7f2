"""Where a training step's time goes, and how far it is from this CPU's peak (a roofline).

    python benchmarks/profile_step.py [--model mobilenet_v2] [--size 160] [--batch 32]
                                      [--json results/profile_step.json]

1. The step: forward (training mode) and forward + backward + the SGD update, each a compiled
   function timed as the median of repeated runs; Keras' `train_on_batch` for comparison.
2. Layer types: each layer of the model is called alone on an input of its shape; its forward
   time is summed by type (1x1 conv, k x k conv, depthwise conv, BatchNorm, activations, ...)
   and set against the type's share of the multiply-adds. Layers timed alone carry their own
   call overhead, so the shares are indicative.
3. Roofline: a training image costs about 3 x 2 x MACs floating-point operations (forward
   2 x MACs, backward twice that); achieved GFLOP/s against the peak of 2 AVX2 cores with two
   FMA units each (2 x 2.6 GHz x 32 flop/cycle = 166 GFLOP/s).
"""

import argparse
import collections
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import provenance  # noqa: E402
import tensorflow as tf  # noqa: E402

from mobilenets import build_model, profile  # noqa: E402
from mobilenets.models.profile import layer_macs  # noqa: E402

PEAK_GFLOPS = 166.0


def median_seconds(function, repeats):
    function()  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kind(layer):
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return f"depthwise conv {layer.kernel_size[0]}x{layer.kernel_size[1]}"
    if isinstance(layer, keras.layers.Conv2D):
        size = "x".join(map(str, layer.kernel_size))
        return f"conv {size}" + (f", {layer.groups} groups" if layer.groups > 1 else "")
    if isinstance(layer, keras.layers.ReLU) or isinstance(layer, keras.layers.Activation):
        return "activation"
    return type(layer).__name__


def step_split(model, images, labels, repeats):
    """Seconds of the forward pass and of the whole step (forward, backward, SGD update), both
    compiled the same way, and of Keras' `train_on_batch` (+ metrics) for comparison."""
    loss = keras.losses.CategoricalCrossentropy()
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)

    def gradients():
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        return tape.gradient(value, model.trainable_variables)

    @tf.function
    def forward():
        return loss(labels, model(images, training=True))

    @tf.function
    def step():
        optimizer.apply_gradients(zip(gradients(), model.trainable_variables))

    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), loss, metrics=["accuracy"])
    return {"forward": median_seconds(forward, repeats),
            "step": median_seconds(step, repeats),
            "train_on_batch": median_seconds(lambda: model.train_on_batch(images, labels),
                                             repeats)}


def layer_split(model, batch, repeats):
    times, macs = collections.Counter(), collections.Counter()
    for layer in model.layers[1:]:
        if isinstance(layer.input, list):
            inputs = [tf.random.normal((batch, *t.shape[1:])) for t in layer.input]
        else:
            inputs = tf.random.normal((batch, *layer.input.shape[1:]))
        call = tf.function(lambda inputs=inputs, layer=layer: layer(inputs, training=True))
        times[kind(layer)] += median_seconds(call, repeats)
        macs[kind(layer)] += layer_macs(layer)
    return times, macs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="also write the figures to this JSON file (with a "
                                       "Markdown and a CSV table beside it)")
    args = parser.parse_args()
    results = {**provenance.stamp(), "model": args.model, "size": args.size,
               "batch": args.batch}
    model = build_model(args.model, input_shape=(args.size, args.size, 3), num_classes=10)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)), tf.float32)
    labels = tf.constant(np.eye(10)[rng.integers(0, 10, args.batch)], tf.float32)

    split = step_split(model, images, labels, args.repeats)
    step = split["step"]
    print(f"{args.model} at {args.size}x{args.size}, batch {args.batch}: "
          f"{args.batch / step:.1f} img/s (train_on_batch: "
          f"{args.batch / split['train_on_batch']:.1f} img/s)")
    # The SGD update is a few milliseconds, below the noise of the step's timing, so it is
    # reported with the backward pass.
    parts = {"forward": split["forward"], "backward and update": step - split["forward"]}
    results["step"] = [{"part": name, "ms": 1000 * seconds, "share": seconds / step}
                       for name, seconds in parts.items()]
    for name, seconds in parts.items():
        print(f"  {name:30s} {1000 * seconds:8.1f} ms  {100 * seconds / step:5.1f}%")

    times, macs = layer_split(model, args.batch, args.repeats)
    total_time, total_macs = sum(times.values()), sum(macs.values())
    print(f"forward time by layer type, each layer timed alone ({1000 * total_time:.0f} ms in "
          f"all, against {1000 * split['forward']:.0f} ms for the model's forward pass), and "
          "its share of multiply-adds:")
    results["layer_types"] = [{"layer type": name, "forward time share": seconds / total_time,
                               "MACs share": macs[name] / total_macs}
                              for name, seconds in times.most_common()]
    for name, seconds in times.most_common():
        print(f"  {name:30s} {100 * seconds / total_time:5.1f}% of time  "
              f"{100 * macs[name] / total_macs:5.1f}% of MACs")

    flops = 3 * 2 * profile(model)["macs"]
    images_per_s = args.batch / split["train_on_batch"]
    achieved = images_per_s * flops / 1e9
    results["roofline"] = [{
        "step images/s": args.batch / step, "train_on_batch images/s": images_per_s,
        "layers alone ms": 1000 * total_time, "forward ms": 1000 * split["forward"],
        "GFLOP per training image": flops / 1e9, "GFLOP/s": achieved,
        "peak GFLOP/s (2 AVX2 cores)": PEAK_GFLOPS, "share of peak": achieved / PEAK_GFLOPS}]
    print(f"roofline: {flops / 1e9:.2f} GFLOP per training image, {achieved:.1f} GFLOP/s "
          f"achieved = {100 * achieved / PEAK_GFLOPS:.0f}% of the {PEAK_GFLOPS:.0f} GFLOP/s peak; "
          f"the peak would allow {PEAK_GFLOPS * 1e9 / flops:.0f} img/s")
    if args.json:
        provenance.save(results, args.json)


if __name__ == "__main__":
    main()
