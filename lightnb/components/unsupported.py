"""The reference's cloud-only components, importable from ``lightnb.components`` for ported apps (a module may
subclass them); creating one says in one sentence why lightnb leaves it out and what to use instead."""

from __future__ import annotations

from ..core.unsupported import AUTOSCALER, COLD_START_PROXY, MULTI_NODE, feature_for, unsupported_class

_MODULE = "lightnb.components"

AutoScaler = unsupported_class("AutoScaler", _MODULE, AUTOSCALER)
ColdStartProxy = unsupported_class("ColdStartProxy", _MODULE, COLD_START_PROXY)
MultiNode = unsupported_class("MultiNode", _MODULE, feature_for(MULTI_NODE, "MultiNode"))
LightningTrainerMultiNode = unsupported_class(
    "LightningTrainerMultiNode", _MODULE, feature_for(MULTI_NODE, "LightningTrainerMultiNode"))
PyTorchLightningMultiNode = unsupported_class(
    "PyTorchLightningMultiNode", _MODULE, feature_for(MULTI_NODE, "PyTorchLightningMultiNode"))
PyTorchSpawnMultiNode = unsupported_class(
    "PyTorchSpawnMultiNode", _MODULE, feature_for(MULTI_NODE, "PyTorchSpawnMultiNode"))
FabricMultiNode = unsupported_class("FabricMultiNode", _MODULE, feature_for(MULTI_NODE, "FabricMultiNode"))

# Not in lightnb.components.__all__: importable by name only, they are not part of lightnb's surface.
UNSUPPORTED = ["AutoScaler", "ColdStartProxy", "FabricMultiNode", "LightningTrainerMultiNode", "MultiNode",
               "PyTorchLightningMultiNode", "PyTorchSpawnMultiNode"]
