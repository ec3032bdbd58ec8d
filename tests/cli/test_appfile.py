"""Loading app scripts and notebooks for `lightnb run`: the one app, parameters, pickling to workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest
from script_apps import PIDS_APP, counter_notebook, env, write_notebook

from lightnb.cli.appfile import (
    MODULE_NAME,
    AppFileError,
    find_app,
    load_app,
    load_module,
    override_parameters,
    parameter_names,
    parameter_value,
    parse_assignment,
)
from lightnb.export import notebook_to_script

SCRIPT = notebook_to_script(counter_notebook(steps=3, label="nb"), name="counter.ipynb")


def test_parameters_are_overridden_in_place_keeping_line_numbers() -> None:
    assert parameter_names(SCRIPT) == ["steps", "label"]
    changed = override_parameters(SCRIPT, {"steps": 5, "label": "cli"})
    before, after = SCRIPT.splitlines(), changed.splitlines()
    assert len(before) == len(after)
    differing = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(differing) == 1
    assert after[differing[0]].startswith("steps = 5; label = 'cli'  # --param overrides; # %%")
    namespace: dict[str, object] = {"__name__": "x"}
    exec(compile(changed, "counter.py", "exec"), namespace)
    assert (namespace["steps"], namespace["label"]) == (5, "cli")


def test_unknown_parameters_and_scripts_without_a_parameters_cell() -> None:
    with pytest.raises(AppFileError, match="no parameter 'lr'; its parameters are: steps, label"):
        override_parameters(SCRIPT, {"lr": 0.1}, name="counter.py")
    with pytest.raises(AppFileError, match=r"pids.py has no parameters cell .*tags=\[\"parameters\"\]"):
        override_parameters(PIDS_APP, {"lr": 0.1}, name="pids.py")


@pytest.mark.parametrize(("text", "value"), [("0.1", 0.1), ("3", 3), ("[1, 2]", [1, 2]), ("True", True),
                                             ("'quoted'", "quoted"), ("plain text", "plain text")])
def test_parameter_values_are_literals_or_text(text: str, value: object) -> None:
    assert parameter_value(text) == value


def test_assignments_must_be_name_equals_value() -> None:
    assert parse_assignment("lr=0.1", "--param") == ("lr", "0.1")
    assert parse_assignment("A_B=x=y", "--env") == ("A_B", "x=y")
    for bad in ("lr", "=1", "not a name=1"):
        with pytest.raises(AppFileError, match="--param expects NAME=VALUE"):
            parse_assignment(bad, "--param")


def test_a_notebook_loads_as_its_app_with_parameters(tmp_path: Path) -> None:
    notebook = write_notebook(counter_notebook(steps=3), tmp_path / "counter.ipynb")
    app = load_app(notebook, {"steps": 4})
    assert app.stage == "not_started"
    assert sys.modules[MODULE_NAME].steps == 4
    assert type(app.root).__module__ == MODULE_NAME


def test_classes_of_the_loaded_file_travel_by_value(tmp_path: Path) -> None:
    """Workers cannot import `__lightnb_app__`: its classes must pickle by value."""
    script = tmp_path / "pids.py"
    script.write_text(PIDS_APP)
    module = load_module(script)
    work = module.Pid()
    data = cloudpickle.dumps(work)
    code = ("import pickle, sys; w = pickle.loads(sys.stdin.buffer.read()); "
            "print(type(w).__name__, type(w).__module__, w.pid)")
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, env=env(),
                         cwd=tmp_path.parent, check=True)
    assert out.stdout.decode().split() == ["Pid", MODULE_NAME, "0"]


def test_the_main_guard_block_runs_as_python_would_run_it(tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(PIDS_APP + 'if __name__ == "__main__":\n    raise SystemExit("ran the guard")\n')
    with pytest.raises(SystemExit, match="ran the guard"):
        load_app(script)


MAIN_BUILT_APP = PIDS_APP.replace("app = LightningApp(Root())", "") + """
import argparse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", default="none")
    options = parser.parse_args()
    app = LightningApp(Root())
    app.label = options.label
    app.run()


if __name__ == "__main__":
    main()
"""


def test_an_app_built_and_run_in_the_main_block_from_argparse_options_is_found(tmp_path: Path) -> None:
    script = tmp_path / "main_built.py"
    script.write_text(MAIN_BUILT_APP)
    before = list(sys.argv)
    app = load_app(script, argv=["--label", "from-cli"])
    assert app.stage == "not_started"  # app.run() in the script marked it; lightnb run runs it
    assert app.label == "from-cli"
    assert sys.argv == before


@pytest.mark.parametrize(("source", "message"), [
    ("x = 1\n", r"defines no LightningApp at module level; add one, such as `app = LightningApp\(Root"),
    (PIDS_APP + "other = LightningApp(Root())\n", r"defines 2 LightningApps \(app, other\)"),
    (PIDS_APP + "app.cluster = 'in-process'\napp.start(paused=True)\n", "starts its app itself while"),
])
def test_one_unstarted_app_is_required(tmp_path: Path, source: str, message: str) -> None:
    script = tmp_path / "bad.py"
    script.write_text(source)
    with pytest.raises(AppFileError, match=message):
        load_app(script)
    for value in vars(sys.modules.get(MODULE_NAME, object())).values():
        if type(value).__name__ == "LightningApp":
            value.stop()


def test_files_that_are_not_apps(tmp_path: Path) -> None:
    with pytest.raises(AppFileError, match="missing.py: no such file"):
        load_module(tmp_path / "missing.py")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(AppFileError, match=r"takes an app script \(.py\) or a notebook \(.ipynb\)"):
        load_module(other)
    broken = tmp_path / "broken.py"
    broken.write_text("x = (\n")
    with pytest.raises(AppFileError, match="broken.py, line 1"):
        load_module(broken)


def test_find_app_reports_aliases_as_one_app(tmp_path: Path) -> None:
    script = tmp_path / "alias.py"
    script.write_text(PIDS_APP + "same = app\n")
    module = load_module(script)
    assert find_app(module, "alias.py") is module.app
