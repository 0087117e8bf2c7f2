"""The export stage: writes every `export.modes` file of a model, verifies each in LiteRT on the
evaluation split against the Keras model, and reports (`export/report.json`)."""

import logging
import pathlib

import numpy as np

from mobilenets import artifacts, files, inference, keras2, runtime
from mobilenets import data as data_lib
from mobilenets.data import pipeline
from mobilenets.errors import ExportCheckFailed, ExportOptionError, UserError
from mobilenets.export import quant_debug
from mobilenets.export.convert import MODES, export_tflite, quantization_report
from mobilenets.tflite import npu, xnnpack
from mobilenets.tflite.runner import TFLiteModel, litert_runtime, runs_apart
from mobilenets.version import __version__

log = logging.getLogger("mobilenets")


def run(artifact, config, task, data, workdir, modes=None):
    """Writes, verifies and reports every `export.modes` file of the model of `artifact` (an
    `artifacts.Artifact`) into `<workdir>/export/`.

    Every file is calibrated and verified as Android's clients will feed it: the whole image
    resized to the input (`pipeline.client_dataset`), and, with `export.rgb_input`, RGB pixels
    for a model trained on gray. Verification runs each file on the evaluation split (its
    first `export.verify_limit` images) and compares it with the Keras `model` on the same
    images; int8 files run on both of LiteRT's kernel paths (XNNPACK and the built-in
    kernels). Raises ExportCheckFailed if a file loses more than `export.max_drop` points of
    the task's `headline` score (top-1; detection: mAP@.5); a quantized file that does gets a
    per-layer error report (`export/debug_<mode>.csv`, classification), as every one does with
    `export.debug`. `modes` defaults to what the artifact exports of `export.modes`
    (`Artifact.export_names`: a QAT model's int8 file is "qat_int8").
    """
    model, qat = artifact.model, artifact.kind == artifacts.QAT
    settings = config.export
    folder = pathlib.Path(workdir) / "export"
    shape = tuple(model.input_shape[1:])
    file_shape = (*shape[:2], 3) if settings.rgb_input else shape
    examples = task.examples(model, len(data.class_names))
    evaluation_split = data.eval.limit(settings.verify_limit)
    outputs, truths = inference.keras_outputs(
        task.predictions(model), pipeline.client_dataset(evaluation_split, shape, examples, 64))
    keras_scores = task.scores(outputs, truths, data.class_names)
    verify = pipeline.client_dataset(evaluation_split, file_shape, examples, 64)
    calibration = pipeline.representative(data.train, file_shape, settings.calibration_samples)
    files.write_text(folder / "labels.txt", "\n".join(data.class_names) + "\n")
    headline = task.headline
    report = {"float": {key: keras_scores[key] for key in task.report_keys},
              "keras_model": artifact.file_name,
              "images": len(evaluation_split),
              "preprocessing": f"as Android's clients: the whole image resized to "
                               f"{shape[0]}x{shape[1]}, {'RGB' if file_shape[2] == 3 else 'gray'} "
                               "pixels in [0, 255]",
              "runtime": litert_runtime(), "files": {}}
    failures = []
    for name in modes or artifact.export_names(settings.modes):
        log.info("exporting %s", name)
        mode = "int8" if qat else name
        quantized = mode in ("int8", "int16x8")
        try:
            content = to_tflite(task, model, mode, calibration, settings, qat=qat)
        except ExportOptionError as error:
            raise UserError(str(error)) from None
        if settings.metadata:
            content = task.metadata(
                content, labels=data.class_names, name=model.name,
                description=f"{config.model.name} {task.name}, {name} TFLite, trained with "
                            f"mobilenets on {config.data.name or config.data.source}",
                version=__version__)
        path = folder / f"model_{name}.tflite"
        files.write_bytes(path, content)
        problem = runs_apart(path)
        if problem:  # never leave a file behind that the phone's runtime cannot run
            rejected = path.with_name(path.name + ".rejected")
            path.replace(rejected)
            failures.append(f"{path.name} does not run in LiteRT: {problem} (kept as "
                            f"{rejected.name} for a bug report)")
            log.error("%s", failures[-1])
            continue
        entry = verify_file(content, verify, task, data.class_names, outputs,
                            both_kernel_paths=mode == "int8")
        entry["drop"] = round(100 * (report["float"][headline] - entry[headline]), 3)
        report["files"][path.name] = entry
        log.info("%s: %s %.4f (Keras %.4f), agreement %.4f, %.2f MB, %s ms, %d partition(s)%s",
                 path.name, headline, entry[headline], report["float"][headline],
                 entry["agreement"], entry["size_mb"], entry["median_latency_ms"],
                 entry["partitions"],
                 f"; built-in kernels: {headline} {entry['builtin_kernels'][headline]:.4f}, "
                 f"{entry['builtin_kernels']['agreement_with_xnnpack']:.4f} agreement with "
                 "XNNPACK" if "builtin_kernels" in entry else "")
        failed = entry["drop"] > settings.max_drop
        if (quantized and not qat and task.quantization_debugger
                and (failed or settings.debug)):
            entry["debug_report"] = write_debug_report(model, mode, calibration, settings,
                                                       folder / f"debug_{name}.csv")
        if failed:
            failures.append(f"{path.name} loses {entry['drop']:.2f} {headline} points "
                            f"(export.max_drop {settings.max_drop})"
                            + (f"; per-layer errors in {folder / entry['debug_report']}"
                               if "debug_report" in entry else ""))
    if settings.npu and not failures:
        report["npu"] = compile_for_npus(folder, report["files"], settings.npu)
    files.write_json(folder / "report.json", report)
    if failures:
        raise ExportCheckFailed("; ".join(failures) + f"; see {folder / 'report.json'}")
    missed = [f"{entry['target']} ({'; '.join(dict.fromkeys(entry['failed'].values()))})"
              for entries in report.get("npu", {}).values() for entry in entries
              if not entry["files"]]
    if missed:
        raise UserError(f"the int8 files are written and verified, but no NPU file was compiled "
                        f"for {', '.join(missed)}; see {folder / 'report.json'}")
    return report


