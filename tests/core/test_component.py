"""State rules, the component tree and its names, as a user meets them (no app)."""

from __future__ import annotations

import threading

import cloudpickle
import pytest

from lightnb import CloudCompute, LightningFlow, LightningWork
from lightnb.structures import Dict, List


class Work(LightningWork):
    def __init__(self):
        super().__init__()
        self.value = 0
        self.history = []
        self._private = threading.Lock()

    def run(self):
        self.value += 1


class Child(LightningFlow):
    def __init__(self):
        super().__init__()
        self.work = Work()

    def run(self):
        self.work.run()


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.child = Child()
        self.train = Work()
        self.pool = List(Work(), Work())
        self.named = Dict(a=Work())
        self.lr = 0.1

    def run(self):
        pass


def test_new_public_attribute_outside_init_names_the_attribute():
    work = Work()
    with pytest.raises(AttributeError, match=r"'learning_rate'.*__init__"):
        work.learning_rate = 0.1
    work._anything = object()  # private attributes are free
    assert "learning_rate" not in work.state["vars"]


@pytest.mark.parametrize("value", [object(), {1, 2}, [1, threading.Lock()], {"k": Work}])
def test_non_serializable_value_names_the_attribute_and_type(value):
    work = Work()
    with pytest.raises(TypeError, match=r"root\.value"):
        work.value = value
    assert work.value == 0, "a refused value is not stored"


def test_in_place_mutation_is_checked_too():
    work = Work()
    with pytest.raises(TypeError, match=r"root\.history.*lock"):
        work.history.append(threading.Lock())


def test_property_setters_are_honoured():
    class WithProperty(LightningWork):
        def __init__(self):
            super().__init__()
            self._lr = 0.0

        @property
        def lr(self):
            return self._lr

        @lr.setter
        def lr(self, value):
            self._lr = value * 2

        def run(self):
            pass

    work = WithProperty()
    work.lr = 1.5
    assert work.lr == 3.0


def test_a_work_cannot_own_a_component():
    class Owner(LightningWork):
        def __init__(self):
            super().__init__()
            self.inner = Work()

        def run(self):
            pass

    with pytest.raises(TypeError, match="cannot own"):
        Owner()
    work = Work()
    with pytest.raises(TypeError, match="leaves"):
        work.other = Work()


def test_a_work_without_run_is_refused_at_construction():
    class NoRun(LightningWork):
        pass

    with pytest.raises(TypeError, match="must define a run"):
        NoRun()


def test_dotted_names_and_state_shape():
    root = Root()
    assert root.name == "root"
    assert root.child.work.name == "root.child.work"
    assert root.pool[1].name == "root.pool.1"
    assert root.named["a"].name == "root.named.a"
    state = root.state
    assert set(state) == {"vars", "calls", "flows", "works", "structures"}
    assert state["vars"] == {"lr": 0.1}
    assert state["works"]["train"]["vars"] == {"value": 0, "history": []}
    assert state["flows"]["child"]["works"]["work"]["calls"] == {"latest_call_hash": None}
    assert set(state["structures"]["pool"]["works"]) == {"0", "1"}
    # The reference's order: own works by name, then the child flows' (by name), then the structures'.
    assert [w.name for w in root.works()] == [
        "root.train", "root.child.work", "root.named.a", "root.pool.0", "root.pool.1"]
    assert list(root.flows) == ["root.child"]


def test_lists_and_dicts_of_components_become_structures():
    class Sweep(LightningFlow):
        def __init__(self):
            super().__init__()
            self.trials = [Work(), Work()]
            self.by_name = {"x": Work()}

        def run(self):
            pass

    sweep = Sweep()
    assert isinstance(sweep.trials, List) and sweep.trials[1].name == "root.trials.1"
    assert isinstance(sweep.by_name, Dict) and sweep.by_name["x"].name == "root.by_name.x"


def test_a_child_cannot_be_replaced_or_placed_twice():
    root = Root()
    with pytest.raises(AttributeError, match="already set"):
        root.train = Work()
    other = Root()
    with pytest.raises(ValueError, match="already part of the app as root.train"):
        other.pool.append(root.train)


def test_cloud_compute_maps_to_dask_resources():
    assert CloudCompute("gpu").dask_resources == {"GPU": 1}
    assert CloudCompute("gpu-fast-multi").dask_resources == {"GPU": 4}
    assert CloudCompute().dask_resources == {}
    assert CloudCompute("tpu").dask_resources == {"tpu": 1}
    assert CloudCompute("cpu", resources={"MEM": 2}).dask_resources == {"MEM": 2}
    work = Work()
    assert work.cloud_compute.name == "default"
    with pytest.raises(TypeError, match="CloudCompute"):
        LightningWork.__init__(work, cloud_compute="gpu")


def test_work_pickles_without_its_tree_and_keeps_its_state():
    root = Root()
    root.train.history.append(3)
    copy = cloudpickle.loads(cloudpickle.dumps(root.train._public_values()))
    assert copy == {"value": 0, "history": [3]}
    assert type(copy["history"]) is list
    # A lock in a private attribute stays with the flow-side object: the pickle error names it.
    with pytest.raises(TypeError, match="lock"):
        cloudpickle.dumps(root.train)


def test_calling_run_directly_executes_in_process_and_honours_cache_calls(capsys):
    # The reference docs' "props" example: run(value=1) five times, then run(value=10), prints twice.
    class Props(LightningWork):
        def run(self, value):
            print(f"value={value}")

    work = Props()
    for _ in range(5):
        work.run(value=1)
    work.run(value=10)
    assert capsys.readouterr().out.splitlines() == ["value=1", "value=10"]
    assert work.has_succeeded

    class Uncached(LightningWork):
        def __init__(self):
            super().__init__(cache_calls=False)
            self.count = 0

        def run(self):
            self.count += 1

    uncached = Uncached()
    for _ in range(3):
        uncached.run()
    assert uncached.count == 3


def test_direct_run_failure_raises_and_marks_the_work_failed():
    class Broken(LightningWork):
        def run(self):
            raise ValueError("bad input")

    work = Broken()
    with pytest.raises(ValueError, match="bad input"):
        work.run()
    assert work.has_failed
    assert "ValueError: bad input" in work.status.message
