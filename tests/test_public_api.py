"""The public surface of lightnb, frozen: what users import and call.

A change here breaks notebooks and app scripts written against lightnb. If the change is deliberate, update
the frozen values below in the same commit (and say so in its message); if not, the failure caught it.
"""

from __future__ import annotations

import importlib
import inspect

import lightnb

FROZEN_ALL = [
    "AppFailed",
    "CloudCompute",
    "Drive",
    "LightningApp",
    "LightningFlow",
    "LightningWork",
    "Path",
    "Payload",
    "WorkStageStatus",
    "WorkStatus",
    "WorkStopped",
    "__version__",
]

FROZEN_COMPONENTS_ALL = [
    "Category",
    "Image",
    "LoadTest",
    "ModelServer",
    "Number",
    "PopenPythonScript",
    "PythonServer",
    "ServeGradio",
    "ShellWork",
    "Sweep",
    "TensorBoardWork",
    "Text",
    "TracerPythonScript",
    "TrainerWork",
]

FROZEN_UI_ALL = ["AppView", "ParamsForm"]

# "module:Class.member" → the signature of that callable, or "property".
MEMBERS = {
    "lightnb:LightningApp": [
        "__init__", "start", "wait", "wait_async", "run", "stop", "step", "view", "logs", "subscribe",
        "get_component_by_name", "stage", "state", "end_message", "works", "request_stop", "ended",
    ],
    "lightnb:LightningFlow": [
        "__init__", "run", "stop", "fail", "configure_layout", "works", "named_works", "flows", "state", "name",
        "root", "schedule", "display_name",
    ],
    "lightnb:LightningWork": [
        "__init__", "run", "stop", "check_stop", "on_exit", "status", "has_started", "is_pending", "is_running",
        "has_succeeded", "has_failed", "has_stopped", "parallel", "cache_calls", "raise_exception",
        "cloud_compute", "state", "name", "start", "delete", "start_with_flow", "display_name",
    ],
    "lightnb:Drive": ["__init__", "put", "get", "list", "delete", "component_name"],
    "lightnb:Path": ["__new__", "get", "exists_remote", "exists_local", "origin_name", "consumer_name"],
    "lightnb:Payload": ["__init__", "value"],
    "lightnb:CloudCompute": ["__init__", "dask_resources"],
    "lightnb:AppFailed": ["__init__"],
    "lightnb:WorkStatus": ["__init__"],
    "lightnb.components:TracerPythonScript": ["__init__", "run"],
    "lightnb.components:PopenPythonScript": ["__init__", "run"],
    "lightnb.components:ShellWork": ["__init__", "run"],
    "lightnb.components:TensorBoardWork": ["__init__", "run"],
    "lightnb.components:ServeGradio": ["__init__", "run", "predict", "build_model"],
    "lightnb.components:ModelServer": ["__init__", "run"],
    "lightnb.components:PythonServer": ["__init__", "run", "setup", "predict"],
    "lightnb.components:TrainerWork": ["__init__", "run"],
    "lightnb.components:Sweep": ["__init__", "run", "study"],
    "lightnb.components:LoadTest": ["__init__", "run"],
    "lightnb.ui:AppView": ["__init__"],
    "lightnb.ui:ParamsForm": ["__init__"],
}

