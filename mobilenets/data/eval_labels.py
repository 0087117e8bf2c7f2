"""The labels of a flat evaluation folder (`data.eval_labels`): ImageNet's validation set comes as
one folder of 50,000 JPEGs and a file naming each one's class, not as class subfolders.

Two layouts are read (Python's csv module does the parsing; nothing here is ImageNet-specific):
- a `.csv` file of `file,label ...` rows: the file's name with or without its suffix, the label
  the first word of the second column (Kaggle's `LOC_val_solution.csv`: `ILSVRC2012_val_00000001,
  n01751748 10 20 30 40 ...`); a first row whose label is not a class is a header, skipped;
- any other file: one label per line, line i the label of the i-th file in the sorted order of
  the file names (TFDS's `imagenet2012_validation_labels.txt`).
Labels are class names, the names of the training split's class folders (ImageNet's synsets).
"""

import csv
import os
import pathlib

import numpy as np

from mobilenets.errors import UserError

MAX_SHOWN = 3  # names listed in an error message


def read(path, files, class_names):
    """The label index of each of `files` (paths) from the labels file at `path`."""
    path = pathlib.Path(os.path.expanduser(path))
    if not path.is_file():
        raise UserError(f"data.eval_labels: no file {path}")
    index = {name: i for i, name in enumerate(class_names)}
    if path.suffix.lower() == ".csv":
        return _from_csv(path, files, index)
    return _from_lines(path, files, index)


def _from_lines(path, files, index):
    lines = [line.strip() for line in _text(path).splitlines() if line.strip()]
    if len(lines) != len(files):
        raise UserError(f"data.eval_labels: {path} has {len(lines)} labels for {len(files)} "
                        "images (one label per line, in the sorted order of the file names)")
    order = sorted(range(len(files)), key=lambda i: os.path.basename(files[i]))
    labels = np.empty(len(files), np.int64)
    for line_number, (i, label) in enumerate(zip(order, lines), 1):
        labels[i] = _index(label, index, path, f"line {line_number}")
    return labels


def _from_csv(path, files, index):
    rows = list(csv.reader(_text(path).splitlines()))
    by_name = {}
    for row_number, row in enumerate(rows, 1):
        if len(row) < 2 or not row[1].split():
            raise UserError(f"data.eval_labels: {path} row {row_number}: expected "
                            f"file,label, got {','.join(row)[:80]!r}")
        label = row[1].split()[0]
        if row_number == 1 and label not in index:
            continue  # a header
        by_name[row[0].strip()] = _index(label, index, path, f"row {row_number}")
    labels, missing = np.empty(len(files), np.int64), []
    for i, file in enumerate(files):
        name = os.path.basename(file)
        found = by_name.get(name, by_name.get(os.path.splitext(name)[0]))
        if found is None:
            missing.append(name)
        else:
            labels[i] = found
    if missing:
        raise UserError(f"data.eval_labels: {path} has no row for {len(missing)} of the "
                        f"{len(files)} images ({', '.join(missing[:MAX_SHOWN])}"
                        f"{', ...' if len(missing) > MAX_SHOWN else ''})")
    return labels


def _index(label, index, path, where):
    if label not in index:
        shown = ", ".join(list(index)[:MAX_SHOWN]) + (", ..." if len(index) > MAX_SHOWN else "")
        raise UserError(f"data.eval_labels: {path} {where}: {label[:80]!r} is not a class (the "
                        f"class folders of the training split: {shown})")
    return index[label]


def _text(path):
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UserError(f"data.eval_labels: {path} is not UTF-8 text (byte {error.start})") \
            from None
