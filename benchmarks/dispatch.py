"""Dispatch: how fast a flow's ``work.run()`` reaches the work's ``run()``, and what an idle app costs.

Run:  python benchmarks/dispatch.py [--trials 3] [--calls 100] [--idle-seconds 20] [--json out.json]
      [--ray-python /path/to/venv/bin/python]

Each trial is a fresh process with a fresh embedded cluster (2 worker processes), where, side by side:

1. warm work: a flow calls a work again and again (each call as soon as the previous one succeeded); the
   figure is the flow's ``run()`` call (a timestamp the flow takes just before ``work.run(i)``) → the work's
   ``run()`` starting (a timestamp the work reports). The first calls (task, host placed) are left out.
2. the same app with warm works off (``LIGHTNB_WARM_WORKS=0``): every call a Dask task, as before.
3. bare Dask submit: ``client.submit(f)`` → ``f`` starting (``f`` returns ``time.time()`` at entry).
4. bare Dask actor call: ``actor.stamp()`` → the method starting.
5. with ``--ray-python``: a Ray task (``f.remote()`` → ``f`` starting), in a separate interpreter that has
   ray (never installed into lightnb's environment), measured in the same run.

Idle client CPU: this process's CPU time (user + sys, ``psutil``) over ``--idle-seconds`` while an app is
idle (its work finished, nothing to do), as % of one core, next to the same process with only a bare Dask
client on the same embedded cluster, and a ``LocalCluster`` + client with Dask's default settings (the
scheduler and nannies of a ``LocalCluster`` live in this process in every case).
Times are ``time.time()`` in two processes on one host: they share one clock.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

APP = '''
import time
from lightnb import LightningFlow, LightningWork

class Stamp(LightningWork):
    def __init__(self):
        super().__init__(cache_calls=False)
        self.started = 0.0

    def run(self, i):
        self.started = time.time()

class Root(LightningFlow):
    def __init__(self, calls):
        super().__init__()
        self.stamp = Stamp()
        self.calls = calls
        self.i = 0
        self.pairs = []

    def run(self):
        if self.i and self.stamp.has_succeeded and len(self.pairs) < self.i:
            self.pairs.append([self._called, self.stamp.started])
        if self.i < self.calls and (self.i == 0 or self.stamp.has_succeeded):
            self.i += 1
            self._called = time.time()
            self.stamp.run(self.i)
'''

SKIP = 5  # first calls left out: the task, and the calls while the warm host is placed


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]}


def app_dispatch_ms(calls: int, cluster) -> list[float]:
    from lightnb import LightningApp

    namespace: dict = {"__name__": "__main__"}
    exec(compile(APP, "<cell>", "exec"), namespace)
    app = LightningApp(namespace["Root"](calls), cluster=cluster).start()
    deadline = time.monotonic() + 300
    while len(app.root.pairs) < calls and time.monotonic() < deadline:
        time.sleep(0.01)
    pairs = list(app.root.pairs)
    app.stop()
    return [(started - called) * 1000 for called, started in pairs[SKIP:]]


def stamp() -> float:
    return time.time()


class Stamper:
    def stamp(self) -> float:
        return time.time()


def submit_ms(client, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        sent = time.time()
        entered = client.submit(stamp, pure=False).result()
        out.append((entered - sent) * 1000)
        time.sleep(0.002)
    return out[SKIP:]


def actor_ms(client, calls: int) -> list[float]:
    actor = client.submit(Stamper, actor=True).result()
    out = []
    for _ in range(calls):
        sent = time.time()
        entered = actor.stamp().result()
        out.append((entered - sent) * 1000)
        time.sleep(0.002)
    return out[SKIP:]


def cpu_percent(seconds: float) -> float:
    import psutil

    process = psutil.Process()
    before, start = process.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = process.cpu_times(), time.monotonic() - start
    return 100 * ((after.user - before.user) + (after.system - before.system)) / elapsed


def idle_app_cpu(cluster, seconds: float) -> float:
    from lightnb import LightningApp

    namespace: dict = {"__name__": "__main__"}
    exec(compile(APP, "<cell>", "exec"), namespace)
    app = LightningApp(namespace["Root"](3), cluster=cluster).start()
    while len(app.root.pairs) < 3:
        time.sleep(0.01)
    time.sleep(1.0)  # settle
    percent = cpu_percent(seconds)
    app.stop()
    return percent


def trial(calls: int, idle_seconds: float) -> dict:
    from distributed import Client

    from lightnb.runtime.cluster import start_local_cluster

    cluster = start_local_cluster(n_workers=2)
    client = Client(cluster)  # the default client: the actor proxy finds it
    result: dict = {}
    try:
        client.wait_for_workers(2)
        os.environ.pop("LIGHTNB_WARM_WORKS", None)
        result["warm_work"] = app_dispatch_ms(calls, cluster)
        os.environ["LIGHTNB_WARM_WORKS"] = "0"
        result["task_work"] = app_dispatch_ms(calls, cluster)
        os.environ.pop("LIGHTNB_WARM_WORKS", None)
        result["dask_submit"] = submit_ms(client, calls)
        result["dask_actor"] = actor_ms(client, calls)
        if idle_seconds:
            time.sleep(1.0)
            result["idle_cpu_bare_client"] = cpu_percent(idle_seconds)
            result["idle_cpu_idle_app"] = idle_app_cpu(cluster, idle_seconds)
    finally:
        client.close()
        cluster.close()
    if idle_seconds:
        result["idle_cpu_dask_defaults"] = default_dask_idle_cpu(idle_seconds)
    return result


def default_dask_idle_cpu(seconds: float) -> float:
    """The same topology (a ``LocalCluster`` of 2 worker processes, its scheduler and nannies in this
    process, one client) with Dask's default settings: what an idle session cost before lightnb tuned them."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2)
        time.sleep(2.0)
        return cpu_percent(seconds)


