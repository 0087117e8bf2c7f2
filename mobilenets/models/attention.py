"""Mobile MQA (MobileNetV4's attention block, Qin et al. 2024, section 4), in Keras' built-in
layers.

Multi-query attention: the heads have their own queries and share one key and one value
(optionally computed on a map downsampled by a strided 3x3 depthwise conv). Because the key and
value are shared, the heads fold into the query rows: a (H, W, heads * key_dim) query map is
read as H * W * heads rows of key_dim, and one matrix product per image (a `Dot` layer) scores
every head at once. Channel c of the query belongs to head c // key_dim, as in timm's and TF
Model Garden's code, so checkpoints need no permutation.

The attention core (the two products, the scale and the softmax) keeps layer names ending in
`CORE_SUFFIXES`: XNNPACK has no int8 SOFTMAX and takes int8 BATCH_MATMULs only in some cases,
so int8 files keep those ops in float (`core_layers`), which XNNPACK runs inside the same
partition; in QAT, the reshape after
the core (`HEADS_SUFFIX`) carries its output's 8-bit range.
"""

from keras import layers

from mobilenets.models.layers import batch_norm, depthwise_bn, layer_scale, residual_add

CORE_SUFFIXES = ("_mqa_logits", "_mqa_scaled", "_mqa_softmax", "_mqa_context")
HEADS_SUFFIX = "_mqa_heads"


def core_layers(model):
    """The names of the attention cores' layers of `model` (none for a model without Mobile
    MQA)."""
    return [layer.name for layer in model.layers if layer.name.endswith(CORE_SUFFIXES)]


def mobile_mqa(x, filters, *, heads, key_dim, name, kv_stride=1, bn_momentum=0.99,
               layer_scale_init=1e-5, drop_path=0.0):
    """BN -> multi-query attention (`heads` queries of `key_dim`, one key and one value of
    `key_dim`, computed at stride `kv_stride`) -> 1x1 conv to `filters` -> layer scale,
    residual when the shape is kept. Layers `{name}_mqa_*`."""
    prefix = f"{name}_mqa"
    shortcut = x
    height, width = x.shape[1:3]
    x = batch_norm(x, name=f"{prefix}_norm", momentum=bn_momentum)
    query = layers.Conv2D(heads * key_dim, 1, use_bias=False, name=f"{prefix}_query")(x)
    query = layers.Reshape((height * width * heads, key_dim), name=f"{prefix}_query_rows")(query)
    key = _shared(x, key_dim, kv_stride, bn_momentum, name=f"{prefix}_key")
    value = _shared(x, key_dim, kv_stride, bn_momentum, name=f"{prefix}_value")
    logits = layers.Dot(axes=2, name=f"{prefix}_logits")([query, key])
    logits = layers.Rescaling(key_dim ** -0.5, name=f"{prefix}_scaled")(logits)
    weights = layers.Softmax(name=f"{prefix}_softmax")(logits)
    context = layers.Dot(axes=(2, 1), name=f"{prefix}_context")([weights, value])
    context = layers.Reshape((height, width, heads * key_dim), name=f"{prefix}_heads")(context)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}_output")(context)
    if layer_scale_init is not None:
        x = layer_scale(x, layer_scale_init, name=f"{name}_layer_scale")
    if shortcut.shape[-1] == filters:
        x = residual_add(shortcut, x, name=name, drop_path=drop_path)
    return x


def _shared(x, dim, stride, bn_momentum, *, name):
    """The key (or value) every head shares: [3x3 depthwise conv at `stride` + BN] -> 1x1 conv
    to `dim`, as rows of `dim`."""
    if stride > 1:
        x = depthwise_bn(x, 3, strides=stride, bn_momentum=bn_momentum, name=f"{name}_down")
    x = layers.Conv2D(dim, 1, use_bias=False, name=name)(x)
    return layers.Reshape((-1, dim), name=f"{name}_rows")(x)
