"""Which Dask cluster an app uses: the embedded ``LocalCluster``, an address, a client, a cluster object, or
a spec naming a cluster class (e.g. one of dask-cloudprovider's) — so the same app scales out unchanged.

>>> LightningApp(Root())                                         # embedded LocalCluster on loopback
>>> LightningApp(Root(), cluster="tcp://10.0.0.5:8786")          # an existing scheduler
>>> LightningApp(Root(), cluster="cluster.yaml")                 # {class: ..., kwargs: {...}}
>>> LightningApp(Root(), cluster={"class": "dask_cloudprovider.aws.EC2Cluster", "kwargs": {"n_workers": 4}})
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The cluster apps use when none is given (``%lightnb cluster`` and ``lightnb run --cluster`` set it).
_default_cluster: Any = None

CONNECT_TIMEOUT_SECONDS = 5
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
# The embedded cluster speaks TLS with credentials made for it (no other process can connect to its scheduler
# and run code on its workers); ``LIGHTNB_TLS=0`` turns it off (plain TCP, still on loopback only).
TLS_ENV = "LIGHTNB_TLS"
# Credentials of the clusters this process started, by scheduler address: connecting to one by its address
# from here uses them.
_own_security: dict[str, Any] = {}


class ClusterError(RuntimeError):
    """The cluster could not be reached, created, or cannot run works; the message says what to do."""


def set_default_cluster(cluster: Any) -> None:
    """Use ``cluster`` (anything ``LightningApp(cluster=...)`` takes) for apps created without one."""
    global _default_cluster
    _default_cluster = cluster


def get_default_cluster() -> Any:
    return _default_cluster if _default_cluster is not None else os.environ.get("LIGHTNB_CLUSTER") or None


def embedded_cluster_config() -> dict[str, Any]:
    """Dask settings of the embedded cluster, tuned for an interactive session."""
    return {
        # Training code may start processes of its own (DataLoader workers): workers must not be daemons.
        "distributed.worker.daemon": False,
        # Keep the machine's thread settings (Dask sets OMP/MKL/OPENBLAS threads to 1 by default).
        "distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": 65536},
        # A call runs at most once: a worker dying under it fails the call instead of re-running it.
        "distributed.scheduler.allowed-failures": 0,
        # Works are long-lived and secede from the thread pool: nothing to steal, nothing to profile.
        "distributed.scheduler.work-stealing": False,
        "distributed.worker.profile.enabled": False,
        "distributed.admin.system-monitor.interval": "5s",
        "distributed.admin.tick.interval": "500ms",
        "distributed.scheduler.events-cleanup-delay": "10m",
        # What passes through the scheduler's event log (the fallback route of work batches): keep it short.
        "distributed.admin.low-level-log-length": 64,
        # Worker processes ignore Ctrl-C: the app, not the signal, stops them, in order.
        "distributed.worker.preload": ["lightnb.runtime.preload"],
        # An idle app's client process hosts the scheduler and the nannies: poll less (the default 100 ms
        # memory check of each nanny was most of an idle session's CPU; a worker over its memory limit is
        # still ended, within a second).
        "distributed.worker.memory.monitor-interval": "1s",
        **CLIENT_CONFIG,
    }


def tls_enabled() -> bool:
    """Whether embedded clusters speak TLS (the default; ``LIGHTNB_TLS=0`` for plain TCP)."""
    return os.environ.get(TLS_ENV, "").strip().lower() not in ("0", "off", "no", "false")


# Clients lightnb creates for its embedded clusters: the client's own cache of the scheduler's identity is
# refreshed less often (lightnb asks the scheduler directly when it needs the workers).
CLIENT_CONFIG = {"distributed.client.scheduler-info-interval": "10s"}


def default_local_kwargs() -> dict[str, Any]:
    cores = os.cpu_count() or 1
    return {
        "n_workers": max(1, min(cores, 4)),
        "threads_per_worker": 2,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        # The scheduler serves /health and /metrics even without a dashboard: a free loopback port, so that
        # several apps' clusters never fight over 8787.
        "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
        "silence_logs": logging.ERROR,
    }


@dataclass
class Connection:
    """A connected client, and what lightnb must close when the app ends (only what it created)."""

    client: Any
    cluster: Any = None
    owns_client: bool = False
    owns_cluster: bool = False
    description: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    # An embedded cluster (set up by lightnb: no task retries), which this process may restart workers of.
    embedded: bool = False
    # Called when the app is done with a cluster it shares (the warm cluster: the last app out starts its
    # idle countdown).
    release: Callable[[], None] | None = None

    @property
    def ends_here(self) -> bool:
        """Whether the cluster ends with this process (the embedded or warm one, a ``LocalCluster`` started
        here): nothing of an app on it must outlive this process, so no resumed app will re-attach to it."""
        if self.embedded:
            return True
        from distributed import LocalCluster

        cluster = self.cluster if self.cluster is not None else getattr(self.client, "cluster", None)
        return isinstance(cluster, LocalCluster)

    def close(self) -> None:
        if self.release is not None:
            release, self.release = self.release, None
            release()
        if self.owns_client:
            try:
                self.client.close(timeout=5)
            except Exception:
                pass
        if self.owns_cluster and self.cluster is not None:
            self.cluster.close(timeout=10)


def is_explicit(cluster: Any) -> bool:
    """Whether ``cluster`` names something to connect to first (``app.start()`` fails fast on it)."""
    return cluster is not None and not (isinstance(cluster, Mapping) and "class" not in cluster)


def connect(cluster: Any) -> Connection:
    """Resolve ``cluster`` and return a connected client."""
    from distributed import Client
    from distributed.deploy.cluster import Cluster

    if cluster is None or (isinstance(cluster, Mapping) and "class" not in cluster):
        overrides = dict((cluster or {}).get("kwargs", cluster or {}))
        return _start_embedded(overrides)
    if isinstance(cluster, Client):
        return Connection(cluster, description=f"the Dask cluster at {cluster.scheduler.address}")
    if isinstance(cluster, Cluster):
        client = Client(cluster, set_as_default=False, timeout=CONNECT_TIMEOUT_SECONDS)
        return Connection(client, cluster, owns_client=True,
                          description=f"{type(cluster).__name__} at {cluster.scheduler_address}")
    if isinstance(cluster, (str, os.PathLike)):
        text = os.fspath(cluster)
        if text.endswith(SPEC_SUFFIXES):
            return _start_from_spec(load_spec(text), source=text)
        return _connect_address(text)
    if isinstance(cluster, Mapping):
        return _start_from_spec(cluster, source="the cluster spec")
    raise ClusterError(
        f"cluster={cluster!r} is not something lightnb can use: give None (an embedded LocalCluster), a "
        "scheduler address ('tcp://host:8786'), a distributed.Client or Cluster, a spec dict "
        "{'class': 'module.Class', 'kwargs': {...}}, or the path of a YAML/JSON file holding one."
    )


def start_local_cluster(**overrides: Any) -> Any:
    """A ``LocalCluster`` set up like the embedded one (loopback, tuned for interactive use), for sharing
    among several apps: ``LightningApp(root, cluster=cluster)`` uses it and leaves it running."""
    import dask

    kwargs = {**default_local_kwargs(), **overrides}
    if overrides.get("dashboard_address") is not None and "scheduler_kwargs" not in overrides:
        kwargs["scheduler_kwargs"] = {"dashboard_address": overrides["dashboard_address"]}  # asked: served there
    if tls_enabled() and "security" not in overrides and "protocol" not in overrides:
        from distributed import Security

        # Certificates made for this cluster, held in memory by this process and given to its workers.
        kwargs.update(security=Security.temporary(), protocol="tls://")
    with dask.config.set(embedded_cluster_config()):
        cluster = _embedded_class()(**kwargs)
    if getattr(cluster, "security", None) is not None:
        _own_security[cluster.scheduler_address] = cluster.security
    freeze_long_lived_objects()
    return cluster


@functools.lru_cache(maxsize=1)
def _embedded_class() -> type:
    from distributed import LocalCluster

    class EmbeddedCluster(LocalCluster):
        """A LocalCluster that shows a dashboard link only when it serves a dashboard (the embedded one does
        not by default: its scheduler answers /health and /metrics only, and the link would be a 404).
        Named LocalCluster where users see it (descriptions, reprs)."""

        @property
        def dashboard_link(self) -> str:
            serves = self.scheduler_spec.get("options", {}).get("dashboard")
            return super().dashboard_link if serves else ""

    EmbeddedCluster.__name__ = EmbeddedCluster.__qualname__ = "LocalCluster"
    return EmbeddedCluster


def freeze_long_lived_objects() -> None:
    """Leave what exists now (imported modules, the scheduler and nannies just started) out of Python's full
    garbage collections: each one stops every thread of the process — the app's loop, the client and the
    scheduler — for as long as it scans the whole heap, 65–170 ms here with the in-process scheduler, and
    longer with each app started on the same cluster, which showed as loop lag spikes of later apps. After
    this, a full collection scans only what was created since. Garbage is collected first: only objects
    alive now are frozen (they are still freed when their last reference goes; only a reference cycle among
    them that dies later stays)."""
    import gc

    gc.collect()
    gc.freeze()


def _start_embedded(overrides: dict[str, Any]) -> Connection:
    import dask
    from distributed import Client

    cluster = start_local_cluster(**overrides)
    with dask.config.set(CLIENT_CONFIG):
        client = Client(cluster, set_as_default=False)
    return Connection(client, cluster, owns_client=True, owns_cluster=True, embedded=True,
                      description=f"embedded LocalCluster at {cluster.scheduler_address} "
                                  f"({len(cluster.workers)} worker processes)")


def check_address(address: str) -> str:
    """``address`` with its ``tcp://``; :class:`ClusterError` naming what is wrong with a malformed one."""
    if "://" not in address:
        address = f"tcp://{address}"
    scheme, _, rest = address.partition("://")
    host, colon, port = rest.rpartition(":")
    example = "e.g. tcp://10.0.0.5:8786"
    if not host or not colon:
        raise ClusterError(f"{address} is not a Dask scheduler address: it names no port ({example})")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"{address} is not a Dask scheduler address: its port {port!r} is not a port number "
                           f"({example})")
    return address


