"""The notebook front under load: a busy app must not slow the notebook down nor flood the browser.

Run:  python benchmarks/notebook_traffic.py [--works 100] [--hz 10] [--seconds 20] [--trials 3]

In a real kernel (jupyter_client, as JupyterLab drives one): `%load_ext lightnb`, an app whose `--works` works
each set `progress` `--hz` times a second, on lightnb's embedded LocalCluster (worker processes), its AppView
displayed and a `lightnb` comm open as the side panel opens it. Meanwhile trivial cells (`1 + 1`) are executed
one after another; measured:

    cell round trip (execute_request sent → execute_reply received)   target p99 ≤ 50 ms
    AppView widget messages per second                                target ≤ 20 per view
    side panel comm messages per second (same 10 Hz rule)

and, for reference, the same round trip with no app running, and the rate of work updates the kernel's app
really received (so the load is what it claims).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from core_engine import summary  # noqa: E402  (this folder is on the path when the script runs)
from kernel_session import KernelSession  # noqa: E402

APP = textwrap.dedent('''
    import time
    from lightnb import LightningApp, LightningFlow, LightningWork
    from lightnb.structures import List

    class Streamer(LightningWork):
        def __init__(self, period):
            super().__init__(parallel=True)
            self.period = period
            self.progress = 0.0
            self.ticks = 0

        def run(self):
            while True:
                time.sleep(self.period)
                self.ticks += 1
                self.progress = (self.ticks % 100) / 100

    class Many(LightningFlow):
        def __init__(self, works, period):
            super().__init__()
            self.streamers = List(*(Streamer(period) for _ in range(works)))

        def run(self):
            for streamer in self.streamers:
                streamer.run()

    app = LightningApp(Many({works}, {period}))
    app.start()
''')


# (CPU seconds of lightnb's UI thread, of the whole kernel process) so far
CPU = ("(lambda p, t: (sum(x.user_time + x.system_time for x in p.threads() if t and x.id == t.native_id), "
       "sum(p.cpu_times()[:2])))(__import__('psutil').Process(), __import__('lightnb.ui.pump').ui.pump.pump()._thread)")


def round_trips(kernel: KernelSession, seconds: float) -> list[float]:
    """Trivial cells, one after another, for `seconds`: execute_request → execute_reply in ms."""
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        msg_id = kernel.client.execute("1 + 1", store_history=False)
        kernel._reply(msg_id, 30)
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)  # a user does not type faster; leaves the kernel's loop its other work
    return times


def trial(works: int, hz: float, seconds: float, views: bool = True) -> dict[str, float | list[float]]:
    with KernelSession() as kernel:
        assert kernel.execute("%load_ext lightnb").ok
        idle = round_trips(kernel, min(5.0, seconds / 2))
        start = kernel.mark()
        run = kernel.execute(APP.format(works=works, period=1 / hz) + ("\napp" if views else ""))
        assert run.ok, run.text
        (view,) = kernel.widget_ids("AppView", start) if views else (None,)
        panel = kernel.comm_open("lightnb", {"v": 1, "type": "hello", "client": "benchmark"}) if views else None
        # Wait until every work streams, then measure.
        deadline = time.monotonic() + 120
        while kernel.value("sum(1 for w in app.root.streamers if w.ticks > 0)") < works:
            if time.monotonic() > deadline:
                raise TimeoutError("the works did not all start within 120 s")
            time.sleep(0.5)
        ticks_before = kernel.value("sum(w.ticks for w in app.root.streamers)")
        cpu_before = kernel.value(CPU)
        mark, began = kernel.mark(), time.monotonic()
        busy = round_trips(kernel, seconds)
        elapsed = time.monotonic() - began
        ticks_after = kernel.value("sum(w.ticks for w in app.root.streamers)")
        cpu_after = kernel.value(CPU)
        during = [m for m in kernel.since(mark) if began <= m["received"] <= began + elapsed]
        view_messages = sum(1 for m in during if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == view)
        panel_messages = sum(1 for m in during if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == panel)
        kernel.execute("app.stop()")
    return {"idle": idle, "busy": busy, "view_rate": view_messages / elapsed,
            "pump_cpu": (cpu_after[0] - cpu_before[0]) / elapsed,
            "kernel_cpu": (cpu_after[1] - cpu_before[1]) / elapsed,
            "panel_rate": panel_messages / elapsed, "updates_rate": (ticks_after - ticks_before) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--works", type=int, default=100)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--no-view", action="store_true",
                        help="no AppView and no panel comm: what the app alone costs the kernel, for comparison")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.works} works x {args.hz:g} Hz, {args.seconds:g} s of cells per trial, {args.trials} trials"
          f"{', no view and no panel' if args.no_view else ', an AppView and a panel comm open'}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    results = [trial(args.works, args.hz, args.seconds, not args.no_view) for _ in range(args.trials)]
    for index, result in enumerate(results, 1):
        print(f"trial {index}: busy round trip {summary(result['busy'])}; view {result['view_rate']:.1f} msg/s, "
              f"panel {result['panel_rate']:.1f} msg/s, work updates received {result['updates_rate']:.0f}/s; "
              f"CPU: UI thread {result['pump_cpu'] * 100:.1f} %, kernel {result['kernel_cpu'] * 100:.0f} % of a core")
    idle = [t for r in results for t in r["idle"]]
    busy = [t for r in results for t in r["busy"]]
    print(f"cell round trip, no app     (ms): {summary(idle)}")
    print(f"cell round trip, app busy   (ms): {summary(busy)}   target p99 <= 50")
    print(f"AppView messages/s per view:      median {statistics.median(r['view_rate'] for r in results):.1f}"
          f"  max {max(r['view_rate'] for r in results):.1f}   target <= 20")
    print(f"panel comm messages/s:            median {statistics.median(r['panel_rate'] for r in results):.1f}"
          f"  max {max(r['panel_rate'] for r in results):.1f}")
    print(f"lightnb's UI thread CPU:          median {statistics.median(r['pump_cpu'] for r in results) * 100:.1f} "
          f"% of a core (whole kernel process: {statistics.median(r['kernel_cpu'] for r in results) * 100:.0f} %)")
    print(f"work updates received by the app: median {statistics.median(r['updates_rate'] for r in results):.0f}/s"
          f"  (offered {args.works * args.hz:.0f}/s)")


if __name__ == "__main__":
    main()
