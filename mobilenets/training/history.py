"""The per-epoch log of a run (`history.csv`, Keras' CSVLogger): trimming it on resume, and
its plot."""

import csv
import pathlib

from mobilenets import files


def forget_epochs_after(history_csv, epochs):
    """Drops the CSV log rows of epochs >= `epochs`, which a resumed run trains again."""
    path = pathlib.Path(history_csv)
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:]
                        if line.strip() and int(line.split(",", 1)[0]) < epochs]
    if len(kept) < len(lines):
        files.write_text(path, "".join(kept))


def plot_history(history_csv, png):
    """Plots loss and accuracy per epoch from Keras' CSV log."""
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
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "evaluation")):
            if key in rows[0]:
                axis.plot(epochs, [float(r[key]) for r in rows], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)
