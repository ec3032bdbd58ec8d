"""How long `%load_ext lightnb` takes in a fresh kernel (target ≤ 1 s), and that it imports nothing heavy.

Run:  python benchmarks/notebook_load_ext.py [--trials 7]

Each trial starts a fresh IPython kernel (jupyter_client) and runs one cell, `%load_ext lightnb`; measured:
inside the kernel, the time of the magic itself (`time.perf_counter()` around it), and from the client, the
cell's execute_request → execute_reply round trip. Also listed: the heavy packages the kernel holds afterwards
(none of torch, lightning, gradio, tensorboard, distributed, ipywidgets, anywidget is expected).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from kernel_session import KernelSession  # noqa: E402

HEAVY = ("torch", "lightning", "gradio", "tensorboard", "distributed", "dask", "ipywidgets", "anywidget")
CELL = """
import time as _t
_started = _t.perf_counter()
get_ipython().run_line_magic("load_ext", "lightnb")
print(_t.perf_counter() - _started)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=7)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; {args.trials} fresh kernels")
    inside, round_trip, heavy = [], [], set()
    for _ in range(args.trials):
        with KernelSession() as kernel:
            started = time.perf_counter()
            run = kernel.execute(CELL)
            round_trip.append(time.perf_counter() - started)
            assert run.ok, run.text
            inside.append(float(run.stdout.strip()))
            heavy |= set(kernel.value(f"[m for m in {HEAVY!r} if m in __import__('sys').modules]"))
    for label, values in (("in the kernel", inside), ("cell round trip", round_trip)):
        print(f"%load_ext lightnb, {label:16}: median {statistics.median(values) * 1000:6.1f} ms  "
              f"max {max(values) * 1000:6.1f} ms  (target <= 1000 ms)")
    print(f"heavy packages imported: {sorted(heavy) or 'none'}")


if __name__ == "__main__":
    main()
