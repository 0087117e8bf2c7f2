"""The shared blocks and the family-specific structure the counts alone would not show."""

import keras
import numpy as np
import pytest

from mobilenets import build_model
from mobilenets.models import layers as blocks


@pytest.mark.parametrize("value, divisor, expected", [
    (32 * 0.35, 8, 16),  # 11.2 rounds to 8, more than 10% down: bumped to 16
    (16 * 0.35, 8, 8),  # never below the divisor
    (24.0, 8, 24),
    (20.8, 8, 24),  # 24.8 // 8 * 8
    (99, 8, 96),  # 3% down is allowed
    (214, 16, 208),
    (1280 * 1.4, 8, 1792),
])
def test_make_divisible(value, divisor, expected):
    assert blocks.make_divisible(value, divisor) == expected


def test_channel_shuffle_interleaves_groups():
    inputs = keras.Input((1, 1, 6))
    model = keras.Model(inputs, blocks.channel_shuffle(inputs, 2, name="shuffle"))
    out = model(np.arange(6, dtype="float32").reshape(1, 1, 1, 6)).numpy().ravel()
    np.testing.assert_array_equal(out, [0, 3, 1, 4, 2, 5])  # groups (0 1 2) and (3 4 5)


def test_channel_split_sizes_and_config():
    layer = blocks.ChannelSplit([2, 3], name="split")
    a, b = layer(np.arange(5, dtype="float32").reshape(1, 1, 1, 5))
    np.testing.assert_array_equal(a.numpy().ravel(), [0, 1])
    np.testing.assert_array_equal(b.numpy().ravel(), [2, 3, 4])
    clone = blocks.ChannelSplit.from_config(layer.get_config())
    assert clone.sizes == [2, 3] and clone.name == "split"


def block_model(identity_ratio):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 12))
    out = blocks.sandglass(inputs, reduced=4, filters=12, identity_ratio=identity_ratio,
                           name="sg")
    model = keras.Model(inputs, out)
    body = keras.Model(inputs, model.get_layer("sg_dw2_bn").output)
    return model, body


@pytest.mark.parametrize("identity_ratio, identity_channels", [(1.0, 12), (0.5, 6), (1 / 3, 4)])
def test_sandglass_shortcut_adds_to_the_first_identity_ratio_channels(identity_ratio,
                                                                      identity_channels):
    model, body = block_model(identity_ratio)
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 12)).astype("float32")
    out, branch = model(x).numpy(), body(x).numpy()
    k = identity_channels
    np.testing.assert_allclose(out[..., :k], x[..., :k] + branch[..., :k], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[..., k:], branch[..., k:], rtol=1e-6, atol=1e-6)


def test_sandglass_layer_sequence():
    """dw + BN + ReLU6 -> reduce + BN (no activation) -> expand + BN + ReLU6 -> dw + BN."""
    model, _ = block_model(1.0)
    kinds = [type(layer).__name__.removeprefix("Fused") for layer in model.layers[1:]]
    assert kinds == ["DepthwiseConv2D", "BatchNormalization", "ReLU", "Conv2D",
                     "BatchNormalization", "Conv2D", "BatchNormalization", "ReLU",
                     "DepthwiseConv2D", "BatchNormalization", "Add"]
    assert model.get_layer("sg_dw1_relu").max_value == 6.0


def test_mobilenext_depthwise_convs_follow_the_authors_code():
    model = build_model("mobilenext")
    names = {layer.name for layer in model.layers}
    assert {"block0_dw1_conv", "block0_dw2_conv"} <= names  # t = 2: both kept
    # 96 -> 144, the only block of a stride-1 row: both kept (the code's keep_3x3)
    assert {"block1_dw1_conv", "block1_dw2_conv"} <= names
    assert "block2_dw2_conv" in names and "block2_dw1_conv" not in names  # stride 2: last only
    assert {"block3_dw1_conv", "block3_dw2_conv", "block3_add"} <= names  # 192 -> 192
    # 960 -> 1280 (single block, stride 1): both kept; ceil(1280 / 6) rounded to 16s
    assert {"block19_dw1_conv", "block19_dw2_conv"} <= names
    assert model.get_layer("block19_reduce_conv").filters == 208


