"""What every measured result carries: the command, the date, the commit and the machine."""

import os
import pathlib
import platform
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def commit():
    """The checkout's commit, with "+changes" when its files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def machine():
    """The CPU (model, cores, AVX-512 and VNNI: int8 speed depends on them) and the versions."""
    flags, model = set(), platform.processor()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import keras
    import tensorflow as tf

    return {"cpu": model, "cores": os.cpu_count(), "avx512": "avx512f" in flags,
            "vnni": "avx512_vnni" in flags, "tensorflow": tf.__version__,
            "keras": keras.__version__}


def stamp():
    """{"command", "date", "commit", "machine"} for a results file."""
    script = pathlib.Path(sys.argv[0]).resolve()
    command = " ".join(["python", str(script.relative_to(ROOT)) if script.is_relative_to(ROOT)
                        else sys.argv[0], *sys.argv[1:]])
    return {"command": command, "date": time.strftime("%Y-%m-%d"), "commit": commit(),
            "machine": machine()}
