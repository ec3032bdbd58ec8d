"""Upstream Lightning App features lightnb leaves out on purpose: a ported app (imports swapped from
``lightning.app`` to ``lightnb``) still imports them, and using them says in one sentence that lightnb does not
support them and what to use instead — never a bare ImportError or "unexpected keyword argument"."""

from __future__ import annotations

import importlib
import re

import pytest

from lightnb import CloudCompute, LightningWork
from lightnb.core.unsupported import IgnoredInLightnb, NotSupportedInLightnb

ONE_SENTENCE = re.compile(r"^[^.]+ is not supported in lightnb \([^)]*\); [^\n]* instead[^\n]*\.$")

# (module, name): the import paths an app has after `lightning.app` → `lightnb`.
RAISING = [
    ("lightnb.components", "AutoScaler"),
    ("lightnb.components", "ColdStartProxy"),
    ("lightnb.components", "MultiNode"),
    ("lightnb.components", "LightningTrainerMultiNode"),
    ("lightnb.components", "PyTorchLightningMultiNode"),
    ("lightnb.components", "PyTorchSpawnMultiNode"),
    ("lightnb.components", "FabricMultiNode"),
    ("lightnb.storage", "Mount"),
    ("lightnb.storage.mount", "Mount"),
]
WARNING = [
    ("lightnb", "BuildConfig"),
    ("lightnb.utilities.packaging.build_config", "BuildConfig"),
]


@pytest.mark.parametrize(("module", "name"), RAISING)
def test_a_cloud_only_component_imports_and_creating_it_says_what_to_use(module, name):
    cls = getattr(importlib.import_module(module), name)

    class Mine(cls):  # an app's module may subclass it: that must not fail at import
        pass

    with pytest.raises(NotSupportedInLightnb) as raised:
        Mine(object, num_nodes=2, cloud_compute=CloudCompute("gpu"))
    message = str(raised.value)
    assert message.startswith(f"{name} is not supported in lightnb ("), message
    assert ONE_SENTENCE.match(message), message
    assert isinstance(raised.value, NotImplementedError)


@pytest.mark.parametrize(("module", "name"), WARNING)
def test_build_config_imports_and_warns_that_it_is_ignored(module, name):
    cls = getattr(importlib.import_module(module), name)
    with pytest.warns(IgnoredInLightnb, match=r"^BuildConfig is not supported in lightnb \(.*install the "
                                              r"requirements on the workers"):
        cls(requirements=["torch"])


class Trainer(LightningWork):
    def __init__(self, **kwargs):
        super().__init__(parallel=True, **kwargs)
        self.done = False

    def run(self):
        self.done = True


def test_a_work_given_a_build_config_runs_and_is_told_it_is_ignored():
    from lightnb import BuildConfig

    with pytest.warns(IgnoredInLightnb):
        config = BuildConfig(requirements=["torch"])
    with pytest.warns(IgnoredInLightnb, match=r"LightningWork\(cloud_build_config=\.\.\.\) is not supported"):
        work = Trainer(cloud_build_config=config)
    assert work.parallel
    work.run()  # it works as a plain work
    assert work.done


def test_an_unknown_work_option_is_named_with_what_the_work_accepts():
    with pytest.raises(TypeError, match=r"Trainer.__init__\(\) got an unexpected keyword argument 'gpus': a "
                                        r"LightningWork accepts parallel, cache_calls"):
        Trainer(gpus=2)


def test_cloud_compute_mounts_raise_and_colocation_is_ignored_with_a_sentence():
    from lightnb.storage import Mount

    with pytest.raises(NotSupportedInLightnb, match=r"^CloudCompute\(mounts=\.\.\.\) is not supported in lightnb "
                                                    r"\(.*fsspec"):
        CloudCompute("cpu", mounts=object())
    with pytest.raises(NotSupportedInLightnb, match="^Mount is not supported"):
        Mount(source="s3://bucket/data/", mount_path="/data")
    with pytest.warns(IgnoredInLightnb, match=r"colocation_group_id"):
        compute = CloudCompute("gpu", colocation_group_id="group")
    assert compute.dask_resources == {"GPU": 1}
    assert "mounts" not in compute.to_state() and "colocation_group_id" not in compute.to_state()


def test_the_packaging_path_of_cloud_compute_is_the_same_class():
    from lightnb.utilities.packaging.cloud_compute import CloudCompute as Packaged

    assert Packaged is CloudCompute
