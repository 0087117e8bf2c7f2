"""The package version (one place: pyproject.toml reads it from here), and the commit of the
checkout it runs from, which run directories and results files record."""

import pathlib
import subprocess

__version__ = "0.1.0"


def commit(folder=None):
    """The git commit (short hash) of the checkout holding `folder` (default: this package's
    source), with "+changes" when its tracked files differ from it; None outside a checkout
    (an installed wheel) or without git."""
    folder = pathlib.Path(folder or pathlib.Path(__file__).parent)
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, text=True,
                              capture_output=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=folder, text=True, capture_output=True, check=True,
                               timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+changes" if dirty else "")
