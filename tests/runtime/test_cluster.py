"""Which Dask cluster an app uses (lightnb.runtime.cluster): what connecting does and what a user is told when
it cannot — on real clusters (worker processes), no mocks."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import time

import pytest
from distributed import Client

from lightnb.runtime.cluster import (
    ClusterError,
    check_cluster,
    connect,
    get_default_cluster,
    set_default_cluster,
)


def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- what a user is told ------------------------------------------------------------------------------------
def test_an_address_with_no_scheduler_fails_naming_the_address_and_what_to_do():
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(ClusterError) as error:
        connect(f"127.0.0.1:{port}")  # no scheme: tcp:// is assumed
    message = str(error.value)
    assert f"could not reach a Dask scheduler at tcp://127.0.0.1:{port} within 5 s" in message
    assert "dask scheduler" in message
    assert time.monotonic() - started < 30, "a wrong address must fail, not hang"


@pytest.mark.parametrize(("address", "expected"), [
    ("tcp://127.0.0.1:notaport", "its port 'notaport' is not a port number (e.g. tcp://10.0.0.5:8786)"),
    ("tcp://127.0.0.1:99999", "its port '99999' is not a port number"),
    ("tcp://scheduler-host", "it names no port"),
])
def test_a_malformed_address_is_named_with_what_is_wrong(address, expected):
    with pytest.raises(ClusterError) as error:
        connect(address)
    assert str(error.value).startswith(f"{address} is not a Dask scheduler address: {expected}")
    with pytest.raises(ClusterError, match="is not a Dask scheduler address"):
        check_cluster(address)  # `lightnb run --cluster` says it before loading the app


class Listener:
    """Something on a loopback port that accepts connections and answers like ``reply`` (or never)."""

    def __init__(self, reply: bytes | None) -> None:
        import threading

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.address = f"tcp://127.0.0.1:{self.socket.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self.reply = reply
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(connection)
            if self.reply is not None:
                connection.recv(65536)
                connection.sendall(self.reply)
                connection.close()

    def close(self) -> None:
        self.socket.close()
        for connection in self.accepted:
            connection.close()


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"],
                         ids=["silent listener", "http server"])
def test_something_that_accepts_but_does_not_speak_dask_fails_within_seconds(reply):
    listener = Listener(reply)
    started = time.monotonic()
    try:
        with pytest.raises(ClusterError) as error:
            connect(listener.address)
    finally:
        listener.close()
    assert time.monotonic() - started < 10, "it must fail within the connect timeout, not hang"
    assert listener.address in str(error.value)
    assert "Dask scheduler" in str(error.value)


def test_a_yaml_spec_with_a_syntax_error_names_the_file_and_the_line(tmp_path):
    spec = tmp_path / "cluster.yaml"
    spec.write_text("class: distributed.LocalCluster\nkwargs: {n_workers: 2\n")
    with pytest.raises(ClusterError) as error:
        check_cluster(str(spec))
    message = str(error.value)
    assert message.startswith(f"cluster spec file {spec} cannot be read (line 3, column 1)")
    assert "<unicode string>" not in message


def test_something_that_is_not_a_cluster_is_refused_with_the_accepted_forms():
    with pytest.raises(ClusterError) as error:
        connect(42)
    message = str(error.value)
    assert message.startswith("cluster=42 is not something lightnb can use")
    for form in ("embedded LocalCluster", "tcp://host:8786", "distributed.Client", "'class'", "YAML/JSON"):
        assert form in message


def test_a_spec_file_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "cluster.yaml"
    with pytest.raises(ClusterError, match=f"cluster spec file {missing} does not exist"):
        connect(str(missing))
    # check_cluster says it before the app starts anything.
    with pytest.raises(ClusterError, match="does not exist"):
        check_cluster(missing)


def test_a_spec_file_that_is_not_a_mapping_or_not_yaml_is_refused(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- distributed.LocalCluster\n")
    with pytest.raises(ClusterError, match=r"must hold a mapping with 'class' and 'kwargs'"):
        check_cluster(str(listed))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ClusterError, match=rf"cluster spec file {broken} cannot be read"):
        check_cluster(str(broken))


@pytest.mark.parametrize(("spec", "expected"), [
    ({"class": "distributed.LocalCluster", "workers": 2},
     r"must have the keys 'class' and optionally 'kwargs' \(got \['class', 'workers'\]\)"),
    ({"class": "distributed.LocalCluster", "kwargs": [1]}, r"'kwargs' must be a mapping"),
    ({"class": "LocalCluster"}, r"'class' must be a dotted path such as distributed.LocalCluster"),
    ({"class": "dask_cloudprovider.aws.EC2Cluster"},
     r"names dask_cloudprovider.aws.EC2Cluster, but the package 'dask_cloudprovider' is not installed "
     r"\(pip install dask-cloudprovider\[all\]\)"),
    ({"class": "lightnb_no_such_package.Cluster"}, r"pip install lightnb-no-such-package"),
    ({"class": "distributed.NoSuchCluster"}, r"module distributed has no class 'NoSuchCluster'"),
])
def test_a_spec_that_cannot_work_is_refused_before_anything_starts(spec, expected):
    with pytest.raises(ClusterError, match=expected):
        check_cluster(spec)
    with pytest.raises(ClusterError, match=expected):
        connect(spec)


def test_a_cluster_class_that_fails_to_start_reports_its_error(tmp_path):
    spec = tmp_path / "cluster.json"
    spec.write_text(json.dumps({"class": "distributed.LocalCluster", "kwargs": {"n_workers": "many"}}))
    with pytest.raises(ClusterError) as error:
        connect(str(spec))
    assert str(error.value).startswith(f"{spec}: distributed.LocalCluster(**{{'n_workers': 'many'}}) failed: ")


# -- connecting -----------------------------------------------------------------------------------------------
def test_a_spec_file_starts_that_cluster_and_the_app_closes_it(tmp_path):
    spec = tmp_path / "cluster.json"
    spec.write_text(json.dumps({"class": "distributed.LocalCluster",
                                "kwargs": {"n_workers": 1, "processes": False,
                                           "dashboard_address": "127.0.0.1:0"}}))
    connection = connect(str(spec))
    try:
        assert connection.description.startswith("distributed.LocalCluster at ")
        assert connection.client.submit(sum, [1, 2]).result(timeout=30) == 3
    finally:
        connection.close()
    assert connection.cluster.status.name == "closed"


def test_an_address_and_a_cluster_object_given_by_the_user_are_left_running(cluster):
    for given in (cluster.scheduler_address, cluster.scheduler_address.removeprefix("tcp://"), cluster):
        connection = connect(given)
        assert connection.client.submit(sum, [2, 3]).result(timeout=30) == 5
        connection.close()
        assert cluster.status.name == "running"
    connection = connect(cluster.scheduler_address.removeprefix("tcp://"))
    connection.close()
    assert connection.description == f"the Dask cluster at {cluster.scheduler_address}"


def test_a_client_given_by_the_user_is_used_and_never_closed(cluster):
    with Client(cluster, set_as_default=False) as client:
        connection = connect(client)
        connection.close()
        assert client.status == "running"
        assert client.submit(sum, [1, 1]).result(timeout=30) == 2


def test_apps_without_a_cluster_use_the_default_one_then_the_environment(monkeypatch):
    monkeypatch.setenv("LIGHTNB_CLUSTER", "tcp://10.0.0.5:8786")
    set_default_cluster(None)
    assert get_default_cluster() == "tcp://10.0.0.5:8786"
    set_default_cluster("in-process")
    try:
        assert get_default_cluster() == "in-process"
    finally:
        set_default_cluster(None)
    monkeypatch.delenv("LIGHTNB_CLUSTER")
    assert get_default_cluster() is None


# -- the embedded cluster's settings, seen from its workers -------------------------------------------------
def _child_exit_code():
    """Start a process from the worker, as a DataLoader with num_workers > 0 does."""
    child = multiprocessing.get_context("spawn").Process(target=os.getpid)
    child.start()
    child.join(60)
    return child.exitcode


def test_the_shared_local_cluster_listens_on_loopback_only_and_runs_worker_processes(cluster):
    with Client(cluster, set_as_default=False) as client:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(address.startswith("tls://127.0.0.1:") for address in workers)
        pids = client.run(os.getpid)
        assert os.getpid() not in pids.values()
        assert len(set(pids.values())) == 2


def test_work_code_on_the_embedded_cluster_may_start_processes_and_ignores_ctrl_c(cluster):
    with Client(cluster, set_as_default=False) as client:
        # Daemonic workers could not start children ("daemonic processes are not allowed to have children").
        assert set(client.run(_child_exit_code).values()) == {0}
        # Ctrl-C in the terminal reaches the whole process group: the app stops works, not the signal.
        assert set(client.run(signal.getsignal, signal.SIGINT).values()) == {signal.SIG_IGN}


# -- only this process can use the embedded cluster ----------------------------------------------------------
def _outside_client(address: str) -> str:
    """What a client in another process, without the cluster's credentials, gets (within a timeout)."""
    import subprocess
    import sys

    code = ("import sys\nfrom distributed import Client\n"
            "try:\n    Client(sys.argv[1], timeout=5)\nexcept Exception as error:\n"
            "    print('refused', type(error).__name__)\nelse:\n    print('CONNECTED')\n")
    run = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, timeout=60)
    return run.stdout.strip()


