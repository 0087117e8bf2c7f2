"""The `mobilenets` command: train | evaluate | export | predict | models | benchmark.

`train.py` and `evaluate.py` at the repository's top are thin wrappers of `mobilenets train` and
`mobilenets evaluate`. User errors (bad config, missing data, bad option) exit with status 2
and one message naming the culprit; `--debug` shows the traceback instead.
"""

import argparse
import json
import logging
import pathlib
import signal
import sys

from mobilenets import console, files, interrupts
from mobilenets.errors import (
    ExportCheckFailed,
    Interrupted,
    TrainingDiverged,
    UserError,
    WriteError,
)

EXIT_USER_ERROR, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130
EXIT_TERMINATED = 143  # SIGTERM, as a shell reports a process it ended


def main(argv=None):
    """Runs `mobilenets <command> ...`; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="mobilenets", description="Train MobileNets and ship them to phones as TFLite.")
    _add_global_flags(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, add_arguments, help_text) in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        _add_global_flags(command, default=argparse.SUPPRESS)
        add_arguments(command)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    return _run(args, lambda: COMMANDS[args.command][0](args))


def _add_global_flags(parser, default=False):
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks of user errors")
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="also show what TensorFlow, its converter and LiteRT print (their "
                        "start-up lines, conversion details, delegates)")


def program(argv=None):
    """The `mobilenets` program (`python -m mobilenets`, train.py, evaluate.py): `main`, then
    quiet while the native libraries tear down. Returns the exit status."""
    status = main(argv)
    console.quiet_at_exit()
    return status


def train_main(argv=None):
    """train.py: `mobilenets train`."""
    return main(["train", *(sys.argv[1:] if argv is None else argv)])


def evaluate_main(argv=None):
    """evaluate.py: `mobilenets evaluate`."""
    return main(["evaluate", *(sys.argv[1:] if argv is None else argv)])


def _add_config(parser):
    parser.add_argument("--config", required=True, help="experiment YAML file")
    parser.add_argument("--set", action="extend", nargs="+", default=[],
                        metavar="KEY.PATH=VALUE",
                        help="override config values (parsed as YAML); repeatable")


def _load_config(args):
    from mobilenets import config as config_lib

    return config_lib.load(args.config, args.set)


def _run(args, body):
    """Runs `body()`, mapping failures to exit codes: 2 user error, 1 failed run, 130 / 143
    stopped by SIGINT / SIGTERM (see `interrupts`)."""
    try:
        with interrupts.handled():
            body()
        return 0
    except UserError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (TrainingDiverged, ExportCheckFailed) as error:
        if args.debug:
            raise
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except WriteError as error:  # a full disk, a read-only or vanished folder
        if args.debug:
            raise
        print(f"failed: cannot write {error.filename}: {error.strerror}; files written "
              "before are kept. Fix that, then run the same command again.", file=sys.stderr)
        return EXIT_FAILED
    except Interrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return EXIT_TERMINATED if error.signal_number == signal.SIGTERM else EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _setup_logging(verbose):
    """Our log at INFO; the libraries' Python logs (TensorFlow's absl lines) at WARNING, or
    INFO with --verbose; their native lines as `console.setup` says. TensorFlow is imported
    here, its start-up lines held back."""
    console.setup(verbose)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    logging.getLogger("mobilenets").setLevel(logging.INFO)
    with console.quiet_native():
        import tensorflow  # noqa: F401 - loaded now, while its C++ start-up lines are held


# --- commands ---------------------------------------------------------------------------

def _train_arguments(parser):
    _add_config(parser)
    parser.add_argument("--workdir", help="run directory (default: runs/<config name>)")


def train_command(args):
    from mobilenets import experiment, tasks

    config = _load_config(args)
    workdir = args.workdir or pathlib.Path("runs") / pathlib.Path(args.config).stem
    metrics = experiment.train(config, workdir)
    keys = tasks.get(config.task).report_keys
    print(json.dumps({k: metrics.get(k) for k in (*keys, "train_images_per_sec")}))


def _evaluate_arguments(parser):
    _add_config(parser)
    parser.add_argument("--model", required=True, help="a .keras or .tflite file (or a QAT "
                        "run's .h5)")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads")
    _add_api(parser)


def _add_api(parser):
    parser.add_argument("--api", choices=["compiled", "interpreter"], default="compiled",
                        help="LiteRT's API that runs a .tflite file: its CompiledModel (the "
                        "default) or its Interpreter")


def evaluate_command(args):
    from mobilenets import evaluation, tasks

    config = _load_config(args)
    metrics = evaluation.evaluate(config, args.model, args.threads, args.api)
    keys = tasks.get(config.task).report_keys
    print(json.dumps({k: metrics[k] for k in (*keys, "loss", "images") if k in metrics}))


def _export_arguments(parser):
    _add_config(parser)
    parser.add_argument("--model", required=True, help="a .keras file (or a QAT run's .h5)")
    parser.add_argument("--modes", nargs="+", metavar="MODE",
                        help="float32 float16 dynamic_range int8 int16x8 (default: "
                             "export.modes of the config)")
    parser.add_argument("--workdir", help="writes <workdir>/export/ (default: the model's "
                        "folder)")
    parser.add_argument("--npu", nargs="+", metavar="TARGET",
                        help="also compile the int8 file for these NPUs ahead of time, into "
                        "export/npu/: qualcomm, mediatek, google_tensor, intel_openvino, each "
                        "optionally :CHIP (qualcomm:SM8650); export.npu of the config")


def export_command(args):
    from mobilenets import tasks
    from mobilenets.export import stage

    if args.npu:
        args.set = [*(args.set or []), f"export.npu={json.dumps(args.npu)}"]
    config = _load_config(args)
    task = tasks.get(config.task)
    report = stage.export_model(config, task, args.model, args.workdir, args.modes)
    keys = (task.headline, "agreement", "size_mb", "partitions")
    printed = {name: {k: entry[k] for k in keys} for name, entry in report["files"].items()}
    for name, entries in report.get("npu", {}).items():
        printed[name]["npu"] = {file: placement for entry in entries
                                for file, placement in entry["files"].items()}
    print(json.dumps(printed))


def _predict_arguments(parser):
    parser.add_argument("model", help="a .keras or .tflite file")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, any size, "
                        "gray or colour")
    parser.add_argument("--top", type=int, default=3, help="labels (a detector's: objects) per "
                        "image (default 3)")
    parser.add_argument("--labels", help="class names, one per line (default: the labels "
                        "packed in a .tflite file, or labels.txt beside the model)")
    parser.add_argument("--masks", metavar="DIR", help="a segmenter's masks of class "
                        "indices, at each image's size, written to DIR as <image>.mask.png")
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_api(parser)


def predict_command(args):
    from mobilenets import prediction, tasks

    results = prediction.predict_files(args.model, args.images, top=args.top,
                                       labels_path=args.labels, masks_dir=args.masks,
                                       api=args.api)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        print(f"{result['image']}: {tasks.describe(result)}")


def _sweep_arguments(parser):
    parser.add_argument("--config", help="the experiment YAML file every point starts from")
    parser.add_argument("--grid", help="the grid YAML file (`grid:` keys and their values, "
                        "optional `variants:`)")
    parser.add_argument("--workdir", help="where the points' run directories and the table go "
                        "(default: runs/sweep_<config name>)")
    parser.add_argument("--parallel", type=int, default=1,
                        help="points trained at once, each in its own process (default 1)")
    parser.add_argument("--front-by", choices=["latency", "size"], default="latency",
                        help="the front is accuracy against int8 latency (default) or size")
    parser.add_argument("--budget-ms", type=float, help="name the best point at most this fast")
    parser.add_argument("--budget-mb", type=float, help="name the best point at most this large")
    parser.add_argument("--latency-from", metavar="CSV",
                        help="int8 latencies measured elsewhere (a phone): a CSV of file,ms, "
                        "file a point's name or its export/model_int8.tflite path")
    parser.add_argument("--collect", nargs="+", metavar="DIR",
                        help="tabulate the finished points of these sweep folders (several "
                        "machines' workdirs) instead of training")


def sweep_command(args):
    from mobilenets import sweep

    if args.parallel < 1:
        raise UserError("--parallel must be at least 1")
    if args.collect:
        folders = sweep.collect(args.collect)
        workdir = args.workdir or "runs/sweep"
        files.writable_folder(workdir, "--workdir")
    else:
        if not (args.config and args.grid):
            raise UserError("sweep: give --config and --grid (or --collect DIR ...)")
        workdir = args.workdir or pathlib.Path("runs") / f"sweep_{pathlib.Path(args.config).stem}"
        folders = sweep.run(args.config, args.grid, workdir, args.parallel)
    results = sweep.table(folders, workdir, by="int8_ms" if args.front_by == "latency" else
                          "int8_mb", budget_ms=args.budget_ms, budget_mb=args.budget_mb,
                          latency_from=args.latency_from)
    print((pathlib.Path(workdir) / "sweep.md").read_text())
    if results["budget"]["best"]:
        print(json.dumps({"best_within_budget": results["budget"]["best"]}))


def _models_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--name", action="append", help="only this model (repeatable)")


def models_command(args):
    from mobilenets import catalogue
    from mobilenets.models.registry import list_models

    unknown = sorted(set(args.name or []) - set(list_models()))
    if unknown:
        raise UserError(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(list_models())}")
    table = list(catalogue.rows(args.name))
    print(json.dumps(table, indent=2) if args.json else catalogue.format_table(table))


def _benchmark_arguments(parser):
    parser.add_argument("model", help="a .tflite or .keras file, or a model name "
                        "(`mobilenets models`), built with random weights")
    parser.add_argument("--input-size", type=int, default=224,
                        help="input height and width for a model name (default 224)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs (default 30)")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads")
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_api(parser)


def benchmark_command(args):
    from mobilenets import benchmark

    if args.runs < 1 or args.threads < 1:
        raise UserError("--runs and --threads must be at least 1")
    rows = benchmark.run(args.model, input_size=args.input_size, runs=args.runs,
                         threads=args.threads, api=args.api)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print("  ".join(f"{key} {value}" for key, value in row.items()))


COMMANDS = {
    "train": (train_command, _train_arguments,
              "train, evaluate and export the experiment of a YAML config (resumes a run)"),
    "evaluate": (evaluate_command, _evaluate_arguments,
                 "score a .keras or .tflite model on the evaluation split"),
    "export": (export_command, _export_arguments,
               "export a saved model to TFLite files, verified like a run's"),
    "predict": (predict_command, _predict_arguments,
                "classify image files with a .keras or .tflite model, as a phone would"),
    "models": (models_command, _models_arguments,
               "table of every published variant: parameters, multiply-adds, paper figures"),
    "benchmark": (benchmark_command, _benchmark_arguments,
                  "latency of a model on this CPU (LiteRT, batch 1) and its XNNPACK coverage"),
    "sweep": (sweep_command, _sweep_arguments,
              "train an experiment over a grid of widths, resolutions and families; the "
              "accuracy-latency front"),
}
