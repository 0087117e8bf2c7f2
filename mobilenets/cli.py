"""Command lines: `train.py`, `evaluate.py` and `python -m mobilenets <command>`.

User errors (bad config, missing data, bad option) exit with status 2 and one message naming
the culprit; `--debug` shows the traceback instead.
"""

import argparse
import json
import logging
import pathlib
import sys

from mobilenets.errors import UserError


def _parser(prog, description):
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def _add_config(parser):
    parser.add_argument("--config", required=True, help="experiment YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config value (parsed as YAML); repeatable")


def _run(args, body):
    """Runs `body()`, mapping failures to exit codes: 2 user error, 1 failed run."""
    from mobilenets.export import ExportCheckFailed
    from mobilenets.files import WriteError
    from mobilenets.training import TrainingDiverged

    try:
        body()
        return 0
    except UserError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (TrainingDiverged, ExportCheckFailed) as error:
        if args.debug:
            raise
        print(f"failed: {error}", file=sys.stderr)
        return 1
    except WriteError as error:  # a full disk, a read-only or vanished folder
        if args.debug:
            raise
        print(f"failed: cannot write {error.filename}: {error.strerror}; files written "
              "before are kept. Fix that, then run the same command again.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


def _setup_logging():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mobilenets").setLevel(logging.INFO)


def train_main(argv=None):
    parser = _parser("train.py", "Train, evaluate and export the experiment of a YAML config.")
    _add_config(parser)
    parser.add_argument("--workdir", help="run directory (default: runs/<config name>)")
    args = parser.parse_args(argv)
    _setup_logging()

    def body():
        from mobilenets import config as config_lib
        from mobilenets.training import train

        config = config_lib.load(args.config, args.set)
        workdir = args.workdir or pathlib.Path("runs") / pathlib.Path(args.config).stem
        metrics = train(config, workdir)
        print(json.dumps({k: metrics.get(k) for k in ("top1", "top5", "train_images_per_sec")}))
    return _run(args, body)


def evaluate_main(argv=None):
    parser = _parser("evaluate.py", "Score a .keras or .tflite model on the evaluation split.")
    _add_config(parser)
    parser.add_argument("--model", required=True, help="a .keras or .tflite file")
    parser.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    args = parser.parse_args(argv)
    _setup_logging()

    def body():
        from mobilenets import config as config_lib
        from mobilenets.evaluate import evaluate

        config = config_lib.load(args.config, args.set)
        metrics = evaluate(config, args.model, args.threads)
        print(json.dumps({k: metrics[k] for k in ("top1", "top5", "loss", "images")}))
    return _run(args, body)


def main(argv=None):
    parser = _parser("python -m mobilenets", "mobilenets tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="table of every registered model variant")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.add_argument("--name", action="append", help="only this model (repeatable)")
    export = commands.add_parser(
        "export", help="export a saved model to TFLite like train.py's export stage")
    _add_config(export)
    export.add_argument("--model", required=True, help="a .keras file (or a QAT run's .h5)")
    export.add_argument("--modes", nargs="+", metavar="MODE",
                        help="float32 float16 dynamic_range int8 int16x8 (default: "
                             "export.modes of the config)")
    export.add_argument("--workdir", help="writes <workdir>/export/ (default: the model's folder)")
    args = parser.parse_args(argv)
    _setup_logging()
    return _run(args, lambda: COMMANDS[args.command](args))


def models_command(args):
    from mobilenets import catalogue
    from mobilenets.models.registry import list_models

    unknown = sorted(set(args.name or []) - set(list_models()))
    if unknown:
        raise UserError(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(list_models())}")
    table = list(catalogue.rows(args.name))
    print(json.dumps(table, indent=2) if args.json else catalogue.format_table(table))


def export_command(args):
    from mobilenets import config as config_lib
    from mobilenets.export import export_model

    config = config_lib.load(args.config, args.set)
    report = export_model(config, args.model, args.workdir, args.modes)
    print(json.dumps({name: {k: entry[k] for k in ("top1", "agreement", "size_mb", "partitions")}
                      for name, entry in report["files"].items()}))


COMMANDS = {"models": models_command, "export": export_command}