def test_the_embedded_cluster_refuses_clients_without_its_credentials_and_shows_no_dead_dashboard_link():
    connection = connect({"n_workers": 1})
    try:
        address = connection.cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        assert connection.client.submit(sum, [1, 2]).result(timeout=30) == 3
        started = time.monotonic()
        for attempt in (address, address.replace("tls://", "tcp://")):
            assert _outside_client(attempt).startswith("refused"), attempt
        assert time.monotonic() - started < 50
        # The app's own process may connect by address (it holds the credentials).
        again = connect(address)
        assert again.client.submit(sum, [2, 2]).result(timeout=30) == 4
        again.close()
        # No dashboard is served: no link to a 404 page (client.dashboard_link, the notebook repr's).
        assert connection.client.dashboard_link == "" and connection.cluster.dashboard_link == ""
        assert "/status" not in connection.cluster._repr_html_().split("Workers")[0]
    finally:
        connection.close()


def test_tls_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("LIGHTNB_TLS", "0")
    connection = connect({"n_workers": 1})
    try:
        assert connection.cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert _outside_client(connection.cluster.scheduler_address) == "CONNECTED"
    finally:
        connection.close()


# -- a cluster the user starts with TLS (the recipe of docs/clusters.md) ---------------------------------------
def _start_tls_cluster(directory, ca, cert, key):
    import subprocess
    import sys

    from script_apps import env

    tls = ["--tls-ca-file", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]
    scheduler_file = directory / "scheduler.json"
    processes = [subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--protocol", "tls", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file), *tls], cwd=directory, env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() or not scheduler_file.read_text().strip().endswith("}"):
        assert time.monotonic() < deadline, "dask scheduler did not start"
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "dask", "worker", address, "--no-nanny", "--nthreads", "2", "--host", "127.0.0.1",
         "--no-dashboard", *tls], cwd=directory, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return address, processes


