"""Make user code travel to workers: classes from the notebook (``__main__``) and from local modules.

cloudpickle ships ``__main__`` classes by value already. A class from a module the workers cannot import (a
helper ``.py`` file next to the notebook) would be pickled by reference and break the worker that unpickles
it, so such modules are registered to be pickled by value too.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from functools import cache
from pathlib import Path
from types import ModuleType

import cloudpickle

_registered: set[str] = set()


@cache
def _installed_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), site.getusersitepackages()}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        roots.add(sysconfig.get_path(key))
    return tuple(str(Path(root).resolve()) for root in roots if root)


def is_local_module(module: ModuleType) -> bool:
    """A module loaded from a file outside the Python installation (so workers may not have it)."""
    name = module.__name__
    if name == "__main__" or name.split(".")[0] in ("lightnb", "builtins"):
        return False
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = str(Path(file).resolve())
    return not path.startswith(_installed_roots())


def ship_by_value(*types: type) -> None:
    """Register the local modules defining ``types`` (and their bases) to be pickled by value."""
    for cls in types:
        for base in cls.__mro__:
            name = base.__module__
            if name in _registered:
                continue
            module = sys.modules.get(name)
            if module is not None and is_local_module(module):
                top = name.split(".")[0]
                cloudpickle.register_pickle_by_value(sys.modules.get(top, module))
                _registered.add(name)
