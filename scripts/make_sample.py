"""Builds the bundled Fashion-MNIST sample (mobilenets/sample/) from the full IDX files.

    python scripts/make_sample.py [--source /usr/share/datasets/fashion-mnist] [--train 1000]
                                  [--test 200]

Takes a seeded, class-balanced subset (per class: --train training images, --test test
images) and writes it in the same gzipped IDX format, with the dataset's licence.
The full set comes from Debian's dataset-fashion-mnist package (Expat licence, Zalando SE).
"""

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from mobilenets.data.sources import FASHION_MNIST_DIR, SAMPLE_DIR, read_idx, write_idx  # noqa: E402

LICENSE = """\
The files in this folder are a subset of Fashion-MNIST
(https://github.com/zalandoresearch/fashion-mnist), made by scripts/make_sample.py.

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def balanced_subset(labels, per_class, rng):
    """Indices of `per_class` random images of each class, in a shuffled order."""
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
              for c in np.unique(labels)]
    return rng.permutation(np.concatenate(chosen))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=FASHION_MNIST_DIR)
    parser.add_argument("--train", type=int, default=1000, help="training images per class")
    parser.add_argument("--test", type=int, default=200, help="test images per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    source = pathlib.Path(args.source)
    SAMPLE_DIR.mkdir(exist_ok=True)
    for prefix, per_class in (("train", args.train), ("t10k", args.test)):
        images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz")
        keep = balanced_subset(labels, per_class, rng)
        write_idx(SAMPLE_DIR / f"{prefix}-images-idx3-ubyte.gz", images[keep])
        write_idx(SAMPLE_DIR / f"{prefix}-labels-idx1-ubyte.gz", labels[keep])
        print(f"{prefix}: {len(keep)} images")
    (SAMPLE_DIR / "LICENSE").write_text(LICENSE)
    total = sum(p.stat().st_size for p in SAMPLE_DIR.iterdir())
    print(f"wrote {SAMPLE_DIR} ({total / 2**20:.2f} MB)")


if __name__ == "__main__":
    main()