def _probe(address: str, timeout: float) -> None:
    """Open a Dask connection to ``address`` and close it, within ``timeout`` seconds in all: something that
    accepts connections but does not speak Dask (an HTTP server, a silent listener) would otherwise keep a
    client waiting for ever. On a thread of its own: the caller's may run an event loop (a kernel's)."""
    import asyncio
    import socket

    from distributed.comm import connect

    scheme, _, rest = address.partition("://")
    if scheme in ("tcp", "tls"):
        host, _, port = rest.rpartition(":")
        # Nothing listening: say so as such (Dask's connect would keep retrying until its timeout).
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    arguments = security_for(address).get_connection_args("client")

    async def attempt() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout, **arguments), timeout)
        await comm.close()

    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            asyncio.run(attempt())
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, name="lightnb-probe", daemon=True)
    thread.start()
    thread.join(timeout + 1)
    error = outcome[0] if outcome else TimeoutError()
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        raise ClusterError(
            f"something at {address} accepted the connection but did not answer as a Dask scheduler within "
            f"{timeout:g} s. Check that the address is the scheduler's port (8786 by default), not a dashboard "
            "or another server's."
        )
    if isinstance(error, OSError):
        raise error
    if error is not None:
        raise ClusterError(f"{address} did not answer as a Dask scheduler: {type(error).__name__}: {error}")


