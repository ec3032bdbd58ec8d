"""Served works through a real Jupyter server's jupyter-server-proxy, as the notebook's iframes reach them:
``{base_url}proxy/{port}/`` with the prefix stripped (JupyterHub / Binder put a base URL in front)."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from components_models import Deploy, Regressor
from components_support import gradio_predict, wait_for

from lightnb import LightningApp, LightningFlow
from lightnb.components import ModelServer, TensorBoardWork
from lightnb.components._serving import free_port

TOKEN = "lightnb-test-token"
BASE_URL = "/user/tester/"


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A Jupyter server with jupyter-server-proxy on loopback, under a JupyterHub-like base URL."""
    port = free_port()
    folder = tmp_path_factory.mktemp("jupyter")
    log = folder / "server.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.base_url={BASE_URL}",
             f"--ServerApp.root_dir={folder}"],
            stdout=output, stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}{BASE_URL}"
    try:
        wait_for(lambda: _answers(root + "api/status") or server.poll() is not None, timeout=60,
                 what="the Jupyter server")
        assert server.poll() is None, f"the Jupyter server exited:\n{log.read_text()[-3000:]}"
        yield root
    finally:
        server.terminate()
        server.wait(15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, headers={"Authorization": f"token {TOKEN}"}, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


class Servers(LightningFlow):
    def __init__(self, logdir, checkpoint):
        super().__init__()
        self.tensorboard = TensorBoardWork(logdir, reload_interval=1)
        self.gradio = Deploy(checkpoint, module_class=Regressor)
        self.api = ModelServer(checkpoint, module_class=Regressor)

    def run(self):
        self.tensorboard.run()
        self.gradio.run()
        self.api.run()


@pytest.fixture(scope="module")
def servers(cluster, checkpoints, tmp_path_factory):
    flow = Servers(checkpoints["root_dir"], checkpoints["up"])
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path_factory.mktemp("storage")))
    app.start()
    try:
        wait_for(lambda: all(w.url for w in (flow.tensorboard, flow.gradio, flow.api)), timeout=300,
                 what="the three servers")
        yield flow
    finally:
        app.stop()


def proxied(jupyter: str, port: int) -> httpx.Client:
    return httpx.Client(base_url=f"{jupyter}proxy/{port}/", headers={"Authorization": f"token {TOKEN}"},
                        timeout=30)


def test_tensorboard_works_through_the_proxy(jupyter, servers):
    with proxied(jupyter, servers.tensorboard.port) as http:
        page = http.get("")
        assert page.status_code == 200
        # Its assets are relative: with the trailing slash they resolve under the proxy path.
        assets = re.findall(r'<script src="([^"]+)"', page.text)
        assert assets and not any(asset.startswith("/") for asset in assets)
        assert http.get(assets[0]).status_code == 200
        runs = wait_for(lambda: http.get("data/runs").json(), what="the runs through the proxy")
        assert "trainer/version_0" in runs


def test_gradio_links_follow_the_proxy_and_it_still_answers_directly(jupyter, servers):
    port = servers.gradio.port
    with proxied(jupyter, port) as http:
        config = http.get("config").json()
        # The page's API calls go back through the proxy, under the hub's base URL.
        assert config["root"] == f"{jupyter}proxy/{port}"
        assert http.get("").status_code == 200
    prediction = gradio_predict(f"{jupyter}proxy/{port}/", 0.5, headers={"Authorization": f"token {TOKEN}"})
    assert abs(prediction - 2.0) < 0.5
    # Reached directly, the same server speaks of its direct address.
    direct = httpx.get(servers.gradio.url + "config", timeout=30).json()
    assert direct["root"] == servers.gradio.url.rstrip("/")
    assert abs(gradio_predict(servers.gradio.url, 0.5) - 2.0) < 0.5


def test_the_rest_api_and_its_docs_work_through_the_proxy(jupyter, servers):
    port = servers.api.port
    with proxied(jupyter, port) as http:
        answer = http.post("predict", json={"inputs": [[0.5]]})
        assert answer.status_code == 200 and abs(answer.json()["outputs"][0][0] - 2.0) < 0.5
        docs = http.get("docs").text
        assert f"{BASE_URL}proxy/{port}/openapi.json" in docs  # the docs page loads its schema via the proxy
        assert http.get("openapi.json").status_code == 200


def test_servers_bind_loopback_only(servers):
    import socket

    import psutil

    listening = {c.laddr.port: c.laddr.ip for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
    for work in (servers.tensorboard, servers.gradio, servers.api):
        assert work.url == f"http://127.0.0.1:{work.port}/"
        assert listening.get(work.port) == "127.0.0.1", f"{work.name} listens on {listening.get(work.port)}"
    outside = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
               if a.family == socket.AF_INET and not a.address.startswith("127.")]
    if not outside:
        pytest.skip("this machine has no address other than loopback to connect from")
    for work in (servers.tensorboard, servers.gradio, servers.api):
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((outside[0], work.port)) != 0, f"{work.name} answers on {outside[0]}"
