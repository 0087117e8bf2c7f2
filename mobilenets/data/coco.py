"""COCO-format detection annotations (what labelling tools export and users have): a JSON
file of `images`, `annotations` (boxes as [x, y, width, height] pixels) and `categories`, and a
folder of the images it names. Every entry is checked on reading: a missing image, a box
outside its image or an unknown category stops with the file and the entry at fault.
"""

import dataclasses
import json
import pathlib

import numpy as np

from mobilenets.errors import UserError

TOLERANCE = 1.0  # pixels a box may spill over the image's edge (rounding by labelling tools)


@dataclasses.dataclass
class Annotated:
    """One image: its path, and its objects' boxes ([ymin, xmin, ymax, xmax] as fractions of
    the image) and classes (0-based indices into the categories, in id order)."""

    path: pathlib.Path
    boxes: np.ndarray
    classes: np.ndarray


def read(json_path, image_dir=None):
    """(list of `Annotated`, class names) from a COCO instances file; images are looked up in
    `image_dir` (default: the JSON's folder, then its `images/` subfolder). Crowd annotations
    (`iscrowd` 1) are left out, as COCO's evaluation ignores them. UserError names the file and
    the entry at fault."""
    json_path = pathlib.Path(json_path)
    try:
        data = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise UserError(f"annotation file not found: {json_path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{json_path}: not a JSON file ({error})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise UserError(f"{json_path}: no {key!r} list; not a COCO instances file")
    categories = sorted(data["categories"], key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(categories)}
    folders = [pathlib.Path(image_dir)] if image_dir else [json_path.parent,
                                                           json_path.parent / "images"]
    images = {}
    for entry in data["images"]:
        path = next((f / entry["file_name"] for f in folders if (f / entry["file_name"]).is_file()),
                    None)
        if path is None:
            raise UserError(f"{json_path}: image id {entry['id']}: {entry['file_name']} not found "
                            f"in {' or '.join(map(str, folders))}")
        images[entry["id"]] = (path, entry["width"], entry["height"], [], [])
    for entry in data["annotations"]:
        where = f"{json_path}: annotation id {entry.get('id')}"
        if entry.get("iscrowd"):
            continue
        if entry["image_id"] not in images:
            raise UserError(f"{where}: image id {entry['image_id']} is not in 'images'")
        if entry["category_id"] not in index:
            raise UserError(f"{where}: unknown category id {entry['category_id']} (the "
                            f"categories: {', '.join(str(c) for c in index)})")
        path, width, height, boxes, classes = images[entry["image_id"]]
        x, y, w, h = entry["bbox"]
        if (w <= 0 or h <= 0 or x < -TOLERANCE or y < -TOLERANCE or x + w > width + TOLERANCE
                or y + h > height + TOLERANCE):
            raise UserError(f"{where}: box {entry['bbox']} (x, y, width, height) is empty or "
                            f"outside its {width}x{height} image {path.name}")
        boxes.append(np.clip([y / height, x / width, (y + h) / height, (x + w) / width], 0, 1))
        classes.append(index[entry["category_id"]])
    annotated = [Annotated(path, np.array(boxes, np.float32).reshape(-1, 4),
                           np.array(classes, np.int32))
                 for path, _, _, boxes, classes in images.values()]
    return annotated, [c["name"] for c in categories]
