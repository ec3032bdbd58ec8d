"""``%lightnb``: start, stop, watch and debug the kernel's apps from notebook cells.

``%load_ext lightnb`` registers the magic, the ``lightnb`` comm target of the side panel, and the hooks that
stop every app when the kernel shuts down or restarts. The magics see every app of the kernel, however it
was started.

>>> %load_ext lightnb
>>> app = LightningApp(Root())
>>> %lightnb run app            # start it (running the cell again first stops the previous run)
>>> %lightnb status             # components, stage, progress, url
>>> %lightnb logs root.train -n 20
>>> %lightnb stop               # every app of the kernel; returns once they are stopped

Subcommands are a registry (:func:`register_subcommand`), so a feature living elsewhere adds its own.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class

Handler = Callable[[list[str], Any], None]  # (the words after the subcommand, the IPython shell)


class UsageError(Exception):
    """Bad ``%lightnb`` input: reported as a short message with the usage, never a traceback."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


_subcommands: dict[str, tuple[Handler, str, str]] = {}


def register_subcommand(name: str, handler: Handler, usage: str, summary: str) -> None:
    """Add ``%lightnb NAME ...``: ``handler(words, shell)`` — raise :class:`UsageError` for bad input.
    ``usage`` is its syntax (``"export NOTEBOOK [-o SCRIPT]"``), ``summary`` what it does, for the help."""
    _subcommands[name] = (handler, usage, summary)


def usage_text() -> str:
    width = max(len(usage) for _, usage, _ in _subcommands.values())
    lines = [f"  %lightnb {usage.ljust(width)}  {summary}" for _, usage, summary in _subcommands.values()]
    return "Usage:\n" + "\n".join(lines)


@magics_class
class LightnbMagics(Magics):  # type: ignore[misc]
    @line_magic
    def lightnb(self, line: str) -> None:
        """Run, stop, view and debug lightnb apps: ``%lightnb run APP``, ``stop``, ``status``, ``view``,
        ``step``, ``logs NAME``, ``cluster``, ``export`` (``%lightnb help`` lists them)."""
        run_line(line, self.shell)


def run_line(line: str, shell: Any) -> None:
    """Execute one ``%lightnb`` line; bad input prints a short message and the usage."""
    try:
        words = shlex.split(line)
    except ValueError as error:
        _complain(f"cannot read the arguments ({error})", None)
        return
    if not words or words[0] in {"help", "-h", "--help"}:
        print(usage_text())
        return
    name, rest = words[0], words[1:]
    entry = _subcommands.get(name)
    if entry is None:
        _complain(f"unknown subcommand {name!r}", None)
        return
    handler, usage, _ = entry
    try:
        handler(rest, shell)
    except UsageError as error:
        _complain(str(error), error.usage or usage)
    except KeyboardInterrupt:
        _complain("interrupted", None)
    except Exception as error:
        from .session import FrontError

        if not isinstance(error, (FrontError, LookupError, TypeError, ValueError, RuntimeError)):
            raise
        _complain(str(error).strip("'\""), usage)


