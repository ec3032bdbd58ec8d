"""Run a Python script unchanged, as ``python script.py args`` would, and optionally report some of its
globals when it ends: ``python _tracer.py [--outputs FILE NAME,NAME] -- script.py arg ...``.

This file is executed by path in a fresh interpreter (by :class:`~lightnb.components.TracerPythonScript`),
so it imports nothing from lightnb: the script gets its own ``__main__``, ``sys.argv``, working directory
and signal handlers, and ``sys.path[0]`` is the script's folder so that its sibling modules import.
"""

import json
import os
import pathlib
import sys
import traceback
import types


def _jsonable(value):
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    json.dumps(value)  # raises TypeError for what cannot be state
    return value


def _write_outputs(module, names, target):
    found, problems = {}, []
    for name in names:
        if name not in module.__dict__:
            problems.append(f"{name!r} is not defined by the script")
            continue
        try:
            found[name] = _jsonable(module.__dict__[name])
        except TypeError:
            problems.append(f"{name!r} is a {type(module.__dict__[name]).__name__}, which is not "
                            "JSON-serializable (outputs must be str, numbers, bools, None, paths, or "
                            "lists/dicts of them)")
    with open(target, "w", encoding="utf-8") as file:
        json.dump({"values": found, "problems": problems}, file)


def main(argv):
    outputs_file, names = None, []
    if argv[:1] == ["--outputs"]:
        outputs_file, names = argv[1], [n for n in argv[2].split(",") if n]
        argv = argv[3:]
    if argv[:1] != ["--"] or len(argv) < 2:
        sys.exit("usage: _tracer.py [--outputs FILE NAMES] -- script.py [args ...]")
    script, args = argv[1], argv[2:]
    path = os.path.abspath(script)
    with open(path, "rb") as file:
        code = compile(file.read(), script, "exec")
    module = types.ModuleType("__main__")
    module.__dict__.update({"__file__": script, "__builtins__": __builtins__, "__spec__": None,
                            "__loader__": None, "__package__": None, "__cached__": None})
    sys.modules["__main__"] = module
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(path)
    try:
        exec(code, module.__dict__)
    except SystemExit as end:
        if outputs_file and end.code in (None, 0):
            _write_outputs(module, names, outputs_file)
        raise
    except BaseException as error:  # the script's own traceback, without this runner's frame
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        sys.exit(1)
    if outputs_file:
        _write_outputs(module, names, outputs_file)


if __name__ == "__main__":
    main(sys.argv[1:])
