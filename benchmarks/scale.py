"""Scale: many works on one app, on lightnb's embedded cluster, side by side with bare Dask where it compares.

Run:  python benchmarks/scale.py [--works 1000] [--hz 10] [--soak-seconds 60] [--soak-works 100]
                                 [--hard-seconds 60] [--trials 1] [--only parallel,soak,pass,hard,tls]

Sections (issue "Scale out for real and never hang"; goals in brackets):

    parallel  N parallel works, each a short call, on one app: total time from the app's cluster being ready
              (its first pass runs while the cluster starts: that time is shown apart) to the last success,
              against the same N tasks (secede + the same body) on bare Dask on an embedded cluster of the
              same shape, started and warm, submitted one by one and in one client.map (lightnb sends the
              calls one pass asks for as one graph) [ratio ≤ 1.5]; loop iteration p99 during the run [≤ 50 ms]
    soak      --soak-works works × --hz attribute sets for --soak-seconds: work → flow lag p99, loop
              iteration p99, client RSS at start and end (sampled) [flat]
    pass      pure engine (no cluster): cost of one loop iteration (a batch from one work + a flow pass) at
              10 / 100 / 1000 / 10 000 idle components
    hard      --works works × --hz for --hard-seconds (10 000 sets a second at 1000 × 10 Hz): work → flow lag
              p99 [≤ 50 ms] over the whole run and sustained (while every work runs: not the seconds the
              1000 works start or end in), CPU of the client process — on the embedded cluster the
              scheduler lives in the client process, so its CPU is included there — and of the worker
              processes; the works' updates straight from the workers to the client (direct streaming)
              and through the scheduler (LIGHTNB_DIRECT_STREAM=0), alternated trial by trial
    tls       the embedded cluster with TLS (the default) and without (LIGHTNB_TLS=0): start time and the
              dispatch latency flow run() → work's run() starts, alternated trial by trial

Latencies compare time.time() taken in two processes of this host (one clock). Every cluster is a fresh
embedded LocalCluster (the warm cluster is off).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from typing import Any

os.environ.setdefault("LIGHTNB_WARM_CLUSTER", "0")

import psutil  # noqa: E402
from latency import StartRoot, StreamRoot, visibility  # noqa: E402

from lightnb import LightningApp, LightningFlow, LightningWork  # noqa: E402
from lightnb.structures import List  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> str:
    if not values_ms:
        return "(no values)"
    return (f"p50 {pct(values_ms, 50):8.2f}  p99 {pct(values_ms, 99):8.2f}  max {max(values_ms):8.2f}  "
            f"(n={len(values_ms)})")


ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, goal: str = "") -> None:
    ROWS.append((what, value, goal))
    print(f"  {what}: {value}" + (f"   [goal {goal}]" if goal else ""), flush=True)


# -- parallel: N short works vs N bare Dask tasks -------------------------------------------------------------
CALL_SECONDS = 0.05


class Short(LightningWork):
    def __init__(self) -> None:
        super().__init__(parallel=True)
        self.done = False

    def run(self) -> None:
        time.sleep(CALL_SECONDS)
        self.done = True


class ParallelRoot(LightningFlow):
    def __init__(self, works: int) -> None:
        super().__init__()
        self.works = List(*(Short() for _ in range(works)))
        self._first_pass: float | None = None
        self._finished: float | None = None

    def run(self) -> None:
        if self._first_pass is None:
            self._first_pass = time.perf_counter()
        for work in self.works:
            work.run()
        if all(work.has_succeeded for work in self.works):
            self._finished = time.perf_counter()
            self.stop()


def bare_task(index: int) -> int:
    from distributed import secede

    secede()  # as a work's call does: it holds no task slot
    time.sleep(CALL_SECONDS)
    return index


def bare_parallel(works: int, one_graph: bool = False) -> float:
    """Bare Dask: ``works`` tasks submitted one by one, or (``one_graph``) in one ``client.map``."""
    from distributed import Client

    from lightnb.runtime.cluster import start_local_cluster

    with start_local_cluster() as cluster, Client(cluster) as client:
        client.submit(bare_task, -1, pure=False).result()  # connected and warm, as the app's first pass is
        started = time.perf_counter()
        if one_graph:
            futures = client.map(bare_task, range(works), pure=False)
        else:
            futures = [client.submit(bare_task, index, pure=False) for index in range(works)]
        client.gather(futures)
        return time.perf_counter() - started


def bench_parallel(works: int, trials: int) -> None:
    print(f"\n## parallel: {works} parallel works, each one call of {CALL_SECONDS * 1000:.0f} ms, on one app "
          "vs the same tasks on bare Dask", flush=True)
    ours, with_start, bare, bare_map, iterations = [], [], [], [], []
    for trial in range(trials):
        root = ParallelRoot(works)
        app = LightningApp(root)
        app.start()
        # The flow's first pass runs while the embedded cluster starts; bare Dask's clock starts on a started
        # cluster: ours starts when the app's executor is ready (the pass that follows submits the calls).
        assert app.loop is not None
        engine = app.loop.engine
        while not engine.executor_ready and not app.loop.ended:
            time.sleep(0.001)
        ready_at = time.perf_counter()
        app.wait(1800)
        assert root._first_pass is not None and root._finished is not None
        ours.append(root._finished - max(ready_at, root._first_pass))
        with_start.append(root._finished - root._first_pass)
        assert app.loop is not None
        iterations += [seconds * 1000 for _, _, seconds in app.loop.iterations]
        bare.append(bare_parallel(works))
        bare_map.append(bare_parallel(works, one_graph=True))
        print(f"  trial {trial}: lightnb {ours[-1]:.2f} s ({with_start[-1]:.2f} s with the cluster's start)   "
              f"bare Dask {bare[-1]:.2f} s (one client.map: {bare_map[-1]:.2f} s)", flush=True)
    ratio = statistics.median(ours) / statistics.median(bare)
    row(f"{works} parallel works: total time lightnb / bare Dask (from a started cluster)",
        f"{statistics.median(ours):.2f} s / {statistics.median(bare):.2f} s = {ratio:.2f}×", "≤ 1.5×")
    ratio_map = statistics.median(ours) / statistics.median(bare_map)
    row(f"{works} parallel works: total time lightnb / bare Dask, its tasks in one client.map",
        f"{statistics.median(ours):.2f} s / {statistics.median(bare_map):.2f} s = {ratio_map:.2f}×", "≤ 1.5×")
    row(f"{works} parallel works: lightnb from its first pass (the cluster's start included)",
        f"{statistics.median(with_start):.2f} s")
    row(f"{works} parallel works: loop iteration (lag)", summary(iterations) + " ms", "p99 ≤ 50 ms")


# -- streaming works: soak and the hard run --------------------------------------------------------------------


class Sampler:
    """Samples the client's RSS and the CPU of the client and of its worker processes while a run goes (each
    worker's CPU as last seen: they may be gone when the run ends)."""

    def __init__(self, every: float) -> None:
        self.me = psutil.Process()
        self.every = every
        self.rss: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._own_start = sum(self.me.cpu_times()[:2])
        self._workers_start = self._children()
        self._workers_last = dict(self._workers_start)
        self._started = time.monotonic()

    def _children(self) -> dict[int, float]:
        seen = {}
        for child in self.me.children(recursive=True):
            try:
                seen[child.pid] = sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return seen

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.rss.append((time.monotonic() - self._started, self.me.memory_info().rss / 2**20))
            self._workers_last.update(self._children())

    def start(self) -> Sampler:
        self.rss.append((0.0, self.me.memory_info().rss / 2**20))
        self._thread.start()
        return self

    def stop(self) -> tuple[float, float]:
        """CPU of the client and of the workers over the run, in % of one core."""
        self._workers_last.update(self._children())
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self._started
        own = sum(self.me.cpu_times()[:2]) - self._own_start
        workers = sum(last - self._workers_start.get(pid, 0.0) for pid, last in self._workers_last.items())
        self.rss.append((elapsed, self.me.memory_info().rss / 2**20))
        return own / elapsed * 100, workers / elapsed * 100


