"""``LightningWork``: a leaf component whose ``run()`` is a long job executed on the cluster."""

from __future__ import annotations

import functools
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle

from .calls import CallTable, WorkStageStatus, WorkStatus, call_hash
from .component import Component
from .compute import CloudCompute
from .unsupported import refuse_work_options
from .values import describe_type

LOOPBACK = "127.0.0.1"


class WorkStopped(BaseException):
    """Raised inside a work's ``run()`` when the app asked it to stop (a ``BaseException``, so a user's
    ``except Exception`` does not swallow it)."""


class LightningWork(Component):
    """A long-running job — training, serving, a script — executed on a Dask worker.

    Its public attributes are state: whatever ``run()`` sets streams back to the flow while it runs, and what
    the flow sets reaches the running work.

    Parameters
    ----------
    parallel:
        ``False`` (default): a flow calling ``run()`` stops its pass there until the call has finished.
        ``True``: the call returns at once and the flow goes on.
    cache_calls:
        ``True`` (default): a call with arguments seen before does not run again.
    raise_exception:
        ``True`` (default): a failure in ``run()`` fails the app; ``False``: the flow can react to
        ``work.has_failed``.
    cloud_compute:
        The resources the work needs (``CloudCompute("gpu")`` → a worker offering ``GPU``).
    host, port:
        Where a work that serves HTTP listens, as in the reference (default ``127.0.0.1`` and a free port).
        Where the work runs, reading ``self.port`` picks the port (the given one, else a free one there) and
        sets the state ``port``, ``url`` (``http://host:port``, ``""`` before) and ``internal_ip`` (the
        address of the machine it runs on), which the flow sees.
    start_with_flow:
        Accepted for the reference's apps; it changes nothing: lightnb places a work on a worker at its first
        ``run()`` call, so there is no process to start with the flow (:meth:`start` is accepted too).

    Example
    -------
    >>> class Counter(LightningWork):
    ...     def __init__(self):
    ...         super().__init__(parallel=True)
    ...         self.count = 0
    ...     def run(self, until):
    ...         while self.count < until:
    ...             self.count += 1
    """

    _calls: CallTable
    _executing: bool

    # What a work serving HTTP gets, as in the reference: set where it runs, then state like any attribute.
    _undeclared_state = frozenset({"url", "port", "host", "internal_ip"})

    def __init__(self, parallel: bool = False, cache_calls: bool = True, raise_exception: bool = True,
                 cloud_compute: CloudCompute | None = None, *, host: str = LOOPBACK, port: int | None = None,
                 start_with_flow: bool = True, **upstream: Any) -> None:
        if upstream:  # the reference's cloud-only options: say what to do instead of "unexpected keyword"
            refuse_work_options(describe_type(self), upstream,
                                ["parallel", "cache_calls", "raise_exception", "cloud_compute", "host", "port",
                                 "start_with_flow"])
        self._parallel = bool(parallel)
        self._cache_calls = bool(cache_calls)
        self._raise_exception = bool(raise_exception)
        if cloud_compute is not None and not isinstance(cloud_compute, CloudCompute):
            raise TypeError(f"cloud_compute must be a lightnb.CloudCompute, not {describe_type(cloud_compute)}")
        self._cloud_compute = cloud_compute or CloudCompute()
        if not isinstance(host, str) or not host:
            raise TypeError(f"{type(self).__name__} host must be an address such as '127.0.0.1', not {host!r}")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError(f"{type(self).__name__} port must be a port number (1-65535) or None for a free "
                             f"one, not {port!r}")
        self._host = host
        self._port = port
        # lightnb places a work on a worker at its first run() call, so there is nothing to start with the
        # flow: start_with_flow is accepted and changes nothing (see start()).
        self._start_with_flow = bool(start_with_flow)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set: the reference's address of a work's server (url, port ...).
        if name in ("host", "port", "url", "internal_ip"):
            return self._server_address(name)
        raise AttributeError(f"{describe_type(self)} object has no attribute {name!r}")

    def _server_address(self, name: str) -> Any:
        """``host``/``port``/``url``/``internal_ip`` before they were set. Where the work executes, asking
        for the port picks it (a free one of ``host`` unless given) and sets ``port``, ``url`` and
        ``internal_ip`` — state the flow sees. Elsewhere: the given host and port, ``""`` for the others."""
        host = self.__dict__.get("host", self.__dict__.get("_host", LOOPBACK))
        if name == "host":
            return host
        if not self.__dict__.get("_executing", False):
            return self.__dict__.get("_port") if name == "port" else ""
        if name == "internal_ip":  # not set yet (a server that picks its own port sets no address)
            self.internal_ip = machine_address()
            return self.internal_ip
        if "port" not in self.__dict__:
            port = self.__dict__.get("_port") or free_port(host)
            self.port = port
            self.internal_ip = machine_address()
            self.url = server_url(host, port)
        return self.__dict__.get(name, "")

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        work = super().__new__(cls, *args, **kwargs)
        if getattr(cls.run, "__lightnb_raw__", None) is None:
            raise TypeError(f"{cls.__qualname__} must define a run() method: it is what the work executes")
        object.__setattr__(work, "_calls", CallTable())
        object.__setattr__(work, "_executing", False)
        object.__setattr__(work, "_parallel", False)
        object.__setattr__(work, "_cache_calls", True)
        object.__setattr__(work, "_raise_exception", True)
        object.__setattr__(work, "_cloud_compute", CloudCompute())
        object.__setattr__(work, "_host", LOOPBACK)
        object.__setattr__(work, "_port", None)
        object.__setattr__(work, "_start_with_flow", True)
        return work

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not hasattr(run, "__lightnb_raw__"):
            cls.run = _dispatching(run)  # type: ignore[method-assign]

    def _validate_definition(self) -> None:
        for key, value in self.__dict__.items():
            if not key.startswith("_") and isinstance(value, Component):
                raise TypeError(f"{describe_type(self)} is a work and cannot own the component {key!r}")

    def _attach_child(self, attribute: str, child: Any) -> None:
        raise TypeError(
            f"{self.name} ({describe_type(self)}) is a LightningWork and cannot own the component "
            f"{describe_type(child)} set as {attribute!r}: works are the leaves of the component tree. "
            "Attach it to a LightningFlow instead."
        )

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Override with the work's job. Called by a flow; executed on a Dask worker."""
        raise NotImplementedError

    def on_exit(self) -> None:
        """Called where the work runs when it is stopped (after ``stop()``), to release what it holds."""

    def stop(self) -> None:
        """Stop the work: afterwards it is ``stopped`` (``has_stopped``), whatever it was doing.

        A running call stops at once for processes it started (scripts, servers), and for Python code at its
        next attribute set or :meth:`check_stop` — Python code that reaches neither within half a second is
        interrupted (``WorkStopped`` raised in its thread; code blocked in a C call such as ``time.sleep`` only
        when that call returns); it is ``stopped`` once it has, after ``on_exit()``. Queued calls never run. A work
        whose call had already finished, or that was never called, is ``stopped`` at once. With
        ``cache_calls=True`` a stopped call is not run again by calling ``run()`` with the same arguments.
        """
        observer = self._observer
        if observer is not None:
            observer.on_stop(self)
        else:
            self._calls.stop(time.time())

    def start(self) -> None:
        """Make the work ready for its calls without calling ``run()``.

        lightnb places a work on a worker when it is first called (a Dask worker is already running), so
        there is no process to start ahead: this only checks that the work can still run (a stopped or
        deleted work cannot be started again, as in the reference).
        """
        if self.has_stopped or self.__dict__.get("_deleted", False):
            raise RuntimeError(f"{self.name} was {'deleted' if self.__dict__.get('_deleted') else 'stopped'}; "
                               "a work can be started only once. Create a new work to run again.")

    def delete(self) -> None:
        """Stop the work and remove it from its flow: its attribute becomes ``None`` (a placeholder a new
        work may take: ``self.server = Server()``), a ``structures.Dict`` loses its key. A work in a
        ``structures.List`` is stopped and stays in the list (the others keep their indices)."""
        self.stop()
        object.__setattr__(self, "_deleted", True)
        parent, key = self._parent, self._key
        if parent is None or key is None:
            return
        from .structures import Dict, List

        if isinstance(parent, Dict):
            parent._remove(key)
        elif not isinstance(parent, List) and isinstance(parent, Component):
            parent._detach_child(key, self)

    @property
    def start_with_flow(self) -> bool:
        return self._start_with_flow

    def check_stop(self) -> None:
        """Raise :class:`WorkStopped` if the app asked this (running) work to stop; a no-op otherwise."""
        observer = self._observer
        if observer is not None:
            observer.check_stop(self)

    # -- configuration ------------------------------------------------------------------------------------
    @property
    def parallel(self) -> bool:
        return self._parallel

    @property
    def cache_calls(self) -> bool:
        return self._cache_calls

    @property
    def raise_exception(self) -> bool:
        return self._raise_exception

    @property
    def cloud_compute(self) -> CloudCompute:
        return self._cloud_compute

    # -- status -------------------------------------------------------------------------------------------
    @property
    def status(self) -> WorkStatus:
        """The status of the work's latest call: ``status.stage``, ``status.message`` (traceback on failure)."""
        return self._calls.status

    @property
    def has_started(self) -> bool:
        return self.status.stage is not WorkStageStatus.NOT_STARTED

    @property
    def is_pending(self) -> bool:
        return self.status.stage is WorkStageStatus.PENDING

    @property
    def is_running(self) -> bool:
        return self.status.stage is WorkStageStatus.RUNNING

    @property
    def has_succeeded(self) -> bool:
        return self.status.stage is WorkStageStatus.SUCCEEDED

    @property
    def has_failed(self) -> bool:
        return self.status.stage is WorkStageStatus.FAILED

    @property
    def has_stopped(self) -> bool:
        return self.status.stage is WorkStageStatus.STOPPED

    @property
    def state(self) -> dict[str, Any]:
        """``{"vars": ..., "calls": ...}``: the work's public attributes and its calls' statuses."""
        return {"vars": self._vars_json(), "calls": self._calls.to_state()}

    @property
    def state_vars(self) -> dict[str, Any]:
        """``{"vars": ...}``: the work's public attributes, as in the reference framework."""
        return {"vars": self._vars_json()}

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_calls", None)  # the call table (and its arguments) stays with the flow
        state["_executing"] = False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        object.__setattr__(self, "_calls", CallTable())

    def __repr__(self) -> str:
        return f"<{describe_type(self)} {self.name} {self.status.stage.value}>"