FROZEN_SIGNATURES = {
    'lightnb.LightningApp.__init__':
        ("(self, root: 'LightningFlow | LightningWork', cluster: 'Any' = None,"
         " storage: 'str | None' = None, *, env: 'dict[str, str] | None' = None,"
         " name: 'str | None' = None, resume: 'bool' = False, hot_reload: 'bool' = True,"
         " log_level: 'str' = 'info') -> 'None'"),
    'lightnb.LightningApp.start':
        "(self, paused: 'bool' = False) -> 'LightningApp'",
    'lightnb.LightningApp.wait':
        "(self, timeout: 'float | None' = None) -> 'None'",
    'lightnb.LightningApp.wait_async':
        "(self, timeout: 'float | None' = None) -> 'None'",
    'lightnb.LightningApp.run':
        "(self) -> 'None'",
    'lightnb.LightningApp.stop':
        "(self, timeout: 'float | None' = None) -> 'None'",
    'lightnb.LightningApp.step':
        "(self, timeout: 'float | None' = 30) -> 'None'",
    'lightnb.LightningApp.view':
        "(self) -> 'Any'",
    'lightnb.LightningApp.logs':
        "(self, name: 'str' = 'root', n: 'int | None' = None) -> 'list[str]'",
    'lightnb.LightningApp.subscribe':
        "(self, listener: 'Callable[[Changes], None]') -> 'Callable[[], None]'",
    'lightnb.LightningApp.get_component_by_name':
        "(self, name: 'str') -> 'Any'",
    'lightnb.LightningApp.stage':
        'property',
    'lightnb.LightningApp.state':
        'property',
    'lightnb.LightningApp.end_message':
        'property',
    'lightnb.LightningApp.works':
        'property',
    'lightnb.LightningApp.request_stop':
        "(self, message: 'str' = 'stopped by the user') -> 'None'",
    'lightnb.LightningApp.ended':
        'property',
    'lightnb.LightningFlow.__init__':
        '(self, /, *args, **kwargs)',
    'lightnb.LightningFlow.run':
        "(self, *args: 'Any', **kwargs: 'Any') -> 'None'",
    'lightnb.LightningFlow.stop':
        "(self, end_msg: 'str' = '') -> 'None'",
    'lightnb.LightningFlow.fail':
        "(self, end_msg: 'str' = '') -> 'None'",
    'lightnb.LightningFlow.configure_layout':
        "(self) -> 'Any'",
    'lightnb.LightningFlow.works':
        "(self, recurse: 'bool' = True) -> 'list[LightningWork]'",
    'lightnb.LightningFlow.named_works':
        "(self, recurse: 'bool' = True) -> 'list[tuple[str, LightningWork]]'",
    'lightnb.LightningFlow.flows':
        'property',
    'lightnb.LightningFlow.state':
        'property',
    'lightnb.LightningFlow.name':
        'property',
    'lightnb.LightningFlow.root':
        'property',
    'lightnb.LightningWork.__init__':
        ("(self, parallel: 'bool' = False, cache_calls: 'bool' = True,"
         " raise_exception: 'bool' = True, cloud_compute: 'CloudCompute | None' = None, *,"
         " host: 'str' = '127.0.0.1', port: 'int | None' = None,"
         " start_with_flow: 'bool' = True, **upstream: 'Any') -> 'None'"),
    'lightnb.LightningWork.run':
        "(self, *args: 'Any', **kwargs: 'Any') -> 'None'",
    'lightnb.LightningWork.stop':
        "(self) -> 'None'",
    'lightnb.LightningWork.check_stop':
        "(self) -> 'None'",
    'lightnb.LightningWork.on_exit':
        "(self) -> 'None'",
    'lightnb.LightningWork.status':
        'property',
    'lightnb.LightningWork.has_started':
        'property',
    'lightnb.LightningWork.is_pending':
        'property',
    'lightnb.LightningWork.is_running':
        'property',
    'lightnb.LightningWork.has_succeeded':
        'property',
    'lightnb.LightningWork.has_failed':
        'property',
    'lightnb.LightningWork.has_stopped':
        'property',
    'lightnb.LightningWork.parallel':
        'property',
    'lightnb.LightningWork.cache_calls':
        'property',
    'lightnb.LightningWork.raise_exception':
        'property',
    'lightnb.LightningWork.cloud_compute':
        'property',
    'lightnb.LightningWork.state':
        'property',
    'lightnb.LightningWork.name':
        'property',
    'lightnb.Drive.__init__':
        ("(self, id: 'str', allow_duplicates: 'bool' = False, component_name: 'str | None' = None,"
         " root_folder: 'str | os.PathLike[str] | None' = None) -> 'None'"),
    'lightnb.Drive.put':
        "(self, path: 'str | os.PathLike[str]') -> 'None'",
    'lightnb.Drive.get':
        ("(self, path: 'str | os.PathLike[str]', component_name: 'str | None' = None, overwrite: 'bool' = False,"
         " timeout: 'float | None' = None) -> 'pathlib.Path'"),
    'lightnb.Drive.list':
        "(self, path: 'str | os.PathLike[str]' = '.', component_name: 'str | None' = None) -> 'list[str]'",
    'lightnb.Drive.delete':
        "(self, path: 'str | os.PathLike[str]') -> 'None'",
    'lightnb.Drive.component_name':
        'property',
    'lightnb.Path.__new__':
        "(cls, *args: 'Any', **kwargs: 'Any') -> 'Any'",
    'lightnb.Path.get':
        "(self, overwrite: 'bool' = False) -> 'None'",
    'lightnb.Path.exists_remote':
        "(self) -> 'bool'",
    'lightnb.Path.origin_name':
        'property',
    'lightnb.Path.consumer_name':
        'property',
    'lightnb.Payload.__init__':
        "(self, value: 'Any') -> 'None'",
    'lightnb.Payload.value':
        'property',
    'lightnb.CloudCompute.__init__':
        ("(self, name: 'str' = 'default', disk_size: 'int' = 0, idle_timeout: 'int | None' = None,"
         " shm_size: 'int | None' = None, interruptible: 'bool' = False, resources: 'dict[str,"
         " float] | None' = None, mounts: 'Any' = None, colocation_group_id: 'str | None' = None) -> None"),
    'lightnb.CloudCompute.dask_resources':
        'property',
    'lightnb.AppFailed.__init__':
        "(self, message: 'str', work_name: 'str | None' = None) -> 'None'",
    'lightnb.WorkStatus.__init__':
        ("(self, stage: 'WorkStageStatus', timestamp: 'float' = 0.0, message: 'str | None' = None,"
         " reason: 'str | None' = None) -> None"),
    'lightnb.components.TracerPythonScript.__init__':
        ("(self, script_path: 'str | os.PathLike[str]', script_args: 'Sequence[str] | str | None' = None,"
         " outputs: 'Sequence[str] | None' = None, env: 'dict[str, str] | None' = None,"
         " cwd: 'str | os.PathLike[str] | None' = None, **work_kwargs: 'Any') -> 'None'"),
    'lightnb.components.TracerPythonScript.run':
        "(self, script_args: 'Sequence[str] | str | None' = None) -> 'None'",
    'lightnb.components.PopenPythonScript.__init__':
        ("(self, script_path: 'str | os.PathLike[str]', script_args: 'Sequence[str] | str | None' = None,"
         " env: 'dict[str, str] | None' = None, cwd: 'str | os.PathLike[str] | None' = None, *,"
         " parallel: 'bool' = False, cache_calls: 'bool' = True, raise_exception: 'bool' = True,"
         " cloud_compute: 'CloudCompute | None' = None) -> 'None'"),
    'lightnb.components.PopenPythonScript.run':
        "(self, script_args: 'Sequence[str] | str | None' = None) -> 'None'",
    'lightnb.components.ShellWork.__init__':
        ("(self, command: 'str | Sequence[str]', cwd: 'str | os.PathLike[str] | None' = None,"
         " env: 'dict[str, str] | None' = None, *, parallel: 'bool' = False, cache_calls: 'bool' = True,"
         " raise_exception: 'bool' = True, cloud_compute: 'CloudCompute | None' = None) -> 'None'"),
    'lightnb.components.ShellWork.run':
        "(self, command: 'str | Sequence[str] | None' = None) -> 'None'",
    'lightnb.components.TensorBoardWork.__init__':
        ("(self, logdir: 'str | os.PathLike[str] | Drive' = 'lightning_runs', *,"
         " reload_interval: 'float' = 5.0, host: 'str' = '127.0.0.1', port: 'int | None' = None,"
         " parallel: 'bool' = True, cache_calls: 'bool' = True, raise_exception: 'bool' = True,"
         " cloud_compute: 'CloudCompute | None' = None, extra_args: 'list[str] | None' = None) -> 'None'"),
    'lightnb.components.TensorBoardWork.run':
        "(self) -> 'None'",
    'lightnb.components.ServeGradio.__init__':
        ("(self, checkpoint: 'str | Path | None' = None, *, module_class: 'type | None' = None,"
         " host: 'str' = '127.0.0.1', port: 'int | None' = None, parallel: 'bool' = True,"
         " cache_calls: 'bool' = True, raise_exception: 'bool' = True,"
         " cloud_compute: 'CloudCompute | None' = None) -> 'None'"),
    'lightnb.components.ServeGradio.run':
        "(self) -> 'None'",
    'lightnb.components.ServeGradio.predict':
        "(self, *args: 'Any', **kwargs: 'Any') -> 'Any'",
    'lightnb.components.ServeGradio.build_model':
        "(self) -> 'Any'",
    'lightnb.components.ModelServer.__init__':
        ("(self, checkpoint: 'str | Path | None' = None, *, module_class: 'type | None' = None,"
         " host: 'str' = '127.0.0.1', port: 'int | None' = None, parallel: 'bool' = True,"
         " cache_calls: 'bool' = True, raise_exception: 'bool' = True,"
         " cloud_compute: 'CloudCompute | None' = None) -> 'None'"),
    'lightnb.components.ModelServer.run':
        "(self) -> 'None'",
    'lightnb.components.TrainerWork.__init__':
        ("(self, module: 'Callable[..., Any]', datamodule: 'Callable[..., Any] | None' = None, *,"
         " module_params: 'dict[str, Any] | None' = None, data_params: 'dict[str, Any] | None' = None,"
         " max_epochs: 'int' = 1, monitor: 'str | None' = None, mode: 'str' = 'min',"
         " root_dir: 'str | os.PathLike[str]' = 'lightning_runs', trainer_kwargs: 'dict[str,"
         " Any] | None' = None, callbacks: 'list[Any] | None' = None, drive: 'Drive | None' = None,"
         " seed: 'int | None' = None, parallel: 'bool' = False, cache_calls: 'bool' = True,"
         " raise_exception: 'bool' = True, cloud_compute: 'CloudCompute | None' = None) -> 'None'"),
    'lightnb.components.TrainerWork.run':
        ("(self, module_params: 'dict[str, Any] | None' = None, data_params: 'dict[str,"
         " Any] | None' = None, max_epochs: 'int | None' = None) -> 'None'"),
    'lightnb.components.Sweep.__init__':
        ("(self, trial_work: 'Callable[[dict[str, Any]], LightningWork]',"
         " suggest: 'Callable[[Any], dict[str, Any]]', n_trials: 'int', concurrency: 'int' = 4,"
         " metric: 'str' = 'val_loss', direction: 'str' = 'minimize', pruner: 'Any' = None,"
         " sampler: 'Any' = None) -> 'None'"),
    'lightnb.components.Sweep.run':
        "(self) -> 'None'",
    'lightnb.components.Sweep.study':
        "property",
    'lightnb.components.LoadTest.__init__':
        ("(self, url: 'str | None' = None, path: 'str' = '/predict', method: 'str' = 'POST',"
         " json: 'Any' = None, users: 'int' = 10, spawn_rate: 'float' = 10, duration: 'float' = 10, *,"
         " parallel: 'bool' = True, cache_calls: 'bool' = True, raise_exception: 'bool' = True,"
         " cloud_compute: 'CloudCompute | None' = None) -> 'None'"),
    'lightnb.components.LoadTest.run':
        "(self, url: 'str | None' = None) -> 'None'",
    'lightnb.ui.AppView.__init__':
        "(self, app: 'LightningApp', **kwargs: 'Any') -> 'None'",
    'lightnb.ui.ParamsForm.__init__':
        ("(self, component: 'Component', names: 'list[str] | None' = None, *, ranges: 'dict[str,"
         " tuple[float | None, float | None]] | None' = None, choices: 'dict[str,"
         " list[Any]] | None' = None, title: 'str | None' = None) -> 'None'"),
    'lightnb.LightningFlow.schedule':
        "(self, cron_pattern: 'str', start_time: 'datetime | None' = None, user_key: 'str | None' = None) -> 'bool'",
    'lightnb.LightningFlow.display_name':
        'property',
    'lightnb.LightningWork.start':
        "(self) -> 'None'",
    'lightnb.LightningWork.delete':
        "(self) -> 'None'",
    'lightnb.LightningWork.start_with_flow':
        'property',
    'lightnb.LightningWork.display_name':
        'property',
    'lightnb.Path.exists_local':
        "(self) -> 'bool'",
    'lightnb.components.PythonServer.__init__':
        ("(self, input_type: 'type | None' = None, output_type: 'type | None' = None, *,"
         " host: 'str' = '127.0.0.1', port: 'int | None' = None, parallel: 'bool' = True,"
         " cache_calls: 'bool' = True, raise_exception: 'bool' = True,"
         " cloud_compute: 'CloudCompute | None' = None, **unsupported: 'Any') -> 'None'"),
    'lightnb.components.PythonServer.run':
        "(self, *args: 'Any', **kwargs: 'Any') -> 'None'",
    'lightnb.components.PythonServer.setup':
        "(self, *args: 'Any', **kwargs: 'Any') -> 'None'",
    'lightnb.components.PythonServer.predict':
        "(self, request: 'Any') -> 'Any'",
}


