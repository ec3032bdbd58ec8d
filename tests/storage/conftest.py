"""Storage tests run real apps: works on the worker processes of a real cluster, files in a real store."""

from __future__ import annotations

import pytest

from lightnb import LightningApp


@pytest.fixture
def run_app(cluster, tmp_path):
    """``run_app(root, storage=None, env=None)``: run an app on the module's cluster until its root flow stops
    (storage: a fresh folder of the test unless given); returns the app."""
    apps: list[LightningApp] = []

    def run(root, storage: str | None = None, env: dict[str, str] | None = None, timeout: float = 180):
        app = LightningApp(root, cluster=cluster, storage=storage or str(tmp_path / "storage"), env=env)
        apps.append(app)
        app.start()
        app.wait(timeout)
        return app

    yield run
    for app in apps:
        app.stop()
