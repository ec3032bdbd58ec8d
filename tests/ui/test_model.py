"""The front ends' model of an app: Component objects, patches, and the tracker that makes them."""

from __future__ import annotations

import threading

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.structures import List
from lightnb.ui.model import AppTracker, apply_patch, describe, diff


class Job(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.progress = 0.0
        self.url = None

    def run(self, until):
        for step in range(until):
            self.progress = (step + 1) / until


class Sweep(LightningFlow):
    def __init__(self):
        super().__init__()
        self.jobs = List(Job())
        self.grow = False

    def run(self):
        if self.grow and len(self.jobs) == 1:
            self.jobs.append(Job())
        for job in self.jobs:
            job.run(4)


def test_diff_and_apply_patch_round_trip():
    old = {"a": {"stage": "running", "progress": 0.5}, "b": {"stage": "pending"}}
    new = {"a": {"stage": "running", "progress": 0.75}, "c": {"stage": "pending"}}
    patch = diff(old, new)
    assert patch == {"a": {"progress": 0.75}, "c": {"stage": "pending"}, "b": None}
    assert apply_patch(old, patch) == new
    assert old["a"]["progress"] == 0.5  # applying copies


def test_a_component_as_front_ends_see_it():
    class Odd(LightningWork):
        def __init__(self):
            super().__init__()
            self.progress = 1.5  # out of [0, 1]: no bar
            self.url = "http://127.0.0.1:6006/"

        def run(self):
            pass

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.odd = Odd()
            self.progress = True  # a bool is not a progress

        def run(self):
            pass

    app = LightningApp(Root(), cluster="in-process")
    assert describe(app, app.root.odd) == {
        "name": "root.odd", "parent": "root", "kind": "work", "class": "Odd", "stage": "not_started",
        "message": None, "progress": None, "url": "http://127.0.0.1:6006/", "port": 6006, "logs": [],
        "metrics": None, "view": None}
    assert describe(app, app.root)["progress"] is None
    assert "display_name" not in describe(app, app.root.odd)
    app.root.odd.display_name = "Odd one"
    assert describe(app, app.root.odd)["display_name"] == "Odd one"


def test_the_tracker_sends_what_changed_and_new_components_whole():
    app = LightningApp(Sweep(), cluster="in-process")
    tracker = AppTracker(app)
    header, components = tracker.snapshot()
    assert header["stage"] == "not_started" and set(components) == {"root", "root.jobs.0"}
    assert components["root.jobs.0"]["parent"] == "root"  # through the List, to the owning flow

    changed = threading.Event()
    app.start()
    tracker.follow(changed.set)
    patches = []
    for _ in range(100):  # the job runs to its end on a thread of this process
        result = tracker.patch()
        patches += [result[1]] if result else []
        if tracker.sent["root.jobs.0"]["stage"] == "succeeded":
            break
        changed.wait(0.2)
        changed.clear()
    assert tracker.sent["root.jobs.0"]["progress"] == 1.0
    # Patches of a known component hold only what moved, never its fixed fields.
    assert patches and all(not {"class", "kind", "parent", "name"} & change.keys()
                           for patch in patches for change in patch.values() if change)

    app.root.grow = True  # a cell sets it; the flow adds a job
    for _ in range(100):
        changed.wait(0.2)
        changed.clear()
        result = tracker.patch()
        if result is not None and "root.jobs.1" in result[1]:
            break
    added = result[1]["root.jobs.1"]
    assert added["kind"] == "work" and added["class"] == "Job" and added["parent"] == "root"
    app.stop()
    header, _ = tracker.patch()
    assert header["stage"] == "stopped" and tracker.patch() is None  # nothing more to send
