"""``LightningApp``: a root flow, the cluster its works run on, and the loop that steps it."""

from __future__ import annotations

import ast
import asyncio
import atexit
import contextlib
import itertools
import logging
import os
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .core.events import AppStage, Changes, Logged
from .core.flow import LightningFlow, find_component
from .core.values import describe_type
from .core.work import LightningWork
from .runtime.cluster import is_explicit
from .runtime.context import AppContext, resolve_storage
from .runtime.loop import AppLoop
from .runtime.protocol import Executor
from .storage.record import (
    FORMAT,
    AppRecord,
    RecordedApp,
    Recorder,
    RestoreReport,
    Snapshot,
    restore,
    snapshots,
    tree_records,
)
from .storage.store import register_storage_lookup

_apps: weakref.WeakSet[LightningApp] = weakref.WeakSet()
_creation_order = itertools.count()
# Called with each app right after it started (the notebook front follows apps however they were started).
_start_listeners: list[Callable[[LightningApp], None]] = []
# Makes an app's live view; the notebook front registers it (the app knows no front).
_view_factories: list[Callable[[LightningApp], Any]] = []


class AppFailed(RuntimeError):
    """The app ended as failed: a work failed (with ``raise_exception=True``), the flow raised, or it called
    ``flow.fail()``. ``str(error)`` holds the reason and the failing code's traceback."""

    def __init__(self, message: str, work_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.work_name = work_name


class _WorkRoot(LightningFlow):
    """Root flow of an app made from a single work: run it once, end when it ends."""

    def __init__(self, work: LightningWork) -> None:
        super().__init__()
        self.work = work

    def run(self) -> None:
        self.work.run()
        if self.work.has_succeeded:
            self.stop(f"{self.work.name} succeeded")
        elif self.work.has_failed or self.work.has_stopped:
            self.fail(f"{self.work.name} {self.work.status.stage}: {self.work.status.message}")


# Set by `lightnb run` while it loads a script: the apps the script asked to run (app.run()), to run them.
_capturing: list[list[LightningApp]] = []


@contextlib.contextmanager
def capturing_runs() -> Iterator[list[LightningApp]]:
    """While active, ``app.run()`` records the app instead of running it (``lightnb run`` runs it)."""
    captured: list[LightningApp] = []
    _capturing.append(captured)
    try:
        yield captured
    finally:
        _capturing.remove(captured)


def check_main_guard() -> None:
    """Exit with one sentence when a script run as ``python app.py`` starts an app on the embedded cluster
    outside ``if __name__ == "__main__":`` — its worker processes re-import the script, and each would start
    the app again (Dask then reports "Nanny failed to start", four tracebacks deep)."""
    script = unguarded_script_line()
    if script is not None:
        raise SystemExit(
            f"lightnb: {script[0]}, line {script[1]} starts the app outside `if __name__ == \"__main__\":`; "
            "put it under that guard (the embedded Dask cluster's worker processes import the script again, "
            f"and would start the app again), or run the script with `lightnb run {os.path.basename(script[0])}`, "
            "which needs no guard.")


def unguarded_script_line() -> tuple[str, int] | None:
    """(file, line) of the top-level statement of the ``__main__`` script that is running now, if it is not
    under ``if __name__ == "__main__":``; None outside such a script (a notebook, ``lightnb run``, -c)."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    if main is None or not file or not str(file).endswith(".py"):
        return None
    frame: Any = sys._getframe(1)
    line = None
    while frame is not None:  # the outermost module-level frame of the script: its current statement
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None
    try:
        with open(file, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for statement in tree.body:
        if statement.lineno <= line <= (statement.end_lineno or statement.lineno):
            return None if is_main_guard(statement) else (str(file), line)
    return None


def is_main_guard(node: ast.AST) -> bool:
    """Whether ``node`` is ``if __name__ == "__main__":`` (either side of the ``==``)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


LOG_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG}


