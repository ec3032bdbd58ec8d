"""TensorBoardWork on a real cluster: the runs TrainerWork wrote, served by a real TensorBoard process."""

from __future__ import annotations

import socket

import httpx

from lightnb import LightningApp, LightningFlow
from lightnb.components import TensorBoardWork

from .conftest import wait_for


class Board(LightningFlow):
    def __init__(self, logdir):
        super().__init__()
        self.tensorboard = TensorBoardWork(logdir, reload_interval=1)

    def run(self):
        self.tensorboard.run()


def test_tensorboard_shows_the_runs_the_trainer_wrote_and_ends_with_the_app(cluster, checkpoints,
                                                                         worker_processes):
    flow = Board(checkpoints["root_dir"])
    app = LightningApp(flow, cluster=cluster)
    app.start()
    try:
        url = wait_for(lambda: flow.tensorboard.url, timeout=180, what="TensorBoard's url")
        assert url.endswith("/")  # relative asset URLs need the trailing slash (also behind a proxy)
        runs = wait_for(lambda: httpx.get(url + "data/runs", timeout=30).json(), what="the runs")
        assert sorted(runs) == ["version_0", "version_1"]
        tags = wait_for(lambda: httpx.get(url + "data/plugin/scalars/tags", timeout=30).json().get("version_0"),
                        what="the logged scalars")
        assert "val_loss" in tags
        assert worker_processes.started()  # TensorBoard runs in a process of its own
    finally:
        app.stop()
    assert flow.tensorboard.has_stopped and flow.tensorboard.url is None
    worker_processes.assert_none_left()


class Taken(LightningFlow):
    def __init__(self, board):
        super().__init__()
        self.tensorboard = board

    def run(self):
        self.tensorboard.run()


def test_a_port_in_use_fails_the_work_naming_the_port(cluster, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        board = TensorBoardWork(tmp_path, port=port, raise_exception=False)
        app = LightningApp(Taken(board), cluster=cluster)
        app.start()
        try:
            wait_for(lambda: board.has_failed, timeout=120, what="the work to fail")
        finally:
            app.stop()
    assert str(port) in board.status.message
