"""TensorBoard through the notebook server's proxy in a real headless Chromium, against a real JupyterLab
(with jupyter-server-proxy) and a TensorBoardWork on a real Dask cluster (ui-tests/tensorboard.e2e.mjs)."""

from __future__ import annotations

import time

from e2e import run_e2e

from lightnb import LightningApp, LightningFlow
from lightnb.components import TensorBoardWork

class ShowBoard(LightningFlow):
    def __init__(self, logdir: str) -> None:
        super().__init__()
        self.board = TensorBoardWork(logdir, reload_interval=1)

    def run(self) -> None:
        self.board.run()


def test_tensorboard_through_the_proxy_loads_with_no_404(jupyter_lab, cluster, tmp_path) -> None:
    """TensorBoard's page asks for its fonts at the server's root (``url(/font-roboto/...)``); through
    ``{base_url}proxy/{port}/`` that is the notebook server's root, which answers 404. The work serves
    them relative to the page: every response is found, and the fonts come through the proxy."""
    flow = ShowBoard(str(tmp_path / "runs"))
    app = LightningApp(flow, cluster=cluster)
    app.start()
    try:
        deadline = time.monotonic() + 180
        while not flow.board.url:
            assert app.stage == "running" and time.monotonic() < deadline, \
                f"TensorBoard did not serve ({app.stage}): {flow.board.status}"
            time.sleep(0.2)
        port = str(flow.board.url.rstrip("/").rsplit(":", 1)[1])
        result = run_e2e("tensorboard.e2e.mjs", {"BOARD_PORT": port}, jupyter_lab)
    finally:
        app.stop()
    assert result["fonts"] and all(font["status"] == 200 for font in result["fonts"]), result["fonts"]
    assert flow.board.has_stopped