def test_a_cluster_started_with_tls_runs_apps_given_its_credentials_and_refuses_others(tmp_path):
    import subprocess

    import dask
    from distributed import Security

    from lightnb import LightningApp, LightningFlow, LightningWork

    class Answer(LightningWork):
        def __init__(self):
            super().__init__()
            self.answer = 0

        def run(self):
            self.answer = 42

    class AnswerRoot(LightningFlow):
        def __init__(self):
            super().__init__()
            self.work = Answer()

        def run(self):
            self.work.run()
            if self.work.has_succeeded:
                self.stop()

    credentials = Security.temporary()  # one self-signed certificate: CA, certificate and key files
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.write_text(credentials.tls_ca_file)
    cert.write_text(credentials.tls_client_cert)
    key.write_text(credentials.tls_client_key)
    address, processes = _start_tls_cluster(tmp_path, ca, cert, key)
    try:
        assert address.startswith("tls://127.0.0.1:")
        security = Security(tls_ca_file=str(ca), tls_client_cert=str(cert), tls_client_key=str(key),
                            require_encryption=True)
        with Client(address, security=security, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=90)
            # A Client holding the credentials, given to the app.
            app = LightningApp(AnswerRoot(), cluster=client)
            app.start()
            app.wait(120)
            assert app.root.work.answer == 42
        # The address alone, with the credentials in Dask's configuration (as DASK_DISTRIBUTED__COMM__TLS__*).
        with dask.config.set({"distributed.comm.tls.ca-file": str(ca), "distributed.comm.tls.client.cert": str(cert),
                              "distributed.comm.tls.client.key": str(key)}):
            app = LightningApp(AnswerRoot(), cluster=address)
            app.start()
            app.wait(120)
            assert app.root.work.answer == 42
        assert _outside_client(address).startswith("refused")
        assert _outside_client(address.replace("tls://", "tcp://")).startswith("refused")
    finally:
        for process in reversed(processes):  # the worker first
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_a_dashboard_asked_for_is_served_where_it_is_linked():
    import urllib.request

    pytest.importorskip("bokeh")
    connection = connect({"n_workers": 1, "dashboard_address": "127.0.0.1:0"})
    try:
        link = connection.client.dashboard_link
        assert link.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(link, timeout=30) as page:
            assert page.status == 200
    finally:
        connection.close()