RAY_SCRIPT = textwrap.dedent('''
    import json, sys, time
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    @ray.remote
    def stamp():
        return time.time()
    ray.get(stamp.remote())
    out = []
    for _ in range(int(sys.argv[1])):
        sent = time.time()
        entered = ray.get(stamp.remote())
        out.append((entered - sent) * 1000)
        time.sleep(0.002)
    print(json.dumps(out[5:]))
    ray.shutdown()
''')


def ray_ms(python: str, calls: int) -> list[float]:
    done = subprocess.run([python, "-c", RAY_SCRIPT, str(calls)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the Ray run failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--ray-python", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--one-trial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_trial:
        print(json.dumps(trial(args.calls, args.idle_seconds)))
        return
    pooled: dict[str, list] = {}
    per_trial: list[dict] = []
    for index in range(args.trials):
        done = subprocess.run([sys.executable, __file__, "--one-trial", "--calls", str(args.calls),
                               "--idle-seconds", str(args.idle_seconds)],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise SystemExit(f"trial {index} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if args.ray_python:
            result["ray_task"] = ray_ms(args.ray_python, args.calls)
        per_trial.append(result)
        for key, value in result.items():
            pooled.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    print(f"dispatch, ms ({args.trials} trials x {args.calls} calls, first {SKIP} left out; p50 / p99):")
    for key in ("warm_work", "task_work", "dask_submit", "dask_actor", "ray_task"):
        if key in pooled:
            q = quantiles(pooled[key])
            medians = [round(statistics.median(t[key]), 2) for t in per_trial if key in t]
            print(f"  {key:<12} {q['p50']:7.2f} / {q['p99']:7.2f}   (n={q['n']}, per-trial p50 {medians})")
    if "idle_cpu_idle_app" in pooled:
        for key in ("idle_cpu_dask_defaults", "idle_cpu_bare_client", "idle_cpu_idle_app"):
            values = pooled[key]
            print(f"  {key:<22} {statistics.median(values):5.2f} % of a core  (trials: "
                  f"{[round(v, 2) for v in values]}, {args.idle_seconds:.0f} s each)")
    if args.json:
        Path(args.json).write_text(json.dumps({"trials": per_trial}, indent=1))


if __name__ == "__main__":
    main()
