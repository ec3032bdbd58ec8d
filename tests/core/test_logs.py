"""A component's log: stdout and stderr interleaved line by line, never inside a line."""

from __future__ import annotations

from lightnb.core.logs import LogBuffer


def test_a_line_of_one_stream_never_breaks_an_unfinished_line_of_the_other():
    log = LogBuffer()
    log.append("argv: ", "stdout")  # an unbuffered print writes its pieces one by one
    log.append("to stderr\n", "stderr")
    log.append("['--epochs', '2']\n", "stdout")
    assert log.lines() == ["to stderr", "argv: ['--epochs', '2']"]


def test_unfinished_lines_show_at_the_end_and_following_gives_each_complete_line_once():
    log = LogBuffer(max_lines=3)
    log.append("a\nb\nhalf", "stdout")
    assert log.lines() == ["a", "b", "half"]
    lines, count = log.since(0)
    assert (lines, count) == (["a", "b"], 2)
    log.append(" done\nc\nd\n", "stdout")
    assert log.since(count) == (["half done", "c", "d"], 5)
    assert log.lines() == ["half done", "c", "d"]  # the last three kept
