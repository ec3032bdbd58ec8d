"""``List`` and ``Dict``: a variable number of child components under one attribute.

Their children are named ``<parent>.<attribute>.<index or key>`` and may be added while the app runs
(dynamic components): a work appended inside ``run()`` is dispatched on its first ``run()`` call.

>>> class Sweep(LightningFlow):
...     def __init__(self):
...         super().__init__()
...         self.trials = List(*(Trainer(lr=lr) for lr in (0.1, 0.01)))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .component import Component, Node
from .values import describe_type


def _require_component(item: Any, where: str) -> Component:
    if not isinstance(item, Component):
        raise TypeError(f"{where} holds only LightningFlow / LightningWork objects, not {describe_type(item)}")
    return item


class Structure(Node):
    """Base of ``List`` and ``Dict``: children registered by key, state under ``state["structures"]``."""

    def __setattr__(self, attribute: str, value: Any) -> None:
        if not attribute.startswith("_"):
            raise AttributeError(f"{type(self).__name__} {self.name} holds components only; use item access")
        object.__setattr__(self, attribute, value)

    def _items(self) -> Iterator[tuple[str, Component]]:
        raise NotImplementedError

    def _children(self) -> Iterator[tuple[str, Node]]:
        yield from self._items()

    @property
    def state(self) -> dict[str, Any]:
        from .flow import LightningFlow

        flows = {key: c.state for key, c in self._items() if isinstance(c, LightningFlow)}
        works = {key: c.state for key, c in self._items() if not isinstance(c, LightningFlow)}
        return {"flows": flows, "works": works}

    @property
    def state_vars(self) -> dict[str, Any]:
        """Like :attr:`state`, with each child's ``state_vars``."""
        from .flow import LightningFlow

        items = list(self._items())
        return {"flows": {key: c.state_vars for key, c in items if isinstance(c, LightningFlow)},
                "works": {key: c.state_vars for key, c in items if not isinstance(c, LightningFlow)}}


class List(Structure):
    """A list of components. ``append`` adds one (also while the app runs); items are named by index."""

    def __init__(self, *items: Component) -> None:
        object.__setattr__(self, "_list", [])
        for item in items:
            self.append(item)

    def append(self, item: Component) -> None:
        _require_component(item, "structures.List")
        key = str(len(self._list))
        self._list.append(item)
        self._adopt(key, item)

    def _items(self) -> Iterator[tuple[str, Component]]:
        for index, item in enumerate(self._list):
            yield str(index), item

    def __getitem__(self, index: int) -> Component:
        return self._list[index]

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[Component]:
        return iter(list(self._list))

    def __repr__(self) -> str:
        return f"List({', '.join(describe_type(i) for i in self._list)})"

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for key, item in self._items():
            object.__setattr__(item, "_parent", self)
            object.__setattr__(item, "_key", key)


class Dict(Structure):
    """A dict of components keyed by strings (no dots); ``d[key] = component`` adds one."""

    def __init__(self, **items: Component) -> None:
        object.__setattr__(self, "_dict", {})
        for key, item in items.items():
            self[key] = item

    def __setitem__(self, key: str, item: Component) -> None:
        if not isinstance(key, str) or "." in key or not key:
            raise KeyError(f"structures.Dict keys are non-empty strings without '.', not {key!r}")
        _require_component(item, "structures.Dict")
        if key in self._dict and self._dict[key] is not item:
            raise KeyError(f"{self.name}.{key} is already set; a child component cannot be replaced")
        self._dict[key] = item
        self._adopt(key, item)

    def _items(self) -> Iterator[tuple[str, Component]]:
        yield from list(self._dict.items())

    def _remove(self, key: str) -> None:
        """Take the component under ``key`` out (``work.delete()``)."""
        self._release(self._dict[key], lambda: self._dict.pop(key))

    def __getitem__(self, key: str) -> Component:
        return self._dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __len__(self) -> int:
        return len(self._dict)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._dict))

    def keys(self) -> list[str]:
        return list(self._dict)

    def values(self) -> list[Component]:
        return list(self._dict.values())

    def items(self) -> list[tuple[str, Component]]:
        return list(self._dict.items())

    def __repr__(self) -> str:
        return f"Dict({', '.join(f'{k}={describe_type(v)}' for k, v in self._dict.items())})"

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for key, item in self._items():
            object.__setattr__(item, "_parent", self)
            object.__setattr__(item, "_key", key)
