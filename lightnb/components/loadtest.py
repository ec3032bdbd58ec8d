"""``LoadTest``: load an HTTP endpoint with Locust from a work, its figures streaming into the work's state.

Locust runs headless in a process of its own (``python -m locust``): it monkey-patches the standard library
for gevent, which must never happen inside a Dask worker process, and a process is ended whole on ``stop()``.
A small locustfile written for the run makes every user send the same request as fast as answers come, and
writes the run's figures to a file once a second; the work reads them into its state.
"""

from __future__ import annotations

import json as jsonlib
import math
import os
import sys
import tempfile
from typing import Any

from ..core.compute import CloudCompute
from ..core.values import describe_type
from ..core.view import ComponentView
from ..core.work import LightningWork, WorkStopped
from ._work import set_quietly, stop_signal
from .scripts import ProcessFailed, ProcessTree, child_environment, describe_exit

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# How often the running figures reach the work's state.
UPDATE_INTERVAL_SECONDS = 1.0

_LOCUSTFILE = '''\
"""Written by lightnb's LoadTest: one request, sent by every user as fast as answers come."""
import json
import os
import time

import gevent
from locust import FastHttpUser, constant, events, task

SPEC = json.loads(os.environ["LIGHTNB_LOADTEST_SPEC"])


class Client(FastHttpUser):
    host = SPEC["host"]
    wait_time = constant(0)

    @task
    def call(self):
        options = {"json": SPEC["json"]} if SPEC["json"] is not None else {}
        self.client.request(SPEC["method"], SPEC["url"], name=SPEC["path"], **options)


def figures(environment, final):
    total = environment.stats.total
    rps = total.total_rps if final else total.current_rps

    def pct(q):
        return float(total.get_response_time_percentile(q)) if total.num_requests else None

    return {"requests": total.num_requests, "failures": total.num_failures, "rps": float(rps or 0.0),
            "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "elapsed": time.time() - total.start_time, "final": final}


def write(environment, final=False):
    path = SPEC["figures"]
    with open(path + ".tmp", "w") as out:
        json.dump(figures(environment, final), out)
    os.replace(path + ".tmp", path)


@events.test_start.add_listener
def started(environment, **kwargs):
    def loop():
        while True:
            gevent.sleep(SPEC["interval"])
            write(environment)

    environment.lightnb_writer = gevent.spawn(loop)


@events.quitting.add_listener
def quitting(environment, **kwargs):
    writer = getattr(environment, "lightnb_writer", None)
    if writer is not None:
        writer.kill()
    write(environment, final=True)
'''


