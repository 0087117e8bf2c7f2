"""`evaluate.py`: score a .keras or .tflite file on the configured evaluation split."""

import logging
import pathlib

import keras

from mobilenets import data as data_lib
from mobilenets import evaluation, files
from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")


def load_model(path, option="--model"):
    """Loads a `.keras` model, or the `.h5` tf_keras model of a QAT run; UserError if it
    cannot (`option` names the flag or key that gave the path)."""
    path = pathlib.Path(path)
    if path.suffix not in (".keras", ".h5"):
        raise UserError(f"{option} {path}: expected a .keras file (or the .h5 of a QAT run)")
    if not path.is_file():
        raise UserError(f"{option} {path} not found")
    try:
        if path.suffix == ".h5":
            from mobilenets import qat
            return qat.load_model(path)
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - unreadable or foreign file
        raise UserError(f"{option} {path}: cannot load it as a Keras model ({error})") from None


def evaluate(config, model_path, threads=1):
    """Scores the model at `model_path` and writes `<model>.eval.json` and a confusion PNG
    beside it. Returns the metrics."""
    from mobilenets.export import check_tflite_path

    path = pathlib.Path(model_path)
    if path.suffix not in (".keras", ".h5", ".tflite"):
        raise UserError(f"--model {path}: expected a .keras, .tflite or QAT .h5 file")
    if path.suffix == ".tflite":
        check_tflite_path(path)
        runner = evaluation.TFLiteModel(path, threads)
        shape = tuple(int(d) for d in runner.input["shape"][1:])
        num_classes = int(runner.output["shape"][-1])
    else:
        model = load_model(path)
        shape, num_classes = tuple(model.input_shape[1:]), model.output_shape[-1]
    data = data_lib.load(config.data, seed=config.train.seed)
    if len(data.class_names) != num_classes:
        raise UserError(f"--model {path} predicts {num_classes} classes but the data has "
                        f"{len(data.class_names)}")
    dataset = data_lib.eval_dataset(data.eval, config.data, shape, num_classes, batch_size=64)
    if path.suffix == ".tflite":
        metrics = evaluation.evaluate_tflite(path, dataset, data.class_names, threads)
    else:
        metrics = evaluation.evaluate_keras(model, dataset, data.class_names)
    metrics["model"] = str(path)
    files.write_json(path.with_name(path.name + ".eval.json"), metrics)
    evaluation.plot_confusion(metrics["confusion_matrix"], data.class_names,
                              path.with_name(path.name + ".confusion.png"))
    log.info("%s: top-1 %.4f, top-5 %.4f, loss %.4f on %d images%s", path, metrics["top1"],
             metrics["top5"], metrics["loss"], metrics["images"],
             f", median latency {metrics['median_latency_ms']:.2f} ms"
             if metrics.get("median_latency_ms") else "")
    return metrics

