"""State details as the reference framework (lightning.app) has them, so ported apps and their tests behave the
same: the shape of ``state_vars``, tuples and Counters keeping their types, the order of ``flows`` and
``works()``, the exception types a user's ``except`` relies on, and the warning about a slow flow."""

from __future__ import annotations

import warnings
from collections import Counter

import cloudpickle
import pytest

import lightnb.core.flow as flow_module
from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.structures import Dict, List


class Work(LightningWork):
    def __init__(self):
        super().__init__()
        self.value = 0

    def run(self):
        self.value += 1


class Leaf(LightningFlow):
    def __init__(self):
        super().__init__()
        self.x = 1
        self.work = Work()

    def run(self):
        pass


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        # Attribute names deliberately not in alphabetical order of definition.
        self.zeta = Leaf()
        self.beta = Work()
        self.alpha = Leaf()
        self.aaa = Work()
        self.pool = List(Work(), Leaf())
        self.named = Dict(b=Work(), a=Work())
        self.lr = 0.1

    def run(self):
        pass


def test_state_vars_has_the_reference_shape_without_calls():
    root = Root()
    state = root.state_vars
    assert set(state) == {"vars", "flows", "works", "structures"}
    assert state["vars"] == {"lr": 0.1}
    assert state["works"]["beta"] == {"vars": {"value": 0}}
    assert state["flows"]["alpha"] == {"vars": {"x": 1}, "flows": {}, "works": {"work": {"vars": {"value": 0}}},
                                       "structures": {}}
    assert state["structures"]["pool"]["works"] == {"0": {"vars": {"value": 0}}}
    assert state["structures"]["pool"]["flows"]["1"]["vars"] == {"x": 1}
    assert root.beta.state_vars == {"vars": {"value": 0}}
    assert "calls" in root.state and "calls" in root.state["works"]["beta"], "state keeps its calls"


def test_flows_and_works_are_ordered_by_name_like_the_reference():
    root = Root()
    assert list(root.flows) == ["root.alpha", "root.zeta", "root.pool.1"]
    assert [w.name for w in root.works(recurse=False)] == ["root.aaa", "root.beta"]
    assert [w.name for w in root.works()] == [
        "root.aaa", "root.beta", "root.alpha.work", "root.zeta.work",
        "root.named.b", "root.named.a", "root.pool.0", "root.pool.1.work"]
    assert [name for name, _ in root.named_works()] == [w.name for w in root.works()]


class Holder(LightningWork):
    def __init__(self):
        super().__init__()
        self.pair = (1, "a")
        self.counts = Counter({"cat": 2})

    def run(self):
        pass


def test_tuples_and_counters_keep_their_type_in_state_and_through_pickling():
    work = Holder()
    assert type(work.pair) is tuple and isinstance(work.counts, Counter)
    work.counts["dog"] += 1
    work.counts.update(["cat"])
    assert work.counts == Counter({"cat": 3, "dog": 1}) and isinstance(work.counts, Counter)
    assert work.counts.most_common(1) == [("cat", 3)]
    assert work.state["vars"] == {"pair": [1, "a"], "counts": {"cat": 3, "dog": 1}}  # the JSON form
    travelled = cloudpickle.loads(cloudpickle.dumps(work))  # how a work reaches its worker
    assert type(travelled.pair) is tuple and isinstance(travelled.counts, Counter)
    assert travelled.counts == Counter({"cat": 3, "dog": 1})


class Tally(LightningWork):
    def __init__(self):
        super().__init__()
        self.pair = (0, 0)
        self.counts = Counter()
        self.seen = ""

    def run(self, words):
        self.seen = f"{type(self.pair).__name__} {isinstance(self.counts, Counter)}"
        for word in words:
            self.counts[word] += 1  # in place: reaches the flow like a set
        self.pair = (len(words), len(self.counts))


class TallyRoot(LightningFlow):
    def __init__(self):
        super().__init__()
        self.tally = Tally()
        self.report = ""

    def run(self):
        self.tally.run(["a", "b", "a"])
        if self.tally.has_succeeded:
            self.report = f"{type(self.tally.pair).__name__} {isinstance(self.tally.counts, Counter)}"
            self.stop("counted")


def test_tuples_and_counters_set_by_a_work_on_a_worker_reach_the_flow_with_their_type(cluster):
    root = TallyRoot()
    app = LightningApp(root, cluster=cluster).start()
    app.wait(120)
    assert root.tally.seen == "tuple True", "on the worker the values have their types"
    assert root.report == "tuple True", "in the flow, during the run, too"
    assert isinstance(root.tally.counts, Counter) and root.tally.counts == Counter({"a": 2, "b": 1})
    assert root.tally.pair == (3, 2) and type(root.tally.pair) is tuple


def test_a_non_json_value_raises_an_attribute_error_as_in_the_reference():
    work = Work()
    for bad in (object(), {1, 2}):
        with pytest.raises(AttributeError, match=r"root\.value cannot hold a value of type"):
            work.value = bad
        with pytest.raises(TypeError):  # what lightnb raised before: both catch it
            work.value = bad


def test_a_bad_component_name_raises_a_value_error_and_a_missing_one_an_attribute_error():
    app = LightningApp(Root())
    assert app.get_component_by_name("root.alpha.work") is app.root.alpha.work
    for bad in ("alpha.work", "root..work", ""):
        with pytest.raises(ValueError, match="dotted paths starting with 'root'"):
            app.get_component_by_name(bad)
    with pytest.raises(AttributeError, match=r"no component 'root\.gamma' \(children of root: .*root\.alpha"):
        app.get_component_by_name("root.gamma")
    with pytest.raises(KeyError):  # what lightnb raised before: still caught
        app.get_component_by_name("root.gamma")


class Slow(LightningFlow):
    def __init__(self):
        super().__init__()
        self.passes = 0

    def run(self):
        import time

        self.passes += 1
        time.sleep(0.3)


class SlowRoot(LightningFlow):
    def __init__(self):
        super().__init__()
        self.slow = Slow()

    def run(self):
        self.slow.run()
        if self.slow.passes >= 3:
            self.stop("done")


def test_a_slow_flow_is_warned_about_once_naming_the_innermost_flow_and_its_time(monkeypatch):
    monkeypatch.setattr(flow_module, "SLOW_FLOW_SECONDS", 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = LightningApp(SlowRoot(), cluster="in-process").start()
        app.wait(60)
    from lightnb.utilities.warnings import LightningFlowWarning  # the reference's name for it

    slow = [w for w in caught if issubclass(w.category, LightningFlowWarning)]
    assert len(slow) == 1, [str(w.message) for w in slow]
    assert str(slow[0].message).startswith("root.slow.run() took 0.")
    assert "move long or blocking code into a LightningWork" in str(slow[0].message)


def test_a_quick_flow_is_not_warned_about():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = LightningApp(TallyRoot(), cluster="in-process").start()
        app.wait(60)
    assert not [w for w in caught if issubclass(w.category, flow_module.SlowFlowWarning)]
