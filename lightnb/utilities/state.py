"""``AppState``: a running app's state as a web frontend sees it — read the live values, set them back.

A frontend's page (Streamlit, Panel) runs in its own process. ``AppState()`` there reaches the app through
a small HTTP endpoint the app serves on 127.0.0.1 (its address, a token and the flow the page belongs to
come in the environment the app gives the frontend's process). Reading ``state.lr`` reads a snapshot taken
at the first read (one request); ``state.train.progress`` reaches a child flow or work. Setting
``state.lr = 0.1`` sends the value to the app, which sets it on the flow between two passes, as the
notebook's ``ParamsForm`` does: the flow's next pass sees it.

>>> def render(state):                      # StreamlitFrontend(render) calls it on every rerun
...     st.write(f"learning rate: {state.lr}")
...     if st.button("faster"):
...         state.lr = state.lr * 2
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ENV_URL = "LIGHTNB_STATE_URL"  # http://127.0.0.1:PORT of the app's state endpoint
ENV_TOKEN = "LIGHTNB_STATE_TOKEN"
ENV_COMPONENT = "LIGHTNB_FLOW"  # the dotted name of the flow the frontend belongs to
TOKEN_HEADER = "X-Lightnb-Token"
_KINDS = ("flows", "works", "structures")


class AppStateError(RuntimeError):
    """The app refused a read or a write (it ended, the attribute is unknown, the value is not allowed), or
    could not be reached."""


class _Connection:
    """The HTTP side: one app's state endpoint."""

    def __init__(self, url: str, token: str, timeout: float = 30) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={TOKEN_HEADER: self.token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error") or str(error)
            except ValueError:
                message = str(error)
            raise AppStateError(message) from None
        except (urllib.error.URLError, OSError) as error:
            raise AppStateError(f"the app's state endpoint at {self.url} cannot be reached ({error}): has the app "
                                "ended?") from None

    def state(self, component: str) -> tuple[int, dict[str, Any]]:
        reply = self.request("GET", "/state?" + urllib.parse.urlencode({"component": component}))
        return int(reply["version"]), reply["state"]

    def version(self) -> int:
        return int(self.request("GET", "/version")["version"])

    def set(self, component: str, values: dict[str, Any]) -> tuple[int, int]:
        """Set ``values`` on ``component``; the app's state versions just before and just after the write."""
        reply = self.request("POST", "/set", {"component": component, "values": values})
        return int(reply["before"]), int(reply["version"])


@dataclass
class _Shown:
    """The app's state version a snapshot shows, its own writes included; shared by an ``AppState`` and the
    children read from it, as they share the snapshot.

    A page draws again when the app's version differs from the one it shows. Its own write moves the app from
    ``before`` to ``after`` and is already in the snapshot, so it must not make the page draw again — yet any
    other change must: the write counts as seen only when the snapshot showed ``before`` (nothing else
    changed since it was read), and whatever the flow does next (answering the write too) is a later version.
    """

    version: int | None

    def wrote(self, before: int, after: int) -> None:
        """A write of this snapshot's took the app from version ``before`` to ``after``."""
        if self.version is not None and self.version == before:
            self.version = after


class AppState:
    """The state of the flow a frontend belongs to (or of ``component``), read live from the running app.

    Attribute access reads the flow's state attributes and reaches its child flows, works and structures
    (``state.train.progress``, ``state.workers[0].url``); setting a state attribute sends it to the app.
    Without arguments it finds the app from the environment its frontend process was started with.
    """

    def __init__(self, url: str | None = None, token: str | None = None, component: str | None = None, *,
                 my_affiliation: tuple[str, ...] | None = None) -> None:
        url = url or os.environ.get(ENV_URL)
        token = token or os.environ.get(ENV_TOKEN)
        if not url or not token:
            raise AppStateError(f"AppState() finds the app through ${ENV_URL} and ${ENV_TOKEN}, which the app sets "
                                "for the frontends it starts (StreamlitFrontend, PanelFrontend); outside one, give "
                                "AppState(url, token, component)")
        if component is None:
            component = os.environ.get(ENV_COMPONENT) or "root"
            if my_affiliation:
                component = ".".join(["root", *[part for part in my_affiliation if part != "root"]])
        self._init(_Connection(url, token), component, None, None)

    def _init(self, connection: _Connection, component: str, state: dict[str, Any] | None,
              version: int | None) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_component", component)
        object.__setattr__(self, "_snapshot", state)
        object.__setattr__(self, "_shown", _Shown(version))

    @classmethod
    def _child(cls, parent: AppState, key: str, state: dict[str, Any]) -> AppState:
        child = cls.__new__(cls)
        child._init(parent._connection, f"{parent._component}.{key}", state, None)
        object.__setattr__(child, "_shown", parent._shown)  # one snapshot: the child's writes are the page's
        return child

    @property
    def _version(self) -> int | None:
        """The app's state version this state shows: the one it was read at, moved on by its own writes
        while nothing else changed (a page polling the app draws again only when the app is past it)."""
        return self._shown.version

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def _state(self) -> dict[str, Any]:
        """The component's state (``{"vars", "flows", "works", "structures", ...}``), fetched at first use."""
        if self._snapshot is None:
            self._request_state()
        return self._snapshot  # type: ignore[return-value]

    def _request_state(self) -> None:
        """Read the state again from the app."""
        version, state = self._connection.state(self._component)
        object.__setattr__(self, "_snapshot", state)
        object.__setattr__(self, "_shown", _Shown(version))  # children read before keep the old snapshot's

    @property
    def vars(self) -> dict[str, Any]:
        """The component's state attributes (a copy)."""
        return dict(self._state.get("vars", {}))

    def _names(self) -> list[str]:
        state = self._state
        return [*state.get("vars", {}), *(key for kind in _KINDS for key in state.get(kind, {}))]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        state = self._state
        variables = state.get("vars", {})
        if name in variables:
            return variables[name]
        for kind in _KINDS:
            if name in state.get(kind, {}):
                return AppState._child(self, name, state[kind][name])
        known = ", ".join(self._names()) or "none"
        raise AttributeError(f"{self._component} has no attribute {name!r}; it has: {known}")

    def __getitem__(self, key: Any) -> AppState:
        """An item of a structure (``structures.List`` / ``Dict``) by index or key."""
        state = self._state
        for kind in ("flows", "works"):
            if str(key) in state.get(kind, {}):
                return AppState._child(self, str(key), state[kind][str(key)])
        raise KeyError(f"{self._component} has no item {key!r}")

    def __iter__(self) -> Iterator[AppState]:
        state = self._state
        keys = [*state.get("flows", {}), *state.get("works", {})]
        for key in sorted(keys, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k)):
            yield self[key]

    def __len__(self) -> int:
        state = self._state
        return len(state.get("flows", {})) + len(state.get("works", {}))

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._names()})

    # -- writing ------------------------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        variables = self._state.get("vars", {})
        if name not in variables:
            raise AttributeError(f"{name!r} is not a state attribute of {self._component}; its attributes are: "
                                 f"{', '.join(variables) or 'none'}")
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise TypeError(f"{self._component}.{name}: AppState sends values as JSON; "
                            f"{type(value).__name__} {value!r:.60} is not") from None
        if type(variables[name]) is type(value) and variables[name] == value:
            return  # unchanged (a page setting every widget's value on each rerun sends only what changed)
        before, after = self._connection.set(self._component, {name: value})
        variables[name] = value
        self._shown.wrote(before, after)

    def __repr__(self) -> str:
        return f"<AppState {self._component} {self.vars if self._snapshot is not None else '(not read yet)'}>"