def signatures() -> dict[str, str]:
    found = {}
    for owner, members in MEMBERS.items():
        module_name, class_name = owner.split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        for member in members:
            key = f"{module_name}.{class_name}.{member}"
            value = inspect.getattr_static(cls, member, None)
            if value is None:
                found[key] = "missing"
            elif isinstance(value, property):
                found[key] = "property"
            else:
                found[key] = str(inspect.signature(getattr(cls, member)))
    return found


def test_the_names_lightnb_exports_are_frozen():
    import lightnb.components
    import lightnb.ui

    assert lightnb.__all__ == FROZEN_ALL, (
        "lightnb.__all__ changed: changing the public surface must be deliberate — update FROZEN_ALL in "
        "tests/test_public_api.py in the same commit")
    assert lightnb.components.__all__ == FROZEN_COMPONENTS_ALL, (
        "lightnb.components.__all__ changed: update FROZEN_COMPONENTS_ALL deliberately")
    assert lightnb.ui.__all__ == FROZEN_UI_ALL, "lightnb.ui.__all__ changed: update FROZEN_UI_ALL deliberately"
    for name in FROZEN_ALL:
        assert hasattr(lightnb, name), f"lightnb.{name} is listed in __all__ but cannot be imported"


def test_the_signatures_of_the_public_classes_are_frozen():
    current = signatures()
    changed = {key: (FROZEN_SIGNATURES.get(key), value) for key, value in current.items()
               if FROZEN_SIGNATURES.get(key) != value}
    stale = sorted(set(FROZEN_SIGNATURES) - set(current))
    report = "\n".join(f"  {key}\n    frozen: {old}\n    now:    {new}" for key, (old, new) in changed.items())
    assert not changed and not stale, (
        "the public API changed — changing the public surface must be deliberate: if it is, update "
        f"FROZEN_SIGNATURES in tests/test_public_api.py in the same commit.\n{report}"
        + (f"\n  frozen but no longer checked: {stale}" if stale else ""))


def test_the_stages_of_a_work_are_frozen():
    assert [stage.value for stage in lightnb.WorkStageStatus] == [
        "not_started", "pending", "running", "succeeded", "failed", "stopped"], (
        "WorkStageStatus changed: flows compare against these strings — update deliberately")
    assert issubclass(lightnb.WorkStopped, BaseException) and not issubclass(lightnb.WorkStopped, Exception), (
        "WorkStopped must stay a BaseException: a work's `except Exception` must not swallow a stop")
