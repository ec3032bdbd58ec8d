"""The notebook front: the live ``AppView`` of an app and ``ParamsForm`` over a component's attributes.

>>> from lightnb.ui import AppView, ParamsForm
>>> AppView(app)                          # also app.view(), or `app` as a cell's last line
>>> ParamsForm(app.root, ["lr", "epochs"])

Imported lazily: ``import lightnb`` and ``%load_ext lightnb`` do not load the widget libraries.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AppView", "ParamsForm"]


def __getattr__(name: str) -> Any:
    if name == "AppView":
        from .appview import AppView

        return AppView
    if name == "ParamsForm":
        from .params import ParamsForm

        return ParamsForm
    raise AttributeError(f"module 'lightnb.ui' has no attribute {name!r}")
