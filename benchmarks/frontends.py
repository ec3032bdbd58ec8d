"""What web frontends cost: an app's start with a Streamlit page, and AppState's reads and writes.

Run:  python benchmarks/frontends.py [--trials 5] [--ops 200]

1. Start: `app.start()` of a flow-only app (in-process executor) with and without a `StreamlitFrontend`
   (the start waits until the page answers), trials interleaved: median and max seconds, and what the page
   adds.
2. AppState, as a page uses it, against the app's state endpoint on loopback: a read (a fresh `AppState`'s
   first attribute: one GET of the flow's state), and a write → the flow's next pass sees it (`state.lr = x`,
   then until `flow.seen == x`), side by side with the same change made in-process as the notebook's form
   does (`loop.call_soon(setattr)`): p50 / p99 milliseconds and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

from lightnb import LightningApp, LightningFlow
from lightnb.frontend import StreamlitFrontend, app_state


def render(state):  # the page: what StreamlitFrontend draws (never opened here)
    import streamlit as st

    st.write(state.lr)


class Plain(LightningFlow):
    def __init__(self) -> None:
        super().__init__()
        self.lr = 0.0
        self.seen = 0.0

    def run(self) -> None:
        self.seen = self.lr


class WithPage(Plain):
    def configure_layout(self):
        return StreamlitFrontend(render)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_start(trials: int) -> None:
    print(f"\n## 1. app.start() of a flow-only app, with and without a Streamlit page ({trials} trials each, "
          "interleaved)")
    times: dict[str, list[float]] = {"plain": [], "streamlit": []}
    for trial in range(trials):
        for kind in ("plain", "streamlit") if trial % 2 == 0 else ("streamlit", "plain"):
            app = LightningApp(Plain() if kind == "plain" else WithPage(), cluster="in-process")
            started = time.perf_counter()
            app.start()
            times[kind].append(time.perf_counter() - started)
            app.stop(60)
    for kind, values in times.items():
        print(f"  {kind:10} median {statistics.median(values):.3f} s   max {max(values):.3f} s")
    added = statistics.median(times["streamlit"]) - statistics.median(times["plain"])
    print(f"  the page adds (medians): {added:.3f} s (Streamlit's process starting until it answers)")


def wait_seen(app: LightningApp, value: float) -> None:
    deadline = time.monotonic() + 30
    while app.root.seen != value:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the flow never saw {value}")
        time.sleep(0.0005)


def bench_state(ops: int) -> None:
    print(f"\n## 2. AppState on loopback vs the in-process form path ({ops} operations each, interleaved)")
    app = LightningApp(WithPage(), cluster="in-process")
    app.start()
    try:
        reads: list[float] = []
        http_writes: list[float] = []
        form_writes: list[float] = []
        root = app.root
        for op in range(ops):
            started = time.perf_counter()
            state = app_state(app)
            _ = state.lr
            reads.append(time.perf_counter() - started)

            value = float(2 * op + 1)
            started = time.perf_counter()
            state.lr = value
            wait_seen(app, value)
            http_writes.append(time.perf_counter() - started)

            value = float(2 * op + 2)
            started = time.perf_counter()
            app.loop.call_soon(lambda value=value: setattr(root, "lr", value))
            wait_seen(app, value)
            form_writes.append(time.perf_counter() - started)
        for name, values in (("read (GET state)", reads), ("write → flow sees it, AppState", http_writes),
                             ("write → flow sees it, in-process (form)", form_writes)):
            print(f"  {name:42} p50 {1000 * pct(values, 0.5):6.2f} ms   p99 {1000 * pct(values, 0.99):6.2f} ms")
        print(f"  ratio (AppState write / in-process write, medians): "
              f"{statistics.median(http_writes) / statistics.median(form_writes):.1f}")
    finally:
        app.stop(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--ops", type=int, default=200)
    args = parser.parse_args()
    print(f"python benchmarks/frontends.py --trials {args.trials} --ops {args.ops}")
    bench_start(args.trials)
    bench_state(args.ops)


if __name__ == "__main__":
    main()
