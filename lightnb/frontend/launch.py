"""``python -m lightnb.frontend.launch streamlit|panel ARGS...``: run a frontend's server in this process,
ending it if the process that started it (the kernel, ``lightnb run``) dies without stopping it."""

from __future__ import annotations

import functools
import os
import pickle
import sys
import threading
import time
from typing import Any


def _watch_parent(pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        if os.getppid() == 1 and pid != 1:  # orphaned
            os._exit(0)


@functools.cache
def load_render_fn(path: str) -> Any:
    """The pickled render function of a frontend's page (loaded once per process)."""
    with open(path, "rb") as file:
        return pickle.load(file)


def main(argv: list[str]) -> None:
    parent = int(os.environ.get("LIGHTNB_PARENT_PID") or 0)
    if parent:
        threading.Thread(target=_watch_parent, args=(parent,), name="lightnb-parent-watch", daemon=True).start()
    tool, args = argv[0], argv[1:]
    sys.argv = [tool, *args]
    if tool == "streamlit":
        from streamlit.web.cli import main as streamlit_main

        streamlit_main(prog_name="streamlit")
    elif tool == "panel":
        from panel.command import main as panel_main

        panel_main()
    else:
        raise SystemExit(f"unknown frontend server {tool!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
