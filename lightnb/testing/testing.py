"""The reference's app-testing helpers (``lightning.app.testing``), so users' own app tests port by changing
their imports: :class:`LightningTestApp`, :func:`application_testing`, :func:`run_work_isolated`.

Each runs apps the lightnb way — flows on a loop in this process, works on the default cluster (the embedded
one unless ``LIGHTNB_CLUSTER`` or ``%lightnb cluster`` says otherwise) — and returns once the app has ended.
The cloud helpers (``run_app_in_cloud``, ``wait_for``, ``delete_cloud_lightning_apps``) are importable and
say that lightnb has no cloud to deploy to.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..app import AppFailed, LightningApp
from ..core.engine import _Blocked
from ..core.flow import LightningFlow
from ..core.unsupported import CLOUD_TESTING, feature_for, unsupported_function
from ..core.work import LightningWork


class LightningTestApp(LightningApp):
    """A ``LightningApp`` whose hooks run around every flow pass; a hook returning a true value ends the app
    (cleanly: stage ``stopped``).

    >>> class CheckApp(LightningTestApp):
    ...     def on_after_run_once(self):
    ...         super().on_after_run_once()
    ...         if self.root.work.has_succeeded:
    ...             return True
    >>> app = CheckApp(Root())
    >>> MultiProcessRuntime(app, start_server=False).dispatch()   # or app.run()

    ``counter`` counts the passes seen by the default ``on_after_run_once``. Hooks run on the app's loop
    thread, inside the pass: what they read of the state is consistent.
    """

    def __init__(self, root: LightningFlow | LightningWork, *args: Any, **kwargs: Any) -> None:
        super().__init__(root, *args, **kwargs)
        self.counter = 0
        _hook_passes(self)

    def on_before_run_once(self) -> Any:
        """Called before each pass of the root flow; return a true value to end the app."""
        return None

    def on_after_run_once(self) -> Any:
        """Called after each pass of the root flow (also a pass that waits at a blocking work call); return
        a true value to end the app."""
        self.counter += 1
        return None


def _hook_passes(app: LightningTestApp) -> None:
    """Give the app's root flow a class of its own (a subclass under the same name) whose ``run`` calls the
    app's hooks around the flow's own ``run``."""
    root = app.root
    cls = type(root)
    flow_run = cls.run

    def end_if(done: Any, flow: LightningFlow, hook: str) -> None:
        if done:
            flow.stop(f"{type(app).__name__}.{hook}() returned {done!r}")

    def run(flow: LightningFlow, *args: Any, **kwargs: Any) -> None:
        end_if(app.on_before_run_once(), flow, "on_before_run_once")
        try:
            flow_run(flow, *args, **kwargs)
        except _Blocked:  # the pass waits at a blocking work call: it still was a pass
            end_if(app.on_after_run_once(), flow, "on_after_run_once")
            raise
        end_if(app.on_after_run_once(), flow, "on_after_run_once")

    run.__lightnb_raw__ = getattr(flow_run, "__lightnb_raw__", flow_run)  # type: ignore[attr-defined]
    hooked = type(cls.__name__, (cls,), {"run": run, "__module__": cls.__module__,
                                          "__qualname__": cls.__qualname__, "__doc__": cls.__doc__})
    object.__setattr__(root, "__class__", hooked)


def _run_to_the_end(app: LightningApp, timeout: float | None = None) -> None:
    """Start ``app`` and return once it ended (``AppFailed`` if it failed); Ctrl-C stops it cleanly."""
    app.start()
    try:
        app.wait(timeout)
    except KeyboardInterrupt:
        app.stop()
        raise
    except TimeoutError:
        app.stop()
        raise


@dataclass
class ApplicationTestResult:
    """What :func:`application_testing` returns: ``exit_code`` as the command line would (0: the app ended
    cleanly, 1: it failed), the app, and the failure."""

    exit_code: int
    app: LightningApp | None
    exception: BaseException | None = None


def application_testing(lit_app_cls: type[LightningTestApp] = LightningTestApp,
                        command_line: Sequence[str] = ()) -> ApplicationTestResult:
    """Run the app file named in ``command_line`` (e.g. ``["run", "app", "app.py"]``, the reference's command
    line; the other options are ignored) to its end, with every ``LightningApp`` it creates made a
    ``lit_app_cls`` so that its hooks decide when the app ends."""
    from ..cli.appfile import load_app

    files = [arg for arg in command_line if str(arg).endswith((".py", ".ipynb"))]
    if not files:
        raise ValueError(f"application_testing: no app file (.py or .ipynb) in the command line "
                         f"{list(command_line)!r}; pass e.g. ['run', 'app', 'path/to/app.py']")
    # `from lightnb import LightningApp` in the app file reads the package's attribute (already imported).
    patched = [(module, module.LightningApp) for module in (sys.modules["lightnb"], sys.modules["lightnb.app"])]
    for module, _ in patched:
        module.LightningApp = lit_app_cls  # type: ignore[misc]
    try:
        app = load_app(Path(files[0]))
    finally:
        for module, original in patched:
            module.LightningApp = original  # type: ignore[misc]
    try:
        _run_to_the_end(app)
    except AppFailed as failed:
        return ApplicationTestResult(1, app, failed)
    return ApplicationTestResult(0, app)


class _SingleWorkFlow(LightningFlow):
    def __init__(self, work: LightningWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.work = work
        self._args = args
        self._kwargs = kwargs

    def run(self) -> None:
        self.work.run(*self._args, **self._kwargs)  # the work's own rules decide whether this call runs
        if self.work.has_succeeded or self.work.has_failed or self.work.has_stopped:
            self.stop(f"{self.work.name} {self.work.status.stage}")


def run_work_isolated(work: LightningWork, *args: Any, start_server: bool = False, **kwargs: Any) -> None:
    """Run ``work.run(*args, **kwargs)`` once in a worker process of the default cluster and return when it
    ended; ``work`` then holds what the call set (its attributes, ``status``). A failure raises
    :class:`~lightnb.AppFailed` (with ``raise_exception=False``: ``work.has_failed``). The work can be run
    isolated again afterwards."""
    if work._parent is not None and not isinstance(work._parent, _SingleWorkFlow):
        raise ValueError(f"{work.name} is part of an app; run_work_isolated takes a work of its own")
    _detach(work)
    try:
        _run_to_the_end(LightningApp(_SingleWorkFlow(work, args, kwargs)))
    finally:
        _detach(work)


def _detach(work: LightningWork) -> None:
    """Make ``work`` a component of its own again (it was the child of a finished single-work app)."""
    parent = work._parent
    if parent is not None:
        object.__setattr__(work, "_parent", None)
        object.__setattr__(work, "_key", None)
        object.__setattr__(work, "_observer", None)


run_app_in_cloud = unsupported_function("run_app_in_cloud", __name__, feature_for(CLOUD_TESTING, "run_app_in_cloud"))
wait_for = unsupported_function("wait_for", __name__, feature_for(CLOUD_TESTING, "wait_for"))
delete_cloud_lightning_apps = unsupported_function(
    "delete_cloud_lightning_apps", __name__, feature_for(CLOUD_TESTING, "delete_cloud_lightning_apps"))

__all__ = ["ApplicationTestResult", "LightningTestApp", "application_testing", "delete_cloud_lightning_apps",
           "run_app_in_cloud", "run_work_isolated", "wait_for"]
