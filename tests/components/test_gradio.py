"""ServeGradio on a real cluster: a Lightning checkpoint behind a Gradio interface, its HTTP API, a redeploy."""

from __future__ import annotations

import httpx
from components_models import Deploy, Regressor
from components_support import RunWork, gradio_predict, wait_for

from lightnb import LightningApp
from lightnb.components import ServeGradio


def test_gradio_serves_a_checkpoint_and_redeploys_another_without_restarting(cluster, checkpoints,
                                                                            worker_processes):
    server = Deploy(checkpoints["up"], module_class=Regressor)
    app = LightningApp(RunWork(server), cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: server.url, timeout=180, what="the Gradio url")
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "y = f(x)" in page.text
        assert abs(gradio_predict(url, 0.5) - 2.0) < 0.5
        assert server.model_version == 1 and server.loaded_checkpoint == checkpoints["up"]

        server.checkpoint = checkpoints["down"]  # what the flow does after a new training
        wait_for(lambda: server.model_version == 2, what="the new model")
        assert server.url == url and server.is_running  # the same server, the new model
        assert abs(gradio_predict(url, 0.5) - 0.0) < 0.5
    finally:
        app.stop()
    assert server.has_stopped and server.url is None
    try:
        httpx.get(url, timeout=2)
        raise AssertionError("Gradio still answers after the app stopped")
    except httpx.TransportError:
        pass
    worker_processes.assert_none_left()


class Broken(ServeGradio):
    inputs = "number"
    outputs = "number"

    def build_model(self):
        raise RuntimeError("the model could not be built")

    def predict(self, x):
        return x


def test_a_model_that_cannot_be_built_fails_the_work_with_the_reason(cluster):
    server = Broken(raise_exception=False)
    app = LightningApp(RunWork(server), cluster=cluster)
    app.start()
    try:
        wait_for(lambda: server.has_failed, what="the work to fail")
        assert "the model could not be built" in server.status.message
        assert server.url is None
    finally:
        app.stop()


def test_components_set_as_class_attributes_of_a_helper_module_class_serve(cluster):
    # The class travels by value with its Textboxes, made (and numbered by Gradio) in this process; building
    # the interface on the worker once failed with "A block with id: 1 has already been rendered".
    from components_gradio import Shout

    server = Shout()
    app = LightningApp(RunWork(server), cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: server.url or (server.has_failed and server.status.message), timeout=180,
                       what="the Gradio url")
        assert not server.has_failed, server.status.message
        assert gradio_predict(url, "hello") == "HELLO"
    finally:
        app.stop()
