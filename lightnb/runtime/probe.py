"""Checks that the workers of a cluster lightnb did not create can run works, before any work is sent.

This module imports nothing from lightnb at module level: its function is shipped to the workers by value, so
it runs even where lightnb is missing — which is one of the things it reports.
"""

from __future__ import annotations

import socket
import sys
from typing import Any


def describe_worker(marker: str | None = None) -> dict[str, Any]:
    """Runs on each worker: what it has that works need, and whether it sees the file ``marker`` (written in
    the app's storage folder by the client: a worker that does not see it shares no disk with the client)."""
    import importlib.util
    import os

    info: dict[str, Any] = {
        "python": list(sys.version_info[:2]),
        "host": socket.gethostname(),
        "lightnb": importlib.util.find_spec("lightnb") is not None,
        "sees_storage": marker is None or os.path.exists(marker),
    }
    try:
        import cloudpickle

        info["cloudpickle"] = cloudpickle.__version__
    except ImportError:
        info["cloudpickle"] = None
    return info


def check_workers(client: Any, storage_folder: str | None = None) -> None:
    """Raise ``ClusterError`` naming what the workers lack. With ``storage_folder`` (the app's storage is a
    local folder), also when a worker cannot see that folder: it runs on another host (or another file
    system), so works could not share drives, paths and payloads through it."""
    import cloudpickle

    from .cluster import ClusterError

    marker = _write_marker(storage_folder) if storage_folder is not None else None
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        infos: dict[str, dict[str, Any]] = client.run(describe_worker, marker)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        if marker is not None:
            _remove(marker)
    problems = worker_problems(infos, list(sys.version_info[:2]))
    if problems:
        raise ClusterError("the cluster's workers cannot run works: " + "; ".join(problems))
    blind = sorted(address for address, info in infos.items() if not info.get("sees_storage", True))
    if blind:
        raise ClusterError(storage_message(storage_folder or "", blind))


def worker_problems(infos: dict[str, dict[str, Any]], here: list[int]) -> list[str]:
    """What keeps each worker from running works (empty when nothing does)."""
    problems = []
    for address, info in infos.items():
        if not info["lightnb"]:
            problems.append(f"{address} cannot import lightnb (pip install lightnb in the workers' environment)")
        if info["python"] != here:
            problems.append(f"{address} runs Python {'.'.join(map(str, info['python']))}, this process "
                            f"{'.'.join(map(str, here))}: works are pickled by value and need the same version")
        if info["cloudpickle"] is None:
            problems.append(f"{address} has no cloudpickle")
    return problems


def storage_message(folder: str, blind: list[str]) -> str:
    workers = ", ".join(blind)
    return (f"the app's storage is the local folder {folder}, which the worker(s) {workers} cannot see: they "
            "run on other hosts and share no disk with this one, so works could not pass drives, paths and "
            "payloads through it. Give the app a storage URL every worker reaches, e.g. "
            "LightningApp(..., storage=\"s3://bucket/prefix\") or `lightnb run ... --storage s3://bucket/prefix` "
            "(any fsspec URL: s3://, gcs://, abfs://), or a folder mounted at the same path on every host.")


def _write_marker(folder: str) -> str | None:
    """Write a marker file in ``folder`` (or, not made yet, its nearest existing parent: the probe creates
    no folder); None when nothing can be written there (then nothing is probed)."""
    import os
    import uuid

    where = os.path.abspath(folder)
    while not os.path.isdir(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    marker = os.path.join(where, f".lightnb-probe-{uuid.uuid4().hex}")
    try:
        with open(marker, "w") as file:
            file.write("lightnb checks that the workers see this folder\n")
    except OSError:
        return None
    return marker


def _remove(path: str) -> None:
    import os

    try:
        os.remove(path)
    except OSError:
        pass
