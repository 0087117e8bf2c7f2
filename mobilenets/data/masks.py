"""Images with masks of class indices (segmentation) from folders, in one of two layouts under
`data.dir`:

- `<split>/images/<name>.<jpg|png|...>` beside `<split>/masks/<name>.png`, the class names in
  `labels.txt` (line i names mask value i);
- PASCAL VOC's: `ImageSets/Segmentation/<split>.txt` listing the ids of `JPEGImages/<id>.jpg`
  and `SegmentationClass/<id>.png` (its 21 classes unless a `labels.txt` says otherwise).

A mask is a single-channel PNG (gray, or VOC's palette, whose indices are the classes) of its
image's size; value 255 marks pixels not to train or score on (VOC's object borders). Every mask
is checked when the data loads, and a mask of another size than its image, or with a value
that is no class, stops with the file's name.
"""

import concurrent.futures
import io
import logging
import os
import pathlib

import numpy as np

from mobilenets.data.checks import checked_split
from mobilenets.data.mask_transforms import IGNORE_INDEX
from mobilenets.data.sources import IMAGE_SUFFIXES
from mobilenets.data.splits import Data
from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def load_mask_folder(config, seed, wanted, channels):
    """The `data.train_split` and `data.eval_split` of the mask folder `data.dir`."""
    del seed
    root = pathlib.Path(config.dir)
    if not config.dir or not root.is_dir():
        raise UserError(f"data.dir: folder {config.dir!r} not found (images and masks)")
    voc = (root / "ImageSets" / "Segmentation").is_dir()
    class_names = _class_names(root, voc)
    loaded = {}
    for name, split in (("train", config.train_split), ("eval", config.eval_split)):
        if name not in wanted:
            continue
        images, masks = (_voc_pairs if voc else _folder_pairs)(root, split, f"data.{name}_split")
        encoded = _checked_masks(images, masks, len(class_names))
        loaded[name] = checked_split(root, np.array([str(p) for p in images], dtype=object),
                                     np.array(encoded, dtype=object), config, channels)
        log.info("%s (%s): %d images with masks, %d classes", root, split, len(loaded[name]),
                 len(class_names))
    return Data(loaded.get("train"), loaded.get("eval"), class_names)


def _class_names(root, voc):
    path = root / "labels.txt"
    if path.is_file():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise UserError(f"{path} is empty (the class names, one per line)")
        if len(names) > IGNORE_INDEX:
            raise UserError(f"{path}: {len(names)} classes; masks hold at most {IGNORE_INDEX} "
                            f"(value {IGNORE_INDEX} marks unlabelled pixels)")
        return names
    if voc:
        return list(VOC_CLASSES)
    raise UserError(f"data.dir: {path} not found (the class names, one per line: line i names "
                    "mask value i)")


def _folder_pairs(root, split, key):
    images_dir, masks_dir = root / split / "images", root / split / "masks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise UserError(f"{key}: {folder} not found (expected {split}/images/ and "
                            f"{split}/masks/ under data.dir, or PASCAL VOC's layout)")
    images = sorted(p for p in images_dir.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not images:
        raise UserError(f"{key}: {images_dir} has no images")
    masks = [masks_dir / f"{p.stem}.png" for p in images]
    return images, masks


def _voc_pairs(root, split, key):
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        found = sorted(p.stem for p in listing.parent.glob("*.txt"))
        raise UserError(f"{key}: {listing} not found; the splits listed there: "
                        f"{', '.join(found) or 'none'}")
    ids = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if not ids:
        raise UserError(f"{key}: {listing} lists no images")
    return ([root / "JPEGImages" / f"{i}.jpg" for i in ids],
            [root / "SegmentationClass" / f"{i}.png" for i in ids])


def _checked_masks(images, masks, num_classes):
    """Each mask as the PNG bytes of its class indices (palette masks as their indices);
    UserError naming the first pair that is missing, unreadable, of two sizes, or with values
    that are no class."""
    def check(pair):
        image, mask = pair
        return _checked_mask(image, mask, num_classes)

    workers = min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(check, zip(images, masks)))


def _checked_mask(image_path, mask_path, num_classes):
    from PIL import Image, UnidentifiedImageError

    if not mask_path.is_file():
        raise UserError(f"data: {image_path} has no mask ({mask_path} not found)")
    try:
        with Image.open(image_path) as image:
            size = image.size
    except (OSError, UnidentifiedImageError, ValueError):
        size = None  # an unreadable image: checked_split skips it, or stops, as configured
    try:
        with Image.open(mask_path) as mask:
            if mask.mode not in ("L", "P"):
                raise UserError(f"data: mask {mask_path} is a {mask.mode} image; a mask is a "
                                "single-channel PNG (gray or palette) of class indices")
            values = np.asarray(mask)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise UserError(f"data: mask {mask_path} cannot be read ({error})") from None
    if size is not None and values.shape[::-1] != size:
        raise UserError(f"data: mask {mask_path} is {values.shape[1]}x{values.shape[0]} pixels, "
                        f"its image {image_path} {size[0]}x{size[1]}")
    wrong = np.setdiff1d(np.unique(values), [*range(num_classes), IGNORE_INDEX])
    if wrong.size:
        raise UserError(f"data: mask {mask_path} has value(s) {', '.join(map(str, wrong[:5]))}, "
                        f"not classes (0 to {num_classes - 1}) nor {IGNORE_INDEX} (unlabelled)")
    out = io.BytesIO()
    Image.fromarray(values.astype(np.uint8)).save(out, "PNG")
    return out.getvalue()
