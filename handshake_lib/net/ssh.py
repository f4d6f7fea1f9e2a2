"""Our SSH client and server over real sockets: the transport up to user authentication.

Theory of operation
-------------------
:func:`ssh_probe` connects, runs :class:`~handshake_lib.ssh.client.SSHClient` with
:class:`~handshake_lib.net.SocketDriver` (one deadline for the whole exchange) through version
exchange, key exchange, NEWKEYS and the ``none`` authentication request, says goodbye
(DISCONNECT ``BY_APPLICATION``) and returns a :class:`ProbeResult`: what was negotiated, the server's
host key and its fingerprint, the methods it offers, the transcript with its timings.  When something
fails, the typed error (``HostKeyChanged``, ``NoCommonAlgorithm``, ``PeerDisconnect``,
``ConnectionTimeout``...) is raised with ``error.exchange`` set to what crossed the wire.

:class:`SSHProbeServer` runs :class:`~handshake_lib.ssh.server.SSHServer` on loopback for as long as its
``with`` block runs, one thread per connection (``net.LoopbackServer``): enough for OpenSSH's ``ssh``,
asyncssh or paramiko to reach user authentication against it, and for the lessons' live runs.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import ConnectionLost, ConnectionTimeout, Exchange, HandshakeError, UnexpectedEOF
from ..ssh.client import AuthenticationMethods, AuthenticationSucceeded, BannerReceived, HostKeyTrusted, SSHClient
from ..ssh.connection import Algorithms, KeyExchangeComplete, TranscriptEntry
from ..ssh.exchange_hash import ExchangeHash
from ..ssh.hostkeys import HostKey, HostKeyPair
from ..ssh.kex import SharedSecret
from ..ssh.known_hosts import HostKeyDecision, HostKeyPolicy, HostKeyQuestion, KnownHosts
from ..ssh.server import AuthenticationRequested, SSHServer
from . import DEFAULT_TIMEOUT, LoopbackServer, SocketDriver, Timing, connect

__all__ = ["ProbeResult", "ssh_probe", "SSHProbeServer", "ServedConnection"]

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
    timed_ask: Callable[[HostKeyQuestion], bool] | None = None
    if ask is not None:
        answer = ask

        def timed_ask(question: HostKeyQuestion) -> bool:
            started = time.monotonic()
            try:
                return answer(question)
            finally:
                paused[0] += time.monotonic() - started

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
    completed = next(e for e in events if isinstance(e, KeyExchangeComplete))
    trusted = next(e for e in events if isinstance(e, HostKeyTrusted))
    methods = next((e.methods for e in events if isinstance(e, AuthenticationMethods)), ())
    assert client.peer_identification is not None
    return ProbeResult(
        host=host,
        port=port,
        server_identification=client.peer_identification.line.decode("ascii", "backslashreplace"),
        key_exchange=completed,
        host_key=trusted.host_key,
        host_key_decision=trusted.decision,
        methods=tuple(methods),
        authenticated=any(isinstance(e, AuthenticationSucceeded) for e in events),
        banner="".join(e.message for e in events if isinstance(e, BannerReceived)),
        server_sig_algs=client.server_sig_algs,
        transcript=client.transcript,
        timings=driver.timings if driver is not None else [],
    )


@dataclass
class ServedConnection:
    """One connection :class:`SSHProbeServer` served: how far it got, and how it ended."""

    server: SSHServer
    key_exchanges: list[KeyExchangeComplete] = field(default_factory=list)
    auth_requests: list[AuthenticationRequested] = field(default_factory=list)
    error: HandshakeError | None = None

    @property
    def reached_user_authentication(self) -> bool:
        return bool(self.auth_requests)


class SSHProbeServer(LoopbackServer):
    """Our SSH server on loopback: key exchange with ``host_keys``, then every authentication refused with
    the list of ``auth_methods`` (this issue authenticates nobody).  ``connections`` records each one."""

    name = "SSHProbeServer"

    def __init__(
        self,
        host_keys: Sequence[HostKeyPair],
        *,
        auth_methods: Sequence[str] = ("publickey", "password"),
        algorithms: Algorithms | None = None,
        on_secrets: Secrets | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 16,
        strict_kex: bool = True,
    ) -> None:
        """``strict_kex=False`` exists only to demonstrate the Terrapin attack (see ``SSHConnection``)."""
        super().__init__(timeout=timeout, max_connections=max_connections)
        SSHServer(host_keys, auth_methods=auth_methods, algorithms=algorithms)  # refuse bad settings now
        self.host_keys = tuple(host_keys)
        self.auth_methods = tuple(auth_methods)
        self.algorithms = algorithms
        self.on_secrets = on_secrets
        self.strict_kex = strict_kex
        self.connections: list[ServedConnection] = []

    def serve(self, conn: socket.socket) -> None:
        server = SSHServer(
            self.host_keys,
            auth_methods=self.auth_methods,
            algorithms=self.algorithms,
            on_secrets=self.on_secrets,
            strict_kex=self.strict_kex,
        )
        served = ServedConnection(server)
        self.connections.append(served)
        driver = SocketDriver(server, conn)
        deadline = time.monotonic() + self.timeout
        try:
            server.start()
            while not server.closed and not driver.peer_closed:
                for event in driver.receive(deadline):
                    if isinstance(event, KeyExchangeComplete):
                        served.key_exchanges.append(event)
                    elif isinstance(event, AuthenticationRequested):
                        served.auth_requests.append(event)
        except (HandshakeError, ConnectionTimeout) as error:
            served.error = error
        except OSError as error:
            served.error = ConnectionLost(error.errno, error.strerror or str(error))
        with contextlib.suppress(OSError):
            driver.flush()
