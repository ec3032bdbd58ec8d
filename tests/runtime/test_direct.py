"""Direct streaming (lightnb.runtime.direct): the frame reader driven synchronously; a sender and a receiver
over loopback sockets; and apps on a real cluster, whose works' updates reach the flow straight from the
workers, fall back to the scheduler when the client's listener is gone, and are never taken from a peer
without the app's token."""

from __future__ import annotations

import os
import pickle
import socket
import struct
import threading
import time

import pytest
from polling import wait_until

from lightnb import LightningApp, LightningFlow, LightningWork
from lightnb.runtime.dask import events_topic
from lightnb.runtime.direct import (
    MESSAGE,
    SYNC,
    TOKEN_BYTES,
    BadPeer,
    FrameReader,
    Receiver,
    Route,
    Sender,
    choose_route,
    frame,
)

# -- the frame reader (pure) --------------------------------------------------------------------------------
TOKEN = bytes(range(TOKEN_BYTES))


def test_frames_cut_anywhere_come_out_whole_and_in_order():
    stream = TOKEN + frame(MESSAGE, b"first") + frame(SYNC, struct.pack("!Q", 7)) + frame(MESSAGE, b"x" * 1000)
    for cut in (1, 5, 31, 32, 33, 40, 100):
        reader = FrameReader(TOKEN)
        frames = []
        for start in range(0, len(stream), cut):
            frames += reader.feed(stream[start:start + cut])
        assert [(f.kind, f.body) for f in frames] == [
            (MESSAGE, b"first"), (SYNC, struct.pack("!Q", 7)), (MESSAGE, b"x" * 1000)]


def test_a_peer_without_the_token_is_refused_before_any_frame():
    reader = FrameReader(TOKEN)
    assert reader.feed(b"\0" * 10) == []  # not enough to tell yet
    with pytest.raises(BadPeer, match="token"):
        reader.feed(b"\0" * (TOKEN_BYTES - 10) + frame(MESSAGE, b"payload"))


@pytest.mark.parametrize("bad", [frame(b"Z"[0], b"?"), frame(SYNC, b"short"),
                                 struct.pack("!IB", (1 << 30) + 1, MESSAGE)])
def test_a_frame_no_worker_sends_is_refused(bad):
    with pytest.raises(BadPeer):
        FrameReader(TOKEN).feed(TOKEN + bad)


# -- which route (pure) --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("setting", "ends_here", "durable", "scheduler", "host", "why"), [
    ("", True, False, "tls://127.0.0.1:1", "127.0.0.1", None),  # the embedded cluster: direct, loopback
    ("", True, True, "tls://127.0.0.1:1", "127.0.0.1", None),  # nothing of it outlives this process anyway
    ("0", True, False, "tls://127.0.0.1:1", None, None),  # turned off
    ("", False, False, "tcp://10.0.0.5:8786", None, None),  # another cluster: the scheduler, by default
    ("10.0.0.1", False, False, "tcp://10.0.0.5:8786", "10.0.0.1", None),  # asked for, on an address given
    ("10.0.0.1", False, True, "tcp://10.0.0.5:8786", None, "durable"),  # said why not
    ("10.0.0.1", False, False, "tls://10.0.0.5:8786", None, "TLS"),
])
def test_the_route_is_direct_only_where_it_holds(setting, ends_here, durable, scheduler, host, why):
    choice = choose_route(setting, ends_here, durable, scheduler)
    assert choice.host == host
    assert (choice.why_not is None) if why is None else (why in choice.why_not and "LIGHTNB_DIRECT_STREAM" in
                                                         choice.why_not)


# -- sender and receiver over loopback ----------------------------------------------------------------------
@pytest.fixture
def receiver():
    got: list[bytes] = []
    slow = threading.Event()

    def on_message(data: bytes) -> None:
        if slow.is_set():
            time.sleep(0.01)
        got.append(data)

    started = Receiver(on_message)
    started.got, started.slow = got, slow
    yield started
    started.close()


def test_a_senders_messages_arrive_in_order_and_settle_waits_until_all_are_taken_in(receiver):
    receiver.slow.set()  # the app is slow to take messages in: settle must still wait for every one
    fallback: list[bytes] = []
    sender = Sender(receiver.route, fallback.append)
    assert sender.direct
    for index in range(50):
        sender.send(f"m{index}".encode())
    sender.settle()
    assert receiver.got == [f"m{index}".encode() for index in range(50)]
    assert fallback == []
    sender.close()


