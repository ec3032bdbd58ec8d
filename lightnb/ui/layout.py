"""A flow's ``configure_layout()`` as tabs: a work's page (or any URL) becomes an iframe, a flow its own view.

``configure_layout()`` may return a list of ``{"name": ..., "content": ...}`` entries, one such dict, a
component, a URL string, or None. Content is a flow (shown as its own view, with its own tabs), a work
(its ``url`` attribute is shown once set) or a URL. Call with the app's lock held: it runs user code that
reads the app's state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.flow import LightningFlow
from ..core.work import LightningWork
from ..frontend import Frontend
from ..frontend.runner import default_tab_name, frontend_for_tab
from .model import url_of
from .urls import url_pieces

MAX_DEPTH = 3


def layout_tabs(flow: LightningFlow, depth: int = 0) -> list[dict[str, Any]]:
    """The tabs of ``flow``: ``{"name", "kind": "flow"|"url"|"error", ...}`` (see docs/comm-protocol.md)."""
    try:
        layout = flow.configure_layout()
    except Exception as error:
        return [_error("layout", f"{flow.name}.configure_layout() failed: {type(error).__name__}: {error}")]
    tabs = []
    for index, entry in enumerate(_entries(layout)):
        if isinstance(entry, dict):
            name = str(entry.get("name") or f"tab {index + 1}")
            content = entry.get("content")
        elif isinstance(entry, Frontend):
            name, content = default_tab_name(flow), entry
        else:
            name, content = _default_name(entry, index), entry
        tabs.append(_tab(flow, name, content, depth))
    return tabs


def _entries(layout: Any) -> Iterable[Any]:
    if layout is None:
        return []
    if isinstance(layout, (list, tuple)):
        return layout
    return [layout]


def _default_name(content: Any, index: int) -> str:
    if isinstance(content, (LightningFlow, LightningWork)):
        return content.display_name  # the attribute name unless the app gave one
    return f"tab {index + 1}"


def _tab(owner: LightningFlow, name: str, content: Any, depth: int) -> dict[str, Any]:
    if isinstance(content, LightningFlow):
        nested = layout_tabs(content, depth + 1) if depth + 1 < MAX_DEPTH and content is not owner else []
        return {"name": name, "kind": "flow", "component": content.name, "tabs": nested}
    if isinstance(content, LightningWork):
        url = url_of(content)
        pieces = url_pieces(url) if url else {"url": None, "port": None, "path": "", "proxiable": False}
        return {"name": name, "kind": "url", "component": content.name, **pieces}
    if isinstance(content, Frontend):
        return _frontend_tab(owner, name, content)
    if isinstance(content, str) and content.startswith(("http://", "https://")):
        return {"name": name, "kind": "url", "component": None, **url_pieces(content)}
    return _error(name, f"{owner.name}.configure_layout(): the content of tab {name!r} must be a flow, a "
                        f"work, a frontend (lightnb.frontend) or an http(s) URL, not {type(content).__name__} "
                        f"{content!r:.60}")


def _frontend_tab(owner: LightningFlow, name: str, frontend: Frontend) -> dict[str, Any]:
    """A frontend's tab: its page once the app serves it (see lightnb/frontend/runner.py)."""
    running = frontend_for_tab(owner, name, frontend)
    if running is not None and running.error is not None:
        return _error(name, running.error)
    pieces = url_pieces(running.url) if running is not None else {"url": None, "port": None, "path": "",
                                                                   "proxiable": False}
    return {"name": name, "kind": "url", "component": owner.name, **pieces}


def _error(name: str, message: str) -> dict[str, Any]:
    return {"name": name, "kind": "error", "message": message}
