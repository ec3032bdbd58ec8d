"""``lightning.app.runners.multiprocess`` under lightnb (see :mod:`lightnb.runners`)."""

from . import MultiProcessRuntime

__all__ = ["MultiProcessRuntime"]