def compile_for_npus(folder, exported, targets):
    """Compiles each int8 file of `exported` (the report's file entries) for each NPU target
    into `folder/npu/`; returns {file name: [`npu.compile_file` result per target]}."""
    compiled = {}
    for name in exported:
        if "int8" not in name:
            continue
        compiled[name] = []
        for target in targets:
            log.info("compiling %s for %s NPUs", name, target)
            entry = npu.compile_file(folder / name, target, folder / "npu")
            for file, placement in entry["files"].items():
                log.info("%s: %d NPU partition(s); on the CPU: %s", file,
                         placement["npu_partitions"],
                         ", ".join(f"{count} {op}" for op, count in placement["cpu_ops"].items())
                         or "nothing")
            for chip, reason in entry["failed"].items():
                log.error("%s for %s %s: not compiled: %s", name, target, chip, reason)
            compiled[name].append(entry)
    return compiled


def to_tflite(task, model, mode, calibration, settings, qat=False):
    """The .tflite bytes of the task's `served` model in `mode`: the task's own converter if
    it has one, else
    `convert.export_tflite` with the `export` section's options (`settings`); a `qat` model's
    layers all stay int8."""
    quantized = mode in ("int8", "int16x8")
    model = task.served(model, keras2.api(model))
    content = task.to_tflite(model, mode, calibration if quantized else None)
    if content is not None:
        if mode == "int8" and settings.quantizer == "litert":
            raise ExportOptionError(f"export.quantizer: litert quantizes classifier and "
                                    f"segmenter files; a {task.name} file's own conversion "
                                    "(its post-process op) keeps the converter")
        return content
    return export_tflite(
        model, mode, calibration if quantized else None, int8_input=settings.int8_input,
        int8_output=settings.int8_output, rgb_input=settings.rgb_input,
        float_layers=settings.float_layers if quantized and not qat else (), qat=qat,
        quantizer=settings.quantizer)


