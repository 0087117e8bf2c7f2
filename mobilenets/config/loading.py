"""Reading an experiment: YAML files with `base:` includes, `--set` overrides, and the checked
`Config` built from them (unknown keys, wrong types and out-of-range values raise `UserError`
naming the key path, `train.batch_size`, with a suggestion for near misses)."""

import copy
import dataclasses
import difflib
import math
import pathlib
import types
import typing
from typing import Literal

import yaml

from mobilenets.config import moved, rules
from mobilenets.config.schema import Config, chosen, is_one_of, task_config_class
from mobilenets.errors import UserError

MAX_FILE_BYTES = 1 << 20  # a config file is a few kB; this bounds what YAML is asked to parse
_clip = rules.clip


def load(path, overrides=()):
    """Reads the YAML experiment at `path` (and the files it names as `base:`), applies
    `--set key.path=value` overrides, checks it.

    Returns a `Config`. Raises `UserError` for a missing file, a YAML syntax error (with its
    line), an unknown key, a wrong type or an out-of-range value.
    """
    data = read(path)
    for override in overrides:  # each replaces the value at its path (a mapping too)
        apply_override(data, override)
    return from_dict(data)


def read(path, _seen=()):
    """The nested dict of the YAML file at `path`, merged over the files it names as `base:`
    (relative to itself; a base may have a base), each file's moved keys at their new place."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise UserError(f"{path}: base: files include each other "
                        f"({' -> '.join(p.name for p in _seen)} -> {path.name})")
    data = _parse(path)
    base = data.pop("base", None)
    if base is None:
        return moved.migrate(data)
    if not isinstance(base, str) or not base:
        raise UserError(f"{path}: base: expected the path of a YAML file, got {_show(base)}")
    below = read(path.parent / base, (*_seen, path.resolve()))
    return merge(below, moved.migrate(data, below))


def merge(base, override, _cls=Config):
    """`override` merged into `base`: mappings merge key by key, anything else replaces. A
    choose-one section (`train.optimizer`) whose `type` the override changes is replaced
    whole: the base's keys for its old choice do not apply to the new one."""
    merged = dict(base)
    for key, value in override.items():
        hint = _section_hint(_cls, key)
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict) and not _new_choice(
                hint, below, value):
            merged[key] = merge(below, value, hint)
        else:
            merged[key] = value
    return merged


def _section_hint(cls, key):
    if cls is None or not dataclasses.is_dataclass(cls):
        return None
    names = {field.name for field in dataclasses.fields(cls)}
    hint = section_class(cls, key) if key in names else None
    return hint if dataclasses.is_dataclass(hint) else None


def _new_choice(hint, below, value):
    return (hint is not None and is_one_of(hint) and "type" in value
            and value["type"] != below.get("type", _default_type(hint)))


def _default_type(cls):
    return next(f.default for f in dataclasses.fields(cls) if f.name == "type")


def _parse(path):
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UserError(f"{path}: {path.stat().st_size} bytes is too large for a config file "
                        f"(at most {MAX_FILE_BYTES})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") \
            from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = ""
        if error.context and error.context_mark and error.context_mark is not mark:
            context = f" ({error.context} at line {error.context_mark.line + 1})"
        raise UserError(f"{path}: YAML syntax error{where}: {error.problem}{context}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: YAML syntax error: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections, "
                        f"got {type(data).__name__}")
    return data


def apply_override(data, override):
    """Sets `key.path=value` (value parsed as YAML; empty means empty) in the nested dict."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key.path=value, got {_clip(override)!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {key}: cannot parse {_clip(text)!r} as YAML") from None
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def from_dict(data):
    """Builds a checked `Config` from nested dicts (as read from YAML; moved keys read at their
    new place)."""
    config = _build(Config, moved.migrate(copy.deepcopy(data)), "")
    rules.check(config)
    return config


def to_dict(config):
    """The config as plain nested dicts and lists (YAML-writable); of a choose-one section, its
    type and its chosen sub-section only (the others do not apply)."""
    if not dataclasses.is_dataclass(config):
        return config
    if is_one_of(type(config)):
        choice = chosen(config)
        return {"type": config.type,
                **({config.type: to_dict(choice)} if choice is not None else {})}
    return {field.name: _plain(getattr(config, field.name))
            for field in dataclasses.fields(config)}


def _plain(value):
    if dataclasses.is_dataclass(value):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def dump(config):
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def section_class(cls, name):
    """The type of field `name` of the schema class `cls` (the task section's is built from
    the registered tasks)."""
    if cls is Config and name == "task":
        return task_config_class()
    return typing.get_type_hints(cls)[name]


def fields(cls=Config, prefix="", types=False):
    """Yields (key path, dataclass field) of every key of the schema, in order; with `types`,
    (key path, field, its type)."""
    for field in dataclasses.fields(cls):
        hint = section_class(cls, field.name)
        if dataclasses.is_dataclass(hint):
            yield from fields(hint, f"{prefix}{field.name}.", types)
        else:
            yield (f"{prefix}{field.name}", field, hint) if types else (
                f"{prefix}{field.name}", field)


def _build(cls, data, prefix):
    if is_one_of(cls) and isinstance(data, str):  # `optimizer: sgd`: the type, its defaults
        data = {"type": data}
    if not isinstance(data, dict):
        raise UserError(f"{prefix[:-1] or 'config'}: expected a mapping, got {_show(data)}")
    fields_ = {field.name: field for field in dataclasses.fields(cls)}
    for key in data:
        if key not in fields_:
            path = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(fields_), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise UserError(f"unknown config key {_clip(path)}{hint}; valid keys"
                            f"{' in ' + prefix[:-1] if prefix else ''}: {', '.join(fields_)}")
    values = {}
    for name, field in fields_.items():
        if name not in data:
            continue
        hint = section_class(cls, name)
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, data[name] or {}, f"{path}.")
            continue
        value = _coerce(data[name], hint, path)
        check = field.metadata.get("check")
        if check is not None and value is not None:
            check.check(path, value)
        values[name] = value
    section = cls(**values)
    if is_one_of(cls):
        _check_one_choice(section, data, prefix)
    return section


def _check_one_choice(section, data, prefix):
    """Only the chosen sub-section of a choose-one section may be set."""
    others = [key for key in data if key not in ("type", section.type)]
    if others:
        raise UserError(f"{prefix}{others[0]}: set, but {prefix}type is {section.type} (only "
                        f"its sub-section applies): remove {prefix}{others[0]}, or set "
                        f"{prefix}type: {others[0]}")


def _coerce(value, hint, path):
    """Checks `value` against the type `hint`; returns it (ints widened to floats)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], path)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint_text = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"{path}: {_show(value)} is not one of "
                            f"{', '.join(map(str, args))}{hint_text}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{path}: expected a list, got {_show(value)}")
        return [_coerce(item, args[0], f"{path}[{i}]") for i, item in enumerate(value)]
    if hint is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UserError(f"{path}: expected a mapping, got {_show(value)}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{path}: expected an integer, got {_show(value)}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{path}: expected a number, got {_show(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise UserError(f"{path} must be a finite number, got {value}")
        return value
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise UserError(f"{path}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported config type {hint} at {path}")


def _show(value):
    return f"{_clip(repr(value))} ({type(value).__name__})"
