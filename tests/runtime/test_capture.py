"""Per-component output (lightnb.runtime.capture): what a thread running a component prints goes to that
component's log; every other thread prints where it did before."""

from __future__ import annotations

import contextlib
import io
import sys
import threading

from lightnb.runtime import capture


@contextlib.contextmanager
def terminal():
    """The process's own stdout/stderr, with the routers installed over them (all restored after). Set up
    in the test's body: pytest puts its own capture back on sys.stdout after fixtures."""
    saved = sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    sys.stdout, sys.stderr = out, err
    try:
        capture.install()
        yield out, err
    finally:
        sys.stdout, sys.stderr = saved


def test_a_routed_thread_prints_into_its_sink_while_other_threads_print_as_before():
    log = []
    routed = threading.Barrier(2)
    printed = threading.Barrier(2)

    def component():
        with capture.route(lambda stream, text: log.append((stream, text))):
            routed.wait(10)  # the other thread prints while this one is routed
            print("from the work")
            print("a warning", file=sys.stderr)
            printed.wait(10)

    def bystander():
        routed.wait(10)
        print("from the kernel")
        printed.wait(10)

    with terminal() as (out, err):
        threads = [threading.Thread(target=component), threading.Thread(target=bystander)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        print("main thread")
    assert "".join(text for stream, text in log if stream == "stdout") == "from the work\n"
    assert "".join(text for stream, text in log if stream == "stderr") == "a warning\n"
    assert out.getvalue() == "from the kernel\nmain thread\n"
    assert err.getvalue() == ""


def test_a_nested_route_gives_back_the_outer_sink_and_the_thread_prints_as_before_after_it():
    outer, inner = [], []
    with terminal() as (out, _):
        with capture.route(lambda stream, text: outer.append(text)):
            print("outer 1")
            with capture.route(lambda stream, text: inner.append(text)):
                print("inner")
            print("outer 2")
        print("after")
    assert "".join(outer) == "outer 1\nouter 2\n"
    assert "".join(inner) == "inner\n"
    assert out.getvalue() == "after\n"


def test_routing_survives_something_replacing_sys_stdout():
    replacement = io.StringIO()
    log = []
    with terminal():
        sys.stdout = replacement  # e.g. a notebook front-end swapping its stream
        with capture.route(lambda stream, text: log.append(text)):
            print("routed")
        print("plain")
    assert "".join(log) == "routed\n"
    assert replacement.getvalue() == "plain\n"
