"""Run a gallery notebook in a real kernel (nbclient), cell by cell, in a folder of the test's own, and read
what each cell showed."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


def text_of(cell: Any) -> str:
    """What a code cell printed or showed as text (its stream outputs and results), tracebacks included."""
    pieces = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            pieces.append(output.text)
        elif output.output_type in ("execute_result", "display_data") and WIDGET not in output.data:
            pieces.append(output.data.get("text/plain", "") + "\n")
        elif output.output_type == "error":
            pieces.append("\n".join(output.traceback) + "\n")
    return "".join(pieces)


def widgets_of(cell: Any) -> list[str]:
    """The model ids of the widgets a cell displayed."""
    return [output.data[WIDGET]["model_id"] for output in cell.get("outputs", [])
            if output.output_type in ("execute_result", "display_data") and WIDGET in output.get("data", {})]


def copy_gallery(folder: Path, name: str) -> Path:
    """``notebooks/<name>`` and the scripts next to it, copied into ``folder`` (where the kernel runs)."""
    shutil.copy(NOTEBOOKS / name, folder / name)
    if not (folder / "scripts").exists():
        shutil.copytree(NOTEBOOKS / "scripts", folder / "scripts")
    return folder / name


class NotebookRun:
    """One notebook in one kernel: ``run_until(...)``, ``run_rest()``, then read ``cells``."""

    def __init__(self, client: NotebookClient, notebook: Any) -> None:
        self.client = client
        self.notebook = notebook
        self.next = 0

    @property
    def cells(self) -> list[Any]:
        return self.notebook.cells

    @property
    def code(self) -> list[Any]:
        return [cell for cell in self.notebook.cells if cell.cell_type == "code"]

    def run_until(self, stop: Callable[[Any], bool] | None = None) -> None:
        """Execute the cells in order, up to (not including) the first for which ``stop(cell)`` holds."""
        while self.next < len(self.cells):
            cell = self.cells[self.next]
            if stop is not None and stop(cell):
                return
            if cell.cell_type == "code":
                self.client.execute_cell(cell, self.next)
            self.next += 1

    def run_rest(self) -> None:
        self.run_until(None)

    def text(self) -> str:
        return "\n".join(text_of(cell) for cell in self.code)

    def comm_msg(self, comm_id: str, data: dict[str, Any]) -> None:
        """What the browser sends to a widget: ``{"method": "custom", "content": ...}`` for ``model.send``."""
        kc = self.client.kc
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))


@contextlib.contextmanager
def notebook_kernel(path: Path, timeout: int = 600) -> Iterator[NotebookRun]:
    """A kernel running in ``path``'s folder, importing lightnb from this checkout."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        yield NotebookRun(client, notebook)


def kernel_environment(monkeypatch: Any) -> None:
    """The kernel (and what it starts: workers, `lightnb run`) imports this checkout's lightnb."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def poll(condition: Callable[[], Any], what: str, timeout: float = 60, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