def _complain(message: str, usage: str | None) -> None:
    text = f"%lightnb: {message}\n" + (f"Usage: %lightnb {usage}" if usage else usage_text())
    print(text, file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting the kernel."""

    def error(self, message: str) -> Any:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or "bad arguments")


def _parser(name: str) -> _Parser:
    return _Parser(prog=f"%lightnb {name}", add_help=False, allow_abbrev=False)


def _namespace(shell: Any) -> dict[str, Any]:
    return getattr(shell, "user_ns", None) or {}


def _display(value: Any) -> None:
    from IPython.display import display

    display(value)


# -- run / stop ---------------------------------------------------------------------------------------------
def _run(words: list[str], shell: Any) -> None:
    from . import session
    from .app import LightningApp

    parser = _parser("run")
    parser.add_argument("app")
    parser.add_argument("--cluster")
    parser.add_argument("--no-view", action="store_true")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(words)
    namespace = _namespace(shell)
    if args.app not in namespace:
        raise UsageError(f"no variable {args.app!r} in the notebook: create the app first, e.g. "
                         f"{args.app} = LightningApp(Root())")
    app = namespace[args.app]
    if not isinstance(app, LightningApp):
        raise UsageError(f"{args.app} is a {type(app).__name__}, not a LightningApp")
    if args.cluster is not None:
        if app.loop is not None and app.stage == "running":
            raise UsageError(f"{args.app} is running: --cluster applies when it starts")
        app.cluster = _cluster_value(args.cluster, namespace)
    app, notes = session.launch(app, args.app, namespace, resume=args.resume)
    for note in notes:
        print(note)
    print(f"started {args.app} ({app.app_id})")
    if not args.no_view:
        _display(app.view())


def _named_or(words: list[str], shell: Any, subcommand: str, default: Callable[[], list[Any]]) -> list[Any]:
    """``[APP]``: the app named, or ``default()``."""
    from . import session

    parser = _parser(subcommand)
    parser.add_argument("app", nargs="?")
    args = parser.parse_args(words)
    return [session.resolve(args.app, _namespace(shell))] if args.app else default()


def _stop(words: list[str], shell: Any) -> None:
    from . import session
    from .app import running_apps

    targets = _named_or(words, shell, "stop", running_apps)
    if not targets:
        print("no app is running")
        return
    session.stop_apps(targets)
    print("\n".join(f"stopped {session.describe_app(app, _namespace(shell))}" for app in targets))


# -- looking at apps ----------------------------------------------------------------------------------------
def _status(words: list[str], shell: Any) -> None:
    from .app import all_apps
    from .ui.status import as_table

    chosen = _named_or(words, shell, "status", all_apps)
    _display(as_table([(_label(app, _namespace(shell)), app) for app in chosen]))


def _label(app: Any, namespace: dict[str, Any]) -> str:
    from . import session

    names = session.names_of(app, namespace)
    return names[0] if names else app.name


def _view(words: list[str], shell: Any) -> None:
    from . import session
    from .ui import comm

    parser = _parser("view")
    parser.add_argument("app", nargs="?")
    parser.add_argument("--panel", action="store_true")
    args = parser.parse_args(words)
    namespace = _namespace(shell)
    app = session.resolve(args.app, namespace) if args.app else session.default_app(namespace)
    if args.panel:
        asked = comm.reveal(app)
        print(f"asked {asked} side panel(s) to show {app.app_id}" if asked else
              "no lightnb side panel is connected to this kernel (open it from JupyterLab's left sidebar)")
        return
    _display(app.view())


def _step(words: list[str], shell: Any) -> None:
    from . import session

    count, names = 1, list(words)
    if names and names[0].lstrip("-").isdigit():
        count = int(names.pop(0))
    if len(names) > 1 or count < 1:
        raise UsageError("give a number of passes (at least 1) and optionally one app")
    namespace = _namespace(shell)
    app = session.resolve(names[0], namespace) if names else session.default_app(namespace)
    if app.stage not in ("not_started", "running"):
        raise UsageError(f"{session.describe_app(app, namespace)} has ended; there is nothing to step")
    for _ in range(count):
        app.step()
        if app.stage != "running":
            break
    loop = app.loop
    print(f"{_label(app, namespace)}: {loop.passes if loop else 0} passes, stage {app.stage}")


def _logs(words: list[str], shell: Any) -> None:
    from . import session
    from .app import all_apps

    parser = _parser("logs")
    parser.add_argument("name")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--app")
    args = parser.parse_args(words)
    namespace = _namespace(shell)
    name = args.name if args.name.startswith("root") else f"root.{args.name}"
    candidates = [session.resolve(args.app, namespace)] if args.app else list(reversed(all_apps()))
    for app in candidates:
        try:
            lines = app.logs(name, args.n)
        except KeyError:
            continue
        print("\n".join(lines) if lines else f"({name} of {_label(app, namespace)} printed nothing yet)")
        return
    known = sorted({node.name for app in candidates for node in _components(app)})
    raise UsageError(f"no component {name!r} in {'that app' if args.app else 'any app'} "
                     f"(components: {', '.join(known) or 'none'})")


def _components(app: Any) -> list[Any]:
    from .ui.model import components_of

    return list(components_of(app.root))


# -- clusters -----------------------------------------------------------------------------------------------
_DEFAULT_WORDS = {"local", "embedded", "default", "none"}


def _cluster_value(text: str, namespace: dict[str, Any]) -> Any:
    """A variable holding a Client / Cluster / spec dict, ``local`` (an embedded cluster per app), or a
    string LightningApp(cluster=...) takes (an address, a spec file, ``in-process``)."""
    from pathlib import Path

    if text in namespace and not isinstance(namespace[text], str):
        return namespace[text]
    if text.lower() in _DEFAULT_WORDS:
        return None
    if text.endswith((".yaml", ".yml", ".json")) and not Path(text).is_file():
        raise UsageError(f"cluster spec file {text} does not exist")
    if text != "in-process" and ":" not in text and not text.endswith((".yaml", ".yml", ".json")):
        raise UsageError(f"{text!r} is not a cluster: give a scheduler address (tcp://host:8786), a spec "
                         "file (.yaml/.json), a variable holding a Client or Cluster, 'in-process' or "
                         "'local'")
    return text


def _describe_cluster(value: Any) -> str:
    if value is None:
        from .runtime import warm

        seconds = warm.idle_seconds()
        if seconds is None:
            return "an embedded LocalCluster per app (the default)"
        return (f"the warm embedded LocalCluster (the default: shared by the kernel's apps, closed after "
                f"{seconds:g} s unused, ${warm.ENV})")
    if isinstance(value, str):
        return value
    return f"{type(value).__name__} {getattr(value, 'scheduler_address', '') or ''}".strip()


def _cluster(words: list[str], shell: Any) -> None:
    from .app import running_apps
    from .runtime.cluster import get_default_cluster, set_default_cluster

    if len(words) > 1:
        raise UsageError("give one cluster (an address, a spec file, a variable, 'in-process' or 'local')")
    if words:
        set_default_cluster(_cluster_value(words[0], _namespace(shell)))
        print(f"apps created without a cluster now use {_describe_cluster(get_default_cluster())}")
        return
    print(f"apps created without a cluster use {_describe_cluster(get_default_cluster())}")
    _show_warm(shell)
    for app in running_apps():
        executor = getattr(app.loop, "executor", None)
        print(f"  {_label(app, _namespace(shell))} ({app.app_id}) runs on "
              f"{getattr(executor, 'description', 'an unknown executor')}")


def _show_warm(shell: Any) -> None:
    from .app import all_apps
    from .runtime import warm

    info = warm.describe()
    if info is None:
        print("warm cluster: none running")
        return
    by_id = {app.app_id: _label(app, _namespace(shell)) for app in all_apps()}
    users = ", ".join(by_id.get(app_id, app_id) for app_id in info["apps"]) or "none"
    idle = "" if info["idle_seconds"] is None else (
        f", idle for {info['idle_seconds']:.0f} s (closes after {info['closes_after_idle']:g} s)")
    print(f"warm cluster: {info['address']}, {info['workers']} worker processes, apps using it: {users}{idle}")


# -- export -------------------------------------------------------------------------------------------------
def _export(words: list[str], shell: Any) -> None:
    """``%lightnb export ...`` is ``lightnb export ...`` run in the kernel (see lightnb.export.command)."""
    from .export.command import main

    try:
        code = main(words)
    except SystemExit as exit_:
        code = exit_.code
    if code not in (0, None):
        raise UsageError(f"export failed (exit code {code})")


register_subcommand("run", _run, "run APP [--cluster ADDRESS|SPEC] [--resume] [--no-view]",
                    "start the app held by variable APP (first stopping the app it started before)")
register_subcommand("stop", _stop, "stop [APP]", "stop APP, or every app of the kernel")
register_subcommand("status", _status, "status [APP]", "the apps' components: stage, progress, url")
register_subcommand("view", _view, "view [APP] [--panel]",
                    "the live view of APP (--panel: in the side panel)")
register_subcommand("step", _step, "step [N] [APP]", "advance APP by N loop passes (starts it paused)")
register_subcommand("logs", _logs, "logs NAME [-n N] [--app APP]", "the last lines component NAME printed")
register_subcommand("cluster", _cluster, "cluster [ADDRESS|SPEC|VARIABLE|local|in-process]",
                    "show or set the cluster of the apps created next")
register_subcommand("export", _export, "export NOTEBOOK [-o SCRIPT]", "the notebook as an app script")


# -- the extension ------------------------------------------------------------------------------------------
def load(shell: Any) -> None:
    """``%load_ext lightnb``: the magic, the side panel's comm target, the shutdown hooks (idempotent)."""
    shell.register_magics(LightnbMagics)
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return  # a terminal IPython: the magics work, there is no front end to talk to
    from .ui import comm, lifecycle, reload

    comm.register(_comm_manager(kernel))
    lifecycle.install(kernel)
    reload.install(shell)


def unload(shell: Any) -> None:
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return
    from .ui import comm, lifecycle, reload

    comm.unregister(_comm_manager(kernel))
    lifecycle.uninstall()
    reload.uninstall()


def _comm_manager(kernel: Any) -> Any:
    manager = getattr(kernel, "comm_manager", None)
    if manager is None:
        import comm

        manager = comm.get_comm_manager()
    return manager
