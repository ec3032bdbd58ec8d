"""TensorBoardWork on a real cluster: the runs TrainerWork wrote, served by a real TensorBoard process."""

from __future__ import annotations

import socket

import httpx
from components_models import NoisyLine, Regressor
from components_support import RunWork, wait_for

from lightnb import Drive, LightningApp, LightningFlow
from lightnb.components import TensorBoardWork, TrainerWork


def test_tensorboard_shows_the_runs_the_trainer_wrote_and_ends_with_the_app(cluster, checkpoints,
                                                                         worker_processes):
    flow = RunWork(TensorBoardWork(checkpoints["root_dir"], reload_interval=1))
    app = LightningApp(flow, cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: flow.work.url, timeout=180, what="TensorBoard's url")
        assert url.endswith("/")  # relative asset URLs need the trailing slash (also behind a proxy)
        runs = wait_for(lambda: httpx.get(url + "data/runs", timeout=30).json(), what="the runs")
        assert sorted(runs) == ["trainer/version_0", "trainer/version_1"]
        tags = wait_for(lambda: httpx.get(url + "data/plugin/scalars/tags", timeout=30).json()
                        .get("trainer/version_0"),
                        what="the logged scalars")
        assert "val_loss" in tags
        assert worker_processes.started()  # TensorBoard runs in a process of its own
    finally:
        app.stop()
    assert flow.work.has_stopped and flow.work.url is None
    worker_processes.assert_none_left()


def test_a_port_in_use_fails_the_work_naming_the_port(cluster, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        board = TensorBoardWork(tmp_path, port=port, raise_exception=False)
        app = LightningApp(RunWork(board), cluster=cluster)
        app.start()
        try:
            wait_for(lambda: board.has_failed, timeout=120, what="the work to fail")
        finally:
            app.stop()
    assert str(port) in board.status.message


class TrainIntoDrive(LightningFlow):
    def __init__(self, root_dir, drive):
        super().__init__()
        self.trainer = TrainerWork(Regressor, NoisyLine, max_epochs=2, root_dir=root_dir, drive=drive)
        self.board = TensorBoardWork(drive, reload_interval=1)
        self.show = False

    def run(self):
        self.trainer.run()
        if self.show:
            self.board.run()


def test_tensorboard_follows_the_runs_a_trainer_put_in_a_drive(cluster, tmp_path, worker_processes):
    import shutil

    flow = TrainIntoDrive(tmp_path / "runs", Drive("lit://runs"))
    app = LightningApp(flow, cluster=cluster, storage=str(tmp_path / "storage"))
    app.start()
    try:
        wait_for(lambda: flow.trainer.has_succeeded, timeout=300, what="the training")
        shutil.rmtree(tmp_path / "runs")  # TensorBoard must find the run in the drive, not on this disk
        flow.show = True
        url = wait_for(lambda: flow.board.url, timeout=180, what="TensorBoard's url")
        runs = wait_for(lambda: httpx.get(url + "data/runs", timeout=30).json(), what="the run from the drive")
        assert runs == ["trainer/version_0"]
        tags = wait_for(lambda: httpx.get(url + "data/plugin/scalars/tags", timeout=30).json()
                        .get("trainer/version_0"), what="the logged scalars")
        assert "val_loss" in tags
        # The whole run is in the drive, its checkpoints too.
        assert "trainer/version_0/checkpoints" in flow.trainer.drive.list("trainer/version_0")
    finally:
        app.stop()
    worker_processes.assert_none_left()


def test_tensorboard_pages_ask_for_their_fonts_relative_to_the_page():
    """Behind a proxy the server's root is another server's: the font URLs in HTML and CSS become relative,
    with a Content-Length to match; other responses pass through untouched."""
    from lightnb.components._tensorboard_main import fonts_relative

    def board(environ, start_response):
        body = {"/": b"<style>src: url(/font-roboto/a.woff2)</style>", "/x.js": b"url(/font-roboto/b)"}[
            environ["PATH_INFO"]]
        kind = "text/html; charset=utf-8" if environ["PATH_INFO"] == "/" else "application/javascript"
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]

    def get(path):
        seen = {}
        body = b"".join(fonts_relative(board)({"PATH_INFO": path},
                                              lambda status, headers, exc_info=None: seen.update(headers)))
        return body, seen

    page, headers = get("/")
    assert page == b"<style>src: url(font-roboto/a.woff2)</style>"
    assert headers["Content-Length"] == str(len(page))
    script, _ = get("/x.js")
    assert script == b"url(/font-roboto/b)"
