"""Binder (repo2docker) set-up, without a Docker engine: binder/ checked against what repo2docker does with it
(environment.yml, then postBuild once, then `start` wrapping the server at every launch), then `start` run for
real around a JupyterLab under a JupyterHub-like prefix, with this environment's lightnb panel, and what a
Binder user sees checked in headless Chromium (labextension/ui-tests/binder.e2e.mjs): the quickstart notebook run
and its live view rendered; the flagship run with Run All, left running, its TensorBoard and Gradio pages shown
in the view's tabs through jupyter-server-proxy under the prefix, then stopped by its last cell; and a plain Gradio
script's page predicting through that proxy (existing_scripts).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from lab_server import running_server
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"
LABEXTENSION = REPO / "labextension"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PREFIX = "/user/demo/"


def locked_versions() -> dict[str, str]:
    lines = (REPO / "requirements" / "lock.txt").read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


def test_the_environment_is_one_the_package_supports():
    environment = yaml.safe_load((BINDER / "environment.yml").read_text())
    dependencies = {str(d).split("=")[0]: str(d) for d in environment["dependencies"] if isinstance(d, str)}
    python = dependencies["python"].split("=", 1)[1]
    requires = re.search(r'^requires-python = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert python in SpecifierSet(requires), f"environment.yml's python {python} is outside {requires}"
    assert int(dependencies["nodejs"].split("=", 1)[1]) >= 18  # builds the panel while installing lightnb
    assert "pip" in dependencies
    # Nothing else may come from conda: everything else is pinned by the lock, installed by postBuild.
    assert set(dependencies) == {"python", "nodejs", "pip"}


def _executable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXUSR)


def test_postbuild_installs_lightnb_with_the_lock(tmp_path):
    postbuild = BINDER / "postBuild"
    assert _executable(postbuild), "repo2docker runs binder/postBuild only if it is executable"
    subprocess.run(["bash", "-n", str(postbuild)], check=True)
    # Run it as repo2docker does (from the repository root), with `python` and `jupyter` standing in as
    # recorders: the commands it runs, in order, with the versions it pins.
    record = tmp_path / "commands"
    for tool in ("python", "jupyter"):
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{record}"\n'
                        + ('echo "        lightnb v0.1.0 enabled OK (python, lightnb)"\n' if tool == "jupyter" else ""))
        stub.chmod(0o755)
    subprocess.run([str(postbuild)], cwd=REPO, check=True, env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"})
    commands = record.read_text().splitlines()
    torch = locked_versions()["torch"]
    assert commands[0] == "python -m pip install --no-cache-dir -q -c requirements/lock.txt --upgrade pip"
    assert commands[1] == (f"python -m pip install --no-cache-dir -q torch=={torch} "
                           "--index-url https://download.pytorch.org/whl/cpu")
    assert commands[2] == ("python -m pip install --no-cache-dir -q -c requirements/lock.txt "
                           '--build-constraint requirements/lock.txt -e .[all]')
    assert commands[3] == "jupyter labextension list"
    # ... and the build fails when the panel is not enabled.
    (tmp_path / "jupyter").write_text("#!/bin/sh\necho 'anywidget v0.11.0 enabled OK'\n")
    failed = subprocess.run([str(postbuild)], cwd=REPO, env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"},
                            capture_output=True)
    assert failed.returncode != 0


def test_start_sets_the_proxy_url_under_the_prefix_and_execs_the_command():
    start = BINDER / "start"
    assert _executable(start), "repo2docker runs binder/start only if it is executable"
    subprocess.run(["bash", "-n", str(start)], check=True)
    env = {**os.environ, "JUPYTERHUB_SERVICE_PREFIX": PREFIX}
    shown = subprocess.run([str(start), "sh", "-c", 'echo "$TENSORBOARD_PROXY_URL"; exit 7'],
                           env=env, capture_output=True, text=True)
    assert shown.stdout == f"{PREFIX}proxy/%PORT%/\n"
    assert shown.returncode == 7  # the command's exit code: start execs it ...
    assert shown.stderr == ""
    # ... in place: the command is the process repo2docker started (no shell left in between).
    exec_check = subprocess.Popen([str(start), "sh", "-c", "echo $$"], env=env, stdout=subprocess.PIPE, text=True)
    assert int(exec_check.communicate(timeout=30)[0]) == exec_check.pid


# -- the real thing: binder/start around JupyterLab under a prefix ------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, answer.read().decode()


@pytest.fixture(scope="session")
def playwright() -> Path:
    """labextension/ with its locked Node dependencies, playwright-core among them (scripts/setup installs
    them; this only fills in what is missing, as the panel's browser test does)."""
    npm = shutil.which("npm")
    assert npm, "npm is missing: install Node.js >= 18 (scripts/setup says how)"
    if not (LABEXTENSION / "node_modules" / ".package-lock.json").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LABEXTENSION, check=True, timeout=600)
    return LABEXTENSION / "node_modules" / "playwright-core"