def _connect_address(address: str) -> Connection:
    from distributed import Client

    address = check_address(address)
    try:
        _probe(address, CONNECT_TIMEOUT_SECONDS)
        client = Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT_SECONDS,
                        security=security_for(address))
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"could not reach a Dask scheduler at {address} within {CONNECT_TIMEOUT_SECONDS} s ({error}). "
            "Check the address and that `dask scheduler` runs there, or leave cluster unset for an embedded "
            "LocalCluster."
        ) from None
    return Connection(client, owns_client=True, description=f"the Dask cluster at {address}")


def security_for(address: str) -> Any:
    """The credentials to reach ``address``: those of a cluster this process started there, else Dask's
    configuration (``distributed.comm.tls.*``, e.g. ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE``)."""
    from distributed import Security

    return _own_security.get(address) or Security()


def load_spec(path: str) -> Mapping[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ClusterError(f"cluster spec file {path} does not exist")
    try:
        if file.suffix == ".json":
            spec = json.loads(file.read_text())
        else:
            import yaml

            spec = yaml.safe_load(file.read_text())
    except Exception as error:
        where = getattr(error, "problem_mark", None)  # YAML: where in the file
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        reason = getattr(error, "problem", None) or str(error)
        raise ClusterError(f"cluster spec file {path} cannot be read{at}: {reason}") from None
    if not isinstance(spec, Mapping):
        raise ClusterError(f"cluster spec file {path} must hold a mapping with 'class' and 'kwargs'")
    return spec


def check_cluster(cluster: Any) -> None:
    """Raise ``ClusterError`` now for a spec that cannot work (no such file, bad keys, a class whose package
    is not installed), before anything else runs; addresses are checked when the app connects."""
    if isinstance(cluster, (str, os.PathLike)) and os.fspath(cluster).endswith(SPEC_SUFFIXES):
        spec_class(load_spec(os.fspath(cluster)), os.fspath(cluster))
    elif isinstance(cluster, str) and cluster != "in-process":
        check_address(cluster)
    elif isinstance(cluster, Mapping) and "class" in cluster:
        spec_class(cluster, "the cluster spec")


def spec_class(spec: Mapping[str, Any], source: str) -> tuple[type, dict[str, Any]]:
    """The cluster class a spec names (imported) and its keyword arguments."""
    unknown = set(spec) - {"class", "kwargs"}
    if unknown or "class" not in spec:
        raise ClusterError(f"{source} must have the keys 'class' and optionally 'kwargs' "
                           f"(got {sorted(spec)})")
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ClusterError(f"{source}: 'kwargs' must be a mapping of keyword arguments, not {kwargs!r}")
    return import_cluster_class(str(spec["class"]), source), dict(kwargs)


def _start_from_spec(spec: Mapping[str, Any], source: str) -> Connection:
    from distributed import Client

    cls, kwargs = spec_class(spec, source)
    try:
        cluster = cls(**kwargs)
    except Exception as error:
        raise ClusterError(f"{source}: {spec['class']}(**{kwargs!r}) failed: {type(error).__name__}: "
                           f"{error}") from None
    client = Client(cluster, set_as_default=False)
    return Connection(client, cluster, owns_client=True, owns_cluster=True,
                      description=f"{spec['class']} at {cluster.scheduler_address}")


def import_cluster_class(dotted: str, source: str = "the cluster spec") -> type:
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name:
        raise ClusterError(f"{source}: 'class' must be a dotted path such as distributed.LocalCluster, "
                           f"not {dotted!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        package = (error.name or module_name).split(".")[0]
        hint = "pip install dask-cloudprovider[all]" if package == "dask_cloudprovider" else \
            f"pip install {package.replace('_', '-')}"
        raise ClusterError(f"{source} names {dotted}, but the package {package!r} is not installed "
                           f"({hint})") from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ClusterError(f"{source}: module {module_name} has no class {class_name!r}") from None
