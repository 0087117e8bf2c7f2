"""The module of a torchvision or timm checkpoint that each of our layers takes, by name.

Our layers are named `<unit>_<role>` (`block3_expand_conv`, `stage2_unit1_branch_dw_bn`,
`fire4_squeeze_conv`, `stem_bn`) or by their place at the top (`head_conv`, `logits`). A
reference names its modules by unit too: torchvision `features.<i>` (MobileNetV2/V3,
SqueezeNet), `stage<s>.<u>` (ShuffleNetV2); timm `blocks.<stage>.<index>` (MobileNetV2/V3/V4,
EfficientNet-Lite). `reference_names` translates each of our names into the reference's:
the unit by its number (timm's blocks and SqueezeNet's fire modules counted in the order of
their names), the role by the tables below. A checkpoint of another layout, or a layer these
tables do not name (MobileNeXt's and ShuffleNetV1's authors' code), gets None: the importer
then pairs by build order and checks each pair's kind and shapes.
"""

import re

_UNIT = re.compile(r"^(stem|head|last|block\d+|stage\d+_unit\d+|fire\d+)_(.+)$")
_TIMM_BLOCK = re.compile(r"^blocks\.(\d+)\.(\d+)\.")
_FIRE = re.compile(r"^features\.(\d+)\.squeeze$")

# timm's blocks, told apart by their children: our role -> their module inside the block.
_TIMM_ROLES = (
    ({"pw_exp", "pw_proj"}, {  # UniversalInvertedResidual (MobileNetV4)
        "dw_start_conv": "dw_start.conv", "dw_start_bn": "dw_start.bn",
        "expand_conv": "pw_exp.conv", "expand_bn": "pw_exp.bn", "dw_mid_conv": "dw_mid.conv",
        "dw_mid_bn": "dw_mid.bn", "project_conv": "pw_proj.conv", "project_bn": "pw_proj.bn",
        "layer_scale": "layer_scale"}),
    ({"attn"}, {  # MobileAttention (MobileNetV4 hybrids)
        "mqa_norm": "norm", "layer_scale": "layer_scale",
        **{f"mqa_{part}": f"attn.{part}.proj" for part in ("query", "key", "value", "output")},
        **{f"mqa_{part}_down_conv": f"attn.{part}.down_conv" for part in ("key", "value")},
        **{f"mqa_{part}_down_bn": f"attn.{part}.norm" for part in ("key", "value")}}),
    ({"conv_exp"}, {  # EdgeResidual (fused inverted residual)
        "fused_conv": "conv_exp", "fused_bn": "bn1", "project_conv": "conv_pwl",
        "project_bn": "bn2"}),
    ({"conv_pwl"}, {  # InvertedResidual
        "expand_conv": "conv_pw", "expand_bn": "bn1", "dw_conv": "conv_dw", "dw_bn": "bn2",
        "se_reduce_conv": "se.conv_reduce", "se_expand_conv": "se.conv_expand",
        "project_conv": "conv_pwl", "project_bn": "bn3"}),
    ({"conv_dw"}, {  # DepthwiseSeparableConv
        "dw_conv": "conv_dw", "dw_bn": "bn1", "se_reduce_conv": "se.conv_reduce",
        "se_expand_conv": "se.conv_expand", "project_conv": "conv_pw", "project_bn": "bn2"}),
    ({"conv"}, {"conv": "conv", "bn": "bn1"}),  # ConvBnAct
)
_TIMM_TOP = {"stem_conv": "conv_stem", "stem_bn": "bn1", "pre_logits_conv": "conv_head",
             "pre_logits_bn": "norm_head", "pre_logits_dense": "conv_head",
             "logits": "classifier"}

# torchvision's ShuffleNetV2 unit: our role -> their module inside stage<s>.<u>.
_SHUFFLE_ROLES = {
    "shortcut_dw_conv": "branch1.0", "shortcut_dw_bn": "branch1.1",
    "shortcut_pw_conv": "branch1.2", "shortcut_pw_bn": "branch1.3",
    "branch_pw1_conv": "branch2.0", "branch_pw1_bn": "branch2.1",
    "branch_dw_conv": "branch2.3", "branch_dw_bn": "branch2.4",
    "branch_pw2_conv": "branch2.5", "branch_pw2_bn": "branch2.6"}
_FIRE_ROLES = ("squeeze", "expand1x1", "expand3x3")


