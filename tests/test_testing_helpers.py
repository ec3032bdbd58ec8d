"""The reference's app-testing helpers under lightnb (``lightnb.testing``, ``lightnb.runners``,
``lightnb.utilities``): a user's own app tests port by changing their imports, and run on a real cluster."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from lightnb import AppFailed, LightningApp, LightningFlow, LightningWork
from lightnb.core.unsupported import NotSupportedInLightnb
from lightnb.runners import MultiProcessRuntime
from lightnb.testing import (
    EmptyFlow,
    EmptyWork,
    LightningTestApp,
    application_testing,
    run_app_in_cloud,
    run_work_isolated,
)
from lightnb.utilities.app_helpers import pretty_state
from lightnb.utilities.enum import AppStage


@pytest.fixture
def default_cluster(cluster, monkeypatch):
    """Apps created without a cluster (as in users' tests) use the module's Dask cluster."""
    monkeypatch.setattr("lightnb.runtime.cluster._default_cluster", cluster)
    return cluster


class Ticker(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.ticks = 0
        self.pid = 0

    def run(self):
        self.pid = os.getpid()
        while True:  # runs until the app ends it
            self.ticks += 1
            import time

            time.sleep(0.05)


class TickRoot(LightningFlow):
    def __init__(self):
        super().__init__()
        self.ticker = Ticker()

    def run(self):
        self.ticker.run()


class UntilFiveTicks(LightningTestApp):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before = 0

    def on_before_run_once(self):
        self.before += 1

    def on_after_run_once(self):
        super().on_after_run_once()
        if self.root.ticker.ticks >= 5:
            return True
        return None


def test_a_test_app_ends_when_its_after_hook_returns_true(default_cluster):
    app = UntilFiveTicks(TickRoot())
    MultiProcessRuntime(app, start_server=False).dispatch(timeout=120)
    assert app.stage == AppStage.STOPPING == "stopped"
    assert "UntilFiveTicks.on_after_run_once() returned True" in app.end_message
    assert app.root.ticker.ticks >= 5 and app.root.ticker.pid != os.getpid()
    assert app.counter >= 2 and app.before == app.counter, "both hooks ran around every pass"
    assert app.root.ticker.has_stopped, "ending the app stopped the running work"
    assert type(app.root).__name__ == "TickRoot" and isinstance(app.root, TickRoot)


class EndAtOnce(LightningTestApp):
    def on_before_run_once(self):
        return True


def test_a_before_hook_returning_true_ends_the_app_before_the_flow_runs(default_cluster):
    app = EndAtOnce(TickRoot())
    app.run()
    assert app.stage == "stopped" and not app.root.ticker.has_started


class Failing(LightningWork):
    def run(self):
        raise ValueError("bad input")


class FailingRoot(LightningFlow):
    def __init__(self):
        super().__init__()
        self.work = Failing()

    def run(self):
        self.work.run()


def test_dispatch_of_a_failing_app_raises_with_the_works_error(default_cluster):
    app = LightningApp(FailingRoot())
    with pytest.raises(AppFailed, match="ValueError: bad input"):
        MultiProcessRuntime(app, start_server=False).dispatch(timeout=120)
    assert app.stage == AppStage.FAILED and app.root.work.has_failed


class Square(LightningWork):
    def __init__(self):
        super().__init__()
        self.result = None
        self.pid = 0

    def run(self, x, offset=0):
        self.pid = os.getpid()
        self.result = x * x + offset


def test_run_work_isolated_runs_the_work_once_in_a_worker_process_and_can_run_it_again(default_cluster):
    work = Square()
    run_work_isolated(work, 3, offset=1)
    assert work.result == 10 and work.has_succeeded
    assert work.pid not in (0, os.getpid()), "it ran in a worker process, not in the test's"
    run_work_isolated(work, 4)
    assert work.result == 16


def test_run_work_isolated_raises_a_failure_with_its_traceback(default_cluster):
    with pytest.raises(AppFailed, match="ValueError: bad input"):
        run_work_isolated(Failing())


APP_FILE = '''
from lightnb import LightningApp, LightningFlow, LightningWork


class Count(LightningWork):
    def __init__(self):
        super().__init__()
        self.count = 0

    def run(self):
        for _ in range(3):
            self.count += 1


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.work = Count()

    def run(self):
        self.work.run()


app = LightningApp(Root())
'''


class UntilCounted(LightningTestApp):
    def on_after_run_once(self):
        if self.root.work.has_succeeded:
            return True
        return None


def test_application_testing_runs_an_app_file_as_the_given_test_app(default_cluster, tmp_path: Path):
    file = tmp_path / "app.py"
    file.write_text(textwrap.dedent(APP_FILE))
    result = application_testing(UntilCounted, ["run", "app", str(file), "--blocking", "False", "--open-ui",
                                                "False"])
    assert result.exit_code == 0, result.exception
    assert isinstance(result.app, UntilCounted) and result.app.root.work.count == 3
    import lightnb

    assert lightnb.LightningApp is LightningApp, "the patch is undone"
    with pytest.raises(ValueError, match=r"no app file \(.py or .ipynb\)"):
        application_testing(UntilCounted, ["run", "app"])


def test_empty_components_and_pretty_state():
    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.lr = 0.1
            self._hidden = 1
            self.child = EmptyFlow()
            self.work = EmptyWork()

        def run(self):
            pass

    root = Root()
    assert pretty_state(root.state) == {"vars": {"lr": 0.1}, "works": {"work": {}}, "flows": {"child": {}}}
    assert pretty_state(root) == pretty_state(root.state)
    with pytest.raises(TypeError, match="state dict"):
        pretty_state(42)


def test_the_cloud_helpers_say_they_are_not_supported():
    with pytest.raises(NotSupportedInLightnb, match=r"^run_app_in_cloud is not supported in lightnb \(.*cloud\)"):
        run_app_in_cloud("app_folder")
