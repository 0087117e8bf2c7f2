"""The experiment schema: defaults, overrides, and a clear error for every bad value."""

import pathlib

import pytest
import yaml

from mobilenets import config as config_lib
from mobilenets.errors import UserError

ROOT = pathlib.Path(__file__).parents[1]
EXPERIMENTS = sorted([*ROOT.glob("experiments/*.yaml"), *ROOT.glob("experiments/base/*.yaml")])


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
    ("train:\n  optimizer: {type: sgd, sgd: {nesterov: 1}}\n", (),
     r"train.optimizer.sgd.nesterov: expected true or false"),
    ("train:\n  optimizer: {type: sgd, sgd: {momentun: 0.8}}\n", (),
     r"unknown config key train.optimizer.sgd.momentun \(did you mean "
     r"train.optimizer.sgd.momentum\?\)"),
    ("train:\n  optimizer: {type: sgd, rmsprop: {rho: 0.8}}\n", (),
     r"train.optimizer.rmsprop: set, but train.optimizer.type is sgd \(only its sub-section "
     r"applies\)"),
    ("train:\n  schedule: {type: constant, cosine: {min_learning_rate: 0.1}}\n", (),
     r"train.schedule.cosine: set, but train.schedule.type is constant"),
    ("model:\n  input_shape: 224\n", (), r"model.input_shape: expected a list"),
    ("model:\n  input_shape: [224, 224, x]\n", (), r"model.input_shape\[2\]: expected an integer"),
    ("train:\n  optimizer: rmsprp\n", (), r"train.optimizer.type: 'rmsprp' \(str\) is not one "
                                         r"of rmsprop, sgd, adam, adamw \(did you mean "
                                         r"rmsprop\?\)"),
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
                                           r"\(did you mean 'mobilenet_v2'\?\)"),
    ("model:\n  input_shape: [224, 224, 4]\n", (), r"model.input_shape must be \[height, width, "
                                                   r"1 or 3\]"),
    ("model:\n  options: {minimalist: true}\n  name: mobilenet_v3_large\n", (),
     r"model.options: unknown option\(s\) 'minimalist' for mobilenet_v3_large \(did you mean "
     r"'minimalistic'\?\); valid options: minimalistic"),
    ("model:\n  options: {alpha: 0.5}\n", (), r"model.options: unknown option\(s\) 'alpha' for "
                                               r"mobilenet_v2"),
    ("", ("train.epochs",), r"--set expects key.path=value"),
    ("", ("train.epochs.x=1",), r"train.epochs: expected an integer, got \{.x.: 1\}"),
    ("- a\n- b\n", (), r"the top level must be a mapping"),
    ("model:\n  alpha: .inf\n", (), r"model.alpha must be a finite number, got inf"),
    ("", ("train.learning_rate=.nan",), r"train.learning_rate must be a finite number"),
    ("train:\n  seed: -1\n", (), r"train.seed must be between 0 and 2147483647, got -1"),
    ("train:\n  seed: 4294967296\n", (), r"train.seed must be between 0 and 2147483647"),
    ("data:\n  crop_fraction: 0\n", (), r"data.crop_fraction must be > 0 and <= 1, got 0"),
    ("model:\n  dropout: 1\n", (), r"model.dropout must be >= 0 and < 1, got 1"),
    ("base: 3\n", (), r"base: expected the path of a YAML file, got 3"),
    ("train:\n  select: best\n", (), r"train.select: best picks the model by its validation "
                                      r"score, which needs images held out of training: set "
                                      r"data.holdout"),
    ("train:\n  select: first\n", (), r"train.select: 'first' \(str\) is not one of last, best"),
    ("qat:\n  enabled: true\nexport:\n  quantizer: litert\n", (),
     r"export.quantizer: litert quantizes a float model; with qat.enabled"),
    ("data:\n  eval_labels: labels.txt\n", (), r"data.eval_labels is read by data.source folder"),
])
def test_bad_configs_name_the_key(tmp_path, text, overrides, message):
    with pytest.raises(UserError, match=message):
        load(tmp_path, text, *overrides)


