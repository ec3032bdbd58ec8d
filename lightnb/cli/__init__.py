"""The ``lightnb`` command: ``lightnb export`` a notebook to an app script, ``lightnb run`` an app.

    lightnb export train.ipynb -o app.py
    lightnb run app.py                                  # the embedded LocalCluster
    lightnb run app.py --cluster tcp://10.0.0.5:8786    # an existing Dask scheduler
    lightnb run train.ipynb --cluster ec2.yaml --storage s3://bucket/runs --param lr=0.01 --env WANDB_MODE=off

Exit codes of ``run``: 0 the root flow stopped, 1 the app failed (the failing work's traceback is printed),
2 bad usage (a missing or broken file, no app or several, a bad cluster spec: the message names it), 130
after Ctrl-C (143 after SIGTERM), once every work and the cluster the app created are stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

EXIT_STOPPED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad input to a command: printed as ``lightnb: <message>``, exit code 2, no traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightnb`` console script (and ``python -m lightnb``)."""
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # What follows `--` is the script's own (`lightnb run app.py -- --lr 0.1`): its sys.argv[1:].
    script_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.script_args = script_args
    try:
        return int(args.command(args))
    except UsageError as error:
        print(f"lightnb: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lightnb: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("lightnb")
    except PackageNotFoundError:  # run from a source tree that was never installed
        __version__ = "(not installed)"
    from ..export.command import DESCRIPTION, add_arguments

    parser = argparse.ArgumentParser(prog="lightnb", description="Lightning Apps from notebooks, on Dask.")
    parser.add_argument("--version", action="version", version=f"lightnb {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    export = commands.add_parser("export", help="write a notebook as an app script", description=DESCRIPTION)
    add_arguments(export)
    export.set_defaults(command=export_command)

    run = commands.add_parser("run", help="run an app in the foreground",
                              description="Run the LightningApp an app script or notebook defines, with a "
                                          "live view, until its root flow stops.")
    run.add_argument("app", metavar="APP.py|NOTEBOOK.ipynb",
                     help="the app script or notebook; arguments after `--` are the script's own (its sys.argv "
                          "while it loads, as with python APP.py ARGS)")
    run.add_argument("--cluster", metavar="ADDRESS|SPEC.yaml",
                     help="a Dask scheduler address (tcp://host:8786) or a YAML/JSON spec {class, kwargs}; "
                          "default: an embedded LocalCluster")
    run.add_argument("--storage", metavar="URL", help="root URL of the app's drives (any fsspec URL)")
    run.add_argument("--env", metavar="NAME=VALUE", action="append", default=[],
                     help="an environment variable for the app and its works, wherever they run (repeatable)")
    run.add_argument("--param", metavar="NAME=VALUE", action="append", default=[],
                     help="override a value of the parameters cell (a Python literal, else text; repeatable)")
    run.add_argument("--state-json", metavar="PATH", help="write the app's final state (app.state) as JSON")
    run.add_argument("--resume", action="store_true",
                     help="carry on from the record of the app's name (an app made with name=...) that an "
                          "earlier run left, after it ended or died")
    run.set_defaults(command=run_command)

    apps = commands.add_parser("apps", help="list the records of durable apps, or delete one",
                               description="The records that durable apps (LightningApp(..., name=...)) keep "
                                           "in a storage: `lightnb apps` lists them, `lightnb apps rm NAME` "
                                           "deletes one.")
    apps.add_argument("action", nargs="?", choices=["list", "rm"], default="list")
    apps.add_argument("name", nargs="?", help="the app whose record `rm` deletes")
    apps.add_argument("--storage", metavar="URL",
                      help="the storage root (default: $LIGHTNB_STORAGE, else ./.lightnb-storage)")
    apps.set_defaults(command=apps_command)
    return parser


# -- apps ---------------------------------------------------------------------------------------------------
def apps_command(args: argparse.Namespace) -> int:
    from ..runtime.context import resolve_storage
    from ..storage.record import AppRecord, RecordError, list_records

    storage = resolve_storage(args.storage)
    if args.action == "rm":
        if not args.name:
            raise UsageError("lightnb apps rm NAME: name the app whose record to delete")
        try:
            AppRecord(storage, args.name).delete()
        except RecordError as error:
            raise UsageError(str(error)) from None
        print(f"lightnb: deleted the record of {args.name} in {storage}")
        return 0
    if args.name:
        raise UsageError("lightnb apps lists every record; `lightnb apps rm NAME` deletes one")
    rows = []
    for found in list_records(storage):
        if isinstance(found, RecordError):
            print(f"lightnb: {found}", file=sys.stderr)
            continue
        running = sorted(name for name, record in found.components.items()
                         if (record.get("calls") or {}).get("active"))
        updated = found.meta.get("updated")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated)) if updated else "?"
        rows.append((found.name, found.stage, when, ", ".join(running) or "-"))
    if not rows:
        print(f"lightnb: no app records in {storage}")
        return 0
    widths = [max(len(row[i]) for row in [("NAME", "STAGE", "LAST CHANGE", "WORKS RUNNING"), *rows])
              for i in range(4)]
    for row in [("NAME", "STAGE", "LAST CHANGE", "WORKS RUNNING"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


# -- export -------------------------------------------------------------------------------------------------
def export_command(args: argparse.Namespace) -> int:
    """``lightnb export``: the export command both fronts share (:mod:`lightnb.export.command`)."""
    from ..export.command import run

    return run(args)


# -- run ----------------------------------------------------------------------------------------------------
def run_command(args: argparse.Namespace) -> int:
    from ..runtime.cluster import SPEC_SUFFIXES, ClusterError, check_cluster
    from .appfile import AppFileError, find_app, parameter_value, parse_assignment

    path = Path(args.app)
    try:
        env = dict(parse_assignment(item, "--env") for item in args.env)
        parameters = {k: parameter_value(v) for k, v in (parse_assignment(p, "--param") for p in args.param)}
        if args.cluster:
            if os.path.isfile(args.cluster) and not args.cluster.endswith(SPEC_SUFFIXES):
                raise UsageError(f"--cluster {args.cluster}: a cluster spec file is .yaml, .yml or .json")
            check_cluster(args.cluster)
        os.environ.update(env)  # the script's own module-level code sees them too
        module = _load(path, parameters, args.script_args)
        if isinstance(module, int):
            return module
        app = find_app(module, path.name)
    except (AppFileError, ClusterError) as error:
        raise UsageError(str(error)) from None
    if args.cluster:
        app.cluster = args.cluster
    if args.storage:
        app.storage = args.storage
    if args.resume:
        if not app.durable:
            raise UsageError(f"--resume: the app {app.name} of {path.name} has no name, so it keeps no record to "
                             "resume: make it with LightningApp(..., name=\"...\")")
        app.resume = True
    app.env.update(env)
    return run_app(app, source=path.name, state_json=args.state_json)


def _load(path: Path, parameters: dict[str, Any], argv: Sequence[str] = ()) -> ModuleType | int:
    """The app file as a module, or the exit code if the user's code failed while it loaded."""
    from ..core.tracebacks import format_user_traceback
    from .appfile import AppFileError, load_module

    try:
        return load_module(path, parameters, argv)
    except AppFileError:
        raise
    except SystemExit as exit_:  # the script called sys.exit()
        if isinstance(exit_.code, int):
            return exit_.code
        print(f"lightnb: {path.name} exited while loading: {exit_.code}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # the user's code failed (a Ctrl-C goes on up: exit 130)
        print(f"lightnb: {path.name} failed while loading:\n{format_user_traceback(error)}", file=sys.stderr,
              end="")
        return EXIT_FAILED


def run_app(app: Any, source: str = "", state_json: str | None = None) -> int:
    """Run ``app`` in the foreground with the terminal view; the exit code (see the module docstring).

    Ctrl-C (SIGINT) and SIGTERM stop the app in order — its works, then the cluster it created — and only
    then return. Embedded-cluster worker processes ignore the terminal's SIGINT, so the app stops them.
    """
    from rich.console import Console

    from ..runtime import warm
    from ..runtime.cluster import ClusterError
    from ..storage.record import RecordError
    from .terminal import TerminalView

    warm.disable()  # one app per process: nothing to reuse, its embedded cluster closes with it
    interactive = sys.stdout.isatty()
    console = Console(file=sys.stdout, force_terminal=interactive, force_jupyter=False, soft_wrap=True,
                      no_color=not interactive, highlight=False)
    view = TerminalView(app, console, source)
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        # Only note it here: the main thread may be in the middle of writing to the terminal.
        if received:
            return  # already stopping: a second Ctrl-C would only leave processes behind
        received.append(signum)
        app.request_stop(f"stopped by {signal.Signals(signum).name}")
        view.set_stopping(f"stopping ({signal.Signals(signum).name}): ending the works and the cluster "
                          "lightnb started")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        app.subscribe(view.on_changes)  # before the start: the view sees what the first pass prints
        try:
            app.start()
        except (ClusterError, RecordError) as error:
            raise UsageError(str(error)) from None
        if received:  # a signal came while it was starting
            app.request_stop(f"stopped by {signal.Signals(received[0]).name}")
        _print_frontends(app, console)
        with view:
            while not view.wait_until_ended(1.0 / 4):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state_json:
        Path(state_json).write_text(json.dumps(app.state, indent=2, default=str), encoding="utf-8")
    if received:
        console.print(f"lightnb: {app.name} stopped by {signal.Signals(received[0]).name}", highlight=False,
                      markup=False)
        return 128 + received[0]
    if app.stage == "failed":
        print(f"lightnb: {app.name} failed: {app.end_message}", file=sys.stderr)
        return EXIT_FAILED
    console.print(f"lightnb: {app.name} stopped: {app.end_message}", highlight=False, markup=False)
    return EXIT_STOPPED


def _print_frontends(app: Any, console: Any) -> None:
    """Where the app's web frontends are served (they started with the app)."""
    from ..frontend import running_frontends

    for running in running_frontends(app):
        where = running.url if running.error is None else f"failed: {running.error}"
        console.print(f"lightnb: frontend {running.name!r} of {running.flow}: {where}", highlight=False,
                      markup=False)
