"""How a component asks the fronts to show it beyond its stage, logs, progress and metrics.

A component class declares ``_view = ComponentView("sweep", ("trials", "best_trial", ...))``: the fronts
(the AppView) then draw the view named ``kind`` from those state attributes — a sweep as a table of trials
and a chart, a load test as its latency percentiles and requests per second. The fronts know views by
kind, never by class name, so a user's own component can ask for one of them too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ComponentView:
    """A view ``kind`` the fronts know, and the state ``fields`` it is drawn from."""

    kind: str
    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise TypeError(f"ComponentView kind must name a view (such as 'sweep'), not {self.kind!r}")
        if isinstance(self.fields, str) or not all(isinstance(name, str) for name in self.fields):
            raise TypeError(f"ComponentView fields must be a tuple of attribute names, not {self.fields!r}")
