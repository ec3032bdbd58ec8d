"""`if __name__ == "__main__":` for real: `python app.py` without the guard gets one sentence about it;
`lightnb run` runs the guard's block as python would, arguments after `--` included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from script_apps import PIDS_APP, env, lightnb

UNGUARDED = PIDS_APP + "app.run()\n"

GUARDED_MAIN = PIDS_APP.replace("app = LightningApp(Root())\n", "") + '''
import argparse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    options = parser.parse_args()
    LightningApp(Root(), name=options.name).run()


if __name__ == "__main__":
    main()
'''


def python(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent, env=env(),
                          capture_output=True, text=True, timeout=240)


def test_python_app_py_without_the_guard_gets_one_sentence_about_it(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED)
    done = python(script)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"lightnb: {script}, line {UNGUARDED.count(chr(10))} starts the app outside "
                               '`if __name__ == "__main__":`')
    assert "lightnb run unguarded.py" in lines[0]
    assert "Nanny" not in done.stderr and "Traceback" not in done.stderr


def test_python_app_py_with_the_guard_runs_on_the_embedded_cluster(tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED_MAIN)
    done = python(script, "--name", "guarded")
    assert done.returncode == 0, done.stderr
    assert "Nanny" not in done.stderr


def test_lightnb_run_runs_the_main_block_with_the_scripts_arguments(tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED_MAIN)
    state = tmp_path / "state.json"
    done = lightnb("run", script, "--state-json", state, "--", "--name", "from-argv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "lightnb: from-argv stopped: both reported" in done.stdout
    works = json.loads(state.read_text())["works"]
    assert works["a"]["vars"]["pid"] > 0 and works["b"]["vars"]["pid"] > 0  # both works ran
