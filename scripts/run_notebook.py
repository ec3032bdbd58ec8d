"""Execute a notebook top to bottom in a real kernel, printing each cell's text output as it finishes.

    python scripts/run_notebook.py notebooks/train_deploy_diagnose.ipynb [--save executed.ipynb]

Cells tagged ``skip-execution`` are skipped, as nbclient skips them: the flagship's cell that stops JupyterLab's
"Run All" with its app left running is one; the cell after it stops the app, so the run ends.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def text_of(outputs: list) -> str:
    pieces = []
    for output in outputs:
        if output.get("output_type") == "stream":
            pieces.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            data = output.get("data", {})
            if "text/plain" in data and "application/vnd.jupyter.widget-view+json" not in data:
                pieces.append(data["text/plain"] + "\n")
        elif output.get("output_type") == "error":
            pieces.append("\n".join(output.get("traceback", [])) + "\n")
    return "".join(pieces)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--save", type=Path, help="write the executed notebook here")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    args = parser.parse_args()

    notebook = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(args.notebook.parent)}})
    started = time.monotonic()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "markdown":
                title = next((line for line in cell.source.splitlines() if line.startswith("#")), None)
                if title:
                    print(f"\n{title}", flush=True)
                continue
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            output = text_of(cell.outputs)
            if output.strip():
                print(output.rstrip(), flush=True)
    print(f"\n{args.notebook} ran in {time.monotonic() - started:.0f} s", flush=True)
    if args.save:
        nbformat.write(notebook, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
