"""Hosts made of Linux network namespaces: a bridge with a private /24, one namespace per host (each its own
veth pair, loopback and address), a Dask scheduler in one, workers in others, the test (the client) in the
root namespace at the bridge's address. The hosts share no disk that anything relies on: each worker has its
own local directory, and the client's folder is hidden from the other hosts by a tmpfs mounted over it in
their mount namespace (``ip netns exec`` gives each command one of its own).

A link cut is ``ip link set <bridge-side veth> down``: the host's packets are dropped silently, as when a cable
or a switch port goes, and its TCP connections hang rather than fail.

Everything made here is removed by :meth:`Hosts.close` (processes, namespaces, veths, bridge), which the
fixture calls even when a test fails.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from script_apps import REPO

PYTHON_BIN = Path(sys.executable).parent


class NamespacesUnavailable(RuntimeError):
    """This machine does not let the test create network namespaces (no privileges, no `ip`)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can (tries one and removes it)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    name = f"lnbprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=30)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip() or made.returncode} (needs root or CAP_NET_ADMIN)"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
    return None


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    bridge_port: str  # the veth end on the bridge, in the root namespace: set it down to cut the host off
    inside: str  # the veth end in the namespace
    directory: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cut(self) -> None:
        _ip("link", "set", self.bridge_port, "down")

    def restore(self) -> None:
        _ip("link", "set", self.bridge_port, "up")


class Hosts:
    """A bridge ``lnbbr<suffix>`` on 10.213.N.0/24 (N random) with the root namespace at .1, and hosts at
    .2, .3, ... — see the module docstring."""

    def __init__(self, base: Path, hidden: Path) -> None:
        self.suffix = uuid.uuid4().hex[:5]
        self.bridge = f"lnbbr{self.suffix}"
        self.subnet = random.randrange(1, 250)
        self.gateway = f"10.213.{self.subnet}.1"
        self.base = base
        self.hidden = hidden  # the client's folder: no other host sees it
        self.hosts: dict[str, Host] = {}
        self.environment: dict[str, str] = {}
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            _ip("link", "delete", self.bridge, check=False)
            raise

    def add(self, name: str) -> Host:
        index = len(self.hosts) + 2
        host = Host(name, f"lnb{self.suffix}-{name}", f"10.213.{self.subnet}.{index}",
                    f"lnbv{self.suffix}{index}", f"lnbp{self.suffix}{index}", self.base / name)
        host.directory.mkdir(parents=True, exist_ok=True)
        self.hosts[name] = host
        _ip("netns", "add", host.namespace)
        _ip("link", "add", host.bridge_port, "type", "veth", "peer", "name", host.inside)
        _ip("link", "set", host.inside, "netns", host.namespace)
        _ip("link", "set", host.bridge_port, "master", self.bridge, "up")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", host.inside)
        _ip("-n", host.namespace, "link", "set", host.inside, "up")
        _ip("-n", host.namespace, "link", "set", "lo", "up")
        return host

    def spawn(self, host: Host, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        """Run ``args`` on ``host``: in its network namespace, in its folder, the client's folder hidden."""
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DASK_", "LIGHTNB_"))},
               **self.environment,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               "PYTHONUNBUFFERED": "1"}
        self.hidden.mkdir(parents=True, exist_ok=True)
        command = ("mount -t tmpfs lnbhidden \"$LNB_HIDDEN\" && cd \"$LNB_HOME\" && exec \"$@\"")
        env.update(LNB_HIDDEN=str(self.hidden), LNB_HOME=str(host.directory))
        log = open(host.directory / f"{log_name}.log", "ab")  # noqa: SIM115 - kept open while it runs
        process = subprocess.Popen(["ip", "netns", "exec", host.namespace, "sh", "-c", command, "sh", *args],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        host.processes.append(process)
        return process

    def dask(self, host: Host, args: list[str], log_name: str, env: dict[str, str] | None = None,
             ) -> subprocess.Popen[bytes]:
        saved = self.environment
        self.environment = {**saved, **(env or {})}
        try:
            return self.spawn(host, [str(PYTHON_BIN / "dask"), *args], log_name)
        finally:
            self.environment = saved

    def log(self, host: Host, log_name: str) -> str:
        path = host.directory / f"{log_name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for host in self.hosts.values():
            if _link_exists(host.bridge_port):
                host.restore()
            for process in host.processes:
                _end(process)
            # Anything else still in the namespace (a process a work started).
            pids = _ip("netns", "pids", host.namespace, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "delete", host.namespace, check=False)  # its veth end goes with it, and the pair
            if _link_exists(host.bridge_port):
                _ip("link", "delete", host.bridge_port, check=False)
        _ip("link", "delete", self.bridge, check=False)


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):  # noqa: ANN001, ANN201
    """Poll ``predicate`` until it returns something true (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(interval)
