"""The panel's message handling (labextension/src/model.ts): its TypeScript unit tests, run with jest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"


def test_typescript_unit_tests_pass(node_modules: Path) -> None:
    npx = shutil.which("npx")
    assert npx, "npx is missing: install Node.js >= 18 with npm"
    done = subprocess.run([npx, "jest", "--ci", "--colors=false"], cwd=LABEXTENSION, capture_output=True, text=True,
                          timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    # The suites that must have run: snapshot, patch, unknown type, version mismatch.
    for name in ("snapshot", "patch", "unknown type", "newer protocol version"):
        assert name in report, f"no {name!r} test ran:\n{report[-3000:]}"
