"""The start-up check of image files, remembered between runs, and the split of what passed.

Every image file a run trains or evaluates on is checked once by decoding it as training will
(`decode`), so an image that passes always decodes later. A folder of a million photos cannot
afford that at every start, nor its bytes in memory, so:

- each file's verdict is remembered in a file of the user's cache folder (`cache_folder`),
  keyed by the file's path, size and modification time, and written atomically (also every
  minute during a long first check, so a killed check resumes); only new or changed files are
  checked again;
- the check itself runs in a tf.data pipeline (TensorFlow's threads, no Python per file) for
  JPEGs: the size read from the header (`extract_jpeg_shape`) first, so a file larger than
  `data.max_pixels` is never decoded, then the whole decode; the other formats, and the JPEGs
  TensorFlow refuses (CMYK, corrupt), take `decode.check_image` (Pillow reads the header,
  converts what TensorFlow cannot decode);
- the encoded bytes are read into memory only when the kept files fit `data.max_cache_mb`,
  their sizes known from the listing before any is read; otherwise the split streams the files
  from disk.
"""

import concurrent.futures
import dataclasses
import hashlib
import io
import logging
import os
import pathlib
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from mobilenets import console, files
from mobilenets.data.decode import check_image
from mobilenets.data.splits import Split
from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

CACHE_ENV = "MOBILENETS_CACHE_DIR"
VERSION = "mobilenets folder checks 1"
OK, CONVERTED, UNREADABLE, LARGE = "ok", "converted", "unreadable", "large"
OUTCOMES = {"ok": OK, "converted": CONVERTED, "unreadable": UNREADABLE, "too large": LARGE}
SAVE_EVERY_S = 60.0
PROGRESS_EVERY_S = 30.0


def cache_folder():
    """Where verdicts are remembered: $MOBILENETS_CACHE_DIR, else $XDG_CACHE_HOME/mobilenets,
    else ~/.cache/mobilenets."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "mobilenets"


@dataclasses.dataclass
class Listing:
    """Image files of one root: absolute paths (sorted within each class), sizes in bytes and
    modification times in nanoseconds, from one stat each."""

    paths: list
    sizes: np.ndarray
    mtimes: np.ndarray

    @classmethod
    def of(cls, paths):
        sizes, mtimes = np.zeros(len(paths), np.int64), np.zeros(len(paths), np.int64)
        for index, path in enumerate(paths):
            try:
                stat = os.stat(path)
            except OSError:
                sizes[index] = mtimes[index] = -1  # unreadable: checked (and refused) below
                continue
            sizes[index], mtimes[index] = stat.st_size, stat.st_mtime_ns
        return cls(list(paths), sizes, mtimes)


class Verdicts:
    """The remembered verdicts of the files under `root`: path (relative to it) -> (size,
    mtime_ns, outcome, pixels), in `cache_folder()/folder-checks/<hash of root>.tsv`."""

    def __init__(self, root):
        self.root = pathlib.Path(root).resolve()
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:16]
        self.path = cache_folder() / "folder-checks" / f"{digest}.tsv"
        self.known = {}
        self.writable = True

    def load(self):
        try:
            lines = self.path.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            return self
        if not lines or lines[0] != f"# {VERSION} {self.root}":
            return self
        for line in lines[1:]:
            size, mtime, outcome, pixels, name = line.split("\t", 4)
            self.known[name] = (int(size), int(mtime), outcome, int(pixels))
        return self

    def save(self):
        """Writes every verdict atomically; warns once (and goes on) where it cannot."""
        if not self.writable:
            return
        lines = [f"# {VERSION} {self.root}"]
        lines += [f"{size}\t{mtime}\t{outcome}\t{pixels}\t{name}"
                  for name, (size, mtime, outcome, pixels) in self.known.items()]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            files.write_text(self.path, "\n".join(lines) + "\n")
        except (OSError, UserError) as error:
            self.writable = False
            log.warning("cannot remember the image checks in %s (%s); the next start checks "
                        "every file again (set %s to a writable folder)", self.path, error,
                        CACHE_ENV)

    def name(self, path):
        return os.path.relpath(path, self.root)


def checked_split(root, paths, labels, config, channels):
    """A `Split` of the image files `paths` (of `root`) with their `labels`, each file checked
    by decoding it as training will (verdicts remembered, see the module): the unreadable ones
    left out (or an error, as `data.corrupt_images` says), held in memory encoded if they fit
    `data.max_cache_mb`, else streamed from disk."""
    listing = Listing.of(paths)
    verdicts = Verdicts(root).load()
    names = [verdicts.name(path) for path in listing.paths]
    outcomes = np.empty(len(paths), object)
    pixels = np.zeros(len(paths), np.int64)
    todo = []
    for index, name in enumerate(names):
        known = verdicts.known.get(name)
        if (known is not None and known[:2] == (listing.sizes[index], listing.mtimes[index])
                and not (known[2] == LARGE and known[3] <= config.max_pixels)):
            outcomes[index], pixels[index] = known[2], known[3]
        else:
            todo.append(index)
    if todo:
        log.info("checking %d of %d image files in %s (%d remembered)", len(todo), len(paths),
                 root, len(paths) - len(todo))
        _check(listing, todo, names, outcomes, pixels, verdicts, config.max_pixels)
    verdicts.save()
    outcomes = np.where((outcomes == LARGE) | (pixels > config.max_pixels), LARGE, outcomes)
    converted = _converted(listing.paths, outcomes, channels)
    outcomes[[i for i in np.flatnonzero(outcomes == CONVERTED) if i not in converted]] = UNREADABLE
    _report(root, np.array(listing.paths, dtype=object), outcomes, config)
    keep = (outcomes == OK) | (outcomes == CONVERTED)
    return _split(listing, keep, converted, np.asarray(labels)[keep], config)


def _check(listing, todo, names, outcomes, pixels, verdicts, max_pixels):
    """Fills in the verdicts of the files at `todo`: JPEGs in a tf.data pipeline, the rest
    (and the JPEGs it refuses) with `check_image`; remembers them as they come."""
    started = last_save = last_report = time.monotonic()
    done = 0

    def record(index, outcome, count):
        nonlocal done, last_save, last_report
        outcomes[index], pixels[index] = outcome, count
        verdicts.known[names[index]] = (int(listing.sizes[index]), int(listing.mtimes[index]),
                                        outcome, int(count))
        done += 1
        now = time.monotonic()
        if now - last_report > PROGRESS_EVERY_S:
            log.info("checked %d of %d files (%.0f files/s)", done, len(todo),
                     done / (now - started))
            last_report = now
        if now - last_save > SAVE_EVERY_S:
            verdicts.save()
            last_save = now

    jpegs = [i for i in todo if listing.paths[i].lower().endswith((".jpg", ".jpeg"))]
    passed = set()
    for index, count, decoded in _jpeg_checks([listing.paths[i] for i in jpegs], jpegs,
                                              max_pixels):
        passed.add(index)
        record(index, OK if decoded else LARGE, count)
    rest = [i for i in todo if i not in passed]

    def check(index):
        try:
            data = pathlib.Path(listing.paths[index]).read_bytes()
        except OSError:
            return index, UNREADABLE, 0
        _, outcome = check_image(data, 3, max_pixels)  # the channels do not change the verdict
        return index, OUTCOMES[outcome], _pixels(data)

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for index, outcome, count in pool.map(check, rest):
            record(index, outcome, count)


def _jpeg_checks(paths, indices, max_pixels):
    """Yields (index, pixels, decoded) of each JPEG file that TensorFlow reads: its size from
    the header, and whether it was decoded whole (not when it is over `max_pixels`). Files it
    cannot read or decode are left out (they take the general check)."""
    if not paths:
        return

    def verdict(index, path):
        data = tf.io.read_file(path)
        size = tf.image.extract_jpeg_shape(data)
        count = tf.cast(size[0], tf.int64) * tf.cast(size[1], tf.int64)

        def decoded():
            image = tf.io.decode_jpeg(data, channels=0)
            return tf.reduce_all(tf.shape(image)[:2] > 0)

        within = count <= max_pixels
        return index, count, tf.cond(within, decoded, lambda: tf.constant(False))

    dataset = tf.data.Dataset.from_tensor_slices((np.array(indices, np.int64), paths)).map(
        verdict, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False).ignore_errors()
    with console.quiet_native():  # libjpeg's "Corrupt JPEG data" warnings
        for index, count, decoded in dataset.as_numpy_iterator():
            if decoded or count > max_pixels:
                yield int(index), int(count), bool(decoded)


def _pixels(data):
    """Width x height from the header (Pillow), 0 if it cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except Exception:  # noqa: BLE001 - any failure: no size known
        return 0


