"""``pretty_state``, as in the reference's ``lightning.app.utilities.app_helpers``."""

from __future__ import annotations

from typing import Any


def pretty_state(state: Any) -> dict[str, Any]:
    """The state's public vars, nested as the state is: ``{"vars": {...}, "flows": {name: ...}, "works":
    {name: ...}}`` — no calls, no private names, keys with nothing in them left out (as the reference does).

    ``state`` is a state dict (``flow.state``, ``app.state``) or a component (its ``state`` is used).

    >>> pretty_state(app.state)
    {'vars': {'lr': 0.1}, 'works': {'train': {'vars': {'loss': 0.3}}}}
    """
    if not isinstance(state, dict):
        state = getattr(state, "state", None)
        if not isinstance(state, dict):
            raise TypeError("pretty_state takes a state dict (flow.state, app.state) or a component, not "
                            f"{type(state).__name__}")
    pretty: dict[str, Any] = {}
    variables = {key: value for key, value in state.get("vars", {}).items() if not key.startswith("_")}
    if variables:
        pretty["vars"] = variables
    for kind in ("flows", "works"):
        children = state.get(kind) or {}
        if children:
            pretty[kind] = {name: pretty_state(child) for name, child in children.items()}
    return pretty


__all__ = ["pretty_state"]
