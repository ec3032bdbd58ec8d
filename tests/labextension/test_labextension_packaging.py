"""The wheel carries the prebuilt panel: installed alone into a fresh environment, JupyterLab lists it as
enabled, with no Node.js needed on the user's side."""

from __future__ import annotations

import itertools
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_installs_the_panel_as_an_enabled_prebuilt_extension(built_labextension: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = wheels.glob("lightnb-*.whl")

    # A fresh environment holding only the wheel; JupyterLab itself is borrowed from this environment
    # through a .pth file, so that nothing is downloaded.
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    fresh_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                capture_output=True, text=True, check=True).stdout.strip()
    Path(fresh_site, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    installed = env_dir / "share" / "jupyter" / "labextensions" / "lightnb"
    assert (installed / "package.json").exists() and (installed / "install.json").exists()
    assert list((installed / "static").glob("remoteEntry.*.js"))

    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHONPATH"))}
    listing = subprocess.run([str(python), "-m", "jupyterlab.labextensions", "list"], capture_output=True,
                             text=True, timeout=120, env={**clean_env, "PATH": str(env_dir / "bin")})
    output = listing.stdout + listing.stderr
    assert listing.returncode == 0, output
    # The listing names each folder, then the extensions found there: lightnb must be under the fresh one.
    lines = output.splitlines()
    folder = lines.index(str(env_dir / "share" / "jupyter" / "labextensions"))
    found = list(itertools.takewhile(lambda line: line.startswith((" ", "\t")), lines[folder + 1:]))
    assert any(line.split()[0] == "lightnb" and "enabled" in line and "OK" in line for line in found), output
