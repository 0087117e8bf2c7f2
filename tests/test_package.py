"""The package as users meet it: a light import, one command, the sample data it ships."""

import json
import os
import subprocess
import sys

from mobilenets.data import sources


def test_build_model_loads_neither_tfmot_nor_tf_keras():
    code = ("import sys, mobilenets; mobilenets.build_model('mobilenet_v2'); "
            "mobilenets.build_backbone('mobilenet_v2'); "
            "import json; print(json.dumps([m for m in ('tf_keras', "
            "'tensorflow_model_optimization') if m in sys.modules]))")
    # tfmot sets TF_USE_LEGACY_KERAS=1 in os.environ when imported (an earlier QAT test in
    # this process), which would make the child's `tf.keras` load tf_keras: a user's shell
    # does not have it.
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_public_names_resolve_lazily():
    import mobilenets

    for name in mobilenets.__all__:
        assert getattr(mobilenets, name) is not None, name
    assert callable(mobilenets.train) and callable(mobilenets.evaluate)


def test_the_sample_ships_inside_the_package():
    """The bundled sample lives in the package folder (pyproject's package-data), so a
    non-editable install carries it."""
    names = sorted(p.name for p in sources.SAMPLE_DIR.iterdir())
    assert names == ["LICENSE", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                     "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert sources.SAMPLE_DIR.parent.name == "mobilenets"
