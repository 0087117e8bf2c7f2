"""The experiment schema: defaults, overrides, and a clear error for every bad value."""

import pathlib

import pytest

from mobilenets import config as config_lib
from mobilenets.errors import UserError

EXPERIMENTS = sorted(pathlib.Path(__file__).parents[1].glob("experiments/*.yaml"))


def write(tmp_path, text):
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


def load(tmp_path, text, *overrides):
    return config_lib.load(write(tmp_path, text), overrides)


def test_empty_file_gives_the_defaults(tmp_path):
    assert load(tmp_path, "") == config_lib.Config()


def test_yaml_overrides_only_what_it_names(tmp_path):
    config = load(tmp_path, "model:\n  alpha: 0.5\ntrain:\n  epochs: 3\n")
    assert config.model.alpha == 0.5 and config.train.epochs == 3
    assert config.model.name == "mobilenet_v2" and config.train.batch_size == 32


def test_set_overrides_are_parsed_as_yaml(tmp_path):
    config = load(tmp_path, "model:\n  init_from: a.keras\n", "model.input_shape=[160,160,3]",
                  "export.modes=[]", "model.init_from=", "train.learning_rate=1e-3",
                  "model.options={minimalistic: true}", "model.name=mobilenet_v3_small")
    assert config.model.input_shape == [160, 160, 3]
    assert config.export.modes == []
    assert config.model.init_from == ""
    assert config.train.learning_rate == 0.001
    assert config.model.options == {"minimalistic": True}


def test_integers_widen_to_floats(tmp_path):
    assert load(tmp_path, "model:\n  alpha: 1\n").model.alpha == 1.0


@pytest.mark.parametrize("text, overrides, message", [
    ("train:\n  epoch: 3\n", (), r"unknown config key train.epoch \(did you mean "
                                 r"train.epochs\?\); valid keys in train: epochs, batch_size"),
    ("trian:\n  epochs: 3\n", (), r"unknown config key trian \(did you mean train\?\)"),
    ("", ("train.batchsize=3",), r"unknown config key train.batchsize \(did you mean "
                                 r"train.batch_size\?\)"),
    ("train:\n  batch_size: big\n", (), r"train.batch_size: expected an integer, got 'big'"),
    ("train:\n  batch_size: 32.5\n", (), r"train.batch_size: expected an integer"),
    ("train:\n  epochs: true\n", (), r"train.epochs: expected an integer, got True"),
    ("train:\n  nesterov: 1\n", (), r"train.nesterov: expected true or false"),
    ("model:\n  input_shape: 224\n", (), r"model.input_shape: expected a list"),
    ("model:\n  input_shape: [224, 224, x]\n", (), r"model.input_shape\[2\]: expected an integer"),
    ("train:\n  optimizer: rmsprp\n", (), r"train.optimizer: 'rmsprp' \(str\) is not one of "
                                         r"rmsprop, sgd, adam, adamw \(did you mean rmsprop\?\)"),
    ("export:\n  modes: [int4]\n", (), r"export.modes\[0\]: 'int4' \(str\) is not one of"),
    ("train: 3\n", (), r"train: expected a mapping"),
    ("model:\n  alpha: 0\n", (), r"model.alpha must be > 0, got 0"),
    ("model:\n  alpha: -0.5\n", (), r"model.alpha must be > 0"),
    ("train:\n  batch_size: 0\n", (), r"train.batch_size must be > 0, got 0"),
    ("train:\n  epochs: -1\n", (), r"train.epochs must be >= 0, got -1"),
    ("data:\n  crop_padding: -2\n", (), r"data.crop_padding must be >= 0, got -2"),
    ("data:\n  erase_probability: 2\n", (), r"data.erase_probability must be between 0 and 1"),
    ("train:\n  label_smoothing: 1.5\n", (), r"train.label_smoothing must be between 0 and 1"),
    ("model:\n  name: mobilenetv2\n", (), r"model.name: unknown model 'mobilenetv2' "
                                           r"\(did you mean mobilenet_v2\?\)"),
    ("model:\n  input_shape: [224, 224, 4]\n", (), r"model.input_shape must be \[height, width, "
                                                   r"1 or 3\]"),
    ("model:\n  options: {minimalist: true}\n  name: mobilenet_v3_large\n", (),
     r"model.options.minimalist: not an option of mobilenet_v3_large \(did you mean "
     r"minimalistic\?\)"),
    ("model:\n  options: {alpha: 0.5}\n", (), r"model.options.alpha: not an option"),
    ("", ("train.epochs",), r"--set expects key.path=value"),
    ("", ("train.epochs.x=1",), r"train.epochs: expected an integer, got \{.x.: 1\}"),
    ("- a\n- b\n", (), r"the top level must be a mapping"),
])
def test_bad_configs_name_the_key(tmp_path, text, overrides, message):
    with pytest.raises(UserError, match=message):
        load(tmp_path, text, *overrides)


def test_yaml_syntax_error_gives_the_line(tmp_path):
    with pytest.raises(UserError, match=r"YAML syntax error at line 4, column 6: .*"
                                        r"\(while parsing a flow sequence at line 3\)"):
        load(tmp_path, "model:\n  alpha: 0.5\n  name: [mobilenet_v2\ntrain:\n  epochs: 1\n")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"config file not found: .*nope.yaml"):
        config_lib.load(tmp_path / "nope.yaml")


def test_dump_round_trips(tmp_path):
    config = load(tmp_path, "model:\n  alpha: 0.75\n  options: {minimalistic: true}\n"
                            "  name: mobilenet_v3_small\n", "export.modes=[int8]")
    again = config_lib.load(write(tmp_path, config_lib.dump(config)))
    assert again == config


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiments_load_and_say_what_they_reproduce(path):
    config_lib.load(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20
