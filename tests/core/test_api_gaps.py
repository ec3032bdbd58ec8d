"""The reference's API that existing Lightning apps use, on lightnb's core: placeholders for children made
later, ``lit://`` paths, ``display_name``, ``work.start()`` / ``delete()``, a work's server address, and
``flow.schedule`` (cron) — driven without a cluster (the engine is pure)."""

from __future__ import annotations

from datetime import datetime

import pytest

import lightnb  # noqa: F401  (registers how lit:// strings become Paths)
from lightnb import LightningFlow, LightningWork, Path
from lightnb.core.engine import EngineState
from lightnb.core.events import Advance, RuntimeReady, Started, Submit, Tick, WakeAt
from lightnb.core.schedule import CronError, Schedules, parse_cron
from lightnb.structures import Dict


@pytest.fixture(autouse=True)
def in_a_folder_of_its_own(tmp_path, monkeypatch):
    """lit:// paths make their folder (./.storage) where they are made: here, the test's."""
    monkeypatch.chdir(tmp_path)


class Server(LightningWork):
    def run(self):
        pass


class Lazy(LightningFlow):
    """The reference's pattern: a placeholder in __init__, the work made on the first pass."""

    def __init__(self):
        super().__init__()
        self.server = None
        self.model = "lit://models/best.ckpt"

    def run(self):
        if self.server is None:
            self.server = Server()
        self.server.run()


def test_a_child_is_created_onto_a_none_placeholder_and_dispatched():
    flow = Lazy()
    assert flow.state["vars"]["server"] is None
    engine = EngineState(flow)
    out = engine.handle([Started(), RuntimeReady("test"), Advance()], 0.0)
    assert isinstance(flow.server, Server) and flow.server.name == "root.server"
    assert [type(i) for i in out if isinstance(i, Submit)] == [Submit]
    assert "server" in flow.state["works"] and "server" not in flow.state["vars"]
    with pytest.raises(AttributeError, match="already set"):
        flow.server = Server()  # a child still cannot replace a child


def test_lit_strings_become_paths_under_the_storage_root(monkeypatch, tmp_path):
    flow = Lazy()
    assert isinstance(flow.model, Path)
    assert str(flow.model) == ".storage/models/best.ckpt"
    assert (tmp_path / ".storage").is_dir()  # made, as the reference does: open(path, "w") works at once
    monkeypatch.setenv("STORAGE_ROOT_DIR", str(tmp_path / "shared"))
    assert str(Path("lit://x/y.txt")) == str(tmp_path / "shared" / "x" / "y.txt")


def test_path_exists_local(tmp_path):
    path = Path(tmp_path / "a.txt")
    assert not path.exists_local()
    path.write_text("x")
    assert path.exists_local()


def test_display_name_defaults_to_the_attribute_and_can_be_set():
    flow = Lazy()
    flow.run()
    assert flow.server.display_name == "server"
    flow.server.display_name = "Model API"
    assert flow.server.display_name == "Model API"
    assert "display_name" not in flow.server.state["vars"]  # not state: how the view names it
    with pytest.raises(TypeError, match="non-empty str"):
        flow.server.display_name = ""


class Owner(LightningFlow):
    def __init__(self):
        super().__init__()
        self.server = Server()
        self.pool = Dict(a=Server(), b=Server())

    def run(self):
        pass


def test_delete_stops_a_work_and_frees_its_place():
    flow = Owner()
    engine = EngineState(flow)
    engine.handle([Started(), RuntimeReady("test")], 0.0)
    work = flow.server
    with engine.mutating():
        work.delete()
    assert flow.server is None and work.has_stopped
    assert work.name == "root.server"  # its stop is reported under its name
    assert "server" not in flow.state["works"]
    assert "root.server" not in engine.works  # nothing of it runs: the app forgets it
    flow.server = Server()  # the placeholder takes a new work
    assert flow.server is not work and engine.works["root.server"] is flow.server
    flow.pool["a"].delete()
    assert list(flow.pool) == ["b"]
    with pytest.raises(RuntimeError, match="started only once"):
        work.start()


def test_start_is_accepted_and_start_with_flow_too():
    work = Server(start_with_flow=False)
    assert work.start_with_flow is False
    work.start()  # nothing to start ahead in lightnb: the first run() places it on a worker
    assert not work.has_started


def test_a_work_server_address_before_and_while_it_executes():
    work = Server(port=8123, host="0.0.0.0")
    assert (work.host, work.port, work.url, work.internal_ip) == ("0.0.0.0", 8123, "", "")
    assert "url" not in work.state["vars"]  # a work that does not serve keeps its state as it was
    free = Server()
    assert free.port is None and free.host == "127.0.0.1"
    object.__setattr__(free, "_executing", True)  # as where it runs
    try:
        port = free.port
        assert isinstance(port, int) and 0 < port < 65536
        assert free.url == f"http://127.0.0.1:{port}"
        assert free.internal_ip
        assert free.state["vars"]["url"] == free.url  # state: it reaches the flow
    finally:
        object.__setattr__(free, "_executing", False)
    with pytest.raises(ValueError, match="port must be a port number"):
        Server(port=70000)


