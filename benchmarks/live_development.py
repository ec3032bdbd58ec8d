"""Live development: how fast the edit-and-rerun loop is.

Run:  python benchmarks/live_development.py [--trials 3] [--apps 5] [--reloads 20] [--idle-seconds 5]

1. start → first work running, for the 1st, 2nd … Nth app started one after another in one process (the
   warm cluster), side by side with the same apps each on a fresh embedded cluster (``cluster={}``, what
   every app paid before). Each trial is a fresh process; figures are over trials.      target: 2nd+ ≤ 150 ms
2. reload → the next flow pass on the new code: the notebook front's check (what runs after a cell that
   redefined the flow class) until the flow's run() of the new class has set its marker, side by side with
   what it costs without hot reload: stop the app, start a new one with the new class, until its first pass.
3. idle client CPU: this process's CPU (user + sys) while the warm cluster waits with no app, and while an
   app whose parallel work sleeps is running.
4. loop lag of successive apps on the warm cluster (``--lag-apps``, each ``--lag-works`` works setting a
   counter at 10 Hz for 5 s, as ``core_engine.py`` section 4), each trial a fresh process: work set → seen
   by a flow pass, per app. Later apps used to lag more: Python's full garbage collections, which stop every
   thread, scanned a heap that grew with each app (see ``cluster.freeze_long_lived_objects``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_engine import summary  # noqa: E402  (this folder is on the path when the script runs)

CLASSES = '''
import time
from lightnb import LightningFlow, LightningWork

class Sleeper(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.naps = 0

    def run(self):
        while True:
            time.sleep(0.05)
            self.check_stop()

class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.sleeper = Sleeper()
        self.version = 0

    def run(self):
        self.sleeper.run()
        self.version = VERSION
'''


def define(version: int) -> dict:
    """The classes as a notebook cell defines them (module ``__main__``), version ``version``."""
    namespace: dict = {"__name__": "__main__"}
    exec(compile(CLASSES.replace("VERSION", str(version)), "<cell>", "exec"), namespace)
    return namespace


def until(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition was not met")
        time.sleep(0.0005)


def first_work_ms(cluster) -> float:
    from lightnb import LightningApp

    app = LightningApp(define(1)["Root"](), cluster=cluster)
    started = time.perf_counter()
    app.start()
    until(lambda: app.root.sleeper.is_running)
    elapsed = (time.perf_counter() - started) * 1000
    app.stop()
    return elapsed


def trial(apps: int) -> None:
    """One process: N apps on the warm cluster, then N apps each on a fresh embedded cluster."""
    from lightnb.runtime import warm

    warm_ms = [first_work_ms(None) for _ in range(apps)]
    warm.shutdown()
    fresh_ms = [first_work_ms({}) for _ in range(apps)]
    print("TRIAL", json.dumps({"warm": warm_ms, "fresh": fresh_ms}), flush=True)


def lag_trial(apps: int, works: int) -> None:
    """One process: ``apps`` streaming apps one after another on the warm cluster; lag p99 of each."""
    from core_engine import pct, stream_trial

    from lightnb.runtime import warm

    p99s = []
    for _ in range(apps):
        latencies, _app = stream_trial(works=works, period=0.1, duration=5.0)
        p99s.append(pct(latencies, 99))
    warm.shutdown()
    print("LAG", json.dumps(p99s), flush=True)


def reloads(count: int) -> tuple[list[float], list[float]]:
    from lightnb import LightningApp
    from lightnb.ui import reload

    versions = {v: define(v) for v in range(1, count + 2)}
    app = LightningApp(versions[1]["Root"]()).start()
    until(lambda: app.root.sleeper.is_running and app.root.version == 1)
    hot = []
    for version in range(2, count + 2):
        started = time.perf_counter()
        reload.check(versions[version])  # what the post_run_cell hook does after the redefining cell
        until(lambda version=version: app.root.version == version)
        hot.append((time.perf_counter() - started) * 1000)
    app.stop()
    restart = []
    for version in range(2, min(count, 10) + 2):
        old = LightningApp(versions[version - 1]["Root"]()).start()
        until(lambda old=old, version=version: old.root.version == version - 1)
        started = time.perf_counter()
        old.stop()
        new = LightningApp(versions[version]["Root"]()).start()
        until(lambda new=new, version=version: new.root.version == version)
        restart.append((time.perf_counter() - started) * 1000)
        new.stop()
    return hot, restart


def cpu_percent(seconds: float) -> float:
    process_times = os.times()
    wall = time.perf_counter()
    time.sleep(seconds)
    after = os.times()
    used = (after.user - process_times.user) + (after.system - process_times.system)
    return 100 * used / (time.perf_counter() - wall)


def idle_cpu(seconds: float) -> tuple[float, float]:
    from lightnb import LightningApp

    app = LightningApp(define(1)["Root"]()).start()
    until(lambda: app.root.sleeper.is_running)
    time.sleep(1)
    running = cpu_percent(seconds)
    app.stop()
    time.sleep(1)
    waiting = cpu_percent(seconds)
    return waiting, running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--apps", type=int, default=5)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=5)
    parser.add_argument("--lag-apps", type=int, default=4)
    parser.add_argument("--lag-works", type=int, default=100)
    parser.add_argument("--trial", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lag-trial", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trial:
        trial(args.apps)
        return
    if args.lag_trial:
        lag_trial(args.lag_apps, args.lag_works)
        return

    print(f"lightnb live development — Python {platform.python_version()}, {os.cpu_count()} CPUs")
    warm: list[list[float]] = [[] for _ in range(args.apps)]
    fresh: list[list[float]] = [[] for _ in range(args.apps)]
    for _ in range(args.trials):
        out = subprocess.run([sys.executable, __file__, "--trial", "--apps", str(args.apps)], capture_output=True,
                             text=True, timeout=900, env={**os.environ, "LIGHTNB_WARM_CLUSTER": "300"})
        if out.returncode != 0 or "TRIAL" not in out.stdout:
            sys.exit(f"a trial failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.split("TRIAL", 1)[1])
        for index in range(args.apps):
            warm[index].append(result["warm"][index])
            fresh[index].append(result["fresh"][index])

    print(f"\n1. app.start() → first work running, ms ({args.trials} trials, each a fresh process)")
    print(f"   {'app':>5}  {'warm cluster p50':>16}  {'fresh cluster p50':>17}  {'ratio':>6}")
    for index in range(args.apps):
        w, f = statistics.median(warm[index]), statistics.median(fresh[index])
        print(f"   {index + 1:>5}  {w:16.1f}  {f:17.1f}  {f / w:5.1f}x")
    later_warm = [v for values in warm[1:] for v in values]
    later_fresh = [v for values in fresh[1:] for v in values]
    print(f"   2nd+ apps, warm:  {summary(later_warm)}")
    print(f"   2nd+ apps, fresh: {summary(later_fresh)}")
    print(f"   target: 2nd+ apps ≤ 150 ms (median {statistics.median(later_warm):.1f} ms)")

    hot, restart = reloads(args.reloads)
    print("\n2. edit → next flow pass on the new code, ms")
    print(f"   hot reload:            {summary(hot)}")
    print(f"   stop + start new app:  {summary(restart)}   (ratio of medians "
          f"{statistics.median(restart) / statistics.median(hot):.0f}x; this also restarts the running work)")

    waiting, running = idle_cpu(args.idle_seconds)
    print(f"\n3. idle client CPU over {args.idle_seconds:g} s: warm cluster, no app: {waiting:.2f} %   "
          f"one app, its work sleeping: {running:.2f} %")
    from lightnb.runtime import warm as warm_cluster

    warm_cluster.shutdown()

    if args.lag_apps:
        by_app: list[list[float]] = [[] for _ in range(args.lag_apps)]
        for _ in range(args.trials):
            out = subprocess.run([sys.executable, __file__, "--lag-trial", "--lag-apps", str(args.lag_apps),
                                  "--lag-works", str(args.lag_works)], capture_output=True, text=True,
                                 timeout=900, env={**os.environ, "LIGHTNB_WARM_CLUSTER": "300"})
            if out.returncode != 0 or "LAG" not in out.stdout:
                sys.exit(f"a lag trial failed:\n{out.stderr[-3000:]}")
            for index, value in enumerate(json.loads(out.stdout.split("LAG", 1)[1])):
                by_app[index].append(value)
        print(f"\n4. loop lag p99 of successive apps on the warm cluster, {args.lag_works} works x 10 Hz, ms "
              f"({args.trials} trials, each a fresh process)")
        for index, values in enumerate(by_app):
            print(f"   app {index + 1}: median of trials {statistics.median(values):6.1f}   trials "
                  f"{[round(v, 1) for v in values]}")


if __name__ == "__main__":
    main()