def test_a_connection_without_the_apps_token_is_dropped_and_nothing_it_sent_is_unpickled(receiver, tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with socket.create_connection(receiver.route.address) as rogue:
        rogue.sendall(os.urandom(TOKEN_BYTES) + frame(MESSAGE, pickle.dumps(Payload())))
        rogue.settimeout(5)
        assert rogue.recv(1) == b""  # closed by the receiver
    assert receiver.refused == 1 and receiver.got == [] and not marker.exists()
    # The app's own workers are still heard.
    sender = Sender(receiver.route, lambda data: None)
    sender.send(b"ok")
    sender.settle()
    assert receiver.got == [b"ok"]


def test_a_sender_that_cannot_reach_the_client_or_loses_it_uses_the_fallback(receiver):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = Route(unused.getsockname(), TOKEN)  # bound, not listening: refused at once
        fallback: list[bytes] = []
        sender = Sender(nowhere, fallback.append)
    assert not sender.direct
    sender.send(b"a")
    sender.settle()  # nothing to wait for
    assert fallback == [b"a"]

    fallback = []
    sender = Sender(receiver.route, fallback.append)
    sender.send(b"before")
    sender.settle()
    receiver.close()  # the client's listener is gone
    wait_until(lambda: (sender.send(b"after"), bool(fallback))[1], timeout=10)
    assert receiver.got == [b"before"] and fallback[-1] == b"after" and not sender.direct


# -- apps on a real cluster ---------------------------------------------------------------------------------
class Ticker(LightningWork):
    def __init__(self, ticks: int) -> None:
        super().__init__(parallel=True)
        self.ticks = ticks
        self.count = 0

    def run(self, hold: float = 0.0) -> None:
        for _ in range(self.ticks):
            self.count += 1
            time.sleep(0.005)
        end = time.monotonic() + hold
        while time.monotonic() < end:
            self.count += 1
            time.sleep(0.02)


class Tickers(LightningFlow):
    def __init__(self, works: int, ticks: int, hold: float = 0.0) -> None:
        super().__init__()
        self.a, self.b, self.c = (Ticker(ticks) for _ in range(3))
        self.hold = hold
        self.seen: list[int] = []  # every value of a.count the flow saw

    def run(self) -> None:
        for work in (self.a, self.b, self.c):
            work.run(self.hold)
        if not self.seen or self.seen[-1] != self.a.count:
            self.seen = [*self.seen, self.a.count]
        if all(work.has_succeeded for work in (self.a, self.b, self.c)):
            self.stop()


def _events_on_scheduler(app, cluster) -> int:
    from distributed import Client

    with Client(cluster) as client:
        return len(client.get_events(events_topic(app.app_id)))


def test_works_stream_straight_to_the_app_in_order_with_their_final_report(cluster):
    root = Tickers(3, ticks=200)
    app = LightningApp(root, cluster=cluster).start()
    executor = app.loop.executor
    assert executor.route is not None and executor.route.address[0] == "127.0.0.1"
    app.wait(120)
    assert [work.count for work in (root.a, root.b, root.c)] == [200, 200, 200]
    assert root.seen == sorted(root.seen) and root.seen[-1] == 200  # never a value older than one seen
    assert app.stage == "stopped" and all(work.has_succeeded for work in (root.a, root.b, root.c))
    batches = sum(executor._seen.values())  # each call's last batch number: how many it sent
    assert 0 < executor._receiver.messages < batches  # the calls in one worker process share messages
    assert _events_on_scheduler(app, cluster) == 0  # none went through the scheduler


def test_with_direct_streaming_off_the_scheduler_carries_the_updates(cluster, monkeypatch):
    monkeypatch.setenv("LIGHTNB_DIRECT_STREAM", "0")
    root = Tickers(3, ticks=50)
    app = LightningApp(root, cluster=cluster).start()
    app.wait(120)
    assert app.loop.executor.route is None
    assert [work.count for work in (root.a, root.b, root.c)] == [50, 50, 50]
    assert _events_on_scheduler(app, cluster) > 0


def test_when_the_apps_listener_goes_the_works_report_through_the_scheduler_and_finish(cluster):
    root = Tickers(3, ticks=10, hold=3.0)
    app = LightningApp(root, cluster=cluster).start()
    executor = app.loop.executor
    wait_until(lambda: root.a.count >= 20)  # running, heard directly
    assert _events_on_scheduler(app, cluster) == 0
    executor._receiver.close()  # as if the client's listener were lost
    at_close = root.a.count
    wait_until(lambda: root.a.count > at_close + 10)  # still heard, now through the scheduler
    app.wait(120)
    assert app.stage == "stopped" and all(work.has_succeeded for work in (root.a, root.b, root.c))
    assert _events_on_scheduler(app, cluster) > 0
