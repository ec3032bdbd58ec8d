"""Tracebacks travel as frames and get their source lines where they are rendered."""

from __future__ import annotations

import builtins
import linecache
import pickle
import sys
import traceback

import pytest

from lightnb.core.tracebacks import RemoteTraceback, format_user_traceback

CELL = "/nonexistent/ipykernel_1/cell.py"  # a notebook cell: no file, its text only in the kernel's linecache
CELL_SOURCE = "def divide(x):\n    return 1 / x\n"


def _caught(function, *args) -> BaseException:
    try:
        function(*args)
    except BaseException as error:
        return error
    raise AssertionError("no error")


def _without_carets(text: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.strip() or set(line.strip()) - set("^~"))


def test_lines_missing_where_captured_are_read_where_rendered():
    namespace: dict = {}
    exec(compile(CELL_SOURCE, CELL, "exec"), namespace)
    linecache.cache.pop(CELL, None)  # the worker: it ran the cell's code, but has no text for it
    remote = pickle.loads(pickle.dumps(RemoteTraceback.capture(_caught(namespace["divide"], 0))))
    assert "1 / x" not in remote.render()

    linecache.cache[CELL] = (len(CELL_SOURCE), None, CELL_SOURCE.splitlines(True), CELL)  # the kernel
    try:
        assert remote.render().endswith(f'  File "{CELL}", line 2, in divide\n    return 1 / x\n'
                                        "ZeroDivisionError: division by zero\n")
    finally:
        linecache.cache.pop(CELL, None)


def test_a_chain_renders_as_python_prints_it():
    def parse(text):
        try:
            return int(text)
        except ValueError as error:
            raise RuntimeError(f"bad setting {text!r}") from error

    def cleanup():
        try:
            parse("x")
        finally:
            {}["missing"]  # an error while handling: the context

    error = _caught(cleanup)
    rendered = RemoteTraceback.capture(error).render()
    assert rendered == _without_carets("".join(traceback.format_exception(error)))
    assert rendered.index("ValueError") < rendered.index("direct cause") < rendered.index("RuntimeError: bad") \
        < rendered.index("During handling") < rendered.index("KeyError: 'missing'")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are new in Python 3.11")
def test_exception_groups_travel_formatted():
    group = builtins.ExceptionGroup("two", [ValueError("a"), TypeError("b")])
    error = _caught(lambda: (_ for _ in ()).throw(group))
    rendered = RemoteTraceback.capture(error).render()
    assert "ExceptionGroup: two (2 sub-exceptions)" in rendered
    assert "ValueError: a" in rendered and "TypeError: b" in rendered


def test_lightnbs_own_frames_at_the_top_are_left_out():
    from lightnb.core import tracebacks

    def user_code():
        raise ValueError("in user code")

    # lightnb's frame (the call of the user's code, catching its error) above the user's frame.
    namespace: dict = {}
    exec(compile("def call(f):\n    try:\n        f()\n    except BaseException as error:\n        return error\n",
                 tracebacks.__file__, "exec"), namespace)
    error = namespace["call"](user_code)
    assert error.__traceback__.tb_frame.f_code.co_filename == tracebacks.__file__
    for text in (format_user_traceback(error), RemoteTraceback.capture(error).render()):
        assert tracebacks.__file__ not in text and "in user_code" in text


@pytest.mark.parametrize("message", ["", "multi\nline"])
def test_the_exception_line_is_kept(message):
    rendered = str(RemoteTraceback.capture(_caught(lambda: exec("raise OSError(message)", {"message": message}))))
    assert rendered.endswith(f"OSError: {message}\n" if message else "OSError\n")