def reference_names(layer_names, modules):
    """{our layer name: the reference's module name} for our weighted layers `layer_names`
    (in build order) and the checkpoint's `modules`; None when the checkpoint is not one
    of torchvision's or timm's layouts or a layer has no name in it."""
    modules = set(modules)
    if "conv_stem" in modules:
        translate = _timm(modules)
    elif "conv1.0" in modules and any(m.startswith("stage2.0.branch") for m in modules):
        translate = _torchvision_shufflenet
    elif any(_FIRE.match(m) for m in modules):
        translate = _torchvision_squeezenet(modules)
    elif any(m.startswith(("features.1.conv.", "features.1.block.")) for m in modules):
        translate = _torchvision_mobilenet(layer_names, modules)
    else:
        return None
    names = {name: translate(name) for name in layer_names}
    return None if None in names.values() else names


def _split(name):
    match = _UNIT.match(name)
    return (match.group(1), match.group(2)) if match else (name, "")


def _number(unit):
    return int(re.sub(r"\D", "", unit))


def _timm(modules):
    blocks = sorted({tuple(map(int, m.groups())) for m in map(_TIMM_BLOCK.match, modules) if m})
    children = {block: {m.split(".")[3] for m in modules
                        if m.startswith("blocks.%d.%d." % block)} for block in blocks}
    head_in_blocks = "bn2" not in modules  # MobileNetV3/V4: the head is the last block

    def in_block(block, role):
        for kinds, roles in _TIMM_ROLES:
            if kinds <= children[block] and role in roles:
                return "blocks.%d.%d." % block + roles[role]
        return None

    def translate(name):
        unit, role = _split(name)
        if name in _TIMM_TOP:
            return _TIMM_TOP[name]
        if unit in ("head", "last"):
            if not head_in_blocks:
                return {"conv": "conv_head", "bn": "bn2"}.get(role)
            return in_block(blocks[-1], role)
        if unit.startswith("block") and _number(unit) < len(blocks):
            return in_block(blocks[_number(unit)], role)
        return None
    return translate


def _torchvision_shufflenet(name):
    unit, role = _split(name)
    if name == "logits":
        return "fc"
    if unit in ("stem", "head") and role in ("conv", "bn"):
        return ("conv1" if unit == "stem" else "conv5") + (".0" if role == "conv" else ".1")
    match = re.fullmatch(r"stage(\d+)_unit(\d+)", unit)
    if match is None or role not in _SHUFFLE_ROLES:
        return None
    return f"stage{match.group(1)}.{int(match.group(2)) - 1}.{_SHUFFLE_ROLES[role]}"


def _torchvision_squeezenet(modules):
    fires = sorted(int(m.group(1)) for m in map(_FIRE.match, modules) if m)

    def translate(name):
        unit, role = _split(name)
        if name == "stem_conv":
            return "features.0"
        if name == "logits":
            return "classifier.1"
        if unit.startswith("fire") and role.removesuffix("_conv") in _FIRE_ROLES \
                and 0 <= _number(unit) - 2 < len(fires):
            return f"features.{fires[_number(unit) - 2]}.{role.removesuffix('_conv')}"
        return None
    return translate


def _torchvision_mobilenet(layer_names, modules):
    """MobileNetV2 (`features.<i>.conv.<j>`) and V3 (`features.<i>.block.<j>`): a block's
    sub-modules are numbered in the order of its parts (expansion, depthwise, squeeze-excite,
    projection; each a conv and its BatchNorm but V2's projection, two numbers)."""
    v3 = any(m.startswith("features.1.block.") for m in modules)
    parts = {}  # unit -> its parts in build order
    for name in layer_names:
        unit, role = _split(name)
        part = "se" if role.startswith("se_") else role.rsplit("_", 1)[0]
        if unit.startswith("block") and part not in parts.setdefault(unit, []):
            parts[unit].append(part)
    blocks = len(parts)

    def translate(name):
        unit, role = _split(name)
        layer = {"conv": 0, "bn": 1}.get(role.rsplit("_", 1)[-1])
        if unit in ("stem", "head") and role in ("conv", "bn"):
            return f"features.{0 if unit == 'stem' else blocks + 1}.{layer}"
        if name in ("pre_logits_dense", "logits"):
            return "classifier." + ("0" if name == "pre_logits_dense" else "3" if v3 else "1")
        part = "se" if role.startswith("se_") else role.rsplit("_", 1)[0]
        if unit not in parts or part not in ("expand", "dw", "se", "project"):
            return None  # not an inverted residual (MobileNeXt's sandglass)
        j = parts[unit].index(part)
        prefix = f"features.{_number(unit) + 1}.{'block' if v3 else 'conv'}.{j}"
        if part == "se":
            fc = {"se_reduce_conv": ".fc1", "se_expand_conv": ".fc2"}.get(role)
            return fc and prefix + fc
        if part == "project" and not v3:  # V2's projection: conv.<j>, its BatchNorm conv.<j+1>
            return f"features.{_number(unit) + 1}.conv.{j + layer}"
        return None if layer is None else f"{prefix}.{layer}"
    return translate