@pytest.mark.parametrize("alpha, trainable", [
    # MXNet(width_mult=...) of mnext.py in zhoudaquan/rethinking_bottleneck_design, 1000 classes,
    # counted with sum(p.numel() for p in model.parameters())
    (1.0, 3_535_416), (0.75, 2_766_168), (0.5, 2_152_304)])
def test_mobilenext_trainable_counts_equal_the_authors_code(alpha, trainable):
    model = build_model("mobilenext", alpha=alpha)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable


@pytest.mark.parametrize("groups, alpha, trainable", [
    # ShuffleNetV1(group=..., model_size=...) of megvii-model/ShuffleNet-Series (network.py),
    # 1000 classes, sum(p.numel() for p in model.parameters()); its classifier has no bias,
    # ours has (+1000)
    (3, 0.5, 717_324), (3, 1.0, 1_864_728), (3, 1.5, 3_441_168), (3, 2.0, 5_449_776),
    (8, 0.5, 1_010_448), (8, 1.0, 2_433_768), (8, 1.5, 4_268_952), (8, 2.0, 6_521_232)])
def test_shufflenet_v1_trainable_counts_equal_the_official_code(groups, alpha, trainable):
    model = build_model("shufflenet_v1", groups=groups, alpha=alpha)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable + 1000


def test_shufflenet_v1_official_wiring_shuffles_after_the_depthwise_conv():
    paper = build_model("shufflenet_v1", input_shape=(64, 64, 3), num_classes=10)
    official = build_model("shufflenet_v1", input_shape=(64, 64, 3), num_classes=10,
                           wiring="official")
    names = [layer.name for layer in official.layers]
    assert names.index("stage3_unit1_shuffle_reshape") > names.index("stage3_unit1_dw_bn")
    assert "stage2_unit1_shuffle_reshape" in names  # after the ungrouped first conv too
    assert "stage2_unit1_shuffle_reshape" not in {layer.name for layer in paper.layers}
    assert paper.count_params() == official.count_params()


def test_the_transposed_channel_shuffle_is_the_inverse_permutation():
    channels = np.arange(12, dtype="float32").reshape(1, 1, 1, 12)
    inputs = keras.Input((1, 1, 12))
    paper = keras.Model(inputs, blocks.channel_shuffle(inputs, 3, name="s"))
    official = keras.Model(inputs, blocks.channel_shuffle(inputs, 3, transposed=True, name="s"))
    assert paper(channels).numpy().ravel().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert official(channels).numpy().ravel().tolist() == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]
    np.testing.assert_array_equal(official(paper(channels)).numpy(), channels)


def test_hard_swish_and_hard_sigmoid_values():
    x = np.array([-4.0, -3.0, -1.0, 0.0, 1.5, 3.0, 5.0], dtype="float32")
    inputs = keras.Input((7,))
    model = keras.Model(inputs, [blocks.hard_swish(inputs, name="hs"),
                                 blocks.hard_sigmoid(inputs, name="hsig")])
    swish, sigmoid = (t.numpy()[0] for t in model(x[None]))
    expected_sigmoid = np.clip(x + 3.0, 0.0, 6.0) / 6.0
    np.testing.assert_allclose(sigmoid, expected_sigmoid, atol=1e-7)
    np.testing.assert_allclose(swish, x * expected_sigmoid, atol=1e-6)


def count(model, kind):
    return sum(isinstance(layer, kind) for layer in model.layers)