def stream(works: int, hz: float, seconds: float) -> dict[str, Any]:
    root = StreamRoot(works, 1 / hz, seconds)
    app = LightningApp(root)
    app.start()
    deadline = time.monotonic() + 600
    # Polled twice a second: reading 1000 works' status is not free, and it runs in the client process.
    while not all(work.is_running or work.has_succeeded for work in root.works) and time.monotonic() < deadline:
        time.sleep(0.5)
    sampler = Sampler(every=max(1.0, seconds / 20)).start()
    deadline = time.monotonic() + seconds + 900
    while not all(work.has_succeeded for work in root.works) and time.monotonic() < deadline \
            and app.stage == "running":
        time.sleep(0.5)
    client_cpu, workers_cpu = sampler.stop()
    failure = None
    try:
        app.wait(max(1.0, deadline - time.monotonic()))
    except Exception as error:  # reported, with what was measured until then
        failure = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    latencies: list[float] = []
    sustained: list[float] = []
    sets = 0
    # Sustained: while every work runs (from the last work's first set to the first work's last set).
    ran = [work.sent for work in root.works if work.sent]
    begin, end = max(sent[0] for sent in ran), min(sent[-1] for sent in ran)
    for index, work in enumerate(root.works):
        lags = visibility(work.sent, root._observed[index])
        latencies += lags
        sustained += [lag for t, lag in zip(work.sent, lags, strict=False) if begin <= t <= end]
        sets += len(work.sent)
    assert app.loop is not None
    iterations = [s * 1000 for _, _, s in app.loop.iterations]
    return {"lag": latencies, "sustained": sustained, "sustained_seconds": end - begin,
            "iterations": iterations, "rss": sampler.rss, "client_cpu": client_cpu,
            "workers_cpu": workers_cpu, "sets": sets, "failure": failure}


