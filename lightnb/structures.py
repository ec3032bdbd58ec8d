"""Containers of a variable number of components: ``List`` and ``Dict``."""

from .core.structures import Dict, List

__all__ = ["Dict", "List"]
