"""How a page a work serves is shown in the notebook: through jupyter-server-proxy or directly.

Under a Jupyter server with jupyter-server-proxy, ``http://127.0.0.1:PORT/path`` is reachable — with the
server's authentication, on Binder and JupyterHub too — as ``{base_url}proxy/PORT/path`` (trailing slash
after the port: pages with relative asset URLs need it). Only the browser knows a local JupyterLab's
``base_url``, so the kernel hands front ends the *pieces* (port, path, direct URL) and the front end
builds the address (``frame_url`` below is the same rule, for Python callers and tests).

>>> url_pieces("http://127.0.0.1:7860/app?x=1")
{'url': 'http://127.0.0.1:7860/app?x=1', 'port': 7860, 'path': 'app?x=1', 'proxiable': True}
>>> frame_url(url_pieces("http://127.0.0.1:7860/"), base_url="/user/ada/")
'/user/ada/proxy/7860/'
"""

from __future__ import annotations

import importlib.util
import os
import socket
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""}


@lru_cache(maxsize=1)
def _this_host_names() -> frozenset[str]:
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return frozenset(names)


def url_pieces(url: str) -> dict[str, Any]:
    """``{"url", "port", "path", "proxiable"}`` of a page URL. ``proxiable``: the page is served on this
    machine (loopback or this host's name), so the notebook server's proxy can reach it."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    host = (parts.hostname or "").lower()
    path = parts.path.lstrip("/")
    if parts.query:
        path += f"?{parts.query}"
    if parts.fragment:
        path += f"#{parts.fragment}"
    local = host in _LOOPBACK or host in _this_host_names()
    proxiable = port is not None and parts.scheme == "http" and local
    return {"url": url, "port": port, "path": path, "proxiable": proxiable}


def proxy_settings() -> dict[str, Any]:
    """What the kernel knows of the proxy: ``enabled`` when jupyter-server-proxy is installed (the server
    usually shares the kernel's environment; ``LIGHTNB_PROXY=0``/``1`` overrides), and the URL ``prefix``
    of a JupyterHub / Binder server (``JUPYTERHUB_SERVICE_PREFIX``), used when the page does not say."""
    forced = os.environ.get("LIGHTNB_PROXY", "").strip().lower()
    if forced in {"0", "false", "no", "off"}:
        enabled = False
    elif forced in {"1", "true", "yes", "on"}:
        enabled = True
    else:
        enabled = importlib.util.find_spec("jupyter_server_proxy") is not None
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or None
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return {"enabled": enabled, "prefix": prefix}


def frame_url(pieces: dict[str, Any], base_url: str | None, proxy: dict[str, Any] | None = None) -> str:
    """The address to show a page at: ``{base_url}proxy/{port}/{path}`` when proxying applies, the direct
    URL otherwise (no Jupyter server, proxy not installed, or a page served on another machine)."""
    proxy = proxy if proxy is not None else proxy_settings()
    base = base_url or proxy.get("prefix")
    if proxy.get("enabled") and pieces.get("proxiable") and base:
        return f"{base.rstrip('/')}/proxy/{pieces['port']}/{pieces['path']}"
    return pieces["url"]
