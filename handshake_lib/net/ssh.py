"""Our SSH client and server over real sockets: the transport, user authentication, and (next) channels.

Theory of operation
-------------------
:func:`ssh_probe` connects, runs :class:`~handshake_lib.ssh.client.SSHClient` with
:class:`~handshake_lib.net.SocketDriver` (one deadline for the whole exchange) through version
exchange, key exchange, NEWKEYS and the ``none`` authentication request, says goodbye
(DISCONNECT ``BY_APPLICATION``) and returns a :class:`ProbeResult`: what was negotiated, the server's
host key and its fingerprint, the methods it offers, the transcript with its timings.  When something
fails, the typed error (``HostKeyChanged``, ``NoCommonAlgorithm``, ``PeerDisconnect``,
``ConnectionTimeout``...) is raised with ``error.exchange`` set to what crossed the wire.

:func:`ssh_connect` goes on past the methods: it logs in with a
:class:`~handshake_lib.ssh.authentication.ClientAuth` (keys, password, keyboard-interactive answers) and
returns an open :class:`SSHSession`; every method refused is :class:`~handshake_lib.errors.AuthenticationFailed`.

:class:`SSHProbeServer` runs :class:`~handshake_lib.ssh.server.SSHServer` on loopback for as long as its
``with`` block runs, one thread per connection (``net.LoopbackServer``): enough for OpenSSH's ``ssh``,
asyncssh or paramiko to reach user authentication against it, and for the lessons' live runs.  Given a
:class:`~handshake_lib.ssh.authentication.ServerAuthPolicy` it lets users in as the policy says; a client
that has not logged in within ``login_grace`` seconds is told goodbye (sshd's LoginGraceTime).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import (
    AuthenticationFailed,
    ConnectionLost,
    ConnectionTimeout,
    Exchange,
    HandshakeError,
    SSHDisconnect,
    UnexpectedEOF,
)
from ..ssh.authentication import AuthenticatedUser, ClientAuth, ServerAuthPolicy
from ..ssh.channels import DEFAULT_MAX_PACKET, DEFAULT_WINDOW, ConnectionProtocol
from ..ssh.client import AuthenticationMethods, AuthenticationSucceeded, BannerReceived, HostKeyTrusted, SSHClient
from ..ssh.connection import Algorithms, KeyExchangeComplete, TranscriptEntry
from ..ssh.exchange_hash import ExchangeHash
from ..ssh.hostkeys import HostKey, HostKeyPair
from ..ssh.kex import SharedSecret
from ..ssh.known_hosts import HostKeyDecision, HostKeyPolicy, HostKeyQuestion, KnownHosts
from ..ssh.server import AuthenticationAnswered, AuthenticationRequested, SSHServer, UserAuthenticated
from . import DEFAULT_TIMEOUT, LoopbackServer, SocketDriver, Timing, connect
from .ssh_server import ServedChannel, SessionHandler
from .ssh_session import ExecResult, SSHSession

__all__ = [
    "ProbeResult", "ssh_probe", "ssh_connect", "SSHSession", "ExecResult", "SSHProbeServer", "ServedConnection",
]  # fmt: skip

Secrets = Callable[[bytes, SharedSecret, ExchangeHash], None]


@dataclass(frozen=True)
class ProbeResult:
    """What :func:`ssh_probe` learned, in the order it happened."""

    host: str
    port: int
    server_identification: str
    key_exchange: KeyExchangeComplete
    host_key: HostKey
    host_key_decision: HostKeyDecision
    methods: tuple[str, ...]  # empty when the server let us in without authentication
    authenticated: bool
    banner: str
    server_sig_algs: tuple[str, ...] | None
    transcript: list[TranscriptEntry] = field(repr=False)
    timings: list[Timing] = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return self.host_key.fingerprint()


def _attach(error: HandshakeError, client: SSHClient | SSHServer, driver: SocketDriver | None) -> None:
    if error.exchange is None:
        error.exchange = Exchange(client.transcript, driver.timings if driver is not None else [])


def ssh_probe(
    host: str,
    port: int = 22,
    *,
    user: str = "handshakes",
    known_hosts: KnownHosts | None = None,
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT,
    ask: Callable[[HostKeyQuestion], bool] | None = None,
    algorithms: Algorithms | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_secrets: Secrets | None = None,
    client: SSHClient | None = None,
) -> ProbeResult:
    """Run our client against ``host:port`` up to the server's list of authentication methods.

    ``known_hosts`` and ``host_key_policy`` decide whether the server's key is trusted (strict by
    default: an unknown key is refused); with ``accept-new`` the result's ``host_key_decision.new_text``
    is the known_hosts text to write.  ``client`` runs a client built by the caller instead (a lesson's,
    with learner code in it).  The whole exchange must finish within ``timeout`` seconds, not counting
    the time ``ask`` takes (a person answering the host key question).
    """
    paused = [0.0]  # seconds spent in ``ask``: a person's thinking time is not the network's
    timed_ask = _timed(ask, paused)
    if client is None:
        client = SSHClient(
            host, port, user=user, known_hosts=known_hosts, host_key_policy=host_key_policy, ask=timed_ask,
            algorithms=algorithms, on_secrets=on_secrets,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    driver: SocketDriver | None = None
    events: list[object] = []
    try:
        sock = connect(host, port, timeout=timeout)
        with sock:
            driver = SocketDriver(client, sock)
            client.start()
            while not any(isinstance(e, AuthenticationMethods | AuthenticationSucceeded) for e in events):
                events += driver.receive(deadline + paused[0])
                if driver.peer_closed:
                    # After NEWKEYS the core takes a close as an ending (a server may hang up then), but
                    # the probe's question was not answered: OpenSSH's sshd closes so after a bad MAC.
                    raise UnexpectedEOF("the server closed the connection after the key exchange, before answering")
            client.disconnect()
            driver.flush_quietly()
    except HandshakeError as error:
        _attach(error, client, driver)
        raise
    except OSError as error:
        lost = ConnectionLost(error.errno, error.strerror or str(error))
        _attach(lost, client, driver)
        raise lost from error
    return _result(host, port, client, driver, events)


def _timed(
    ask: Callable[[HostKeyQuestion], bool] | None, paused: list[float]
) -> Callable[[HostKeyQuestion], bool] | None:
    """``ask``, adding the time a person spends answering to ``paused[0]`` (it is not the network's time)."""
    if ask is None:
        return None
    answer = ask

    def timed_ask(question: HostKeyQuestion) -> bool:
        started = time.monotonic()
        try:
            return answer(question)
        finally:
            paused[0] += time.monotonic() - started

    return timed_ask


def _result(host: str, port: int, client: SSHClient, driver: SocketDriver | None, events: list[object]) -> ProbeResult:
    completed = next(e for e in events if isinstance(e, KeyExchangeComplete))
    trusted = next(e for e in events if isinstance(e, HostKeyTrusted))
    methods = next((e.methods for e in reversed(events) if isinstance(e, AuthenticationMethods)), ())
    assert client.peer_identification is not None
    return ProbeResult(
        host=host,
        port=port,
        server_identification=client.peer_identification.line.decode("ascii", "backslashreplace"),
        key_exchange=completed,
        host_key=trusted.host_key,
        host_key_decision=trusted.decision,
        methods=tuple(methods),
        authenticated=client.authenticated,
        banner="".join(e.message for e in events if isinstance(e, BannerReceived)),
        server_sig_algs=client.server_sig_algs,
        transcript=client.transcript,
        timings=driver.timings if driver is not None else [],
    )


def ssh_connect(
    host: str,
    port: int = 22,
    *,
    user: str,
    auth: ClientAuth,
    known_hosts: KnownHosts | None = None,
    host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT,
    ask: Callable[[HostKeyQuestion], bool] | None = None,
    algorithms: Algorithms | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_secrets: Secrets | None = None,
    client: SSHClient | None = None,
) -> SSHSession:
    """Connect, check the host key, and log in as ``user`` with ``auth``; an open :class:`SSHSession`.

    Every method refused: :class:`~handshake_lib.errors.AuthenticationFailed` (the server's last list of
    methods in ``error.methods``), after telling the server NO_MORE_AUTH_METHODS_AVAILABLE.  Other
    failures as :func:`ssh_probe`'s, with ``error.exchange`` set.  ``timeout`` bounds the whole login.
    """
    paused = [0.0]
    if client is None:
        client = SSHClient(
            host, port, user=user, auth=auth, known_hosts=known_hosts, host_key_policy=host_key_policy,
            ask=_timed(ask, paused), algorithms=algorithms, on_secrets=on_secrets,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    driver: SocketDriver | None = None
    events: list[object] = []
    sock = None
    try:
        sock = connect(host, port, timeout=timeout)
        driver = SocketDriver(client, sock)
        client.start()
        while not client.authenticated and not client.authentication_failed:
            events += driver.receive(deadline + paused[0])
            if driver.peer_closed or client.closed:
                raise UnexpectedEOF("the server closed the connection during user authentication")
        if client.authentication_failed:
            client.disconnect(SSHDisconnect.NO_MORE_AUTH_METHODS_AVAILABLE, "no more authentication methods to try")
            driver.flush_quietly()
            raise AuthenticationFailed(user, client.methods or ())
    except HandshakeError as error:
        _attach(error, client, driver)
        if sock is not None:
            sock.close()
        raise
    except OSError as error:
        lost = ConnectionLost(error.errno, error.strerror or str(error))
        _attach(lost, client, driver)
        if sock is not None:
            sock.close()
        raise lost from error
    assert driver is not None
    return SSHSession(client, sock, driver, _result(host, port, client, driver, events), timeout=timeout)


@dataclass
class ServedConnection:
    """One connection :class:`SSHProbeServer` served: how far it got, and how it ended."""

    server: SSHServer
    key_exchanges: list[KeyExchangeComplete] = field(default_factory=list)
    auth_requests: list[AuthenticationRequested] = field(default_factory=list)
    verdicts: list[AuthenticationAnswered] = field(default_factory=list)
    user: AuthenticatedUser | None = None  # who logged in
    channels: list[ServedChannel] = field(default_factory=list)  # what each channel did
    error: HandshakeError | None = None
    peer: tuple[str, int] = ("", 0)  # the client's address and port
    finished: bool = False  # the connection's thread is done: this record is final

    @property
    def reached_user_authentication(self) -> bool:
        return bool(self.auth_requests)


class SSHProbeServer(LoopbackServer):
    """Our SSH server on loopback: key exchange with ``host_keys``, then user authentication as ``auth``
    says (None: everyone refused, with the list of ``auth_methods``).  ``connections`` records each one."""

    name = "SSHProbeServer"

    def __init__(
        self,
        host_keys: Sequence[HostKeyPair],
        *,
        auth_methods: Sequence[str] = ("publickey", "password"),
        auth: ServerAuthPolicy | None = None,
        login_grace: float = 30.0,
        algorithms: Algorithms | None = None,
        on_secrets: Secrets | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 16,
        max_session: float = 3600.0,
        strict_kex: bool = True,
        sftp_root: Path | None = None,
        allow_forwarding: bool = True,
        channel_window: int = DEFAULT_WINDOW,
        channel_max_packet: int = DEFAULT_MAX_PACKET,
        on_finished: Callable[[ServedConnection], None] | None = None,
    ) -> None:
        """Once a client has logged in, its channels are served by ``net.ssh_server.SessionHandler``: the fixed
        command set, SFTP inside ``sftp_root`` (None: no SFTP), forwarding to loopback (``allow_forwarding``).
        ``timeout`` bounds each wait for the client (an idle connection ends after it; logging in must be done
        within the smaller of it and ``login_grace``); ``max_session`` bounds a whole connection.  Leaving the
        ``with`` block ends every connection still open.  ``on_finished(connection)`` is called from the
        connection's thread once it has ended (``ssh serve`` logs it, then drops it from ``connections``).
        ``strict_kex=False`` exists only to demonstrate the Terrapin attack (see ``SSHConnection``)."""
        if not 0 < timeout <= max_session:
            raise ValueError("timeout must be positive and at most max_session")
        # LoopbackServer's whole-connection bound would otherwise be ``timeout``: every session cut after it
        super().__init__(timeout=timeout, max_connections=max_connections, lifetime=max_session)
        self.idle_timeout = timeout
        SSHServer(host_keys, auth_methods=auth_methods, auth=auth, algorithms=algorithms)  # refuse bad settings now
        if login_grace <= 0:
            raise ValueError("login_grace must be positive")
        self.host_keys = tuple(host_keys)
        self.auth_methods = tuple(auth_methods)
        self.auth = auth
        self.login_grace = login_grace
        self.algorithms = algorithms
        self.on_secrets = on_secrets
        self.strict_kex = strict_kex
        self.sftp_root = Path(sftp_root) if sftp_root is not None else None
        if self.sftp_root is not None and not self.sftp_root.is_dir():
            raise ValueError(f"sftp_root {self.sftp_root} is not a folder")
        self.allow_forwarding = allow_forwarding
        ConnectionProtocol("server", window=channel_window, max_packet=channel_max_packet)  # refuse bad sizes now
        self.channel_window = channel_window
        self.channel_max_packet = channel_max_packet
        self.on_finished = on_finished
        self.connections: list[ServedConnection] = []

    def close(self) -> None:
        """Stop accepting and end every connection still open (an SSH session may last ``max_session``)."""
        self._stop.set()
        with self._workers_lock:
            watches = list(self._deadlines)
        for watch in watches:
            with contextlib.suppress(OSError):
                watch.shutdown(socket.SHUT_RDWR)
        super().close()

    def serve(self, conn: socket.socket) -> None:
        peer = conn.getpeername()
        address = peer[0]
        server = SSHServer(
            self.host_keys,
            auth_methods=self.auth_methods,
            auth=self.auth,
            client_address=address,
            algorithms=self.algorithms,
            on_secrets=self.on_secrets,
            strict_kex=self.strict_kex,
            channels=ConnectionProtocol("server", window=self.channel_window, max_packet=self.channel_max_packet),
        )
        served = ServedConnection(server, peer=(address, peer[1]))
        self.connections.append(served)
        driver = SocketDriver(server, conn)
        idle = self.idle_timeout
        grace = time.monotonic() + min(self.login_grace, idle)
        selector = selectors.DefaultSelector()
        selector.register(conn, selectors.EVENT_READ, None)
        handler: SessionHandler | None = None
        try:
            server.start()
            while not server.closed and not driver.peer_closed:
                if handler is not None:
                    handler.pump()
                driver.flush()
                # each wait has its deadline: the login grace time first, then an idle timeout
                deadline = grace if server.authenticated_user is None else time.monotonic() + idle
                ready = selector.select(max(deadline - time.monotonic(), 0))
                if not ready:
                    # sshd's LoginGraceTime too ends the connection without a DISCONNECT ("Timeout before
                    # authentication"): the client may not even have finished the key exchange.
                    if server.authenticated_user is None:
                        raise ConnectionTimeout(f"no login within {min(self.login_grace, idle):g} s")
                    raise ConnectionTimeout(f"the client sent nothing within {idle:g} s")
                for key, _ in ready:
                    if key.data is not None:
                        if handler is not None:
                            handler.on_socket_readable(key.data)
                        continue
                    for event in driver.receive(time.monotonic() + idle):
                        if isinstance(event, KeyExchangeComplete):
                            served.key_exchanges.append(event)
                        elif isinstance(event, AuthenticationRequested):
                            served.auth_requests.append(event)
                        elif isinstance(event, AuthenticationAnswered):
                            served.verdicts.append(event)
                        elif isinstance(event, UserAuthenticated):
                            served.user = event.user
                            assert server.channels is not None
                            handler = SessionHandler(
                                server.channels, event.user, selector,
                                sftp_root=self.sftp_root, allow_forwarding=self.allow_forwarding,
                            )  # fmt: skip
                            served.channels = handler.served
                        elif handler is not None:
                            handler.handle(event)
        except (HandshakeError, ConnectionTimeout) as error:
            served.error = error
        except OSError as error:
            served.error = ConnectionLost(error.errno, error.strerror or str(error))
        finally:
            if handler is not None:
                handler.close()
            selector.close()
        with contextlib.suppress(OSError):
            driver.flush()
        served.finished = True
        if self.on_finished is not None:
            self.on_finished(served)
