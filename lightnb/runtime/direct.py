"""Direct streaming: a work's batches go from its worker process straight to the app's client, not through
the scheduler.

On the scheduler route (``Worker.log_event`` → scheduler → client) every update of every work crosses the
worker's event loop, the scheduler's and the client's. On the embedded cluster the scheduler lives in the
client process: at 1000 works × 10 Hz it shares that process's CPU with the app, and a worker's loop busy
starting hundreds of tasks holds the reports of the works already running behind them. The direct route
skips both loops: the client listens on a socket (127.0.0.1 on the embedded cluster), each worker process
running a call of the app opens one connection to it, and a thread of its own flushes the app's outbox
there (see :class:`~lightnb.runtime.worker.Outbox`).

What holds:

* **Only the app's workers are heard.** The first 32 bytes of a connection must be the app's token, sent to
  the workers with each call (inside the task, over the cluster's own, TLS-secured, connections). A
  connection that does not present it is closed before anything it sent is unpickled.
* **Order.** One connection per worker process and app, written by one flush at a time: a call's batches
  arrive in the order of their sequence numbers, as on the scheduler route.
* **The final report first.** A call's last flush waits until the client has taken its batches in (a
  *sync* frame, answered after everything before it on the connection was handed to the app), so the
  task's completion — which travels through the scheduler — never overtakes the call's final report.
* **Falling back.** A worker that cannot open the connection within :data:`CONNECT_SECONDS`, or whose
  connection breaks, sends on the scheduler route from then on (the client listens to both), first sending
  again what the client had not confirmed (the app drops a batch it already has).

Where (:func:`choose_route`): by default only on a cluster that ends with this process, on loopback. On
another cluster only when ``LIGHTNB_DIRECT_STREAM`` names an address of this machine the workers can reach
(the client then listens there), and not for a named (durable) app — a resumed app reads on the scheduler
what its works reported while nobody listened — nor on a TLS cluster (this route is not encrypted).

Frames (after the token): a 4-byte big-endian length, a 1-byte kind, the body. ``M``: one outbox message
(pickled batches). ``S``: a sync; the client writes the 8-byte body back.
"""

from __future__ import annotations

import hmac
import queue
import secrets
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

ENV = "LIGHTNB_DIRECT_STREAM"
TOKEN_BYTES = 32
# How long a worker may take to open its connection to the client before it uses the scheduler route.
CONNECT_SECONDS = 2.0
# How long a call's last flush waits for the client to confirm it has the call's batches.
SYNC_SECONDS = 10.0
_HEADER = struct.Struct("!IB")
MESSAGE, SYNC = b"M"[0], b"S"[0]
# How many of the last messages a worker keeps until the client confirmed them (sent again by the scheduler
# route if the connection breaks first).
RESEND = 1000
# The shortest time between two flushes of a worker process's outbox.
FLUSH_INTERVAL = 0.005
# A frame larger than this is refused (a connection sending one is not a worker of this app).
MAX_FRAME = 1 << 30


_OFF = ("0", "off", "no", "false")
_DEFAULT = ("", "1", "on", "yes", "true")


@dataclass(frozen=True)
class RouteChoice:
    """Where the app listens for its workers (None: the scheduler route), and why not when asked for."""

    host: str | None
    why_not: str | None = None


def choose_route(setting: str, ends_here: bool, durable: bool, scheduler_address: str) -> RouteChoice:
    """Which route an app's batches take. ``setting`` is ``$LIGHTNB_DIRECT_STREAM``: unset (direct on a
    cluster that ends with this process, on loopback), ``0`` (never), or an address of this machine that the
    workers of another cluster can reach (direct there too, where it may be)."""
    value = setting.strip()
    if value.lower() in _OFF:
        return RouteChoice(None)
    if ends_here:
        return RouteChoice("127.0.0.1")
    if value.lower() in _DEFAULT:
        return RouteChoice(None)
    if durable:
        return RouteChoice(None, f"{ENV}={value} is not used by a named (durable) app: a resumed app reads what "
                                 "its works reported while nobody listened on the scheduler, so their reports "
                                 "stay on the scheduler route")
    if scheduler_address.startswith(("tls://", "wss://")):
        return RouteChoice(None, f"{ENV}={value} is not used on a cluster that speaks TLS ({scheduler_address}): "
                                 "the direct route is not encrypted, so the works' reports stay on the "
                                 "scheduler route")
    return RouteChoice(value)