def _converted(paths, outcomes, channels):
    """The PNG bytes (Pillow's) of each file TensorFlow cannot decode, by index, made at every
    start (such files are rare: 1-bit BMPs, TIFF, CMYK JPEGs); a file that no longer converts
    is left out."""
    result = {}
    for index in np.flatnonzero(outcomes == CONVERTED):
        try:
            data = pathlib.Path(paths[index]).read_bytes()
        except OSError:
            continue
        kept, outcome = check_image(data, channels, np.iinfo(np.int64).max)
        if kept is not None:
            result[int(index)] = kept
    return result


def _split(listing, keep, converted, labels, config):
    """The kept files as a Split: their encoded bytes in memory if they fit
    `data.max_cache_mb` (sizes from the listing, checked before reading any), else their paths
    (the converted ones as their PNG bytes)."""
    kept = np.flatnonzero(keep)
    total = sum(len(converted[i]) if i in converted else int(listing.sizes[i]) for i in kept)
    if config.cache and total <= config.max_cache_mb * 2**20:
        def read(index):
            return converted[index] if index in converted else \
                pathlib.Path(listing.paths[index]).read_bytes()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            encoded = list(pool.map(read, kept))
        return Split(labels=labels, encoded=_objects(encoded))
    if config.cache:
        log.info("streaming %d image files from disk (%.0f MB, above data.max_cache_mb %d)",
                 len(kept), total / 2**20, config.max_cache_mb)
    items = [converted.get(int(i), listing.paths[i]) for i in kept]
    return Split(labels=labels, paths=_objects(items))


def _objects(items):
    """A 1-D object array of `items` (bytes and strings), whatever their lengths."""
    array = np.empty(len(items), object)
    array[:] = items
    return array


def _report(root, paths, outcomes, config):
    """Logs the converted images; stops (`data.corrupt_images: error`) or warns about the
    refused ones, counted by reason."""
    converted = paths[outcomes == CONVERTED]
    if len(converted):
        log.info("converted %d image(s) in %s that TensorFlow cannot decode (e.g. 1-bit BMP, "
                 "TIFF) to PNG in memory, e.g. %s", len(converted), root,
                 ", ".join(converted[:3]))
    refused = {UNREADABLE: "corrupt, truncated or not an image",
               LARGE: f"more than data.max_pixels = {config.max_pixels:,} pixels"}
    for outcome, why in refused.items():
        bad = paths[outcomes == outcome]
        if not len(bad):
            continue
        if config.corrupt_images == "error":
            raise UserError(f"data: image {bad[0]} is {why} (set data.corrupt_images: skip to "
                            "leave such files out)")
        log.warning("skipped %d image(s) in %s that are %s, e.g. %s", len(bad), root, why,
                    ", ".join(bad[:3]))
