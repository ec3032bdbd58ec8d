"""A Dask cluster started apart from lightnb, as a user would: `dask scheduler` and two `dask worker`
processes on loopback, in a folder of the test's own (their logs are there)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from script_apps import env


class RemoteCluster:
    def __init__(self, directory: Path) -> None:
        scheduler_file = directory / "scheduler.json"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(scheduler_file)], directory, "scheduler")
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written in one go, but be sure it is complete
        self.address = json.loads(scheduler_file.read_text())["address"]
        self.workers = [
            self._start(["worker", self.address, "--no-nanny", "--nthreads", "2", "--host", "127.0.0.1",
                         "--no-dashboard"], directory, f"worker{i}")
            for i in range(2)
        ]
        assert len(self.connected_workers(wait_for=2)) == 2

    def _start(self, args: list[str], directory: Path, name: str) -> subprocess.Popen[bytes]:
        log = open(directory / f"{name}.log", "wb")  # noqa: SIM115 - kept open while the process runs
        process = subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=directory, env=env(),
                                   stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def connected_workers(self, wait_for: int = 0) -> dict[str, Any]:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            if wait_for:
                client.wait_for_workers(wait_for, timeout=90)
            return client.scheduler_info(n_workers=-1)["workers"]

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