def set_log_level(level: str) -> str:
    """Apply ``LightningApp(log_level=...)`` to the ``lightnb`` logger; the level, lower-cased."""
    name = level.lower() if isinstance(level, str) else level
    if name not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(map(repr, LOG_LEVELS))}, not {level!r}")
    logger = logging.getLogger("lightnb")
    logger.setLevel(LOG_LEVELS[name])
    if name == "debug" and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    return name


class LightningApp:
    """Runs a root flow: the flow steps on a background loop in this process, works run on a Dask cluster.

    Parameters
    ----------
    root:
        The root ``LightningFlow`` (or a single ``LightningWork``, run once).
    cluster:
        ``None`` for an embedded ``LocalCluster`` on loopback (started in the background, closed with the
        app); a scheduler address; a ``distributed.Client`` or ``Cluster``; a spec ``{"class": ...,
        "kwargs": ...}`` or the path of a YAML/JSON file holding one; ``"in-process"`` to run works on threads
        of this process (fast tests, no cluster).
    storage:
        Root URL of the app's drives, kept Paths and large Payloads: a local folder, or any fsspec URL
        (``"s3://bucket/prefix"`` through s3fs) for workers that share no disk. Default: ``$LIGHTNB_STORAGE``,
        else ``./.lightnb-storage`` (made absolute when the app starts).
    env:
        Environment variables set wherever the app's works run.
    name:
        The app's name. A named app is *durable*: it keeps a record of itself under its storage root (the
        tree's state, its calls, its stage — see docs/durable-apps.md), written as it changes.
    resume:
        With a ``name``: carry on from that app's record, left by a process that ended or died — finished
        calls are not run again, works still running on a cluster that outlived the process are re-attached,
        interrupted ones run again from their last state. No record: the app starts fresh and says so.
        ``False`` (default): a record of that name is replaced when the app starts.
    hot_reload:
        In a notebook (``%load_ext lightnb``), re-running the cell that defines a flow or work class this app
        uses switches the running app to the new code (``False``: it keeps the code it started with).
    log_level:
        ``"info"`` (default) or ``"debug"``, as in the reference: ``"debug"`` sets the ``lightnb`` logger to
        DEBUG (with a handler on stderr if it has none), which logs each call the app sends to the cluster
        and each stop it asks for.

    Example
    -------
    >>> app = LightningApp(Root())
    >>> app.start()        # returns at once; the app runs in the background
    >>> app.wait(60)       # until the root flow stops (AppFailed if it failed)
    """

    def __init__(self, root: LightningFlow | LightningWork, cluster: Any = None, storage: str | None = None,
                 *, env: dict[str, str] | None = None, name: str | None = None, resume: bool = False,
                 hot_reload: bool = True, log_level: str = "info") -> None:
        self.log_level = set_log_level(log_level)
        if isinstance(root, LightningWork):
            root = _WorkRoot(root)
        if not isinstance(root, LightningFlow):
            raise TypeError(f"LightningApp takes a LightningFlow (or a LightningWork) as root, not "
                            f"{describe_type(root)}")
        if getattr(type(root).run, "__lightnb_raw__", None) is None:
            raise TypeError(f"the root flow {describe_type(root)} must define run(): it is what the app steps")
        if root._parent is not None:
            raise ValueError(f"{root.name} is part of another flow and cannot be the root of an app")
        self.root = root
        self.cluster = cluster
        self.storage = storage
        self.env = dict(env or {})
        self.hot_reload = hot_reload
        self.name = name or type(root).__name__
        self.durable = name is not None
        if resume and not self.durable:
            raise ValueError("resume=True needs the name of the app to resume: LightningApp(root, name=..., "
                             "resume=True)")
        self.resume = resume
        self.app_id = f"{self.name.lower()}-{uuid.uuid4().hex[:8]}"
        self.resumed: RestoreReport | None = None  # what resuming did, once started
        self._recorder: Recorder | None = None
        self._resume_note = ""
        self._loop: AppLoop | None = None
        self._start_lock = threading.Lock()
        self._early_listeners: list[Callable[[Changes], None]] = []  # subscribed before the start
        self._created = next(_creation_order)
        _apps.add(self)

    # -- running ------------------------------------------------------------------------------------------
    def start(self, paused: bool = False) -> LightningApp:
        """Start the app in the background and return.

        An explicit cluster address is connected first: an unreachable one raises here (within ~5 s),
        naming it. The embedded cluster starts in the background while the flow already steps.
        With ``paused=True`` the flow only steps on :meth:`step`.
        """
        with self._start_lock:
            if self._loop is not None:
                raise RuntimeError(f"app {self.name} was already started; create a new LightningApp to run "
                                   "it again")
            if not is_explicit(self.cluster) and self.cluster != "in-process":
                check_main_guard()
            storage = resolve_storage(self.storage)
            record, recorded = self._open_record(storage)
            executor = self._make_executor()
            context = AppContext(self.app_id, storage, self.env)
            loop = AppLoop(self.app_id, self.root, executor, paused=paused, context=context)
            for listener in self._early_listeners:
                loop.subscribe(listener)
            self._early_listeners.clear()
            eager = executor.connects_eagerly
            if eager:
                executor.start(loop.post)
            if record is not None:
                self._begin_record(record, recorded, loop, executor if eager else None)
            self._loop = loop
            loop.start(executor_started=eager)
        for listener in list(_start_listeners):
            try:
                listener(self)
            except Exception:
                traceback.print_exc()
        return self

    def _open_record(self, storage: str) -> tuple[AppRecord | None, RecordedApp | None]:
        """The app's record (a durable app) and, resuming, what it holds; the app takes the recorded id so
        that it hears the works it left running."""
        if not self.durable:
            return None, None
        record = AppRecord(storage, self.name)
        if not self.resume:
            return record, None
        if not record.exists():
            self._resume_note = f"lightnb: no record of {self.name} in {storage}: starting fresh\n"
            return record, None
        recorded = record.read()
        self.app_id = str(recorded.meta.get("app_id") or self.app_id)
        return record, recorded

    def _begin_record(self, record: AppRecord, recorded: RecordedApp | None, loop: AppLoop,
                      executor: Executor | None) -> None:
        note = self._resume_note
        if recorded is not None:
            def alive(work_name: str, call_id: str) -> bool:
                return executor is not None and executor.can_reattach(work_name, call_id)

            self.resumed = restore(self.root, recorded, reattach=alive)
            note = f"lightnb: {self.name} {self.resumed.describe()}\n"
            if executor is not None:
                for work_name, call_id in self.resumed.reattach:
                    executor.reattach(work_name, call_id)
        if note:
            loop.post(Logged("root", "stdout", note))
        meta = {"name": self.name, "app_id": self.app_id, "cluster": loop.executor.description,
                "created": time.time(), "updated": time.time(), "stage": "running",
                "resumed": recorded is not None}
        if recorded is None:
            record.start_over(meta, tree_records(self.root))
        else:
            record.write_json("meta.json", {**recorded.meta, **meta, "created": recorded.meta.get("created"),
                                            "format": FORMAT})
        root = self.root

        def take(names: set[str]) -> dict[str, Snapshot]:
            with loop.lock:
                return snapshots(root, names, loop.engine.works)

        recorder = self._recorder = Recorder(record, take, seq=recorded.seq if recorded is not None else 0)

        def on_changes(changes: Changes) -> None:
            if not loop.ended and (changes.state or changes.stage):  # the end is written by on_end
                recorder.changed(changes.state, {"stage": str(loop.stage)} if changes.stage else None)

        def on_end() -> None:
            recorder.changed({node.name for node in root._walk()})
            recorder.close({"stage": str(loop.stage), "end_message": loop.end_message})

        loop.subscribe(on_changes)
        loop.before_done.append(on_end)

    def _make_executor(self) -> Any:
        from .runtime.cluster import get_default_cluster

        cluster = self.cluster if self.cluster is not None else get_default_cluster()
        if cluster == "in-process":
            from .runtime.inprocess import InProcessExecutor

            return InProcessExecutor()
        from .runtime import warm
        from .runtime.dask import DaskExecutor

        if cluster is None and warm.enabled():
            cluster = warm.WARM  # the process's warm embedded cluster, shared with the apps before and after
        return DaskExecutor(self.app_id, cluster, storage=self.storage, durable=self.durable)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the app ends. ``TimeoutError`` if still running after ``timeout`` seconds;
        :class:`AppFailed` if it ended as failed. A kernel interrupt stops the wait, not the app."""
        loop = self._require_started()
        if not loop.done.wait(timeout):
            raise TimeoutError(f"app {self.name} is still running after {timeout} s (stage {self.stage})")
        self._raise_if_failed()

    async def wait_async(self, timeout: float | None = None) -> None:
        """``await app.wait_async()``: like :meth:`wait`, without blocking the notebook's event loop."""
        loop = self._require_started()
        if not loop.done.is_set():
            aio_loop = asyncio.get_running_loop()
            ended = aio_loop.create_future()

            def on_change(changes: Changes) -> None:
                if loop.done.is_set():
                    aio_loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))

            unsubscribe = loop.subscribe(on_change)
            try:
                if not loop.done.is_set():
                    await asyncio.wait_for(ended, timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"app {self.name} is still running after {timeout} s") from None
            finally:
                unsubscribe()
        self._raise_if_failed()

    def run(self) -> None:
        """Start the app and block until it ends (the script form). Ctrl-C stops it cleanly.

        While ``lightnb run`` loads a script, ``app.run()`` only marks the app as the one to run: the
        command runs it, with its terminal view."""
        if _capturing:
            _capturing[-1].append(self)
            return
        self.start()
        try:
            self.wait()
        except KeyboardInterrupt:
            self.stop()
            raise

    def stop(self, timeout: float | None = None) -> None:
        """Stop every work, release the cluster the app created, end the loop; returns once done.
        A no-op on an app that has not started or has ended."""
        loop = self._loop
        if loop is None or loop.done.is_set():
            return
        if loop.on_loop_thread:
            raise RuntimeError("app.stop() cannot be called from a flow; call self.stop() in the flow instead")
        loop.request_stop()
        loop.done.wait(timeout)

    def request_stop(self, message: str = "stopped by the user") -> None:
        """Ask the app to stop with ``message`` and return at once (safe from a signal handler); the app
        ends as with :meth:`stop`, :attr:`ended` once it has. A no-op on an app that is not running."""
        loop = self._loop
        if loop is not None and not loop.done.is_set():
            loop.request_stop(message)

    @property
    def ended(self) -> bool:
        """The app has ended: its works are stopped and the cluster it created is closed."""
        loop = self._loop
        return loop is not None and loop.done.is_set()

    def step(self, timeout: float | None = 30) -> None:
        """Advance exactly one loop pass (debugging). Starts the app paused if it has not started."""
        if self._loop is None:
            self.start(paused=True)
        self._require_started().step(timeout)

    # -- looking at it ------------------------------------------------------------------------------------
    @property
    def stage(self) -> str:
        """``not_started``, ``running``, ``stopped`` or ``failed``."""
        return AppStage.NOT_STARTED if self._loop is None else self._loop.stage

    @property
    def state(self) -> dict[str, Any]:
        """A consistent snapshot of the whole app state (a copy, safe to read from any thread)."""
        if self._loop is None:
            return self.root.state
        with self._loop.lock:
            return self.root.state

    @property
    def end_message(self) -> str | None:
        return None if self._loop is None else self._loop.end_message

    @property
    def works(self) -> list[LightningWork]:
        return self.root.works()

    def get_component_by_name(self, name: str) -> Any:
        return find_component(self.root, name)

    def logs(self, name: str = "root", n: int | None = None) -> list[str]:
        """The last ``n`` lines a component printed (its own thread, and its subprocesses)."""
        find_component(self.root, name)
        loop = self._loop
        buffer = None if loop is None else loop.logs.get(name)
        return [] if buffer is None else buffer.lines(n)

    def subscribe(self, listener: Callable[[Changes], None]) -> Callable[[], None]:
        """Call ``listener(changes)`` on the loop thread after each iteration that changed something; returns
        a function that unsubscribes it. Subscribed before :meth:`start`, it sees the app's very first pass."""
        with self._start_lock:
            if self._loop is None:
                self._early_listeners.append(listener)
                return lambda: self._unsubscribe(listener)
        return self._loop.subscribe(listener)

    def _unsubscribe(self, listener: Callable[[Changes], None]) -> None:
        with self._start_lock:
            if listener in self._early_listeners:
                self._early_listeners.remove(listener)
            elif self._loop is not None:
                self._loop.unsubscribe(listener)

    @property
    def loop(self) -> AppLoop | None:
        return self._loop

    def view(self) -> Any:
        """The live ``AppView`` widget of this app."""
        if not _view_factories:
            raise RuntimeError("no notebook front is loaded to show the app's view: run `%load_ext lightnb` or "
                               "`import lightnb.ui` first")
        return _view_factories[-1](self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        try:
            return self.view()._repr_mimebundle_(include=include, exclude=exclude)
        except Exception:
            return {"text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"<LightningApp {self.name} {self.stage}>"

    # -- internals ----------------------------------------------------------------------------------------
    def _require_started(self) -> AppLoop:
        if self._loop is None:
            raise RuntimeError(f"app {self.name} has not been started: call app.start() first")
        return self._loop

    def _raise_if_failed(self) -> None:
        loop = self._loop
        if loop is not None and loop.stage is AppStage.FAILED:
            raise AppFailed(loop.end_message or "the app failed", loop.failed_work)


def running_apps() -> list[LightningApp]:
    """Every app of this process that is running."""
    return [app for app in list(_apps) if app.stage == AppStage.RUNNING]


def all_apps() -> list[LightningApp]:
    """Every app of this process still referenced (created, running or ended), oldest first."""
    return sorted(list(_apps), key=lambda app: app._created)


def register_view(factory: Callable[[LightningApp], Any]) -> None:
    """Make ``factory(app)`` what ``app.view()`` returns (the notebook front's ``AppView``)."""
    _view_factories.append(factory)


def _storage_of(root: Any) -> str | None:
    """The storage root of the app whose root flow is ``root`` (for storage used in the kernel)."""
    for app in list(_apps):
        if app.root is root:
            loop = app.loop
            return loop.context.storage if loop is not None else resolve_storage(app.storage)
    return None


register_storage_lookup(_storage_of)


def on_app_start(listener: Callable[[LightningApp], None]) -> Callable[[], None]:
    """Call ``listener(app)`` right after any app of this process started (on the starting thread);
    returns a function that unregisters it."""
    _start_listeners.append(listener)
    return lambda: _start_listeners.remove(listener) if listener in _start_listeners else None


def _stop_all_at_exit() -> None:
    for app in running_apps():
        try:
            app.stop(timeout=15)
        except Exception:
            pass
    warm = sys.modules.get("lightnb.runtime.warm")
    if warm is not None:  # after the apps: the warm cluster they shared
        warm.shutdown()


# Stop running apps when the interpreter exits (a script's end, a kernel shutdown). threading's exit hooks run
# before concurrent.futures and Dask tear down the thread pools that stopping still needs.
_register_exit = getattr(threading, "_register_atexit", atexit.register)
_register_exit(_stop_all_at_exit)
