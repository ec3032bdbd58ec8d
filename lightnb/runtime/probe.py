"""Checks that the workers of a cluster lightnb did not create can run works, before any work is sent.

This module imports nothing from lightnb at module level: its function is shipped to the workers by value, so
it runs even where lightnb is missing — which is one of the things it reports.
"""

from __future__ import annotations

import socket
import sys
from typing import Any


def describe_worker() -> dict[str, Any]:
    """Runs on each worker: what it has that works need."""
    import importlib.util

    info: dict[str, Any] = {
        "python": list(sys.version_info[:2]),
        "host": socket.gethostname(),
        "lightnb": importlib.util.find_spec("lightnb") is not None,
    }
    try:
        import cloudpickle

        info["cloudpickle"] = cloudpickle.__version__
    except ImportError:
        info["cloudpickle"] = None
    return info


def check_workers(client: Any) -> list[str]:
    """Raise ``ClusterError`` naming what the workers lack; return warnings (e.g. workers on other hosts)."""
    import cloudpickle

    from .cluster import ClusterError

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        infos: dict[str, dict[str, Any]] = client.run(describe_worker)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    problems = []
    here = list(sys.version_info[:2])
    for address, info in infos.items():
        if not info["lightnb"]:
            problems.append(f"{address} cannot import lightnb (pip install lightnb in the workers' environment)")
        if info["python"] != here:
            problems.append(f"{address} runs Python {'.'.join(map(str, info['python']))}, this process "
                            f"{'.'.join(map(str, here))}: works are pickled by value and need the same version")
        if info["cloudpickle"] is None:
            problems.append(f"{address} has no cloudpickle")
    if problems:
        raise ClusterError("the cluster's workers cannot run works: " + "; ".join(problems))
    hosts = {info["host"] for info in infos.values()}
    local = socket.gethostname()
    return [f"workers run on other hosts ({', '.join(sorted(hosts - {local}))})"] if hosts - {local} else []
