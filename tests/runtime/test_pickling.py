"""Code shipped by value keeps the file it came from, whatever cloudpickle does with ``co_filename``."""

from __future__ import annotations

import linecache
import pickle
import subprocess
import sys
import types

import cloudpickle

from lightnb.runtime.pickling import dumps

CELL = "/nonexistent/ipykernel_7/cell.py"  # a notebook cell: its text only in this process's linecache
CELL_SOURCE = """\
class Model:
    def fit(self, rows):
        def mean():
            return sum(rows) / len(rows)
        return mean()
"""

# What a worker does: unpickle the class, run it, send back the traceback as frames.
WORKER = """\
import pickle, sys
from lightnb.core.tracebacks import RemoteTraceback
cls = pickle.loads(sys.stdin.buffer.read())
try:
    cls().fit([])
except Exception as error:
    sys.stdout.buffer.write(pickle.dumps(RemoteTraceback.capture(error)))
"""


def _cell_class() -> type:
    module = types.ModuleType("__main__")  # pickled by value, as classes of a notebook's cells are
    exec(compile(CELL_SOURCE, CELL, "exec"), module.__dict__)
    return module.Model


def test_a_class_from_a_cell_fails_on_another_process_with_its_source_lines():
    data = dumps(_cell_class())
    worker = subprocess.run([sys.executable, "-c", WORKER], input=data, capture_output=True, check=True)
    remote = pickle.loads(worker.stdout)
    linecache.cache[CELL] = (len(CELL_SOURCE), None, CELL_SOURCE.splitlines(True), CELL)  # the kernel's copy
    try:
        rendered = remote.render()
    finally:
        linecache.cache.pop(CELL, None)
    assert f'File "{CELL}", line 5, in fit\n    return mean()' in rendered
    assert f'File "{CELL}", line 4, in mean\n    return sum(rows) / len(rows)' in rendered
    assert rendered.endswith("ZeroDivisionError: division by zero\n")


def test_nested_code_keeps_its_file_and_plain_loads_reads_it():
    loaded = cloudpickle.loads(dumps(_cell_class()))
    fit = loaded.fit.__code__
    nested = next(c for c in fit.co_consts if isinstance(c, types.CodeType))
    assert (fit.co_filename, nested.co_filename, fit.co_firstlineno) == (CELL, CELL, 2)
