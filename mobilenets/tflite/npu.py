"""Ahead-of-time compilation of a .tflite file for NPUs, with LiteRT's AOT compiler
(`ai_edge_litert.aot`): one compiled file per system-on-chip, and which ops stay on the CPU.

A target is a vendor, optionally with one of its chips: `qualcomm` (every Snapdragon LiteRT
knows), `qualcomm:SM8650`, `mediatek:MT6989`, `google_tensor:Tensor_G4`, `intel_openvino:LNL`
(laptops' NPUs). LiteRT's wheel carries each vendor's compiler plugin, but the plugin loads the
vendor's own compiler libraries, which come from a separate package whose install downloads them
from the vendor (`VENDORS`). Without them the compile fails, and the reason LiteRT's tool gives
(the library it could not load) is what `compile_file` reports. LiteRT partitions the graph
before the vendor compiles it: the ops it hands to the NPU become DISPATCH_OP custom ops in the
compiled file, and every other op stays on the CPU (`placement`).
"""

import contextlib
import dataclasses
import importlib
import io
import pathlib
import re
import tempfile

from mobilenets import compat
from mobilenets.errors import UserError


@dataclasses.dataclass(frozen=True)
class Vendor:
    module: str  # ai_edge_litert.aot.vendors.<module>
    package: str  # the pip package that brings the vendor's compiler libraries
    sdk: str  # what that package downloads, in words


VENDORS = {
    "qualcomm": Vendor("qualcomm", "ai-edge-litert-sdk-qualcomm",
                       "Qualcomm's AI Runtime SDK (QAIRT) from softwarecenter.qualcomm.com"),
    "mediatek": Vendor("mediatek", "ai-edge-litert-sdk-mediatek",
                       "MediaTek's NeuroPilot SDK from mediatek.neuropilot.com's S3 bucket"),
    "google_tensor": Vendor("google_tensor", "ai-edge-litert-sdk-google-tensor",
                            "Google Tensor's ML SDK from redirector.gvt1.com"),
    "intel_openvino": Vendor("intel_openvino", "ai-edge-litert-sdk-intel",
                             "OpenVINO's NPU compiler from storage.openvinotoolkit.org (with the "
                             "openvino package)"),
}
DISPATCH_OP = "DISPATCH_OP"  # LiteRT's custom op for a partition compiled for the NPU


def parse(text):
    """(vendor, chip or None) of a target such as "qualcomm" or "qualcomm:SM8650"; raises
    UserError naming the valid vendors, or the vendor's chips."""
    vendor, _, chip = str(text).partition(":")
    if vendor not in VENDORS:
        raise UserError(f"NPU target {text!r}: unknown vendor {vendor!r}; valid: "
                        f"{', '.join(VENDORS)} (each optionally :CHIP, e.g. qualcomm:SM8650)")
    if chip:
        chips = [model.value for model in _target_module(vendor).SocModel
                 if model.value != "ALL"]
        if chip not in chips:
            raise UserError(f"NPU target {text!r}: {vendor} has no chip {chip!r} in LiteRT; "
                            f"valid: {', '.join(chips)}")
    return vendor, chip or None


def _target_module(vendor):
    return importlib.import_module(f"ai_edge_litert.aot.vendors.{VENDORS[vendor].module}.target")


def compile_file(path, target, folder):
    """Compiles the .tflite file `path` for `target` into `folder`: one file per chip,
    `<stem>_<Vendor>_<chip>.tflite`. Returns {"target", "files": {file name: `placement`},
    "failed": {chip: reason}} (a reason names the library the vendor's plugin could not load,
    and the package that brings it, when that is why)."""
    from ai_edge_litert.aot import aot_compile

    vendor, chip = parse(target)
    module = _target_module(vendor)
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    compiled, failed = {}, {}
    # LiteRT leaves each step's file beside the compiled one: it works in a folder of its own;
    # its progress bars and prints go to a buffer (what failed is in its result).
    with (tempfile.TemporaryDirectory(dir=folder) as steps,
          contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())):
        result = aot_compile.aot_compile(
            str(path), output_dir=steps, keep_going=True,
            target=module.Target(module.SocModel(chip or "ALL")))
        for backend, model in result.models_with_backend:
            name = f"{pathlib.Path(path).stem}{backend.target_id_suffix}.tflite"
            model.save(folder / name, export_only=True)
            compiled[name] = {"chip": str(backend.soc_model),
                              **placement((folder / name).read_bytes())}
        for backend, error in result.failed_backends:
            failed[str(backend.soc_model)] = reason(error, VENDORS[vendor])
    return {"target": target, "files": compiled, "failed": failed}


def reason(error, vendor):
    """Why a compile failed, in a line. LiteRT's tool writes its log to a file its error
    names; from it: how much of the graph LiteRT's partitioner chose for the NPU, and the
    library that could not be loaded, with the package that brings it; else LiteRT's error."""
    log = re.search(r"See (\S+\.error) for details", error)
    text = pathlib.Path(log.group(1)).read_text(errors="replace") if (
        log and pathlib.Path(log.group(1)).is_file()) else ""
    words = []
    chosen = re.search(r"selected (\d+) ops, from a total of (\d+) ops\. resulted in (\d+) "
                       r"partitions", text)
    if chosen:
        words.append(f"LiteRT chose {chosen[1]} of the {chosen[2]} ops for {chosen[3]} NPU "
                     "partition(s)")
    missing = (re.search(r"([\w.+-]+\.so[\w.]*)(?:: cannot open shared object file| not "
                         r"found)", text)
               or re.search(r"Failed to load (\w+ shared library)", text))
    if missing:
        words.append(f"the vendor's compiler cannot load {missing[1]}: `pip install "
                     f"{vendor.package}`, whose install downloads {vendor.sdk}")
    else:
        failed = re.findall(r"ERROR: \[[^\]]*\] (.+)", text)
        words.append(failed[0].strip() if failed else error)
    return "; ".join(words)


def placement(content):
    """Where the ops of a compiled file run: {"ops": the ops of its main graph, "npu_partitions":
    its DISPATCH_OP ops (each stands for a partition of the original ops, compiled for the NPU),
    "cpu_ops": {op name: count} of the others, which LiteRT runs on the CPU}."""
    schema = compat.tflite_schema()
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    model = compat.tflite_flatbuffer_utils().convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    counts = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = (code.customCode.decode() if builtin == schema.BuiltinOperator.CUSTOM
                else names[builtin])
        counts[name] = counts.get(name, 0) + 1
    partitions = counts.pop(DISPATCH_OP, 0)
    return {"ops": len(graph.operators), "npu_partitions": partitions, "cpu_ops": counts}