def test_yaml_syntax_error_gives_the_line(tmp_path):
    with pytest.raises(UserError, match=r"YAML syntax error at line 4, column 6: .*"
                                        r"\(while parsing a flow sequence at line 3\)"):
        load(tmp_path, "model:\n  alpha: 0.5\n  name: [mobilenet_v2\ntrain:\n  epochs: 1\n")


def test_a_file_extends_its_base(tmp_path):
    """`base:` names a file relative to the one that says it; mappings merge key by key, the
    rest replaces, and a base may have its own."""
    (tmp_path / "dataset.yaml").write_text(
        "model:\n  name: mobilenet_v1\n  alpha: 0.5\n  options: {depth_multiplier: 2}\n"
        "train:\n  epochs: 3\n  batch_size: 16\n"
        "  schedule: {type: step, step: {epochs: [1, 2], factor: 0.5}}\n")
    (tmp_path / "families").mkdir()
    (tmp_path / "families/v1.yaml").write_text(
        "base: ../dataset.yaml\ntrain:\n  epochs: 5\n  schedule: {step: {epochs: [4]}}\n")
    (tmp_path / "families/v1_small.yaml").write_text("base: v1.yaml\nmodel:\n  alpha: 0.25\n")
    config = config_lib.load(tmp_path / "families/v1_small.yaml", ["train.batch_size=8"])
    assert (config.model.name, config.model.alpha) == ("mobilenet_v1", 0.25)
    assert config.model.options == {"depth_multiplier": 2}
    assert (config.train.epochs, config.train.batch_size) == (5, 8)
    assert (config.train.schedule.step.epochs, config.train.schedule.step.factor) == ([4.0], 0.5)


def test_a_file_that_chooses_another_optimizer_drops_its_bases_keys_for_the_old_one(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "train:\n  optimizer: {type: rmsprop, rmsprop: {rho: 0.8, epsilon: 0.002}}\n")
    (tmp_path / "sgd.yaml").write_text(
        "base: base.yaml\ntrain:\n  optimizer: {type: sgd, sgd: {nesterov: true}}\n")
    optimizer = config_lib.load(tmp_path / "sgd.yaml").train.optimizer
    assert (optimizer.type, optimizer.sgd.nesterov) == ("sgd", True)
    assert optimizer.rmsprop == config_lib.schema.RmspropConfig()  # the base's keys are gone
    again = config_lib.load(tmp_path / "base.yaml", ["train.optimizer=adam"]).train.optimizer
    assert again.type == "adam"
    same = config_lib.load(tmp_path / "base.yaml", ["train.optimizer.rmsprop.rho=0.7"])
    assert (same.train.optimizer.rmsprop.rho, same.train.optimizer.rmsprop.epsilon) == (
        0.7, 0.002)


def test_the_flat_optimizer_and_schedule_keys_of_older_files_load_at_their_new_place(
        tmp_path, caplog):
    """An experiment written before train.optimizer and train.schedule became sections loads as
    it did, each moved key named in a warning; an override still wins over a base's key."""
    (tmp_path / "old.yaml").write_text(
        "train:\n  optimizer: rmsprop\n  rho: 0.8\n  momentum: 0.7\n  epsilon: 0.002\n"
        "  schedule: exponential\n  decay_rate: 0.99\n  decay_epochs: 3\n")
    (tmp_path / "newer.yaml").write_text(
        "base: old.yaml\ntrain:\n  optimizer: {rmsprop: {momentum: 0.5}}\n")
    with caplog.at_level("WARNING", logger="mobilenets"):
        config = config_lib.load(tmp_path / "newer.yaml", ["train.decay_rate=0.9"])
    assert config.train.optimizer.rmsprop == config_lib.schema.RmspropConfig(
        momentum=0.5, rho=0.8, epsilon=0.002)
    exponential = config.train.schedule.exponential
    assert (exponential.decay_rate, exponential.decay_epochs) == (0.9, 3.0)
    assert ("config: keys of an older layout: read at their new place train.rho -> "
            "train.optimizer.rmsprop.rho, train.momentum -> ") in caplog.text
    assert "train.decay_rate -> train.schedule.exponential.decay_rate" in caplog.text


