"""Works that run what people already have: a Python script, or any command line.

Each runs in a process of its own (several works share a Dask worker process, and ``sys.argv``, the working
directory and signal handlers belong to a whole process). What the process prints streams into the work's
log as it is printed; a non-zero exit fails the work with the last lines of stderr in its message; ``stop()``
ends the process and everything it started.

>>> class Root(LightningFlow):
...     def __init__(self):
...         super().__init__()
...         self.train = TracerPythonScript("train.py", script_args=["--epochs", "3"])
...     def run(self):
...         self.train.run()
"""

from __future__ import annotations

import atexit
import codecs
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from ..core.component import log_output
from ..core.compute import CloudCompute
from ..core.values import describe_type
from ..core.work import LightningWork, WorkStopped
from ._work import stop_signal

_TRACER = str(Path(__file__).with_name("_tracer.py"))
# How long a stopped process tree has to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 3.0
_STDERR_TAIL_LINES = 20



class _LiveTrees:
    """The process trees works of this process started: ended when the process exits. The exit hook is
    registered on the first tree (importing lightnb registers nothing); trees start on work threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trees: weakref.WeakSet[ProcessTree] = weakref.WeakSet()
        self._hooked = False

    def add(self, tree: ProcessTree) -> None:
        with self._lock:
            self._trees.add(tree)
            if not self._hooked:
                atexit.register(self.end_all)
                self._hooked = True

    def end_all(self) -> None:
        """A worker process that exits takes the trees its works started with it."""
        with self._lock:
            trees = list(self._trees)
        for tree in trees:
            _kill_and_reap(tree._tree())


_LIVE = _LiveTrees()


class ProcessFailed(RuntimeError):
    """A work's process exited with a non-zero code; the message holds the last lines of its stderr."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class ProcessTree:
    """A subprocess in a session of its own whose output streams into a work's log, ended with all the
    processes it started.

    >>> tree = ProcessTree(["python", "-c", "print(1)"], work=work).start()
    >>> tree.wait()
    0
    """

    def __init__(self, argv: Sequence[str] | str, *, work: LightningWork | None, cwd: str | None = None,
                 env: dict[str, str] | None = None, shell: bool = False) -> None:
        self.argv = argv
        self.work = work
        self.cwd = cwd
        self.env = env
        self.shell = shell
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._readers: list[threading.Thread] = []

    def start(self) -> ProcessTree:
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, shell=self.shell, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            # Its own session: signals meant for the worker never reach it, and its group can be ended whole.
            start_new_session=os.name == "posix",
        )
        _LIVE.add(self)
        for pipe, stream in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr")):
            reader = threading.Thread(target=self._pump, args=(pipe, stream), daemon=True,
                                      name=f"lightnb-{stream}-{self.process.pid}")
            reader.start()
            self._readers.append(reader)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, "the process was not started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _pump(self, pipe: Any, stream: str) -> None:
        """Forward what the process writes as soon as it writes it (not line by line: progress bars, prompts)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        fd = pipe.fileno()
        while True:
            chunk = os.read(fd, 65536)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                self._emit(stream, text)
                if stream == "stderr":
                    pending = self._keep_tail(pending + text)
            if not chunk:
                break
        if pending:
            self._stderr_tail.append(pending)
        pipe.close()

    def _keep_tail(self, text: str) -> str:
        *lines, rest = text.split("\n")
        self._stderr_tail.extend(lines)
        return rest

    def _emit(self, stream: str, text: str) -> None:
        if self.work is None:
            (sys.stdout if stream == "stdout" else sys.stderr).write(text)
        else:
            log_output(self.work, text, stream)

    def wait(self) -> int:
        """Wait for the process to exit and its output to be forwarded; returns its exit code."""
        assert self.process is not None, "the process was not started"
        code = self.process.wait()
        deadline = time.monotonic() + 0.5
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        if any(reader.is_alive() for reader in self._readers):
            # Something it started in the background still holds its output open: end it.
            self.end()
            for reader in self._readers:
                reader.join()
        return code

    def stderr_tail(self) -> str:
        return "\n".join(line for line in self._stderr_tail if line.strip())

    def request_stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Start ending the whole tree: SIGTERM now, SIGKILL after ``grace`` seconds for what is left.

        Returns at once (it is called from the worker's event loop); a timer does the killing.
        """
        self.stopping = True
        processes = self._tree()
        _terminate_together(processes)
        if processes:
            timer = threading.Timer(grace, _kill_and_reap, args=(processes,))
            timer.daemon = True
            timer.start()

    def end(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """End the whole tree and return once it is gone: SIGTERM, then SIGKILL after ``grace`` seconds.
        Also ends what the process left behind in its session (background children of an exited shell)."""
        processes = self._tree()
        if self.process is not None and self.process.poll() is not None:
            processes += [p for p in self._session() if p not in processes]
        if not processes:
            return
        _terminate_together(processes)
        _kill_and_reap(wait_gone(processes, grace))

    def _tree(self) -> list[psutil.Process]:
        """The process and every descendant still alive, children first."""
        if self.process is None or self.process.poll() is not None:
            return self._session()
        try:
            root = psutil.Process(self.process.pid)
            return [*root.children(recursive=True), root]
        except psutil.NoSuchProcess:
            return self._session()

    def _session(self) -> list[psutil.Process]:
        """Processes still in the root's session (children reparented after their parent exited)."""
        if self.process is None or os.name != "posix":
            return []
        found = []
        for process in psutil.process_iter():
            try:
                if process.pid != os.getpid() and os.getsid(process.pid) == self.process.pid:
                    found.append(process)
            except (OSError, psutil.Error):
                continue
        return found


def _terminate_together(processes: list[psutil.Process]) -> None:
    """SIGTERM to every process of a tree as if at once: frozen first, so that none of them (a shell) acts on
    another's end (runs its next command) before its own SIGTERM; resumed, each takes its signal first."""
    if os.name == "posix":
        _signal_all(processes, signal.SIGSTOP)
    _signal_all(processes, signal.SIGTERM)
    if os.name == "posix":
        _signal_all(processes, signal.SIGCONT)


def _kill_and_reap(processes: list[psutil.Process]) -> None:
    _signal_all(processes, signal.SIGKILL)
    wait_gone(processes, 5.0)


def is_gone(process: psutil.Process) -> bool:
    """Ended: no longer running, or a zombie (dead, waiting for a parent that may never reap it)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has ended or ``timeout`` passed; returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in processes if not is_gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not is_gone(p)]
    return alive


def _signal_all(processes: list[psutil.Process], sig: int) -> None:
    for process in processes:
        try:
            process.send_signal(sig)
        except psutil.Error:
            pass


def run_process(work: LightningWork, argv: Sequence[str] | str, *, what: str, cwd: str | None = None,
                env: dict[str, str] | None = None, shell: bool = False) -> ProcessTree:
    """Run a process for ``work`` until it exits: output into the work's log, ended with its tree when the
    app stops the work (→ :class:`WorkStopped`), :class:`ProcessFailed` on a non-zero exit."""
    tree = ProcessTree(argv, work=work, cwd=cwd, env=env, shell=shell)
    _, unregister = stop_signal(work, tree.request_stop)
    try:
        tree.start()
        code = tree.wait()
    finally:
        unregister()
        tree.end()  # what is still running: the tree after an error here, or what the process left behind
    if tree.stopping:
        raise WorkStopped(f"{work.name} was asked to stop")
    if code != 0:
        raise ProcessFailed(describe_exit(what, code, tree.stderr_tail()), code)
    return tree


def run_recording_exit(work: LightningWork, argv: Sequence[str] | str, **options: Any) -> None:
    """:func:`run_process`, keeping the exit code in ``work.exit_code`` (state the flow can read)."""
    try:
        run_process(work, argv, **options)
    except ProcessFailed as failure:
        work.exit_code = failure.code  # type: ignore[attr-defined]
        raise
    work.exit_code = 0  # type: ignore[attr-defined]


def describe_exit(what: str, code: int, stderr_tail: str) -> str:
    if code < 0:
        try:
            how = f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    tail = f"; the last lines of its stderr:\n{stderr_tail}" if stderr_tail else " (it wrote nothing to stderr)"
    return f"{what} {how}{tail}"


def child_environment(extra: dict[str, str] | None, **defaults: str) -> dict[str, str]:
    """The worker's environment (with the app's ``env``), ``defaults`` where unset, then ``extra``."""
    env = {**defaults, **os.environ}
    for key, value in (extra or {}).items():
        env[str(key)] = str(value)
    return env


def _check_args(owner: str, args: Any) -> list[str]:
    if args is None:
        return []
    if isinstance(args, str):
        return shlex.split(args)
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"{owner} script_args must be a list of strings (or one string to split like a shell "
                        f"would), not {describe_type(args)}")
    return [str(arg) for arg in args]


def _check_env(owner: str, env: Any) -> dict[str, str] | None:
    if env is None:
        return None
    if not isinstance(env, dict):
        raise TypeError(f"{owner} env must be a dict of environment variables, not {describe_type(env)}")
    return {str(k): str(v) for k, v in env.items()}


class _PythonScript(LightningWork):
    """What both script works share: the script, its arguments and environment as state."""

    def __init__(self, script_path: str | os.PathLike[str], script_args: Sequence[str] | str | None = None,
                 env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None, *,
                 parallel: bool = False, cache_calls: bool = True, raise_exception: bool = True,
                 cloud_compute: CloudCompute | None = None) -> None:
        super().__init__(parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        owner = type(self).__name__
        self.script_path = os.fspath(script_path)
        self.script_args = _check_args(owner, script_args)
        self.env = _check_env(owner, env)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.exit_code: int | None = None

    def _check_script(self) -> None:
        path = (Path(self.cwd) if self.cwd else Path.cwd()) / self.script_path
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.name}: the script {self.script_path!r} does not exist (looked for {path} on "
                f"{socket.gethostname()}). A relative script path is relative to the work's cwd (the "
                "worker's working directory unless cwd= is given)."
            )

    def _run_python(self, argv: list[str]) -> None:
        run_recording_exit(self, argv, what=f"the script {self.script_path}", cwd=self.cwd,
                           env=child_environment(self.env, PYTHONUNBUFFERED="1"))

    def _prepare(self, script_args: Sequence[str] | str | None) -> list[str]:
        if script_args is not None:
            self.script_args = _check_args(type(self).__name__, script_args)
        return list(self.script_args)


class TracerPythonScript(_PythonScript):
    """Run an existing Python script unchanged, as ``python script.py args`` would, in a fresh interpreter.

    The script gets its own ``__main__``, ``sys.argv``, working directory and signal handlers, and imports
    its sibling modules. Its output streams into the work's log; an exception or a non-zero exit fails the
    work with the end of the script's stderr; ``stop()`` ends it and every process it started.

    ``outputs`` names globals of the script to bring back as the work's state once it succeeded (JSON
    values or paths): ``TracerPythonScript("fit.py", outputs=["best_score"])`` then ``work.best_score``.
    ``script_args`` is state, so a flow or a form can change it; ``run(script_args=[...])`` runs with new
    arguments (a new call).

    Example
    -------
    >>> script = TracerPythonScript("train.py", script_args=["--lr", "0.1"], env={"SEED": "1"},
    ...                             outputs=["accuracy"])
    >>> script.run()                      # from a flow
    >>> script.run(script_args=["--lr", "0.01"])
    """

    def __init__(self, script_path: str | os.PathLike[str], script_args: Sequence[str] | str | None = None,
                 outputs: Sequence[str] | None = None, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, **work_kwargs: Any) -> None:
        super().__init__(script_path, script_args, env, cwd, **work_kwargs)
        names = list(outputs or [])
        for name in names:
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"TracerPythonScript outputs must be public Python names, not {name!r}")
            if name in self.__dict__:
                raise ValueError(f"TracerPythonScript output {name!r} clashes with the work's own attribute")
        self._outputs = names
        for name in names:
            setattr(self, name, None)

    def run(self, script_args: Sequence[str] | str | None = None) -> None:
        args = self._prepare(script_args)
        self._check_script()
        with tempfile.TemporaryDirectory(prefix="lightnb-tracer-") as folder:
            outputs_file = os.path.join(folder, "outputs.json")
            runner = [sys.executable, "-u", _TRACER]
            if self._outputs:
                runner += ["--outputs", outputs_file, ",".join(self._outputs)]
            self._run_python([*runner, "--", self.script_path, *args])
            if self._outputs:
                self._collect(outputs_file)

    def _collect(self, outputs_file: str) -> None:
        import json

        with open(outputs_file, encoding="utf-8") as file:
            report = json.load(file)
        for name, value in report["values"].items():
            setattr(self, name, value)
        if report["problems"]:
            raise ValueError(f"the outputs of {self.script_path} could not all be collected: "
                             + "; ".join(report["problems"]))


class PopenPythonScript(_PythonScript):
    """Run an existing Python script as a plain subprocess: ``python script.py args``.

    Output streams into the work's log; a non-zero exit fails the work with the end of its stderr;
    ``stop()`` ends it and every process it started. ``script_args`` is state.

    Example
    -------
    >>> PopenPythonScript("serve.py", script_args=["--port", "8000"], parallel=True)
    """

    def run(self, script_args: Sequence[str] | str | None = None) -> None:
        args = self._prepare(script_args)
        self._check_script()
        self._run_python([sys.executable, self.script_path, *args])


class ShellWork(LightningWork):
    """Run any command line — an existing shell tool, a compiled program — as a work.

    A string runs through the shell (``/bin/sh -c``: pipes, redirections, ``&&``); a list runs the program
    directly. Output streams into the work's log; a non-zero exit fails the work with the end of its stderr;
    ``stop()`` ends it and every process it started. ``command`` is state; ``run(command=...)`` runs another.

    Example
    -------
    >>> ShellWork("make data && ls -l data", cwd="project")
    >>> ShellWork(["rsync", "-a", "src/", "dst/"])
    """

    def __init__(self, command: str | Sequence[str], cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None, *, parallel: bool = False, cache_calls: bool = True,
                 raise_exception: bool = True, cloud_compute: CloudCompute | None = None) -> None:
        super().__init__(parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        self.command = _check_command(command)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.env = _check_env("ShellWork", env)
        self.exit_code: int | None = None

    def run(self, command: str | Sequence[str] | None = None) -> None:
        if command is not None:
            self.command = _check_command(command)
        command = self.command
        shell = isinstance(command, str)
        label = command if shell else shlex.join(command)
        try:
            run_recording_exit(self, command, what=f"the command {label!r}", cwd=self.cwd,
                               env=child_environment(self.env), shell=shell)
        except FileNotFoundError as missing:
            raise FileNotFoundError(f"{self.name}: cannot run {label!r}: {missing.strerror}: "
                                    f"{missing.filename!r} (is it installed on the worker, and on its PATH?)"
                                    ) from None


def _check_command(command: Any) -> str | list[str]:
    if isinstance(command, str):
        if not command.strip():
            raise ValueError("ShellWork needs a command; got an empty string")
        return command
    if isinstance(command, (list, tuple)) and command and all(isinstance(part, str) for part in command):
        return list(command)
    raise TypeError(f"ShellWork command must be a string (run by the shell) or a non-empty list of strings, "
                    f"not {describe_type(command)}")
