"""The per-epoch log of a run (`history.csv`, Keras' CSVLogger): trimming it on resume, and
its plot."""

import csv
import logging
import pathlib

from mobilenets import files

log = logging.getLogger("mobilenets")


def forget_epochs_after(history_csv, epochs):
    """Keeps the CSV log rows of epochs < `epochs` (a resumed run trains the others again)
    that are whole: a row torn by a power loss or a full disk (cut short, NUL bytes, a second
    header) is dropped with a warning, so that the appended rows stay readable."""
    path = pathlib.Path(history_csv)
    if not path.is_file():
        return
    lines = path.read_bytes().decode(errors="replace").splitlines(keepends=True)
    if not lines or not lines[0].startswith("epoch,") or not lines[0].endswith("\n"):
        log.warning("%s has no readable header; starting it again", path)
        path.unlink()
        return
    fields = len(lines[0].split(","))
    whole = [line for line in lines[1:] if _whole_row(line, fields)]
    kept = [line for line in whole if int(line.split(",", 1)[0]) < epochs]
    if len(whole) < len(lines) - 1:
        log.warning("dropped %d damaged line(s) of %s", len(lines) - 1 - len(whole), path)
    if len(kept) < len(lines) - 1:
        files.write_text(path, "".join(lines[:1] + kept))


def _whole_row(line, fields):
    parts = line.split(",")
    return (line.endswith("\n") and len(parts) == fields and parts[0].isdigit()
            and "\x00" not in line and "\ufffd" not in line)


def plot_history(history_csv, png):
    """Plots loss and accuracy (segmentation: pixel accuracy; detection: the class term of the
    loss) per epoch from Keras' CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not pathlib.Path(history_csv).is_file():
        return
    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    # classification's accuracy, segmentation's pixel accuracy, detection's class loss
    second = next((key for key in ("accuracy", "pixel_accuracy", "classes_loss")
                   if key in rows[0]), "loss")
    for axis, metric in zip(axes, ("loss", second)):
        for key, label in ((metric, "train"), (f"val_{metric}", "evaluation")):
            if key in rows[0]:
                axis.plot(epochs, [float(r[key]) for r in rows], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)
