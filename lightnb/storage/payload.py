"""``Payload``: a Python value handed from one work to another."""

from __future__ import annotations

import hashlib
from typing import Any

import cloudpickle

from ..core.values import StateValue, describe_type
from ..runtime.pickling import dumps, ship_by_value
from . import keys
from .store import current_app_id, open_store, storage_url

# Values whose pickle is larger travel through the app's storage, not inside the messages that carry state.
SPILL_BYTES = 1 << 20


class Payload(StateValue):
    """A value a work sets as an attribute and another work receives (as a run argument, or through the
    flow); the receiver reads ``payload.value``.

    The value is pickled by value (cloudpickle) when the Payload is created: the receiver gets the value as
    it was then, classes defined in the notebook included. Small values travel with the state; a large one
    (over 1 MiB pickled) goes once through the app's storage and is read when ``.value`` is first used.

    Example
    -------
    >>> class Fit(LightningWork):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.weights = None
    ...     def run(self):
    ...         self.weights = Payload({"w": [0.1, 0.2]})
    >>> class Use(LightningWork):
    ...     def run(self, weights: Payload):
    ...         print(weights.value["w"])
    """

    def __init__(self, value: Any) -> None:
        ship_by_value(type(value))
        try:
            data = dumps(value)
        except Exception as error:
            raise TypeError(f"Payload cannot carry a {describe_type(value)}: it cannot be pickled "
                            f"({type(error).__name__}: {error}). Create unpicklable objects (locks, open "
                            "files, clients) where they are used; hand over the data to build them from.") \
                from None
        self._value: Any = value
        self._loaded = True
        self._data: bytes | None = data
        self._size = len(data)
        self._digest = hashlib.sha1(data).hexdigest()[:20]
        self._value_type = describe_type(value)
        self._stored: tuple[str, str] | None = None  # (storage URL, key) once in the app's storage

    @property
    def value(self) -> Any:
        """The value (read from the app's storage on first use when it travelled that way)."""
        if not self._loaded:
            data = self._data
            if data is None:
                assert self._stored is not None
                data = open_store(self._stored[0]).read_bytes(self._stored[1])
            self._value, self._loaded, self._data = cloudpickle.loads(data), True, None
        return self._value

    def to_state(self) -> dict[str, Any]:
        return {"type": "__payload__", "value_type": self._value_type, "size": self._size,
                "digest": self._digest}

    def attach(self, component: Any, attribute: str) -> Payload:
        # Store a large value now, on the work's own thread, rather than when its state is sent.
        self._spill()
        return self

    def _spill(self) -> None:
        if self._stored is not None or self._size <= SPILL_BYTES:
            return
        app_id = current_app_id()
        if app_id is None:
            return
        data = self._data if self._data is not None else cloudpickle.dumps(self._value)
        url = storage_url()
        key = keys.payload_key(app_id, self._digest)
        store = open_store(url)
        if not store.exists(key):
            store.write_bytes(key, data)
        self._stored = (url, key)
        if self._loaded:
            self._data = None  # the value itself is here; the bytes are in storage

    def __reduce__(self) -> tuple[Any, ...]:
        self._spill()
        if self._stored is None:
            data = self._data if self._data is not None else cloudpickle.dumps(self._value)
        else:
            data = None
        return (_restore, (data, self._stored, self._size, self._digest, self._value_type))

    def __repr__(self) -> str:
        return f"Payload({self._value_type}, {self._size} bytes pickled)"


def _restore(data: bytes | None, stored: tuple[str, str] | None, size: int, digest: str,
             value_type: str) -> Payload:
    payload = Payload.__new__(Payload)
    payload._value, payload._loaded, payload._data = None, False, data
    payload._size, payload._digest, payload._value_type, payload._stored = size, digest, value_type, stored
    return payload