def export_model(config, task, model_path, workdir=None, modes=None):
    """`mobilenets export`: exports a saved model (`.keras`, or a QAT run's `.h5`) like the
    experiment's export stage, into `<workdir>/export/` (default: the model's folder)."""
    path = pathlib.Path(model_path)
    for mode in modes or ():
        if mode not in MODES:
            raise UserError(f"--modes: unknown mode {mode!r}; valid: {', '.join(MODES)}")
    artifact = artifacts.load(path)
    if config.export.npu and modes and "int8" not in modes:
        raise UserError("--npu compiles int8 files: add int8 to --modes")
    if artifact.kind == artifacts.QAT and modes and list(modes) != ["int8"]:
        raise UserError(f"--model {path} is a QAT model: it exports to int8 only "
                        "(model_qat_int8.tflite)")
    model = artifact.model
    files.writable_folder(pathlib.Path(workdir or path.parent) / "export",
                          "--workdir" if workdir else "the model's folder")
    runtime.setup(config.runtime, config.train)
    # A model of another shape is refused by check_model, after the data gives class names.
    data = data_lib.load(config.data, seed=config.train.seed,
                         channels=1 if model.input_shape[-1] == 1 else 3, labels=task.labels)
    problem = task.check_model(model.input_shape, model.output_shape, data.class_names)
    if problem:
        raise UserError(f"--model {path} {problem}")
    return run(artifact, config, task, data, workdir or path.parent,
               modes=artifact.export_names(modes or config.export.modes))


def write_debug_report(model, mode, calibration, settings, path):
    """Writes the per-layer error report CSV; logs the worst layers; returns the file name."""
    def debug_dataset():
        for index, batch in enumerate(calibration()):
            if index == settings.debug_samples:
                return
            yield batch

    log.info("running the quantization debugger on %d images", settings.debug_samples)
    rows = quantization_report(model, mode, calibration, debug_dataset)
    quant_debug.write_csv(rows, path)
    for row in rows[:5]:
        log.info("  %-40s %-18s rmse/scale %.2f", row["layers"][:40], row["op"],
                 row["rmse_over_scale"])
    return path.name


def verify_file(content, dataset, task, class_names, reference_outputs,
                both_kernel_paths=False):
    """Runs a .tflite file on `dataset`: the task's scores, agreement with the Keras model's
    `reference_outputs`, size, latency, XNNPACK partitions; with `both_kernel_paths`, also the
    scores on LiteRT's built-in kernels (no delegate) and their agreement with XNNPACK's."""
    runner = TFLiteModel(content, threads=1)
    outputs, truths = inference.tflite_outputs(runner, dataset, task.file_outputs)
    result = task.scores(outputs, truths, class_names)
    partitions, outside = xnnpack.delegate_partitions(content)
    entry = {
        **{key: result[key] for key in task.report_keys},
        "agreement": task.agreement(outputs, reference_outputs),
        "size_mb": round(len(content) / 2**20, 3),
        "median_latency_ms": round(runner.median_latency_ms, 3),
        "partitions": partitions, "ops_outside_xnnpack": outside,
        "input": describe(runner.input), "output": describe(runner.output),
    }
    if both_kernel_paths:
        builtin, _ = inference.tflite_outputs(TFLiteModel(content, builtin_kernels=True),
                                              dataset, task.file_outputs)
        scored = task.scores(builtin, truths, class_names)
        pairs = zip(builtin, outputs) if isinstance(outputs, tuple) else [(builtin, outputs)]
        entry["builtin_kernels"] = {
            task.headline: scored[task.headline],
            "agreement": task.agreement(builtin, reference_outputs),
            "agreement_with_xnnpack": task.agreement(builtin, outputs),
            "max_abs_difference": max(largest_difference(a, b) for a, b in pairs)}
    return entry


def largest_difference(a, b):
    """The largest absolute difference of two outputs where both are finite (a detector's rows
    past its count hold whatever the op left there, infinities included)."""
    a, b = np.asarray(a), np.asarray(b)
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.abs(a[both].astype(np.float64) - b[both]).max(initial=0.0))


def describe(details):
    scale, zero = details["quantization"]
    return {"dtype": np.dtype(details["dtype"]).name, "shape": details["shape"].tolist(),
            "scale": scale, "zero_point": zero}
