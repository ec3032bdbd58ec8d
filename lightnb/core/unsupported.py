"""Upstream Lightning App features lightnb leaves out on purpose, kept importable so an app ported by changing
its imports fails (or warns) with one sentence saying what to do instead — never a bare ``ImportError`` or
"unexpected keyword argument".

Each feature is a :class:`Feature`: its name, why lightnb leaves it out, what to use instead, and whether using
it is a harmless no-op (a warning) or would silently change what the app does (an error).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any


class NotSupportedInLightnb(NotImplementedError):
    """A Lightning App feature lightnb does not have; the message says what to use instead."""


class IgnoredInLightnb(UserWarning):
    """A Lightning App option that has no effect in lightnb (the app runs without it)."""


@dataclass(frozen=True)
class Feature:
    name: str
    reason: str
    instead: str
    harmless: bool = False  # True: using it warns and is ignored; False: it raises

    @property
    def message(self) -> str:
        return f"{self.name} is not supported in lightnb ({self.reason}); {self.instead}."

    def use(self, stacklevel: int = 3) -> None:
        """Say so: a warning for a harmless no-op, :class:`NotSupportedInLightnb` otherwise."""
        if self.harmless:
            warnings.warn(self.message, IgnoredInLightnb, stacklevel=stacklevel)
        else:
            raise NotSupportedInLightnb(self.message)


BUILD_CONFIG = Feature(
    "BuildConfig", "works run in the Python environment of the Dask workers, no image is built for them",
    "install the requirements on the workers (pip, conda or the workers' image) instead; it is ignored",
    harmless=True)
MOUNT = Feature(
    "Mount", "it mounts cloud object storage into cloud machines",
    "read the data from its URL with fsspec in the work, or share files with a lightnb Drive instead")
COLOCATION = Feature(
    "CloudCompute(colocation_group_id=...)", "lightnb does not place works on cloud machines itself",
    "start Dask workers with a resource and ask for it with CloudCompute(resources=...) instead; it is ignored",
    harmless=True)
AUTOSCALER = Feature(
    "AutoScaler", "it starts and stops cloud replicas of a server behind the Lightning load balancer",
    "run the server as one work (lightnb.components.ModelServer or your own), or several in a "
    "lightnb.structures.List behind a proxy of your own, instead")
COLD_START_PROXY = Feature(
    "ColdStartProxy", "it belongs to the cloud AutoScaler", "serve from a work that is already running instead")
MULTI_NODE = Feature(
    "{name}", "it starts several cloud machines wired together for torch.distributed",
    "train on the devices of one worker (lightnb.components.TrainerWork with trainer_kwargs={{'devices': ...}}), "
    "or start torchrun / a Dask-launched process group from your own work, instead")
CLOUD_TESTING = Feature(
    "{name}", "it deploys the app to the lightning.ai cloud",
    "run the app locally with lightnb.testing.LightningTestApp or application_testing instead")


def feature_for(template: Feature, name: str) -> Feature:
    """``template`` (whose name is ``{name}``) for one class name."""
    return Feature(template.name.format(name=name), template.reason, template.instead.format(),
                   template.harmless)


def unsupported_class(name: str, module: str, feature: Feature) -> type:
    """A class that can be imported and subclassed (``class MyScaler(AutoScaler)`` in an app's module) but not
    used: creating one says what to use instead (raises, or warns for a harmless no-op)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        feature.use()

    cls = type(name, (), {"__init__": __init__, "__module__": module, "__doc__": feature.message,
                          "_lightnb_feature": feature})
    return cls


def unsupported_function(name: str, module: str, feature: Feature) -> Any:
    def function(*args: Any, **kwargs: Any) -> Any:
        feature.use()

    function.__name__ = function.__qualname__ = name
    function.__module__ = module
    function.__doc__ = feature.message
    return function


# Keyword arguments the reference's LightningWork accepts that lightnb has no use for, and what to say.
WORK_OPTIONS = {
    "cloud_build_config": BUILD_CONFIG,
    "local_build_config": BUILD_CONFIG,
}


def refuse_work_options(owner: str, options: dict[str, Any], accepted: list[str]) -> None:
    """The extra keyword arguments given to ``LightningWork.__init__``: a known upstream option warns or raises
    with its sentence; anything else is a ``TypeError`` naming it and the accepted ones."""
    for option, value in options.items():
        feature = WORK_OPTIONS.get(option)
        if feature is not None and value is None:
            continue  # the reference's default: nothing asked for
        if feature is None:
            raise TypeError(
                f"{owner}.__init__() got an unexpected keyword argument {option!r}: a LightningWork accepts "
                f"{', '.join(accepted)}. Remove it, or keep it as an attribute of your own work."
            )
        Feature(f"LightningWork({option}=...)", feature.reason, feature.instead, feature.harmless).use(
            stacklevel=4)
