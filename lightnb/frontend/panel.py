"""``PanelFrontend(entry_point)``: a flow's page made with Panel — a function ``render_fn(state)`` returning
what to show, or a ``.py`` file that Panel serves (``AppState()`` there reaches the flow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.values import describe_type
from ..runtime.pickling import dumps, ship_function_by_value
from .base import ProcessFrontend
from .streamlit import _check_render_fn, _require

PAGE = Path(__file__).with_name("panel_page.py")


class PanelFrontend(ProcessFrontend):
    """A flow's web page made with Panel (``pip install panel``).

    ``entry_point`` is a function ``render_fn(state)`` returning a Panel object (drawn again when the app's
    state changes), or the path of a ``.py`` file that Panel serves (``AppState()`` in it is the flow's
    state).
    """

    def __init__(self, entry_point: Callable[[Any], Any] | str | Path) -> None:
        if isinstance(entry_point, (str, Path)):
            path = Path(entry_point).expanduser().resolve()
            if path.suffix != ".py" or not path.is_file():
                raise FileNotFoundError(f"PanelFrontend: {str(entry_point)!r} is not a Python file (looked for "
                                        f"{path}); give a .py file that Panel serves, or a function "
                                        "render_fn(state)")
            self.entry_point: Any = str(path)
        else:
            if not callable(entry_point):
                raise TypeError(f"PanelFrontend takes a function render_fn(state) or the path of a .py file, not "
                                f"{describe_type(entry_point)}")
            _check_render_fn(entry_point, "PanelFrontend")
            self.entry_point = entry_point
        _require("panel", "PanelFrontend")

    def command(self, host: str, port: int, folder: Path) -> list[str]:
        script = self.entry_point
        if callable(script):
            ship_function_by_value(script)
            (folder / "render_fn.pkl").write_bytes(dumps(script))
            script = str(PAGE)
        # Shown through jupyter-server-proxy the page's origin is the notebook server's.
        return ["panel", "serve", script, "--address", host, "--port", str(port),
                "--allow-websocket-origin", "*", "--num-procs", "1"]

    def extra_env(self, folder: Path) -> dict[str, str]:
        return {"LIGHTNB_RENDER_FN": str(folder / "render_fn.pkl")}