class DirectStreamWarning(UserWarning):
    """Direct streaming was asked for where it is not used."""


@dataclass(frozen=True)
class Route:
    """Where a worker sends an app's batches directly, and the token that proves it is one of the app's."""

    address: tuple[str, int]
    token: bytes


# -- reading frames (pure) --------------------------------------------------------------------------------
class BadPeer(Exception):
    """The peer is not a worker of this app (wrong token, or a frame no worker sends)."""


@dataclass
class Frame:
    kind: int
    body: bytes


@dataclass
class FrameReader:
    """Cuts what one connection sent into frames; checks the token first."""

    token: bytes
    authenticated: bool = False
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames complete with ``data``; raises :class:`BadPeer` for a peer to drop."""
        self._buffer += data
        frames: list[Frame] = []
        offset = 0
        view = memoryview(self._buffer)
        try:
            if not self.authenticated:
                if len(self._buffer) < TOKEN_BYTES:
                    return frames
                if not hmac.compare_digest(bytes(view[:TOKEN_BYTES]), self.token):
                    raise BadPeer("wrong token")
                self.authenticated = True
                offset = TOKEN_BYTES
            while len(self._buffer) - offset >= _HEADER.size:
                length, kind = _HEADER.unpack_from(view, offset)
                if kind not in (MESSAGE, SYNC) or length > MAX_FRAME or (kind == SYNC and length != 8):
                    raise BadPeer(f"a frame of kind {kind} and {length} bytes")
                end = offset + _HEADER.size + length
                if len(self._buffer) < end:
                    break
                frames.append(Frame(kind, bytes(view[offset + _HEADER.size:end])))
                offset = end
        finally:
            view.release()
        del self._buffer[:offset]
        return frames


def frame(kind: int, body: bytes) -> bytes:
    return _HEADER.pack(len(body), kind) + body


# -- the client's side ------------------------------------------------------------------------------------
class Receiver:
    """Listens for the app's workers and hands each message to ``on_message``, on a thread of its own, in
    the order each connection sent them."""

    def __init__(self, on_message: Callable[[bytes], None], host: str = "127.0.0.1") -> None:
        self._on_message = on_message
        self.token = secrets.token_bytes(TOKEN_BYTES)
        self._listener = socket.create_server((host, 0))
        self._listener.setblocking(False)
        self.route = Route((host, self._listener.getsockname()[1]), self.token)
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        self._closed = False
        self.refused = 0  # connections dropped for not being the app's (diagnostics, tests)
        self.messages = 0
        self._thread = threading.Thread(target=self._run, name="lightnb-direct-receive", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._closed:
                for key, _ in self._selector.select():
                    if key.data == "wake":
                        return
                    if key.data == "accept":
                        self._accept()
                    else:
                        self._read(key.fileobj, key.data)  # type: ignore[arg-type]
        finally:
            for key in list(self._selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            self._selector.close()
            self._wake_write.close()

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._selector.register(conn, selectors.EVENT_READ, FrameReader(self.token))

    def _read(self, conn: socket.socket, reader: FrameReader) -> None:
        try:
            data = conn.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        try:
            frames = reader.feed(data)
        except BadPeer:
            self.refused += 1
            self._drop(conn)
            return
        for item in frames:
            if item.kind == MESSAGE:
                self.messages += 1
                try:
                    self._on_message(item.body)
                except Exception:  # one bad message must not end the route for every work
                    pass
            else:
                try:  # 8 bytes; bounded, so a peer that does not read cannot hold this thread
                    conn.settimeout(SYNC_SECONDS)
                    conn.sendall(item.body)
                    conn.setblocking(False)
                except OSError:
                    self._drop(conn)
                    return

    def _drop(self, conn: socket.socket) -> None:
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._wake_write.send(b"x")
        except OSError:
            pass
        if threading.current_thread() is not self._thread:
            self._thread.join(5)


# -- a worker's side --------------------------------------------------------------------------------------
class Sender:
    """One worker process's connection to an app's client: the app's outbox here flushes on a thread of
    its own and sends on it; after a failure everything goes by ``fallback_send`` (the scheduler route)."""

    def __init__(self, route: Route, fallback_send: Callable[[bytes], None]) -> None:
        self._fallback = fallback_send
        self._lock = threading.Lock()  # one frame written at a time
        self._answers = threading.Lock()  # one reader of the client's answers at a time
        self._sync_id = 0
        self._answered = 0  # the last sync the client answered
        self._sent = 0  # messages written on the connection
        # Messages written but not yet known to have reached the client (numbered); sent again by the
        # fallback if the connection breaks (the app drops a batch it already has: batches are numbered).
        self._unsure: deque[tuple[int, bytes]] = deque(maxlen=RESEND)
        self._syncs: deque[tuple[int, int]] = deque()  # (sync id, messages written before it), unanswered
        self._sock: socket.socket | None = None
        try:
            sock = socket.create_connection(route.address, timeout=CONNECT_SECONDS)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(SYNC_SECONDS)
            sock.sendall(route.token)
            self._sock = sock
        except OSError:
            pass  # the client cannot be reached from here: the scheduler route (no flush thread needed)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        if self._sock is not None:
            threading.Thread(target=self._flushes, name="lightnb-direct-flush", daemon=True).start()

    @property
    def direct(self) -> bool:
        """Whether it still sends on its own connection."""
        return self._sock is not None

    def schedule(self, flush: Callable[[], None]) -> None:
        self._jobs.put(flush)

    def _flushes(self) -> None:
        """Run the outbox's flushes, at most one per :data:`FLUSH_INTERVAL`: a lone change leaves at once,
        busy works' changes wait a few milliseconds and leave together (the cost is per message)."""
        last = 0.0
        while (job := self._jobs.get()) is not None:
            wait = last + FLUSH_INTERVAL - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                job()
            except Exception:
                pass
            last = time.monotonic()

    def send(self, data: bytes) -> None:
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.sendall(frame(MESSAGE, data))
                    self._sent += 1
                    self._unsure.append((self._sent, data))
                    return
                except OSError:
                    self._broken()
            self._fallback(data)

    def settle(self) -> None:
        """Return once the client has handed everything sent so far to the app (or the route broke). Syncs of
        several calls may be in flight at once: the client answers them in order, and whichever call reads
        an answer notes it for all (the flush thread is never held up by a call waiting here)."""
        with self._lock:
            if self._sock is None:
                return
            self._sync_id += 1
            mine = self._sync_id
            self._syncs.append((mine, self._sent))
            try:
                self._sock.sendall(frame(SYNC, struct.pack("!Q", mine)))
            except OSError:
                self._broken()
                return
        with self._answers:
            while self._answered < mine:
                sock = self._sock
                if sock is None:
                    return
                try:
                    answer = b""
                    while len(answer) < 8:
                        chunk = sock.recv(8 - len(answer))
                        if not chunk:
                            raise ConnectionError("the client closed the connection")
                        answer += chunk
                except OSError:
                    with self._lock:
                        self._broken()
                    return
                self._answered = struct.unpack("!Q", answer)[0]
                with self._lock:  # answered in order: every sync up to this one, and what it covered, arrived
                    covered = 0
                    while self._syncs and self._syncs[0][0] <= self._answered:
                        covered = self._syncs.popleft()[1]
                    while self._unsure and self._unsure[0][0] <= covered:
                        self._unsure.popleft()

    def _broken(self) -> None:
        """The connection is gone (called holding ``_lock``): what may not have arrived goes by the fallback."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
            unsure = list(self._unsure)
            self._unsure.clear()
            for _, data in unsure:
                self._fallback(data)

    def close(self) -> None:
        """The app ended: stop flushing and close the connection (nothing is sent again)."""
        self._jobs.put(None)
        with self._lock:
            self._unsure.clear()
            self._broken()
