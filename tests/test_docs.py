"""The README and docs/ say what is true: the generated configuration page is current, links
lead to files and headings, Python blocks run, and every shell command parses with the options
its program has and loads its config; the cheap ones run for real on a finished run."""

import argparse
import importlib.util
import pathlib
import re
import shlex
import shutil
import sys

import pytest

from mobilenets import cli
from mobilenets import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "results").glob("*.md"))]
DOCS = [page for page in PAGES if page.parent != ROOT / "results"]
# Commands a page may show that are not ours to check here: installing, and the test suite.
NOT_OURS = (["apt-get"], ["python", "-m", "pip"], ["python", "-m", "pytest"])


def load_script(relative):
    spec = importlib.util.spec_from_file_location(
        "docs_" + relative.replace("/", "_").removesuffix(".py"), ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blocks(page, language):
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)


def commands(page):
    """The commands of a page's bash blocks: continuation lines joined, `&&` split, comments
    and leading VAR=value assignments dropped; each as an argv list."""
    for block in blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                if "&&" in words:
                    cut = words.index("&&")
                    command, words = words[:cut], words[cut + 1:]
                else:
                    command, words = words, []
                while command and re.fullmatch(r"[A-Z_]+=.*", command[0]):
                    command = command[1:]
                if command:
                    yield command


def program(argv):
    """(`mobilenets` arguments, None) or (None, a script's path) for a command; (None, None)
    for one that is not ours."""
    if argv[0] == "mobilenets":
        return argv[1:], None
    if argv[:2] in (["python", "train.py"], ["python", "evaluate.py"]):
        return [argv[1].removesuffix(".py"), *argv[2:]], None
    if argv[0] == "python" and argv[1].endswith(".py"):
        return None, argv[1]
    if any(argv[:len(prefix)] == prefix for prefix in NOT_OURS):
        return None, None
    raise AssertionError(f"a command the docs test does not know: {shlex.join(argv)}")


class Parsed(Exception):
    """Raised instead of running once a command line has parsed."""


@pytest.fixture
def parse_only(monkeypatch):
    """Makes `argparse` stop every program right after parsing, with the parsed arguments."""
    parse_args = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise Parsed(parse_args(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    monkeypatch.chdir(ROOT)


def all_commands():
    return [pytest.param(argv, id=f"{page.name}:{' '.join(argv)[:60]}")
            for page in DOCS for argv in commands(page)]


def test_configuration_page_is_current():
    generator = load_script("scripts/config_docs.py")
    assert (ROOT / "docs/configuration.md").read_text() == generator.render(), \
        "docs/configuration.md is out of date: run python scripts/config_docs.py"


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_lead_to_files_and_headings(page):
    for target, anchor in re.findall(r"\]\((?!https?:)([^)#\s]*)(?:#([^)\s]+))?\)",
                                     page.read_text()):
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", path.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"{page.name}: no #{anchor} in {target}"


@pytest.mark.parametrize("page", [p for p in DOCS if blocks(p, "python")],
                         ids=lambda p: p.name)
def test_python_blocks_run(page, capsys):
    for code in blocks(page, "python"):
        exec(compile(code, str(page), "exec"), {})
    assert "params" in capsys.readouterr().out  # each block prints a model's counts


@pytest.mark.parametrize("argv", all_commands())
def test_shell_commands_parse_and_load_their_configs(argv, parse_only, monkeypatch):
    arguments, script = program(argv)
    if arguments is None and script is None:
        return
    with pytest.raises(Parsed) as parsed:
        if script:
            assert (ROOT / script).is_file(), f"{script} does not exist"
            module = load_script(script)
            monkeypatch.setattr(sys, "argv", [script, *argv[2:]])
            module.main()
        else:
            cli.main(arguments)
    args = parsed.value.args[0]
    if getattr(args, "config", None):
        config_lib.load(args.config, getattr(args, "set", []))
    if getattr(args, "grid", None):  # a sweep's grid: every point checked
        from mobilenets import sweep

        assert sweep.read_grid(args.grid)


def test_the_docs_show_the_commands_they_should():
    """The test above has something to check: every program of the package appears."""
    shown = {tuple(program(argv)[0][:1]) for page in DOCS for argv in commands(page)
             if program(argv)[0]}
    assert {(name,) for name in ("train", "evaluate", "export", "predict", "benchmark",
                                 "models", "sweep")} <= shown


def expected_status(arguments):
    """0, but 2 for an export to NPUs whose vendor's SDK package is not installed: the
    command writes and verifies its files, then says what is missing (docs/android.md)."""
    from mobilenets.tflite import npu

    if "--npu" not in arguments:
        return 0
    targets = arguments[arguments.index("--npu") + 1:]
    targets = targets[:next((i for i, a in enumerate(targets) if a.startswith("-")),
                            len(targets))]
    packages = [npu.VENDORS[npu.parse(target)[0]].package.replace("-", "_")
                for target in targets]
    return 0 if all(importlib.util.find_spec(p) for p in packages) else 2


@pytest.mark.slow
def test_the_commands_on_a_finished_run_run(run, tmp_path, monkeypatch, capsys):
    """evaluate, export, predict, benchmark and models as the pages show them, on the tests'
    finished run standing in for runs/quickstart (the same model: MobileNetV2 0.35, 32x32x1),
    scored on 500 images."""
    from PIL import Image

    workdir = tmp_path / "quickstart"  # a copy: evaluate writes its reports beside the model
    shutil.copytree(run[1], workdir)
    monkeypatch.chdir(ROOT)
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (120, 90), (200, 180, 40)).save(photo)
    ran = set()
    for page in DOCS:
        for argv in commands(page):
            arguments, _ = program(argv)
            if not arguments or arguments[0] not in ("evaluate", "export", "predict",
                                                     "benchmark", "models"):
                continue
            if arguments[0] != "models" and not any("runs/quickstart/" in a for a in arguments):
                continue  # a run the tests do not make (detection, segmentation, Fashion-MNIST)
            arguments = [a.replace("runs/quickstart/", f"{workdir}/").replace(
                "photo.jpg", str(photo)) for a in arguments]
            if "--config" in arguments:
                arguments += ["--set", "data.eval_limit=500", "export.max_drop=100"]
            if arguments[0] == "export":
                arguments += ["--workdir", str(tmp_path / "export")]
            assert cli.main(arguments) == expected_status(arguments), arguments
            ran.add(arguments[0])
    assert ran == {"evaluate", "export", "predict", "benchmark", "models"}
    assert "mobilenet_v4" in capsys.readouterr().out
