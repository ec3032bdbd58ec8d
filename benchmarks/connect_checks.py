"""What lightnb's checks cost when an app connects to a cluster it did not start.

Run:  python benchmarks/connect_checks.py [--trials 20] [--workers 2]

On a LocalCluster of worker processes (loopback), interleaved: ``check_workers`` as for an app whose storage
is a URL (the workers' Python, lightnb, cloudpickle: one ``client.run``), and as for an app whose storage is a
local folder (the same ``client.run`` plus the probe: a marker file written in the folder, looked for by
every worker, removed). p50 / p99 of each and the ratio of the medians. Goal: the probe adds < 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from core_engine import pct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from distributed import Client

    from lightnb.runtime.cluster import start_local_cluster
    from lightnb.runtime.probe import check_workers

    cluster = start_local_cluster(n_workers=args.workers)
    client = Client(cluster, set_as_default=False)
    times: dict[str, list[float]] = {"url": [], "folder": []}
    try:
        with tempfile.TemporaryDirectory() as folder:
            check_workers(client, folder)  # warm up: the function's first trip to each worker
            for _ in range(args.trials):
                for kind, storage in (("url", None), ("folder", folder)):
                    started = time.perf_counter()
                    check_workers(client, storage)
                    times[kind].append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
        cluster.close()
    print(f"# check_workers on {args.workers} worker processes, {args.trials} trials each, interleaved")
    for kind, values in times.items():
        print(f"  storage {kind:6s}: p50 {pct(values, 50):6.2f} ms  p99 {pct(values, 99):6.2f} ms")
    ratio = statistics.median(times["folder"]) / statistics.median(times["url"])
    added = statistics.median(times["folder"]) - statistics.median(times["url"])
    print(f"  the probe adds {added:.2f} ms at the median (ratio {ratio:.2f})")


if __name__ == "__main__":
    main()