def bench_soak(works: int, hz: float, seconds: float) -> None:
    print(f"\n## soak: {works} works × {hz:g} Hz for {seconds:g} s", flush=True)
    result = stream(works, hz, seconds)
    if result["failure"]:
        row(f"soak {works}×{hz:g} Hz {seconds:g} s: THE APP FAILED", result["failure"])
    rss = result["rss"]
    row(f"soak {works}×{hz:g} Hz {seconds:g} s: work → flow lag", summary(result["lag"]) + " ms", "p99 ≤ 50 ms")
    row(f"soak {works}×{hz:g} Hz {seconds:g} s: loop iteration", summary(result["iterations"]) + " ms")
    # While the works stream: at the end each ships its record of send times (the benchmark's, not lightnb's).
    streaming = [(t, mib) for t, mib in rss if t <= seconds - 1] or rss
    first, middle, last = streaming[0], streaming[len(streaming) // 2], streaming[-1]
    settled = next(((t, mib) for t, mib in streaming if t >= 60), first)  # after the first minute
    growth = (last[1] - settled[1]) / max(1e-9, (last[0] - settled[0]) / 60)
    row(f"soak {works}×{hz:g} Hz {seconds:g} s: client RSS start / middle / end, while the works stream",
        f"{first[1]:.0f} / {middle[1]:.0f} / {last[1]:.0f} MiB ({growth:+.2f} MiB a minute after the first "
        f"minute); {rss[-1][1]:.0f} MiB once the works' records arrived", "flat")


def bench_hard(works: int, hz: float, seconds: float, trials: int) -> None:
    """Both routes of the works' updates side by side, alternated trial by trial: straight from the workers
    to the client (the default on a cluster that ends with this process) and through the scheduler
    (``LIGHTNB_DIRECT_STREAM=0``, the route on any other cluster)."""
    print(f"\n## hard: {works} works × {hz:g} Hz for {seconds:g} s ({works * hz:g} attribute sets a second), "
          f"direct and through the scheduler, {trials} trial(s) each", flush=True)
    routes = {"direct": "1", "scheduler": "0"}
    results: dict[str, list[dict[str, Any]]] = {route: [] for route in routes}
    for _ in range(trials):
        for route, env in routes.items():
            os.environ["LIGHTNB_DIRECT_STREAM"] = env
            results[route].append(stream(works, hz, seconds))
    os.environ.pop("LIGHTNB_DIRECT_STREAM", None)
    for route, runs in results.items():
        name = f"hard {works}×{hz:g} Hz {seconds:g} s, {route}"
        for result in runs:
            if result["failure"]:
                row(f"{name}: THE APP FAILED", result["failure"])
        lag = [value for result in runs for value in result["lag"]]
        sustained = [value for result in runs for value in result["sustained"]]
        window = statistics.median(result["sustained_seconds"] for result in runs)
        row(f"{name}: work → flow lag, whole run", summary(lag) + " ms", "p99 ≤ 50 ms")
        row(f"{name}: work → flow lag, sustained (all {works} running, {window:.0f} s)",
            summary(sustained) + " ms", "p99 ≤ 50 ms")
        achieved = statistics.median(result["sets"] / seconds for result in runs)
        row(f"{name}: sets made by the works", f"{achieved:.0f}/s of {works * hz:g}/s asked")
        row(f"{name}: CPU of the client process (holds the scheduler)",
            f"{statistics.median(result['client_cpu'] for result in runs):.0f} % of a core")
        row(f"{name}: CPU of the worker processes together",
            f"{statistics.median(result['workers_cpu'] for result in runs):.0f} % of a core")


# -- pass: the pure engine at 10 .. 10 000 components ------------------------------------------------------------
class Idle(LightningWork):
    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    def run(self) -> None:
        pass


class Active(LightningWork):
    def __init__(self) -> None:
        super().__init__(parallel=True)
        self.counter = 0

    def run(self) -> None:
        pass


class SizedRoot(LightningFlow):
    def __init__(self, idle: int) -> None:
        super().__init__()
        self.idle = List(*(Idle() for _ in range(idle)))
        self.active = Active()

    def run(self) -> None:
        self.active.run()


def bench_pass(trials: int, iterations: int = 2000) -> None:
    from lightnb.core.calls import WorkStageStatus
    from lightnb.core.engine import EngineState
    from lightnb.core.events import Advance, RuntimeReady, SetEntry, Started, StatusEntry, Submit, WorkBatch

    print("\n## pass: pure engine, one iteration = a batch from one work + a flow pass, N idle components",
          flush=True)
    for size in (10, 100, 1000, 10_000):
        costs = []
        for _ in range(trials):
            engine = EngineState(SizedRoot(size))
            out = engine.handle([Started(), RuntimeReady("bench"), Advance()], now=0.0)
            [submit] = [i for i in out if isinstance(i, Submit)]
            name, call_id = submit.work.name, submit.call.call_id
            engine.handle([WorkBatch(name, call_id, 1, (StatusEntry(WorkStageStatus.RUNNING),)), Advance()], 0.0)
            for seq in range(2, iterations + 2):
                batch = WorkBatch(name, call_id, seq, (SetEntry("counter", seq),))
                started = time.perf_counter()
                engine.handle([batch, Advance()], now=float(seq))
                costs.append((time.perf_counter() - started) * 1e6)
        row(f"pass cost, {size:>6} idle components", summary(costs) + " µs")


# -- tls: its cost at start and dispatch -----------------------------------------------------------------------
def bench_tls(trials: int, calls: int = 40, warmup: int = 5) -> None:
    from lightnb.runtime.cluster import TLS_ENV, connect

    print(f"\n## tls: embedded cluster start, and dispatch ({calls} calls after {warmup} warm-up), TLS on/off",
          flush=True)
    starts: dict[str, list[float]] = {"tls": [], "tcp": []}
    dispatch: dict[str, list[float]] = {"tls": [], "tcp": []}
    for _ in range(trials):
        for mode in ("tls", "tcp"):
            os.environ[TLS_ENV] = "1" if mode == "tls" else "0"
            started = time.perf_counter()
            connection = connect(None)
            starts[mode].append(time.perf_counter() - started)
            connection.close()
            root = StartRoot(warmup + calls)
            app = LightningApp(root)
            app.start()
            app.wait(600)
            pairs = list(zip(root._called_at, root.work.started, strict=True))[warmup:]
            dispatch[mode] += [(s - c) * 1000 for c, s in pairs]
    os.environ.pop(TLS_ENV, None)
    for mode in ("tls", "tcp"):
        row(f"embedded cluster start ({mode})", f"median {statistics.median(starts[mode]):.2f} s  "
            f"(n={len(starts[mode])})")
        row(f"dispatch run() → work starts ({mode})", summary(dispatch[mode]) + " ms")
    ratio = pct(dispatch["tls"], 50) / pct(dispatch["tcp"], 50)
    row("dispatch p50 TLS / TCP", f"{ratio:.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--works", type=int, default=1000)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--soak-works", type=int, default=100)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--hard-seconds", type=float, default=60.0)
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--only", default="parallel,soak,pass,hard,tls")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    print(f"# lightnb scale benchmark — {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} at start; {args}", flush=True)
    if "pass" in sections:
        bench_pass(args.trials)
    if "tls" in sections:
        bench_tls(args.trials)
    if "parallel" in sections:
        bench_parallel(args.works, args.trials)
    if "soak" in sections:
        bench_soak(args.soak_works, args.hz, args.soak_seconds)
    if "hard" in sections:
        bench_hard(args.works, args.hz, args.hard_seconds, args.trials)
    print(f"\n## summary (load average at end {os.getloadavg()[0]:.2f})")
    width = max(len(what) for what, _, _ in ROWS) if ROWS else 0
    for what, value, goal in ROWS:
        print(f"| {what:<{width}} | {value} |" + (f" goal {goal} |" if goal else " |"))


if __name__ == "__main__":
    main()