class LoadTest(LightningWork):
    """Send ``users`` concurrent streams of requests to ``url + path`` for ``duration`` seconds (Locust).

    Each user sends ``method`` with ``json`` as the body (none when ``None``), then the next as soon as the
    answer came. ``spawn_rate`` users start per second until there are ``users``.

    State, streamed about once a second: ``requests`` (all sent, failed ones included), ``failures`` (errors
    and HTTP statuses ≥ 400), ``rps`` (the last seconds' rate; at the end the run's average), ``p50_ms``,
    ``p95_ms``, ``p99_ms`` (response times over the run so far) and ``progress`` (never goes down, ends at
    1.0). Failed requests are figures, never a failed work. ``url`` may be set (or given to ``run``) once the
    target is up — a server work's ``url``, say.

    Example
    -------
    >>> load = LoadTest(server.url, path="/predict", json={"inputs": [[0.5]]}, users=8, duration=20)
    >>> # in a flow: load.run(); once it has succeeded: load.rps, load.p99_ms

    The AppView shows its requests per second and latency percentiles live, as figures and a chart.
    """

    _view = ComponentView("loadtest", ("requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms"))

    def __init__(self, url: str | None = None, path: str = "/predict", method: str = "POST", json: Any = None,
                 users: int = 10, spawn_rate: float = 10, duration: float = 10, *, parallel: bool = True,
                 cache_calls: bool = True, raise_exception: bool = True,
                 cloud_compute: CloudCompute | None = None) -> None:
        super().__init__(parallel=parallel, cache_calls=cache_calls, raise_exception=raise_exception,
                         cloud_compute=cloud_compute)
        self.url = _check_url(url, allow_none=True)
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"LoadTest path must start with '/' (such as '/predict'), not {path!r}")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise ValueError(f"LoadTest method must be one of {', '.join(_METHODS)}, not {method!r}")
        try:
            body = None if json is None else jsonlib.loads(jsonlib.dumps(json, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise TypeError(f"LoadTest json must be a JSON value (dicts, lists, numbers, strings) to send as the "
                            f"body, not {describe_type(json)}: {error}") from None
        if isinstance(users, bool) or not isinstance(users, int) or users < 1:
            raise ValueError(f"LoadTest users must be a whole number ≥ 1, not {users!r}")
        for name, value in (("spawn_rate", spawn_rate), ("duration", duration)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"LoadTest {name} must be a number > 0 (users per second, seconds), not "
                                 f"{value!r}")
        self.path = path
        self.method = method.upper()
        self.json = body
        self.users = users
        self.spawn_rate = float(spawn_rate)
        self.duration = float(duration)
        self.requests = 0
        self.failures = 0
        self.rps = 0.0
        self.p50_ms: float | None = None
        self.p95_ms: float | None = None
        self.p99_ms: float | None = None
        self.progress = 0.0

    def run(self, url: str | None = None) -> None:
        if url is not None:
            self.url = _check_url(url, allow_none=False)
        if self.url is None:
            raise ValueError(f"{self.name} has no url to load: give LoadTest(url=...), set its url, or call "
                             "run(url=...)")
        self.requests, self.failures, self.rps, self.progress = 0, 0, 0.0, 0.0
        self.p50_ms = self.p95_ms = self.p99_ms = None
        with tempfile.TemporaryDirectory(prefix="lightnb-loadtest-") as folder:
            self._run_locust(folder)

    def _run_locust(self, folder: str) -> None:
        locustfile = os.path.join(folder, "locustfile.py")
        figures = os.path.join(folder, "figures.json")
        with open(locustfile, "w") as out:
            out.write(_LOCUSTFILE)
        base = self.url.rstrip("/")
        spec = {"host": base, "url": base + self.path, "path": self.path, "method": self.method,
                "json": self.json, "figures": figures, "interval": UPDATE_INTERVAL_SECONDS}
        run_time = max(1, math.ceil(self.duration))
        argv = [sys.executable, "-m", "locust", "-f", locustfile, "--headless", "--only-summary",
                "-u", str(self.users), "-r", str(self.spawn_rate), "-t", f"{run_time}s",
                "--exit-code-on-error", "0", "--loglevel", "WARNING", "--stop-timeout", "0"]
        env = child_environment({"LIGHTNB_LOADTEST_SPEC": jsonlib.dumps(spec)}, PYTHONUNBUFFERED="1")
        tree = ProcessTree(argv, work=self, cwd=folder, env=env)
        stopping, unregister = stop_signal(self, tree.request_stop)
        last_stamp = None
        try:
            tree.start()
            while tree.process is not None and tree.process.poll() is None:
                stopping.wait(UPDATE_INTERVAL_SECONDS / 4)
                last_stamp = self._read(figures, last_stamp, run_time, final=False)
            code = tree.wait()
        finally:
            unregister()
            tree.end()
        if tree.stopping:
            raise WorkStopped(f"{self.name} was asked to stop")
        if code != 0:
            raise ProcessFailed(describe_exit(f"Locust (loading {base + self.path})", code, tree.stderr_tail()),
                                code)
        if self._read(figures, None, run_time, final=True) is None:
            raise RuntimeError(f"Locust ended without its final figures (loading {base + self.path}): "
                               f"{tree.stderr_tail() or 'it wrote nothing to stderr'}")

    def _read(self, path: str, last_stamp: Any, run_time: float, final: bool) -> Any:
        """Put the figures Locust last wrote into the state (if new); returns their file's stamp."""
        try:
            stat = os.stat(path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == last_stamp:
                return last_stamp
            with open(path) as source:
                figures = jsonlib.load(source)
        except (OSError, ValueError):
            return last_stamp
        if final and not figures.get("final"):
            return None
        update: dict[str, Any] = {key: figures[key] for key in ("requests", "failures", "rps", "p50_ms",
                                                                "p95_ms", "p99_ms")}
        if final:
            update["progress"] = 1.0
        else:
            update["progress"] = max(self.progress, min(0.99, round(figures["elapsed"] / run_time, 3)))
        if final:
            set_quietly(self, **update)  # the run's figures arrive even if a stop crossed its end
        else:
            for key, value in update.items():
                setattr(self, key, value)
        return stamp


def _check_url(url: Any, allow_none: bool) -> str | None:
    if url is None and allow_none:
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or url.endswith("://"):
        raise ValueError(f"LoadTest url must be the address of an HTTP server such as 'http://127.0.0.1:8000' "
                         f"(a server work's url), not {url!r}")
    return url