def test_squeezenet_bypasses():
    plain = build_model("squeezenet")
    simple = build_model("squeezenet", bypass="simple")
    complex_ = build_model("squeezenet", bypass="complex")
    assert count(plain, keras.layers.Add) == 0
    assert [layer.name for layer in simple.layers if isinstance(layer, keras.layers.Add)] == [
        "fire3_bypass", "fire5_bypass", "fire7_bypass", "fire9_bypass"]
    assert count(complex_, keras.layers.Add) == 8
    # 1x1 convs with bias around fire2 (96 -> 128), fire4 (128 -> 256), fire6 (256 -> 384),
    # fire8 (384 -> 512): the paper's complex bypass.
    extra = sum(cin * cout + cout for cin, cout in [(96, 128), (128, 256), (256, 384), (384, 512)])
    assert complex_.count_params() - plain.count_params() == extra
    assert simple.count_params() == plain.count_params()


@pytest.mark.parametrize("version, sizes", [
    ("1.0", [109, 54, 27, 13]),  # Caffe's ceil-mode pooling, as torchvision
    ("1.1", [111, 55, 27, 13]),
])
def test_squeezenet_feature_map_sizes(version, sizes):
    model = build_model("squeezenet", version=version)
    got = [model.get_layer("stem_relu").output.shape[1]]
    got += [model.get_layer(f"pool{i}").output.shape[1] for i in (1, 2, 3)]
    assert got == sizes


def test_squeezenet_batch_norm_option():
    model = build_model("squeezenet", batch_norm=True)
    assert count(model, keras.layers.BatchNormalization) == 1 + 8 * 3
    assert count(build_model("squeezenet"), keras.layers.BatchNormalization) == 0


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_shufflenet_v1_group_convs(groups):
    model = build_model("shufflenet_v1", groups=groups)
    assert model.get_layer("stage2_unit1_gconv1_conv").groups == 1  # 24 input channels
    assert model.get_layer("stage2_unit2_gconv1_conv").groups == groups
    assert model.get_layer("stage4_unit4_gconv2_conv").groups == groups
    expected_out = {1: 576, 2: 800, 3: 960, 4: 1088, 8: 1536}[groups]  # Table 1
    assert model.get_layer("avg_pool").output.shape[-1] == expected_out
    has_shuffle = any(layer.name.endswith("_shuffle_transpose") for layer in model.layers)
    assert has_shuffle == (groups > 1)


def test_shufflenet_v1_stride2_unit_is_the_papers():
    """The stride-2 unit, built as ReLU(branch) next to a fixed depthwise pool, computes the
    paper's ReLU(concat(average pool 3x3/2 of the input, branch)); padding counts as zeros."""
    model = build_model("shufflenet_v1", input_shape=(64, 64, 3), num_classes=10)
    pool = model.get_layer("stage4_unit1_shortcut_pool")
    probe = keras.Model(model.inputs, [pool.input, model.get_layer("stage4_unit1_gconv2_bn").output,
                                       model.get_layer("stage4_unit1_concat").output])
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    x, branch, ours = (t.numpy() for t in probe(images))
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))  # "same" for stride 2, even size
    pooled = keras.layers.AveragePooling2D(3, strides=2)(padded).numpy()  # all 9 cells counted
    papers = np.maximum(np.concatenate([pooled, branch], axis=-1), 0)
    assert x.min() >= 0  # the unit's input is a ReLU output
    np.testing.assert_allclose(ours, papers, rtol=1e-5, atol=1e-5)
    assert not pool.trainable and not any(w is pool.kernel for w in model.trainable_weights)


def test_shufflenet_v2_stage_widths():
    for alpha, widths in [(0.5, (48, 96, 192, 1024)), (2.0, (244, 488, 976, 2048))]:
        model = build_model("shufflenet_v2", alpha=alpha)
        got = [model.get_layer(f"stage{s}_unit1_shuffle_flatten").output.shape[-1]
               for s in (2, 3, 4)]
        assert (*got, model.get_layer("head_conv").filters) == widths