def test_an_override_replaces_the_value_at_its_path_a_mapping_too(tmp_path):
    config = load(tmp_path, "model:\n  name: mobilenet_v4\n  options: {variant: conv_medium}\n",
                  "model.name=mobilenet_v2", "model.options={}")
    assert (config.model.name, config.model.options) == ("mobilenet_v2", {})


def test_an_older_run_directorys_config_loads_its_inapplicable_keys_ignored(tmp_path, caplog):
    """A run's config.yaml of the older layout holds every key, RMSProp's with SGD too: they
    were ignored then and are ignored now, named in the warning."""
    with caplog.at_level("WARNING", logger="mobilenets"):
        config = load(tmp_path, "train:\n  optimizer: sgd\n  momentum: 0.8\n  rho: 0.9\n"
                                "  epsilon:\n  beta_1: 0.9\n  schedule: cosine\n"
                                "  min_learning_rate: 0.001\n  decay_rate: 0.98\n")
    assert (config.train.optimizer.type, config.train.optimizer.sgd.momentum) == ("sgd", 0.8)
    assert config.train.schedule.cosine.min_learning_rate == 0.001
    assert ("ignored train.rho (not a key of sgd), train.beta_1 (not a key of sgd), "
            "train.decay_rate (not a key of cosine)") in caplog.text


def test_a_dumped_config_holds_only_the_chosen_optimizer_and_schedule():
    written = config_lib.to_dict(config_lib.from_dict(
        {"train": {"optimizer": "sgd", "schedule": "constant"}}))["train"]
    assert written["optimizer"] == {"type": "sgd", "sgd": {"momentum": 0.9, "nesterov": False}}
    assert written["schedule"] == {"type": "constant"}


def test_bases_that_include_each_other_or_are_missing(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(UserError, match=r"a.yaml: base: files include each other "
                                        r"\(a.yaml -> b.yaml -> a.yaml\)"):
        config_lib.load(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: nope.yaml\n")
    with pytest.raises(UserError, match=r"config file not found: .*nope.yaml"):
        config_lib.load(tmp_path / "c.yaml")


def test_text_that_is_not_utf8_or_too_long_is_refused_briefly(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model:\n  name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.yaml: not UTF-8 text \(byte 18\)"):
        config_lib.load(path)
    with pytest.raises(UserError) as caught:
        load(tmp_path, "model:\n  name: " + "x" * 100_000 + "\n")
    assert len(str(caught.value)) < 400
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(UserError, match=r"too large for a config file"):
        config_lib.load(big)


def test_every_key_says_what_it_means():
    for path, field in config_lib.fields():
        assert len(field.metadata.get("help", "")) > 10, path


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"config file not found: .*nope.yaml"):
        config_lib.load(tmp_path / "nope.yaml")


def test_dump_round_trips(tmp_path):
    config = load(tmp_path, "model:\n  alpha: 0.75\n  options: {minimalistic: true}\n"
                            "  name: mobilenet_v3_small\n", "export.modes=[int8]")
    again = config_lib.load(write(tmp_path, config_lib.dump(config)))
    assert again == config


def leaves(mapping, prefix=""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiments_hold_only_what_differs_from_their_base(path):
    data = yaml.safe_load(path.read_text())
    if "base" not in data:
        return
    base = dict(leaves(config_lib.read(path.parent / data.pop("base"))))
    repeated = [key for key, value in leaves(data) if key in base and base[key] == value]
    assert not repeated, f"{path.name} repeats its base's {', '.join(repeated)}"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiments_load_and_say_what_they_reproduce(path):
    config_lib.load(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20
