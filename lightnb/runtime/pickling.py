"""Make user code travel to workers: classes from the notebook (``__main__``) and from local modules.

cloudpickle ships ``__main__`` classes by value already. A class from a module the workers cannot import (a
helper ``.py`` file next to the notebook) would be pickled by reference and break the worker that unpickles
it, so such modules are registered to be pickled by value too.

Code shipped by value keeps the file name it was compiled from (:func:`dumps`): a traceback from a worker then
names the notebook cell or the helper file, and the kernel, which has their text, shows the source lines.
cloudpickle itself does not promise that (3.1.3 names every such function ``<dynamic-code>``), so lightnb
pickles code objects itself, with :mod:`marshal`, which keeps every field of a code object.
"""

from __future__ import annotations

import io
import marshal
import site
import sys
import sysconfig
import threading
import types
from collections import ChainMap
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle


def _reduce_code(code: types.CodeType) -> tuple[Any, ...]:
    """A code object as :mod:`marshal` writes it: file name, line table, nested code and all."""
    try:
        return marshal.loads, (marshal.dumps(code),)
    except ValueError:  # a constant marshal cannot write (code built by hand): cloudpickle's own way
        return cloudpickle.Pickler.dispatch_table[types.CodeType](code)


class _Pickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table)


def dumps(value: Any, protocol: int | None = None) -> bytes:
    """``cloudpickle.dumps``, with the code of functions shipped by value keeping its file name.

    The result is read by plain ``pickle.loads`` / ``cloudpickle.loads``, on a Python of the same version
    (what shipping code by value needs anyway).
    """
    with io.BytesIO() as file:
        _Pickler(file, protocol=protocol or cloudpickle.DEFAULT_PROTOCOL).dump(value)
        return file.getvalue()

class _ByValueModules:
    """The modules registered with cloudpickle to be pickled by value (apps may pickle from several
    threads: the kernel's, the loop's, a work's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: set[str] = set()

    def register(self, name: str) -> None:
        with self._lock:
            if name in self._names:
                return
            module = sys.modules.get(name)
            if module is not None and is_local_module(module):
                top = name.split(".")[0]
                cloudpickle.register_pickle_by_value(sys.modules.get(top, module))
                self._names.add(name)


_BY_VALUE = _ByValueModules()


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
            _BY_VALUE.register(base.__module__)


def ship_function_by_value(function: Any) -> None:
    """Register the local module defining ``function`` to be pickled by value (a UI's render function that
    another process loads)."""
    _BY_VALUE.register(getattr(function, "__module__", None) or "__main__")