def _dispatching(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a work's ``run``: from a flow it dispatches a call; where the work executes it runs the code."""

    @functools.wraps(run)
    def dispatch(self: LightningWork, *args: Any, **kwargs: Any) -> Any:
        if self._executing:
            if self.__dict__.get("_port") is not None and "port" not in self.__dict__:
                self._server_address("port")  # a port was given: the flow sees the url from the call's start
            return run(self, *args, **kwargs)
        observer = self._observer
        if observer is not None:
            return observer.on_run(self, args, kwargs)
        return _run_in_process(self, run, args, kwargs)

    dispatch.__lightnb_raw__ = run  # type: ignore[attr-defined]
    return dispatch


_WILDCARDS = ("0.0.0.0", "", "::")


def free_port(host: str = LOOPBACK) -> int:
    """A port free right now on ``host`` (here, where the work executes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def machine_address() -> str:
    """This machine's address on its network (what other machines reach it at); loopback without one.
    No packet is sent: connecting a UDP socket only picks the interface a route would use."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.254.254.254", 1))
            return str(sock.getsockname()[0])
    except OSError:
        return LOOPBACK


def server_url(host: str, port: int) -> str:
    """``http://host:port`` as the reference gives it (no trailing slash); a wildcard host is reached on
    loopback, as the notebook's own servers are."""
    shown = LOOPBACK if host in _WILDCARDS else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


