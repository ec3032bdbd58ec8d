"""Works called with the same arguments are separate calls: their ids (the hash of the arguments) coincide."""

from __future__ import annotations

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.structures import List


class Count(LightningWork):
    def __init__(self):
        super().__init__(parallel=True)
        self.count = 0

    def run(self):
        for _ in range(5):
            self.count += 1


class Root(LightningFlow):
    def __init__(self):
        super().__init__()
        self.works = List(*(Count() for _ in range(4)))

    def run(self):
        for work in self.works:
            work.run()  # the same (no) arguments for every work: one call id
        if all(work.has_succeeded for work in self.works):
            self.stop("all counted")


def test_works_called_alike_each_run_and_report(cluster) -> None:
    # A cluster the app did not create: the at-most-once claim on the scheduler is used too.
    for _ in range(2):
        app = LightningApp(Root(), cluster=cluster)
        app.start()
        app.wait(120)
        assert [work.count for work in app.root.works] == [5, 5, 5, 5]
