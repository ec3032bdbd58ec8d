"""Payload between works on the worker processes of a real LocalCluster, small and large values."""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass

import pytest

from lightnb import LightningFlow, LightningWork, Payload


@dataclass
class Weights:
    """Defined in this module, which the workers cannot import: it travels by value."""

    values: list[float]

    def total(self) -> float:
        return sum(self.values)


class Fit(LightningWork):
    def __init__(self):
        super().__init__()
        self.weights = None
        self.table = None

    def run(self):
        self.weights = Payload(Weights([0.5, 1.5]))
        self.table = Payload([bytes([n % 256]) * 1024 for n in range(3000)])  # ~3 MiB: through storage


class Use(LightningWork):
    def __init__(self):
        super().__init__()
        self.total = None
        self.rows = None
        self.settings = None

    def run(self, weights: Payload, table: Payload, settings: Payload):
        self.total = weights.value.total()
        rows = table.value
        self.rows = [len(rows), all(row == bytes([n % 256]) * 1024 for n, row in enumerate(rows))]
        self.settings = settings.value


class Flow(LightningFlow):
    def __init__(self):
        super().__init__()
        self.fit = Fit()
        self.use = Use()
        self.seen_by_flow = None

    def run(self):
        self.fit.run()
        self.seen_by_flow = self.fit.weights.value.total()
        self.use.run(self.fit.weights, self.fit.table, Payload({"lr": 0.01}))
        self.stop("done")


def test_payloads_are_handed_over_small_and_large(run_app, tmp_path):
    app = run_app(Flow())
    root = app.root
    assert root.use.total == 2.0 and root.seen_by_flow == 2.0
    assert root.use.rows == [3000, True]
    assert root.use.settings == {"lr": 0.01}
    stored = list((tmp_path / "storage" / "apps" / app.app_id / "payloads").iterdir())
    assert len(stored) == 1 and stored[0].stat().st_size > 3_000_000  # only the large one went to storage
    state = app.state["works"]["fit"]["vars"]
    assert state["weights"]["type"] == "__payload__" and state["weights"]["value_type"].endswith("Weights")
    assert state["table"]["size"] > 3_000_000


def test_a_payload_is_a_snapshot_pickled_by_value():
    values = [1, 2]
    payload = Payload(values)
    values.append(3)
    copy = pickle.loads(pickle.dumps(payload))
    assert copy.value == [1, 2] and payload.value is values
    digest = copy.to_state()["digest"]
    assert Payload([1, 2]).to_state()["digest"] == digest != Payload([2, 1]).to_state()["digest"]


def test_an_unpicklable_value_is_refused_naming_its_type():
    with pytest.raises(TypeError, match=r"Payload cannot carry a _thread.lock: it cannot be pickled"):
        Payload(threading.Lock())
