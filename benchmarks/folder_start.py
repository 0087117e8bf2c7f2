"""How long a run takes to start on a large image folder, and its peak memory: the first start
(every file checked) and a second one (a resume: the checks remembered).

    python benchmarks/folder_start.py --photos DIR [--files 100000] [--classes 100]
                                      [--json results/folder_start.json]

Builds a folder of `--files` images under `--classes` class folders from hard links of the
JPEG photos in DIR (each photo linked many times, in a temporary folder on the same file
system as DIR), then, each in a fresh process with an empty check cache the first time, loads
it as `mobilenets train` does (`data.source: folder` with `data.validation_fraction` 0.01,
`data.max_cache_mb` 4096: the bytes do not fit, so the split streams from disk): the wall
clock and CPU time of `data.load` and the process's peak resident memory. The photos are the
operating system's to cache (hard links of a few hundred files): this measures the check, not
the disk. The extrapolation to 1,281,167 files (ImageNet's training set) scales the times by
the file count.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance  # noqa: E402

IMAGENET_TRAIN = 1_281_167

START = """
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, {root!r})
import tensorflow  # imported before the clock starts, as the command does before loading data
from mobilenets import data as data_lib
from mobilenets.config import DataConfig
wall, cpu = time.perf_counter(), time.process_time()
data = data_lib.load(DataConfig(source="folder", dir={folder!r}, eval_split="",
                                validation_fraction=0.01, max_cache_mb=4096))
print(json.dumps({{"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "train": len(data.train), "eval": len(data.eval),
                  "streamed": data.train.paths is not None}}))
"""


def build(photos, folder, count, classes):
    sources = sorted(p for p in pathlib.Path(photos).rglob("*")
                     if p.suffix.lower() in (".jpg", ".jpeg"))
    if not sources:
        raise SystemExit(f"--photos {photos}: no JPEG files")
    per_class = count // classes
    for label in range(classes):
        target = folder / f"n{label:08d}"
        target.mkdir(parents=True)
        for index in range(per_class):
            source = sources[(label * per_class + index) % len(sources)]
            os.link(source, target / f"{label:04d}_{index:06d}.JPEG")
    return len(sources), sum(p.stat().st_size for p in sources) / len(sources)


def start(folder, cache):
    done = subprocess.run([sys.executable, "-c", START.format(root=str(ROOT), folder=str(folder))],
                          env={**os.environ, "MOBILENETS_CACHE_DIR": str(cache)},
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="a folder of JPEG photos")
    parser.add_argument("--photos-origin", default="",
                        help="where the photos come from, for the results file")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--json", help="write the results here (and Markdown beside it)")
    args = parser.parse_args()
    results = provenance.stamp()
    with tempfile.TemporaryDirectory(dir=pathlib.Path(args.photos).parent) as tmp:
        folder, cache = pathlib.Path(tmp) / "images", pathlib.Path(tmp) / "cache"
        distinct, mean_bytes = build(args.photos, folder, args.files, args.classes)
        results["folder"] = {"files": args.files, "classes": args.classes,
                             "distinct_photos": distinct, "origin": args.photos_origin,
                             "gigabytes": round(args.files * mean_bytes / 2**30, 1)}
        print(json.dumps(results), flush=True)
        rows = []
        for name in ("first start", "second start (resume)"):
            row = {"start": name, **start(folder, cache)}
            row["files_per_s"] = round(args.files / row["seconds"])
            row["seconds_for_imagenet_train"] = round(row["seconds"] * IMAGENET_TRAIN / args.files)
            rows.append({key: round(value, 1) if isinstance(value, float) else value
                         for key, value in row.items()})
            print(json.dumps(rows[-1]), flush=True)
    results["starts"] = rows
    if args.json:
        provenance.save(results, args.json)


if __name__ == "__main__":
    main()
