"""Run a sans-I/O protocol core over a real socket: the layer that touches sockets.

Theory of operation
-------------------
Protocol cores in this library (:mod:`handshake_lib.tcp`, :mod:`handshake_lib.tls`, later ``ssh``) are
sans-I/O: they take bytes and hand back events and bytes to send.  This package supplies the rest
(:class:`SocketDriver` runs a core over a socket, :func:`run_connection` until an event,
:class:`LoopbackServer` accepts connections in a thread), with the course's safety rules built in:

* servers bind to loopback (127.0.0.1 or ::1) on a free port chosen by the kernel, and stop when their
  ``with`` block ends;
* every wait has a deadline, and running past it raises :class:`~handshake_lib.errors.ConnectionTimeout`;
* ``TCP_NODELAY`` is set on both ends: without it a handshake stalls about 40 ms on delayed ACKs
  (Nagle), which would hide every real cost from a learner and make widgets feel slow;
* every listener asks for the system's largest accept queue (:func:`listen_backlog`), so a burst of
  clients waits in the kernel instead of being dropped, and a server serves at most
  ``max_connections`` at once (the rest wait in that queue until a slot frees).

One module per protocol on top: :mod:`.tls` (our TLS client and server over sockets: ``tls_get``,
``open_tls``, ``TLSPageServer``) and :mod:`.tcp` (the kernel's own view of a real loopback connection).
Real implementations we talk to (OpenSSL today) are started by :mod:`handshake_lib.peers`, which
builds on this package; imports go downward only: net -> protocol packages -> wire and errors.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, Self

from ..errors import ConnectionTimeout, HandshakeError

DEFAULT_TIMEOUT = 5.0
LOOPBACK = "127.0.0.1"
# How many connections a thread-per-connection LoopbackServer serves at once (one thread each).
DEFAULT_MAX_THREADS = 64


def listen_backlog() -> int:
    """The largest accept queue the system allows: ``/proc/sys/net/core/somaxconn`` on Linux, else SOMAXCONN.

    ``listen(n)`` is silently capped at this value anyway; asking for it means a burst of clients (500
    at once in the load benchmark) waits in the kernel's queue instead of being refused or dropped.
    """
    try:
        return max(int(Path("/proc/sys/net/core/somaxconn").read_text().strip()), socket.SOMAXCONN)
    except (OSError, ValueError):
        return socket.SOMAXCONN


class SansIOConnection(Protocol):
    """What :class:`SocketDriver` and :func:`run_connection` need from a protocol core (h11's shape)."""

    def receive_data(self, data: bytes) -> list[object]:
        """Feed bytes from the peer (``b""`` means the peer closed); return the events they caused."""
        ...

    def data_to_send(self) -> bytes:
        """Bytes the core wants sent, removed from its outgoing buffer."""
        ...


def _nodelay(sock: socket.socket) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def listen_loopback(family: socket.AddressFamily = socket.AF_INET, backlog: int | None = None) -> socket.socket:
    """A listening socket on loopback, on a port the kernel picks (backlog: the system's maximum)."""
    host = "::1" if family == socket.AF_INET6 else LOOPBACK
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(listen_backlog() if backlog is None else backlog)
    except BaseException:
        sock.close()
        raise
    return sock


MAX_TIMEOUT = 86400.0  # one day: longer is a mistake (and 1e300 overflows the socket's own timeout)


def check_timeout(timeout: object) -> float:
    """``timeout`` if it is a number of seconds that a deadline can use: finite, > 0, at most a day."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be a number of seconds > 0 and at most {MAX_TIMEOUT:g}, not {timeout!r}")
    return float(timeout)


def connect(host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> socket.socket:
    """A connected TCP socket with ``TCP_NODELAY`` and a timeout on every operation (see :func:`check_timeout`)."""
    check_timeout(timeout)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as error:
        raise ConnectionTimeout(f"connecting to {host}:{port} took longer than {timeout} s") from error
    return _nodelay(sock)


# (seconds since the connection started, direction, transcript index): when a record crossed the wire.
Timing = tuple[float, str, int]


class SocketDriver:
    """Runs one sans-I/O core over one connected socket, with deadlines: the only loop that does.

    :meth:`receive` writes what the core queued, waits (until a deadline) for the peer's bytes, feeds
    them in, and writes the core's answer.  When the core raises a
    :class:`~handshake_lib.errors.HandshakeError` (a bad record, a bad certificate...), the fatal alert it
    queued is written before the error reaches the caller, so the peer learns why too.  A reset counts as
    a close: the core sees ``b""`` and decides what that means; ``peer_closed`` says it happened.

    Timings.  A core that keeps a ``transcript`` (entries with a ``direction``) and names its
    ``incoming_direction`` gets each entry stamped once in ``timings``: a record received with the moment
    its bytes came out of ``recv``, a record sent with the moment its bytes went into ``sendall`` (the
    core builds its answer while handling the peer's flight, but the answer leaves only after that work,
    so a sequence diagram drawn from these times shows where the time really goes).
    """

    def __init__(self, connection: SansIOConnection, sock: socket.socket, started: float | None = None) -> None:
        self.connection = connection
        self.sock = sock
        self.started = time.perf_counter() if started is None else started
        self.timings: list[Timing] = []
        self.peer_closed = False
        self._transcript: list[Any] | None = getattr(connection, "transcript", None)
        self._incoming: str | None = getattr(connection, "incoming_direction", None)
        self._seen = 0  # transcript entries already sorted into stamped or waiting
        self._unsent: list[int] = []  # indices of outgoing entries whose bytes have not been written yet

    def _now(self) -> float:
        return time.perf_counter() - self.started

    def _sort_new_entries(self, received_at: float | None) -> None:
        """Stamp new incoming entries with ``received_at``; queue new outgoing ones until they are sent."""
        transcript = self._transcript
        if transcript is None:
            return
        for index in range(self._seen, len(transcript)):
            direction = transcript[index].direction
            if direction == self._incoming and received_at is not None:
                self.timings.append((received_at, direction, index))
            else:
                self._unsent.append(index)
        self._seen = len(transcript)

    def _stamp_sent(self) -> None:
        if self._transcript is None or not self._unsent:
            return
        sent_at = self._now()
        self.timings.extend((sent_at, self._transcript[index].direction, index) for index in self._unsent)
        self._unsent.clear()

    def flush(self) -> None:
        """Write everything the core has queued."""
        self._sort_new_entries(None)
        data = self.connection.data_to_send()
        if data:
            self.sock.sendall(data)
        self._stamp_sent()

    def flush_quietly(self) -> None:
        """Send a queued alert after an error; the peer may already be gone, which is fine."""
        with contextlib.suppress(OSError):
            self.sock.settimeout(0.5)
            self.flush()

    def receive(self, deadline: float) -> list[Any]:
        """Wait (until ``deadline``, a time.monotonic() value) for bytes; feed them; send any answer."""
        self.flush()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectionTimeout("the peer did not answer in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError as error:
            raise ConnectionTimeout(f"the peer sent nothing within {remaining:.1f} s") from error
        except ConnectionResetError:
            data = b""  # a reset is a close, as far as the protocol can tell
        if not data:
            self.peer_closed = True
        received_at = self._now()
        try:
            events = self.connection.receive_data(data)
        except HandshakeError:
            self._sort_new_entries(received_at)
            self.flush_quietly()
            raise
        self._sort_new_entries(received_at)
        self.flush()
        return events


def run_connection(
    connection: SansIOConnection,
    sock: socket.socket,
    *,
    until: Callable[[object], bool],
    timeout: float = DEFAULT_TIMEOUT,
    on_event: Callable[[object], None] | None = None,
) -> list[object]:
    """Drive a sans-I/O ``connection`` over ``sock`` until an event satisfies ``until``.

    Returns every event seen.  The whole exchange, not each read, must finish within ``timeout``
    (:class:`~handshake_lib.errors.ConnectionTimeout` otherwise).  If the peer closes (or resets) first,
    the core sees ``b""`` and decides what that means (usually an error).  When the core raises, the alert
    it queued is sent first (see :class:`SocketDriver`).
    """
    driver = SocketDriver(connection, sock)
    deadline = time.monotonic() + timeout
    events: list[object] = []
    while True:
        try:
            new_events = driver.receive(deadline)
        except ConnectionTimeout as error:
            raise ConnectionTimeout(f"no result within {timeout} s: {error}") from error
        for event in new_events:
            events.append(event)
            if on_event is not None:
                on_event(event)
            if until(event):
                driver.flush()  # whatever the callbacks queued goes out before we return
                return events
        if driver.peer_closed:
            # The core has been told of the close and raised nothing: there is nothing left to wait for.
            return events


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost`` or a loopback address (127/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str = LOOPBACK, port: int = 0, *, allow_public: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: the kernel picks a free one).

    A host that is not loopback is refused unless ``allow_public``: a teaching server must not end
    up on a network by accident.
    """
    if not is_loopback(host) and not allow_public:
        raise ValueError(f"refusing to listen on {host!r}, which is not loopback (pass allow_public=True)")
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (0 picks a free one)")
    if host == LOOPBACK and port == 0:
        return listen_loopback()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        if port:  # a fixed port: be able to restart at once while old connections sit in TIME_WAIT
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(listen_backlog())
    except BaseException:
        listener.close()
        raise
    return listener


class LoopbackServer:
    """Accept connections in a background thread for as long as the ``with`` block runs.

    Each connection is handed to :meth:`serve` in a thread of its own, with ``TCP_NODELAY`` and a
    ``timeout`` on every operation and on the whole connection: once ``timeout`` seconds have passed
    since the accept, the accept thread shuts the socket down, so the handler's next (or current)
    read ends, and a client that trickles a byte now and then cannot keep a thread forever.  Leaving
    the block stops accepting and joins every thread (each bounded by the timeout), so nothing
    outlives the notebook cell or the test that started it.
    After ``__enter__``, ``host`` and ``port`` hold the bound address.

    ``lifetime`` (default: ``timeout``) replaces that whole-connection bound for a server whose
    connections legitimately last longer than one wait (an SSH session: its handler has its own idle
    timeout); when the block ends every connection still gets at most ``timeout`` more seconds.

    Limits (documented in ``docs/limits.md``): at most ``max_connections`` connections (default
    :data:`DEFAULT_MAX_THREADS`, one thread each) are served at once.  While they are all busy the
    server does not accept: new clients wait in the kernel's accept queue, which is as long as the
    system allows (:func:`listen_backlog`), and are served as slots free up.  A finished connection's
    thread is forgotten at once, so a server that ran for days holds only its live threads.
    Subclasses that can serve many connections without a thread each (:class:`~handshake_lib.net.tls.TLSPageServer`
    runs them all in one event loop) override :meth:`_run`.
    """

    name = "LoopbackServer"

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        allow_public: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_THREADS,
        lifetime: float | None = None,
    ) -> None:
        # Refuse a bad address now, in the caller's thread, not later in __enter__.
        if not is_loopback(host) and not allow_public:
            raise ValueError(f"refusing to listen on {host!r}, which is not loopback (pass allow_public=True)")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is out of range (0 picks a free one)")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError(f"max_connections must be a positive integer, not {max_connections!r}")
        self.host = host
        self.port = port
        self.allow_public = allow_public
        self.timeout = timeout
        self.max_connections = max_connections
        if lifetime is not None and lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self.lifetime = timeout if lifetime is None else lifetime
        self._listener: socket.socket | None = None
        self._loop_thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()  # live connection threads only
        self._workers_lock = threading.Lock()
        # A duplicate of each live connection's socket, with its deadline: shutting the duplicate down
        # ends the connection even after the handler wrapped (and detached) the original, as ssl does.
        self._deadlines: dict[socket.socket, float] = {}
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stop = threading.Event()

    def serve(self, conn: socket.socket) -> None:
        """Handle one accepted connection (closed by the caller afterwards)."""
        raise NotImplementedError

    @property
    def live_threads(self) -> int:
        """How many connection threads are running now (at most ``max_connections``)."""
        with self._workers_lock:
            return len(self._workers)

    def __enter__(self) -> Self:
        self._listener = listen(self.host, self.port, allow_public=self.allow_public)
        self.host, self.port = self._listener.getsockname()[:2]
        self._loop_thread = threading.Thread(target=self._run, name=f"{self.name}-accept", daemon=True)
        self._loop_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting; let the connections in progress end (each bounded by ``timeout``); release the port."""
        self._stop.set()
        if self._loop_thread is not None:
            self._loop_thread.join(self.timeout + 2)
        with self._workers_lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(self.timeout + 1)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _run(self) -> None:
        """The accept loop: one thread per connection, at most ``max_connections`` at a time."""
        assert self._listener is not None
        self._listener.settimeout(0.1)  # how often the loop looks at the stop flag
        while not self._stop.is_set():
            self._end_overdue_connections()
            # A free slot first: while every slot is busy, clients wait in the kernel's accept queue.
            if not self._slots.acquire(timeout=0.1):
                continue
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                self._slots.release()
                continue
            except OSError:
                self._slots.release()
                return
            try:
                watch = raw.dup()
            except OSError:  # out of file descriptors: refuse this client rather than serve it unbounded
                raw.close()
                self._slots.release()
                continue
            worker = threading.Thread(
                target=self._serve_and_close, args=(raw, watch), name=f"{self.name}-conn", daemon=True
            )
            with self._workers_lock:
                self._workers.add(worker)
                self._deadlines[watch] = time.monotonic() + self.lifetime
            worker.start()
        # Stopping: connections still running get what is left of their own deadlines (a handler
        # that ignores its socket being shut down is left to close(), which stops waiting for it too).
        give_up = time.monotonic() + self.timeout + 1
        with self._workers_lock:  # a long lifetime ends here: what is left of the timeout at most
            for watch, deadline in self._deadlines.items():
                self._deadlines[watch] = min(deadline, give_up - 1)
        while self.live_threads and time.monotonic() < give_up:
            self._end_overdue_connections()
            time.sleep(0.05)

    def _end_overdue_connections(self) -> None:
        now = time.monotonic()
        with self._workers_lock:
            for watch, deadline in list(self._deadlines.items()):
                if deadline <= now:
                    with contextlib.suppress(OSError):
                        watch.shutdown(socket.SHUT_RDWR)
                    del self._deadlines[watch]

    def _serve_and_close(self, raw: socket.socket, watch: socket.socket) -> None:
        try:
            with contextlib.closing(_nodelay(raw)):
                raw.settimeout(self.timeout)
                self.serve(raw)
        finally:
            with self._workers_lock:
                self._workers.discard(threading.current_thread())
                self._deadlines.pop(watch, None)
                watch.close()
            self._slots.release()


def wait_for_port(host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until something accepts connections on ``host:port`` (for peers started as processes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise ConnectionTimeout(f"nothing listened on {host}:{port} within {timeout} s") from None
            time.sleep(0.02)
