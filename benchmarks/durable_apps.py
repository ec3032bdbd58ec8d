"""What durability costs, and how fast an app resumes.

Run:  python benchmarks/durable_apps.py [--trials 3] [--works 100] [--seconds 10]

1. The record's cost: 100 works each setting `counter` at 10 Hz, the same app with and without `name=` (a
   durable app writes its record as it goes), trials interleaved: work → flow lag p50 / p99 and the client
   process's CPU (the record's writer thread included). Goal: ≤ 5 % more CPU, lag p99 ≤ 50 ms.
2. Resuming on a cluster that outlived the process: a `dask scheduler` + 2 `dask worker`s; a process runs a
   named app whose work trains step by step, and is SIGKILLed; a new app resumes it: time from
   LightningApp(..., resume=True).start() to the restored state being visible, and to the re-attached
   work's next update reaching the flow. Goal: ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from core_engine import pct, stream_trial

from lightnb.storage.record import AppRecord

TRAIN_APP = '''\
import os
import time

from lightnb import LightningApp, LightningFlow, LightningWork


class Train(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.step = 0

    def run(self):
        while self.step < 100_000:
            time.sleep(0.05)
            self.step += 1


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.train = Train()

    def run(self):
        self.train.run()


def make(resume=False):
    return LightningApp(Root(), name=os.environ["NAME"], storage=os.environ["STORAGE"],
                        cluster=os.environ["CLUSTER"], resume=resume)


if __name__ == "__main__":
    make().run()
'''


def bench_cost(trials: int, works: int, seconds: float) -> None:
    print(f"\n## 1. {works} works × 10 Hz for {seconds:.0f} s: with and without a record (name=), interleaved")
    me = psutil.Process()
    figures: dict[str, dict[str, list[float]]] = {"plain": {"lag": [], "cpu": []}, "named": {"lag": [], "cpu": []}}
    with tempfile.TemporaryDirectory() as folder:
        for trial in range(trials):
            for kind in ("plain", "named") if trial % 2 == 0 else ("named", "plain"):
                options = {"name": f"bench-{trial}", "storage": folder} if kind == "named" else {}
                before = me.cpu_times()
                started = time.perf_counter()
                latencies, app = stream_trial(works=works, period=0.1, duration=seconds, **options)
                wall = time.perf_counter() - started
                after = me.cpu_times()
                cpu = (after.user + after.system - before.user - before.system) / wall * 100
                figures[kind]["lag"] += latencies
                figures[kind]["cpu"].append(cpu)
                print(f"  trial {trial} {kind:5s}: lag p50 {pct(latencies, 50):6.2f} ms  p99 {pct(latencies, 99):6.2f}"
                      f" ms   client CPU {cpu:5.1f} % of a core")
    for kind, values in figures.items():
        print(f"  {kind:5s}: lag p50 {pct(values['lag'], 50):6.2f} ms  p99 {pct(values['lag'], 99):6.2f} ms   "
              f"client CPU median {statistics.median(values['cpu']):5.1f} %")
    ratio = statistics.median(figures["named"]["cpu"]) / statistics.median(figures["plain"]["cpu"])
    print(f"  client CPU with a record / without: {ratio:.3f}")


def start_cluster(folder: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    scheduler_file = folder / "scheduler.json"
    processes = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not scheduler_file.exists():
        time.sleep(0.1)
    time.sleep(0.3)
    address = json.loads(scheduler_file.read_text())["address"]
    processes += [subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--no-nanny", "--nthreads", "2",
                                    "--host", "127.0.0.1", "--no-dashboard"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
    return address, processes


def bench_resume(trials: int) -> None:
    print("\n## 2. resume on a cluster that outlived the killed process (dask scheduler + 2 workers)")
    visible, updated = [], []
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (folder / "train_app.py").write_text(TRAIN_APP)
        address, cluster = start_cluster(folder)
        sys.path.insert(0, str(folder))
        import train_app

        try:
            for trial in range(trials):
                env = {**os.environ, "NAME": f"resume-{trial}", "STORAGE": str(folder / "storage"),
                       "CLUSTER": address}
                os.environ.update(env)
                first = subprocess.Popen([sys.executable, "train_app.py"], cwd=folder, env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                record = AppRecord(str(folder / "storage"), f"resume-{trial}")
                while not (record.exists() and
                           record.read().components.get("root.train", {}).get("vars", {}).get("step", 0) >= 10):
                    time.sleep(0.1)
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
                started = time.perf_counter()
                app = train_app.make(resume=True)
                app.start()
                restored = app.root.train.step
                visible.append((time.perf_counter() - started) * 1000)
                while app.root.train.step <= restored:
                    time.sleep(0.001)
                updated.append((time.perf_counter() - started) * 1000)
                print(f"  trial {trial}: restored state visible after {visible[-1]:7.1f} ms (step {restored}), "
                      f"re-attached work's next update after {updated[-1]:7.1f} ms")
                app.stop()
        finally:
            for process in cluster:
                process.terminate()
            for process in cluster:
                process.wait(15)
    print(f"  restored state visible: median {statistics.median(visible):7.1f} ms  max {max(visible):7.1f} ms")
    print(f"  next update of the re-attached work: median {statistics.median(updated):7.1f} ms  "
          f"max {max(updated):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--works", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", default="cost,resume")
    args = parser.parse_args()
    print(f"# lightnb durable apps benchmark — {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{args.trials} trials per figure")
    if "cost" in args.only:
        bench_cost(args.trials, args.works, args.seconds)
    if "resume" in args.only:
        bench_resume(args.trials)


if __name__ == "__main__":
    main()