# -- schedules ----------------------------------------------------------------------------------------------
def at(*fields: int) -> float:
    return datetime(*fields).timestamp()


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("*/5 * * * *", (2024, 1, 1, 10, 2), (2024, 1, 1, 10, 5)),
    ("*/5 * * * *", (2024, 1, 1, 10, 5), (2024, 1, 1, 10, 10)),
    ("0 9 * * 1-5", (2024, 1, 5, 9, 30), (2024, 1, 8, 9, 0)),  # Friday 9:30 → Monday 9:00
    ("30 2 1 * *", (2024, 1, 15), (2024, 2, 1, 2, 30)),
    ("hourly", (2024, 1, 1, 10, 2), (2024, 1, 1, 11, 0)),
    ("daily", (2024, 1, 1, 10, 2), (2024, 1, 2, 0, 0)),
    ("weekly", (2024, 1, 1, 10, 2), (2024, 1, 7, 0, 0)),  # Sunday
    ("monthly", (2024, 1, 31, 10), (2024, 2, 1, 0, 0)),
    ("0 0 1,15 * mon", (2024, 1, 2), (2024, 1, 8, 0, 0)),  # both day fields: either matches
    ("0 12 * jan,feb *", (2024, 2, 29, 13), (2025, 1, 1, 12, 0)),
    ("* * * * * */10", (2024, 1, 1, 10, 0, 5), (2024, 1, 1, 10, 0, 10)),  # seconds, a 6th field
])
def test_cron_expressions_fire_when_cron_would(expression, after, expected):
    assert parse_cron(expression).next_after(at(*after)) == at(*expected)


@pytest.mark.parametrize(("expression", "message"), [
    ("* * *", "needs 5 fields"),
    ("61 * * * *", "minute field '61'"),
    ("* * * * fri-mon", "day of week field"),
    ("*/0 * * * *", "minute field"),
])
def test_bad_cron_expressions_name_the_field(expression, message):
    with pytest.raises(CronError, match=message):
        parse_cron(expression)


def test_a_schedule_fires_at_once_then_at_each_cron_time():
    table = Schedules()
    start = at(2024, 1, 1, 10, 2)
    assert table.check("k", "*/5 * * * *", None, start, 0) is True
    assert table.check("k", "*/5 * * * *", None, start + 1, 0) is True  # the same pass
    assert table.check("k", "*/5 * * * *", None, start + 1, 1) is False
    assert table.earliest() == at(2024, 1, 1, 10, 5)
    assert table.check("k", "*/5 * * * *", None, at(2024, 1, 1, 10, 5), 2) is True
    assert table.check("k", "*/5 * * * *", None, at(2024, 1, 1, 10, 6), 3) is False
    later = Schedules()
    assert later.check("k", "hourly", datetime(2024, 1, 1, 12), start, 0) is False
    assert later.earliest() == at(2024, 1, 1, 12)


class Pipeline(LightningFlow):
    """The reference's DAG example: each schedule tick adds a pipeline run of works."""

    def __init__(self):
        super().__init__()
        self.runs = Dict()
        self.ticks = 0

    def run(self):
        if self.schedule("*/5 * * * *"):
            self.ticks += 1
            self.runs[f"run{self.ticks}"] = Server()
        for work in self.runs.values():
            work.run()


def test_the_engine_wakes_the_app_when_a_schedule_fires():
    flow = Pipeline()
    engine = EngineState(flow)
    start = at(2024, 1, 1, 10, 2)
    out = engine.handle([Started(), RuntimeReady("test"), Advance()], start)
    assert flow.ticks == 1 and [i.call.call_id for i in out if isinstance(i, Submit)]
    assert [i for i in out if isinstance(i, WakeAt)] == [WakeAt(at(2024, 1, 1, 10, 5))]
    engine.handle([Advance()], start + 10)  # nothing due: no new run
    assert flow.ticks == 1
    out = engine.handle([Tick(), Advance()], at(2024, 1, 1, 10, 5))
    assert flow.ticks == 2 and "run2" in flow.runs
    assert [i for i in out if isinstance(i, WakeAt)] == [WakeAt(at(2024, 1, 1, 10, 10))]


def test_schedule_without_an_app_uses_the_clock():
    flow = Pipeline()
    flow.run()
    flow.run()
    assert flow.ticks == 1


class BlockedBeforeSchedule(LightningFlow):
    def __init__(self):
        super().__init__()
        self.first = Server()
        self.gate = False
        self.fired = 0

    def run(self):
        if self.gate:
            self.first.run()  # blocking: the pass ends here until the call has finished
        if self.schedule("*/5 * * * *"):
            self.fired += 1


def test_a_due_schedule_behind_a_blocking_call_does_not_spin_the_loop():
    flow = BlockedBeforeSchedule()
    engine = EngineState(flow)
    start = at(2024, 1, 1, 10, 2)
    out = engine.handle([Started(), RuntimeReady("test"), Advance()], start)
    assert flow.fired == 1 and [i for i in out if isinstance(i, WakeAt)] == [WakeAt(at(2024, 1, 1, 10, 5))]
    flow.gate = True  # from a cell: the next passes stop at first.run(), before the schedule
    engine.handle([Advance()], start + 1)
    out = engine.handle([Tick(), Advance()], at(2024, 1, 1, 10, 5))
    assert flow.fired == 1  # due, but not reached
    assert [i for i in out if isinstance(i, WakeAt)] == []  # no wake-up in the past: the loop would spin