@pytest.fixture
def binder_lab(tmp_path):
    """`binder/start jupyter lab` as Binder launches it: under a JupyterHub-like prefix, the extensions this
    environment installed (no test-only extension path), its own config, runtime and settings folders."""
    home = tmp_path / "home"
    root = home / "notebooks"
    root.mkdir(parents=True)
    for name in ("quickstart.ipynb", "train_deploy_diagnose.ipynb", "existing_scripts.ipynb"):
        shutil.copy(REPO / "notebooks" / name, root)
    shutil.copytree(REPO / "notebooks" / "scripts", root / "scripts")
    config = home / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(home / "user-data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    log = home / "jupyterlab.log"
    command = [str(BINDER / "start"), sys.executable, "-m", "jupyterlab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.base_url={PREFIX}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True",
               "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    url = f"http://127.0.0.1:{port}{PREFIX}"
    with running_server(command, cwd=root, env=env, log=log, url=url, token=token, what="JupyterLab"):
        yield {"url": url, "token": token, "env": env, "log": log, "root": root}


@pytest.mark.timeout(600)
def test_binder_start_serves_the_gallery_under_a_prefix_with_the_panel_and_proxy(binder_lab, playwright):
    url, token, env = binder_lab["url"], binder_lab["token"], binder_lab["env"]
    # The panel is installed and enabled in this environment, as postBuild leaves it ...
    listed = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert re.search(r"lightnb v[\d.]+ .*enabled.*OK", re.sub(r"\x1b\[\d+m", "", listed.stdout + listed.stderr))
    # ... and the page under the prefix loads it, with the prefix as its base URL.
    status, html = get(f"{url}lab/tree/quickstart.ipynb", token)
    page_config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                       html, re.S).group(1))
    assert page_config["baseUrl"] == PREFIX
    assert "lightnb" in [extension["name"] for extension in page_config["federated_extensions"]]

    node = shutil.which("node")
    assert node, "node is missing: install Node.js >= 18"
    assert playwright.is_dir(), "labextension/package-lock.json should install playwright-core"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/setup does)"
    ARTIFACTS.mkdir(exist_ok=True)
    done = subprocess.run([node, "ui-tests/binder.e2e.mjs"], cwd=LABEXTENSION, capture_output=True, text=True,
                          timeout=540, env={**os.environ, "LAB_URL": url, "LAB_TOKEN": token,
                                            "QUICKSTART": "quickstart.ipynb", "FLAGSHIP": "train_deploy_diagnose.ipynb",
                                            "EXISTING": "existing_scripts.ipynb",
                                            "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": CHROMIUM})
    lines = [line for line in done.stdout.splitlines() if line.startswith("E2E-RESULT ")]
    log = binder_lab["log"].read_text(errors="replace")[-4000:]
    assert lines, f"no result (exit code {done.returncode}):\n{done.stdout}\n{done.stderr}\nJupyterLab log:\n{log}"
    result = json.loads(lines[-1].removeprefix("E2E-RESULT "))
    assert result["ok"], (f"{result['error']}\nsteps:\n" + "\n".join(result["steps"])
                          + f"\noutputs:\n{result.get('outputs')}\nJupyterLab log:\n{log}")
    # The quickstart ran through the prefix: its live view followed the app to its end, the form showed.
    assert result["pagePath"].startswith(f"{PREFIX}lab/tree/quickstart.ipynb")
    # (the app may have ended before the view first drew: what it shows is where the app ended)
    assert result["appStages"][-1] == "stopped", result["appStages"]
    assert "root.train" in result["trainRow"] and "succeeded" in result["trainRow"], result["trainRow"]
    assert "lr" in result["formText"] and "steps" in result["formText"]
    assert "results (lr, steps, loss): [[0.05, 40," in result["quickstartOutputs"]
    assert "Traceback" not in result["quickstartOutputs"]
    # The flagship, run with Run All: it stopped on purpose before its last cell, with the app left running ...
    assert result["pauseMessage"] == ("The app keeps running: Run All stops here on purpose. Run the last cell to "
                                      "stop the app.")
    assert result["flagshipStageAfterRunAll"] == "running"
    assert result["stopCellOutputsAfterRunAll"] == 0
    # ... its TensorBoard and Gradio pages in the view's tabs, through jupyter-server-proxy under the prefix ...
    for page in (result["tensorboard"], result["gradio"]):
        assert re.fullmatch(rf"(http://127\.0\.0\.1:\d+)?{PREFIX}proxy/\d+/", page["src"]), page["src"]
    assert result["tensorboard"]["title"] == "TensorBoard"
    assert "trainer/version_0" in result["tensorboard"]["text"] and "trainer/version_1" in result["tensorboard"]["text"]
    assert "What the model thinks sin(3x) is" in result["gradio"]["text"]
    # ... and its last cell stopped it.
    assert result["stopCellText"].startswith("stopped — {"), result["stopCellText"]
    # A plain Gradio script (serve.py), through the proxy under the prefix: its page predicts (its API calls
    # go back through the proxy), next to TensorBoard run as a command line.
    for src in (result["scriptsGradioSrc"], result["scriptsTensorBoardSrc"]):
        assert re.fullmatch(rf"(http://127\.0\.0\.1:\d+)?{PREFIX}proxy/\d+/", src), src
    assert abs(result["scriptsPrediction"] - math.sin(1.5)) < 0.3, result["scriptsPrediction"]


def test_the_readme_badge_launches_this_repository_on_binder():
    source = re.search(r'^Source = "https://github\.com/([^/"]+/[^/"]+)"$', (REPO / "pyproject.toml").read_text(),
                       re.M).group(1)
    readme = (REPO / "README.md").read_text()
    badge = re.search(r"\[!\[Launch on Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]\((\S+)\)", readme)
    assert badge, "README.md has no Binder badge"
    link = badge.group(1)
    assert link.startswith(f"https://mybinder.org/v2/gh/{source}/HEAD?urlpath=lab/tree/notebooks/")
    assert (REPO / "notebooks" / link.rsplit("notebooks/", 1)[1]).is_file()  # it opens a notebook that exists