_SCALAR_TYPES = (str, int, float, bool, type(None))


def hash_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The call hash of ``run(*args, **kwargs)``. Flows call ``run()`` on every pass, so the common cases —
    no arguments, or only scalars — are memoized instead of re-encoded each time."""
    if not args and not kwargs:
        return _NO_ARGUMENTS
    if all(type(a) in _SCALAR_TYPES for a in args) and all(type(v) in _SCALAR_TYPES for v in kwargs.values()):
        # Types are part of the key: 1, 1.0 and True are different calls.
        return _scalar_call_hash(tuple((type(a), a) for a in args),
                                 tuple(sorted((k, type(v), v) for k, v in kwargs.items())))
    return call_hash(args, kwargs, fallback=cloudpickle.dumps)


_NO_ARGUMENTS = call_hash((), {})


@functools.lru_cache(maxsize=8192)
def _scalar_call_hash(args: tuple[tuple[type, Any], ...], kwargs: tuple[tuple[str, type, Any], ...]) -> str:
    return call_hash(tuple(a for _, a in args), {k: v for k, _, v in kwargs})


def _run_in_process(work: LightningWork, run: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
    """A direct ``work.run(...)`` with no app: execute here, honouring ``cache_calls``."""
    table = work._calls
    decision = table.request(hash_arguments(args, kwargs), args, kwargs, cache_calls=work.cache_calls,
                             parallel=True, now=time.time())
    if not decision.dispatch:
        return table.calls[table.latest].result  # type: ignore[index]
    call = table.take_next()
    assert call is not None
    table.on_running(call.call_id, time.time())
    object.__setattr__(work, "_executing", True)
    try:
        result = run(work, *args, **kwargs)
    except BaseException:
        table.on_finished(call.call_id, WorkStageStatus.FAILED, time.time(), traceback.format_exc(),
                          "user_exception")
        raise
    finally:
        object.__setattr__(work, "_executing", False)
    table.on_finished(call.call_id, WorkStageStatus.SUCCEEDED, time.time())
    call.result = result
    return result


def unpicklable_argument(work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any],
                         error: Exception) -> str:
    """The message for arguments of ``work.run()`` that cannot travel to a worker, naming the first culprit."""
    named = [*((f"argument {i}", a) for i, a in enumerate(args)), *((f"argument {k!r}", v) for k, v in kwargs.items())]
    for label, value in named:
        try:
            cloudpickle.dumps(value)
        except Exception as inner:
            return (f"{label} of {work.name}.run() ({describe_type(value)}) cannot be pickled to send it to "
                    f"the work's worker: {type(inner).__name__}: {inner}. Pass plain data, a lightnb Path or "
                    "Payload, or create the object inside the work's run().")
    return f"the arguments of {work.name}.run() cannot be pickled: {type(error).__name__}: {error}"
