"""``StreamlitFrontend(render_fn)``: a flow's page drawn with Streamlit, ``render_fn(state)`` on every rerun."""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.values import describe_type
from ..runtime.pickling import dumps, ship_function_by_value
from .base import ProcessFrontend

PAGE = Path(__file__).with_name("streamlit_page.py")


def _check_render_fn(render_fn: Any, frontend: str) -> None:
    if not callable(render_fn):
        raise TypeError(f"{frontend} takes the function that draws the page, render_fn(state), not "
                        f"{describe_type(render_fn)} {render_fn!r:.60}")
    try:
        inspect.signature(render_fn).bind(None)
    except TypeError:
        raise TypeError(f"{frontend}: {getattr(render_fn, '__qualname__', render_fn)!r} must take one argument, "
                        "the AppState: def render_fn(state): ...") from None
    except ValueError:
        pass  # no signature to check (a builtin)


def _require(module: str, frontend: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(f"{frontend} needs {module}, which is not installed: pip install {module}")


class StreamlitFrontend(ProcessFrontend):
    """A flow's web page made with Streamlit.

    ``render_fn(state)`` draws the page; ``state`` is the flow's :class:`~lightnb.utilities.state.AppState`:
    ``state.lr`` reads the live value, ``state.lr = 0.1`` sets it on the flow (its next pass sees it). The
    page redraws when the app's state changes. Defined in a notebook or in a module, the function is sent to
    the Streamlit process by value.

    Example
    -------
    >>> def render(state):
    ...     import streamlit as st
    ...     state.lr = st.number_input("learning rate", value=state.lr)
    >>> class Root(LightningFlow):
    ...     def configure_layout(self):
    ...         return StreamlitFrontend(render_fn=render)
    """

    def __init__(self, render_fn: Callable[[Any], Any]) -> None:
        _check_render_fn(render_fn, "StreamlitFrontend")
        _require("streamlit", "StreamlitFrontend")
        self.render_fn = render_fn

    def command(self, host: str, port: int, folder: Path) -> list[str]:
        ship_function_by_value(self.render_fn)
        (folder / "render_fn.pkl").write_bytes(dumps(self.render_fn))
        return ["streamlit", "run", str(PAGE), "--server.address", host, "--server.port", str(port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none", "--server.runOnSave", "false",
                "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
                # Shown through jupyter-server-proxy (/proxy/PORT/) the page's origin is the notebook server's.
                "--server.enableCORS", "false", "--server.enableXsrfProtection", "false"]

    def extra_env(self, folder: Path) -> dict[str, str]:
        return {"LIGHTNB_RENDER_FN": str(folder / "render_fn.pkl")}

    def ready_path(self) -> str:
        return "/_stcore/health"
