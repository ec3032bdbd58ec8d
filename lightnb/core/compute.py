"""``CloudCompute``: what a work needs from the machine that runs it, as Dask worker resources."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .unsupported import COLOCATION, MOUNT, Feature
from .values import StateValue

# Names that need nothing a plain worker lacks (the reference framework's CPU machine names).
_CPU_NAMES = frozenset({"default", "cpu", "cpu-small", "cpu-medium", "flow-lite"})
_GPU_COUNTS = {"gpu": 1, "gpu-fast": 1, "gpu-fast-multi": 4}


@dataclass
class CloudCompute(StateValue):
    """The compute a work runs on, mapped to Dask worker resources.

    ``CloudCompute("gpu")`` asks for ``{"GPU": 1}``: the work lands on a worker started with
    ``--resources GPU=1``. Any other non-CPU name asks for one unit of a resource of that name; give
    ``resources=`` to ask for something else exactly.

    >>> CloudCompute("gpu").dask_resources
    {'GPU': 1}
    >>> CloudCompute("cpu").dask_resources
    {}
    """

    name: str = "default"
    disk_size: int = 0
    idle_timeout: int | None = None
    shm_size: int | None = None
    interruptible: bool = False
    resources: dict[str, float] | None = field(default=None)
    # The reference's cloud-only options: accepted so a ported app gets a sentence, not a TypeError.
    mounts: Any = field(default=None, repr=False, compare=False)
    colocation_group_id: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mounts is not None:
            Feature("CloudCompute(mounts=...)", MOUNT.reason, MOUNT.instead).use()
        if self.colocation_group_id is not None:
            COLOCATION.use()

    @property
    def dask_resources(self) -> dict[str, float]:
        if self.resources is not None:
            return dict(self.resources)
        if self.name in _CPU_NAMES:
            return {}
        if self.name in _GPU_COUNTS:
            return {"GPU": _GPU_COUNTS[self.name]}
        if self.name.startswith("gpu"):
            return {"GPU": 1}
        return {self.name: 1}

    def to_state(self) -> dict[str, Any]:
        state = asdict(self)
        del state["mounts"], state["colocation_group_id"]
        return {"type": "__cloud_compute__", **state}
