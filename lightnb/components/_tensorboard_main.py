"""The TensorBoard process of :class:`~lightnb.components.TensorBoardWork`: :func:`command` then
TensorBoard's own flags (``--logdir ... --port ...``).

TensorBoard as ``tensorboard.main`` runs it, with one change: its page asks for its fonts at the server's
root (``url(/font-roboto/...)`` in index.html's inline style), which behind a proxy such as
jupyter-server-proxy (``{base_url}proxy/{port}/``) is the *notebook server's* root, answering 404. A small
WSGI wrapper makes those URLs relative in the responses that hold them, so the page asks its own server.
Everything else TensorBoard serves passes through untouched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

ABSOLUTE_FONTS = b"url(/font-roboto/"
RELATIVE_FONTS = b"url(font-roboto/"
_REWRITTEN_TYPES = ("text/html", "text/css")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def relative_fonts(body: bytes) -> bytes:
    """``body`` with TensorBoard's absolute font URLs made relative to the page."""
    return body.replace(ABSOLUTE_FONTS, RELATIVE_FONTS)


def needs_rewrite(headers: list[tuple[str, str]]) -> bool:
    """Whether a response with ``headers`` may hold the font URLs: HTML or CSS, not compressed."""
    values = {name.lower(): value for name, value in headers}
    kind = values.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind in _REWRITTEN_TYPES and values.get("content-encoding", "identity").lower() in ("", "identity")


def fonts_relative(app: WSGIApp) -> WSGIApp:
    """``app`` whose HTML and CSS responses ask for TensorBoard's fonts relative to the page."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            if not needs_rewrite(headers):
                return start_response(status, headers, exc_info)
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: captured.setdefault("early", []).append(data)

        result = app(environ, capture)
        if not captured:
            return result
        try:
            body = b"".join([*captured.get("early", []), *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        body = relative_fonts(body)
        headers = [(name, value) for name, value in captured["headers"] if name.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers, captured["exc_info"])
        return [body]

    return wrapped


def server_class() -> Any:
    """TensorBoard's Werkzeug server serving the app through :func:`fonts_relative` (port scanning kept)."""
    from tensorboard import program

    class RelativeFontsServer(program.WerkzeugServer):  # type: ignore[misc]
        def __init__(self, wsgi_app: WSGIApp, flags: Any) -> None:
            super().__init__(fonts_relative(wsgi_app), flags)

    return program.with_port_scanning(RelativeFontsServer)


def command() -> list[str]:
    """How to start this file's :func:`main`: run by path, so the process needs TensorBoard importable but
    not lightnb, and not from this folder (whose ``tensorboard.py`` would shadow TensorBoard's package)."""
    return [sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')",
            os.path.abspath(__file__)]


def main() -> None:
    """As ``tensorboard.main.run_main``, with :func:`server_class`."""
    from absl import app
    from tensorboard import default, main_lib, program
    from tensorboard.plugins import base_plugin

    main_lib.global_init()
    board = program.TensorBoard(plugins=default.get_plugins(), server_class=server_class())
    try:
        app.run(board.main, flags_parser=board.configure)
    except base_plugin.FlagsError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
