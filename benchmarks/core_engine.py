"""Core engine speed: state streaming latency, work start latency, idle cost, scale, per-pass cost.

Run:  python benchmarks/core_engine.py [--trials 5] [--only latency,start,idle,scale,pass]

Every figure is measured on lightnb's embedded LocalCluster (a fresh one per trial: `LightningApp(root)` with
no cluster argument, the warm cluster turned off — benchmarks/live_development.py measures that one), with
baselines measured side by side on the same kind of cluster: a bare Dask task
(submit → task entry) and a bare `Worker.log_event` → `Client.subscribe_topic` message. Latencies compare
`time.time()` taken in two processes of this host (one clock). Targets (issue "Core engine"):

    work attribute set → visible to the flow   p50 ≤ 5 ms, p99 ≤ 25 ms     (reference framework: ~97 ms p50)
    flow calls run() → work's run() starts      p50 ≤ 10 ms                  (reference: ~12 ms, bare Dask ~7 ms)
    idle app, client process CPU                ≤ 3 % of a core              (reference: 96 %)
    100 works × 10 Hz progress                  loop lag p99 ≤ 50 ms
    per-pass cost at 10 / 100 / 1000 idle components: flat
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import psutil
from latency import StartRoot, Streamer, StreamRoot, visibility

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.structures import List


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> str:
    return (f"p50 {pct(values_ms, 50):7.2f}  p90 {pct(values_ms, 90):7.2f}  p99 {pct(values_ms, 99):7.2f}  "
            f"max {max(values_ms):7.2f}  (n={len(values_ms)})")




# -- 1. attribute set → visible to the flow ----------------------------------------------------------------
def stream_trial(works: int, period: float, duration: float, **app_options: Any) -> tuple[list[float], LightningApp]:
    root = StreamRoot(works, period, duration)
    app = LightningApp(root, **app_options)
    app.start()
    app.wait(duration + 120)
    latencies: list[float] = []
    for index, work in enumerate(root.works):
        latencies += visibility(work.sent, root._observed[index])
    return latencies, app


def baseline_log_event(duration: float, period: float) -> list[float]:
    """A bare task publishing timestamps with Worker.log_event; the client subscribed to the topic."""
    from distributed import Client, get_worker

    from lightnb.runtime.cluster import start_local_cluster

    received: list[float] = []

    def publish(duration: float, period: float) -> int:
        worker = get_worker()
        end, n = time.time() + duration, 0
        while time.time() < end:
            worker.log_event("bench", time.time())
            n += 1
            time.sleep(period)
        return n

    with start_local_cluster() as cluster, Client(cluster) as client:
        client.subscribe_topic("bench", lambda event: received.append((time.time() - event[1]) * 1000))
        client.submit(publish, duration, period, pure=False).result()
        time.sleep(0.5)
    return received


def bench_latency(trials: int) -> None:
    print("\n## 1. work attribute set → visible to the flow (1 work setting `counter` every 10 ms for 3 s)")
    pooled, base = [], []
    for trial in range(trials):
        latencies, _ = stream_trial(works=1, period=0.01, duration=3.0)
        pooled += latencies
        print(f"  trial {trial}: p50 {pct(latencies, 50):.2f} ms  p99 {pct(latencies, 99):.2f} ms")
        base += baseline_log_event(duration=3.0, period=0.01)
    print(f"  lightnb:            {summary(pooled)} ms")
    print(f"  bare log_event:     {summary(base)} ms")
    print(f"  ratio of p50 (lightnb / bare): {pct(pooled, 50) / pct(base, 50):.2f}")


# -- 2. flow calls run() → the work's run() starts ---------------------------------------------------------
def baseline_submit(calls: int, warmup: int) -> list[float]:
    from distributed import Client

    from lightnb.runtime.cluster import start_local_cluster

    def entry(_: int) -> float:
        return time.time()

    latencies = []
    with start_local_cluster() as cluster, Client(cluster) as client:
        for index in range(warmup + calls):
            submitted = time.time()
            started = client.submit(entry, index, pure=False).result()
            if index >= warmup:
                latencies.append((started - submitted) * 1000)
    return latencies


def bench_start(trials: int, calls: int = 60, warmup: int = 10) -> None:
    print(f"\n## 2. flow calls run() → the work's run() starts ({calls} calls per trial after {warmup} warm-up)")
    pooled, base = [], []
    for trial in range(trials):
        root = StartRoot(warmup + calls)
        app = LightningApp(root)
        app.start()
        app.wait(300)
        pairs = list(zip(root._called_at, root.work.started, strict=True))[warmup:]
        latencies = [(started - called) * 1000 for called, started in pairs]
        pooled += latencies
        print(f"  trial {trial}: p50 {pct(latencies, 50):.2f} ms  p99 {pct(latencies, 99):.2f} ms")
        base += baseline_submit(calls, warmup)
    print(f"  lightnb:            {summary(pooled)} ms")
    print(f"  bare Dask submit:   {summary(base)} ms")
    print(f"  ratio of p50 (lightnb / bare): {pct(pooled, 50) / pct(base, 50):.2f}")


# -- 3. idle cost ------------------------------------------------------------------------------------------
class Sleeper(LightningWork):
    def __init__(self) -> None:
        super().__init__(parallel=True)
        self.sleeping = False

    def run(self) -> None:
        self.sleeping = True
        time.sleep(3600)


class IdleRoot(LightningFlow):
    def __init__(self) -> None:
        super().__init__()
        self.work = Sleeper()

    def run(self) -> None:
        self.work.run()


def bench_idle(trials: int, window: float = 10.0) -> None:
    print(f"\n## 3. idle app: CPU over {window:.0f} s while its only work sleeps (fraction of one core)")
    me = psutil.Process()
    clients, workers = [], []
    for trial in range(trials):
        app = LightningApp(IdleRoot())
        app.start()
        deadline = time.time() + 60
        while not app.root.work.sleeping and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # let start-up work settle
        children = me.children(recursive=True)
        before = me.cpu_times()
        child_before = {p.pid: sum(p.cpu_times()[:2]) for p in children}
        time.sleep(window)
        after = me.cpu_times()
        client = (after.user + after.system - before.user - before.system) / window
        worker = sum(sum(p.cpu_times()[:2]) - child_before[p.pid] for p in children if p.is_running()) / window
        clients.append(client * 100)
        workers.append(worker * 100)
        print(f"  trial {trial}: client process {client * 100:.2f} %   worker processes {worker * 100:.2f} %")
        app.stop()
    print(f"  client process: median {statistics.median(clients):.2f} %  max {max(clients):.2f} %  "
          f"(worker processes together: median {statistics.median(workers):.2f} %)")


# -- 4. scale: 100 works × 10 Hz -----------------------------------------------------------------------------
def bench_scale(trials: int, works: int = 100, duration: float = 5.0) -> None:
    print(f"\n## 4. {works} parallel works each setting `counter` at 10 Hz for {duration:.0f} s: loop lag")
    pooled, iterations = [], []
    for trial in range(trials):
        latencies, app = stream_trial(works=works, period=0.1, duration=duration)
        pooled += latencies
        assert app.loop is not None
        iterations += [seconds * 1000 for _, _, seconds in app.loop.iterations]
        print(f"  trial {trial}: lag p50 {pct(latencies, 50):.2f} ms  p99 {pct(latencies, 99):.2f} ms  "
              f"({len(latencies)} values)")
    print(f"  lag:              {summary(pooled)} ms")
    print(f"  loop iteration:   {summary(iterations)} ms (apply events + flow pass over {works} works + ship)")


# -- 5. per-pass cost vs app size ----------------------------------------------------------------------------
class Idle(LightningWork):
    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    def run(self) -> None:
        pass


class SizedRoot(LightningFlow):
    def __init__(self, idle: int) -> None:
        super().__init__()
        self.idle = List(*(Idle() for _ in range(idle)))
        self.active = Streamer(period=0.01, duration=3.0)

    def run(self) -> None:
        self.active.run()  # the pass touches what changed, not the idle components
        if self.active.has_succeeded:
            self.stop()


def bench_pass(trials: int) -> None:
    print("\n## 5. loop iteration cost with N idle components and one work streaming at 100 Hz")
    for size in (10, 100, 1000):
        costs, passes = [], []
        for _ in range(trials):
            app = LightningApp(SizedRoot(size))
            app.start()
            app.wait(120)
            assert app.loop is not None
            for _, pass_seconds, seconds in app.loop.iterations:
                costs.append(seconds * 1000)
                if pass_seconds is not None:
                    passes.append(pass_seconds * 1000)
        print(f"  N={size:5d}: iteration p50 {pct(costs, 50):.3f} ms  p99 {pct(costs, 99):.3f} ms   "
              f"flow pass p50 {pct(passes, 50):.3f} ms  (n={len(costs)})")


def main() -> None:
    os.environ["LIGHTNB_WARM_CLUSTER"] = "0"  # a fresh embedded cluster per trial, as the figures say
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--only", default="latency,start,idle,scale,pass")
    args = parser.parse_args()
    print(f"# lightnb core engine benchmark — {platform.python_version()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {args.trials} trials per figure")
    sections = {"latency": bench_latency, "start": bench_start, "idle": bench_idle, "scale": bench_scale,
                "pass": bench_pass}
    for name in args.only.split(","):
        sections[name](args.trials)


if __name__ == "__main__":
    main()
