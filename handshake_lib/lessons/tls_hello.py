"""The widgets and live peers of lessons 02 (ClientHello) and 03 (ServerHello and Certificate).

Theory of operation
-------------------
Everything shown here is computed by the library's decoders or by a real OpenSSL; this module only
arranges it.

* **A live OpenSSL server** (:class:`OpenSSLPeer`): :class:`handshake_lib.net.SSLServer` on loopback
  with a fresh course PKI (an RSA server key made on the spot), started lazily and stopped by
  :meth:`OpenSSLPeer.close`, by its ``with`` block, or when the interpreter exits.  Its
  :meth:`~OpenSSLPeer.send_client_hello` writes *any* bytes as a ClientHello record (the library never
  re-parses them first, so a malformed hello reaches OpenSSL and OpenSSL judges it) and reads the
  answer, with one deadline for the whole exchange, until ServerHelloDone, an alert, or the close.
* **Lesson 02**: :func:`build_client_hello` makes a TLS 1.2 ClientHello from the widget's choices
  (version, suites, server name, which extensions); :class:`ClientHelloBuilder` shows it in the
  annotated hex view, explains the chosen field, and sends it to the live server;
  :func:`openssl_client_hello` captures what OpenSSL's own client sends (memory BIOs, no socket).
* **Lesson 03**: :func:`openssl_choice` asks a real OpenSSL server which suite it picks for a given
  offer, supported list and preference (memory BIOs again: one ClientHello in, the ServerHello or
  alert out); :class:`NegotiationExplorer` compares that with the library's rule.
  :func:`der_spans` annotates an X.509 certificate's DER (tag, length, value, with the field names of
  RFC 5280 section 4.1) for :class:`CertificateExplorer`, and :func:`certificate_fields` lists what
  ``cryptography.x509`` reads from the same bytes.
* **Exercises**: :func:`reference_client_hello` and :func:`client_hello_differences` (exercise 02's
  specification and its field-by-field comparison), :func:`run_learner_client_hello` and
  :func:`run_learner_cipher_choice` (each exercise's last step: the learner's function in a real
  handshake with OpenSSL).

Widget callbacks are plain methods (``update``, ``send``, ``select``) so tests and ``make bench`` call
them; bad input gives a short message in the widget, never a traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import html
import itertools
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .. import net
from ..errors import DecodeError, HandshakeError, HandshakeFailure, ProtocolError, TLSAlert
from ..pki import CoursePKI
from ..pki.builder import ServerFiles
from ..tls.constants import (
    OPENSSL_NAMES,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    ProtocolVersion,
    SignatureScheme,
    name_of,
)
from ..tls.extensions import (
    ECPointFormatsExtension,
    ExtendedMasterSecretExtension,
    Extension,
    RenegotiationInfoExtension,
    ServerNameExtension,
    SessionTicketExtension,
    SignatureAlgorithmsExtension,
    SupportedGroupsExtension,
)
from ..tls.messages import (
    Alert,
    Certificate,
    ClientHello,
    HandshakeMessage,
    ServerHello,
    ServerHelloDone,
    decode_handshake,
)
from ..tls.negotiation import DEFAULT_GROUPS, DEFAULT_SIGNATURE_SCHEMES
from ..tls.negotiation import choose_cipher_suite as library_choose_cipher_suite
from ..tls.record import MAX_PLAINTEXT_LENGTH, RecordReader, encode_record
from ..tls.stages import BuildClientHello, ChooseCipherSuite, Stages
from ..viz.hexview import HexView
from ..wire import Reader, Span

__all__ = [
    "SERVER_CIPHERS",
    "SUITE_CHOICES",
    "EXTENSION_CHOICES",
    "DEFAULT_EXTENSIONS",
    "VERSION_CHOICES",
    "DEMO_CLIENT_RANDOM",
    "NEGOTIATION_SUITES",
    "FIELD_HELP",
    "EXERCISE_SIGNATURE_SCHEMES",
    "LivePKI",
    "fresh_pki",
    "OpenSSLPeer",
    "ServerAnswer",
    "hello_records",
    "build_client_hello",
    "explain_field",
    "ClientHelloBuilder",
    "client_hello_builder",
    "openssl_client_hello",
    "record_view",
    "compare_extensions",
    "OpenSSLChoice",
    "openssl_choice",
    "NegotiationExplorer",
    "negotiation_explorer",
    "server_random_demo",
    "der_spans",
    "certificate_fields",
    "CertificateExplorer",
    "certificate_explorer",
    "reference_client_hello",
    "client_hello_differences",
    "LearnerHelloRun",
    "run_learner_client_hello",
    "LearnerChoiceRun",
    "run_learner_cipher_choice",
    "BENCHMARKS",
]

# What the lessons' OpenSSL server accepts: the four RSA key exchange suites the course teaches and
# one ECDHE suite, so that offering ECDHE-RSA-AES256-GCM-SHA384 alone finds nothing in common.
SERVER_CIPHERS = "AES256-GCM-SHA384:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"

# The suites the ClientHello widget offers (OpenSSL names, as the ssl module and s_client spell them).
SUITE_CHOICES: dict[str, CipherSuite] = {
    name: OPENSSL_NAMES[name]
    for name in (
        "AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES128-SHA256",
        "AES128-SHA",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
    )
}
# Suites an OpenSSL server with an RSA certificate can really choose (ECDSA suites would need an EC key).
NEGOTIATION_SUITES: tuple[str, ...] = (
    "AES128-SHA",
    "AES256-SHA",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
)
_NAME_OF_SUITE = {suite: name for name, suite in OPENSSL_NAMES.items()}

EXTENSION_CHOICES: tuple[str, ...] = (
    "server_name",
    "signature_algorithms",
    "supported_groups",
    "ec_point_formats",
    "extended_master_secret",
    "renegotiation_info",
    "session_ticket",
)
DEFAULT_EXTENSIONS: frozenset[str] = frozenset(EXTENSION_CHOICES) - {"session_ticket"}
VERSION_CHOICES: dict[str, int] = {
    "TLS 1.2 (0x0303)": ProtocolVersion.TLS1_2,
    "TLS 1.1 (0x0302)": ProtocolVersion.TLS1_1,
    "TLS 1.0 (0x0301)": ProtocolVersion.TLS1_0,
    "SSL 3.0 (0x0300)": ProtocolVersion.SSL3,
}
# The client random of the course's deterministic replays (DESIGN section 6): 0x00..0x1f.
DEMO_CLIENT_RANDOM = bytes(range(32))

# Exercise 02: the signature_algorithms list the learner must send, most preferred first.
EXERCISE_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.ecdsa_secp256r1_sha256,
)

# Read once per answer: a ClientHello flight is a few kilobytes, a certificate chain rarely more than 16.
_ANSWER_LIMIT = 1 << 16


# -- a fresh PKI and a live OpenSSL server --------------------------------------------------------------
@dataclass
class LivePKI:
    """A course CA and one RSA server certificate for ``localhost``/127.0.0.1, written to a private folder."""

    ca_path: Path
    cert_path: Path
    key_path: Path
    issued: Any  # handshake_lib.pki.IssuedCertificate
    directory: tempfile.TemporaryDirectory[str]
    files: ServerFiles | None = None  # the same paths as handshake_lib.net.openssl_server takes them

    @property
    def certificate_der(self) -> bytes:
        return self.issued.der

    def cleanup(self) -> None:
        self.directory.cleanup()


def fresh_pki() -> LivePKI:
    """Fresh keys (never stored anywhere but a private temporary folder, removed at exit)."""
    directory = tempfile.TemporaryDirectory(prefix="handshakes-")
    try:
        files = CoursePKI.create().write_server_files(Path(directory.name), ("localhost", "127.0.0.1"))
    except BaseException:
        directory.cleanup()
        raise
    return LivePKI(files.ca_path, files.cert_path, files.key_path, files.issued, directory, files)


def hello_records(handshake: bytes, *, record_version: int = ProtocolVersion.TLS1_0) -> bytes:
    """Wrap handshake bytes in handshake records of at most 2^14 bytes each.

    ``record_version`` 0x0301 is what OpenSSL's client writes on its first record (RFC 5246 appendix
    E.1: some old servers choke on a higher one); servers ignore it.
    """
    if not handshake:
        return encode_record(ContentType.handshake, record_version, b"")
    return b"".join(
        encode_record(ContentType.handshake, record_version, handshake[start : start + MAX_PLAINTEXT_LENGTH])
        for start in range(0, len(handshake), MAX_PLAINTEXT_LENGTH)
    )


@dataclass
class ReceivedMessage:
    """One handshake message from the server: its bytes, the decoded message and its spans."""

    raw: bytes
    message: HandshakeMessage | None
    spans: list[Span]
    error: str = ""

    @property
    def name(self) -> str:
        if self.message is not None:
            return name_of(HandshakeType, self.message.handshake_type)
        return name_of(HandshakeType, self.raw[0]) if self.raw else "empty message"


@dataclass
class ServerAnswer:
    """What a server answered to one ClientHello: its handshake messages, or the alert it sent."""

    sent: bytes  # the ClientHello record(s) as written to the socket
    received: bytes = b""  # every byte the server sent back, as received
    messages: list[ReceivedMessage] = field(default_factory=list)
    alert: Alert | None = None
    problem: str = ""  # no answer, a timeout, an undecodable record...
    openssl_error: str = ""  # what the server's ssl module reported, when it failed

    @property
    def server_hello(self) -> ServerHello | None:
        return next((m.message for m in self.messages if isinstance(m.message, ServerHello)), None)

    @property
    def certificates(self) -> list[bytes]:
        found = next((m.message for m in self.messages if isinstance(m.message, Certificate)), None)
        return list(found.certificates) if found is not None else []

    @property
    def complete(self) -> bool:
        """True when the server's whole first flight (up to ServerHelloDone) arrived."""
        return any(isinstance(m.message, ServerHelloDone) for m in self.messages)

    @property
    def alert_name(self) -> str | None:
        return self.alert.description_name if self.alert is not None else None

    def summary(self) -> str:
        lines = []
        for received in self.messages:
            lines.append(f"{received.name} ({len(received.raw)} bytes){_message_detail(received.message)}")
            if received.error:
                lines.append(f"  could not decode: {received.error}")
        if self.alert is not None:
            level = "fatal" if self.alert.is_fatal else "warning"
            lines.append(f"Alert: {level} {self.alert.description_name} ({self.alert.description})")
        if self.openssl_error:
            lines.append(f"OpenSSL's server said: {self.openssl_error}")
        if self.problem:
            lines.append(self.problem)
        return "\n".join(lines) or "no answer"


def _message_detail(message: HandshakeMessage | None) -> str:
    if isinstance(message, ServerHello):
        extensions = ", ".join(name_of(ExtensionType, e.extension_type) for e in message.extensions or ()) or "none"
        return (
            f": version {name_of(ProtocolVersion, message.legacy_version)}, cipher suite "
            f"{name_of(CipherSuite, message.cipher_suite)}, extensions {extensions}"
        )
    if isinstance(message, Certificate):
        subjects = []
        for der in message.certificates:
            try:
                subjects.append(x509.load_der_x509_certificate(der).subject.rfc4514_string())
            except ValueError:
                subjects.append("(not X.509)")
        return f": {len(message.certificates)} certificate(s): " + "; ".join(subjects)
    return ""


def _read_answer(sock: socket.socket, sent: bytes, deadline: float) -> ServerAnswer:
    """Read records until ServerHelloDone, an alert, the peer's close or the deadline."""
    answer = ServerAnswer(sent)
    records = RecordReader()
    handshake = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            answer.problem = "no complete answer before the timeout"
            return answer
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            answer.problem = "no complete answer before the timeout"
            return answer
        except OSError as error:  # a reset right after an alert is common
            data = b""
            if not answer.received:
                answer.problem = f"the connection failed: {error}"
        if not data:
            if not answer.alert and not answer.complete and not answer.problem:
                answer.problem = "the server closed the connection without a complete answer"
            return answer
        answer.received += data
        if len(answer.received) > _ANSWER_LIMIT:
            answer.problem = f"the answer is larger than {_ANSWER_LIMIT} bytes; stopped reading"
            return answer
        try:
            new_records = records.feed(data)
        except ProtocolError as error:
            answer.problem = f"the server's bytes are not TLS records: {error}"
            return answer
        for record in new_records:
            if record.content_type == ContentType.alert and len(record.fragment) == 2:
                answer.alert = Alert(record.fragment[0], record.fragment[1])
                return answer
            if record.content_type != ContentType.handshake:
                answer.problem = f"unexpected {name_of(ContentType, record.content_type)} record"
                return answer
            handshake += record.fragment
            while len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(handshake[1:4], "big"):
                size = 4 + int.from_bytes(handshake[1:4], "big")
                raw = bytes(handshake[:size])
                del handshake[:size]
                answer.messages.append(_decode_message(raw))
                if isinstance(answer.messages[-1].message, ServerHelloDone):
                    return answer


def _decode_message(raw: bytes) -> ReceivedMessage:
    try:
        message, spans = decode_handshake(raw)
    except ProtocolError as error:
        return ReceivedMessage(raw, None, [], str(error))
    return ReceivedMessage(raw, message, spans)


class OpenSSLPeer:
    """A real OpenSSL TLS 1.2 server on 127.0.0.1 with fresh keys, for as long as a widget needs it.

    Started on first use (or by ``with``); stopped by :meth:`close`, the end of the ``with`` block, or
    at interpreter exit, whichever comes first.  ``ciphers`` is an OpenSSL cipher string.  Started
    through :func:`handshake_lib.net.openssl_server`; while running, ``live`` is that helper's peer
    (URL, CA file, OpenSSL's key log and ``last_error``).
    """

    def __init__(self, ciphers: str = SERVER_CIPHERS, *, timeout: float = 3.0, pki: LivePKI | None = None) -> None:
        self.ciphers = ciphers
        self.timeout = timeout
        self.pki = pki
        self._owns_pki = pki is None
        self.server: net.SSLServer | None = None
        self.live: net.OpenSSLPeer | None = None  # the running server, its key log and files (while started)
        self._running: contextlib.ExitStack | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def port(self) -> int:
        return self.start().server.port  # type: ignore[union-attr]

    def start(self) -> OpenSSLPeer:
        with self._lock:
            if self.server is None:
                if self.pki is None:
                    self.pki = fresh_pki()
                if self.pki.files is None:
                    raise ValueError("OpenSSLPeer needs a LivePKI from fresh_pki() (its files are not known)")
                running = contextlib.ExitStack()
                # The shared helper: this peer's keys, plus a key log in a folder of its own; it runs until
                # close() unwinds the stack (a widget outlives any one ``with`` block).
                self.live = running.enter_context(
                    net.openssl_server(self.ciphers, files=self.pki.files, timeout=self.timeout)
                )
                self._running = running
                self.server = self.live.server
                atexit.register(self.close)
        return self

    def close(self) -> None:
        """Stop the server (idempotent) and remove the keys it made."""
        with self._lock:
            running, self._running = self._running, None
            self.server = self.live = None
            if running is not None:
                running.close()
                atexit.unregister(self.close)
            if self._owns_pki and self.pki is not None:
                self.pki.cleanup()
                self.pki = None

    def __enter__(self) -> OpenSSLPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send_client_hello(self, client_hello: bytes, *, timeout: float | None = None) -> ServerAnswer:
        """Send ``client_hello`` (a handshake message: header and body) in records; return the answer.

        The bytes go out exactly as given, so OpenSSL is the one that judges them.
        """
        self.start()
        assert self.server is not None
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        seen = len(self.server.connections)
        records = hello_records(bytes(client_hello))
        with net.connect(self.server.host, self.server.port, timeout=wait) as sock:
            sock.sendall(records)
            # Nothing more will come from us: say so, so that a hello whose lengths promise more bytes
            # than were sent ends at once (OpenSSL sees the end of the stream) instead of at the timeout.
            # A good hello is unaffected: OpenSSL answers it before it reads again.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            answer = _read_answer(sock, records, deadline)
        if not answer.complete:
            answer.openssl_error = self._server_error(seen, min(deadline, time.monotonic() + 0.5))
        return answer

    def _server_error(self, index: int, deadline: float) -> str:
        # The server thread records its ssl error just after sending the alert; wait a moment for it.
        assert self.server is not None
        while time.monotonic() < deadline:
            if len(self.server.connections) > index and self.server.connections[index].error is not None:
                error = self.server.connections[index].error
                reason = getattr(error, "reason", None)
                return str(reason or error)
            time.sleep(0.005)
        return ""


# -- lesson 02: build a ClientHello ---------------------------------------------------------------------
def build_client_hello(
    *,
    version: int = ProtocolVersion.TLS1_2,
    suites: Sequence[str | int] = ("AES128-GCM-SHA256",),
    server_name: str | None = "localhost",
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    client_random: bytes | None = None,
) -> ClientHello:
    """A ClientHello with exactly the chosen pieces (unlike ``client_hello_for``, nothing is added).

    ``suites`` are OpenSSL names or code points, in the order offered; ``extensions`` names from
    :data:`EXTENSION_CHOICES`, always written in that order.  Raises ValueError for bad choices.
    """
    chosen = set(extensions)
    unknown = chosen - set(EXTENSION_CHOICES)
    if unknown:
        raise ValueError(f"unknown extension(s) {sorted(unknown)}; choose from {list(EXTENSION_CHOICES)}")
    codes: list[int] = []
    for suite in suites:
        if isinstance(suite, str):
            if suite not in OPENSSL_NAMES:
                raise ValueError(f"unknown cipher suite name {suite!r}")
            codes.append(OPENSSL_NAMES[suite])
        else:
            codes.append(int(suite))
    if not codes:
        raise ValueError("offer at least one cipher suite (an empty list is a decode_error for any server)")
    random = os.urandom(32) if client_random is None else bytes(client_random)
    if len(random) != 32:
        raise ValueError("the client random is exactly 32 bytes")
    built: list[Extension] = []
    if "server_name" in chosen:
        if not server_name:
            raise ValueError("server_name is on, but there is no server name")
        try:
            built.append(ServerNameExtension.for_host(server_name.rstrip(".")))
        except UnicodeEncodeError:
            raise ValueError("a server name is ASCII (an internationalised name is sent as its xn-- form)") from None
    if "signature_algorithms" in chosen:
        built.append(SignatureAlgorithmsExtension(list(DEFAULT_SIGNATURE_SCHEMES)))
    if "supported_groups" in chosen:
        built.append(SupportedGroupsExtension(list(DEFAULT_GROUPS)))
    if "ec_point_formats" in chosen:
        built.append(ECPointFormatsExtension())
    if "extended_master_secret" in chosen:
        built.append(ExtendedMasterSecretExtension())
    if "renegotiation_info" in chosen:
        built.append(RenegotiationInfoExtension(b""))
    if "session_ticket" in chosen:
        built.append(SessionTicketExtension(b""))
    return ClientHello(
        legacy_version=int(version),
        random=random,
        session_id=b"",
        cipher_suites=codes,
        compression_methods=b"\x00",
        extensions=built,
    )


# Longer explanations of the fields a learner picks in the hex view, keyed by the span's last name.
FIELD_HELP: dict[str, str] = {
    "client_hello": "The whole handshake message: a 4-byte header (type and length), then the body.",
    "msg_type": "Handshake message type: 1 is ClientHello, 2 ServerHello, 11 Certificate, 14 ServerHelloDone.",
    "length": "How many bytes follow. Three bytes for a handshake message; two for most vectors inside it.",
    "body": "The ClientHello itself (RFC 5246 section 7.4.1.2).",
    "client_version": (
        "The highest version the client speaks. 0x0303 is TLS 1.2 (TLS 1.2 is 'SSL 3.3'). TLS 1.3 clients still "
        "write 0x0303 here and list their versions in the supported_versions extension instead."
    ),
    "random": (
        "32 bytes the client makes fresh for every handshake. Together with the server's random it goes into "
        "every key, so a recorded handshake cannot be replayed."
    ),
    "session_id": "Empty: a new session. A session id from an earlier connection asks to resume it.",
    "session_id_length": "Length of the session id: 0 for a new session, up to 32.",
    "cipher_suites": (
        "The suites the client can use, most preferred first, two bytes each. The server picks exactly one "
        "(lesson 03)."
    ),
    "cipher_suites_length": "Length of the suite list in bytes: twice the number of suites.",
    "cipher_suite": (
        "One cipher suite: key exchange, bulk cipher and hash in one code point, e.g. 0x009c = "
        "TLS_RSA_WITH_AES_128_GCM_SHA256. 0x00ff is not a suite but a signal (secure renegotiation)."
    ),
    "compression_methods": "Only null (0) is allowed today: TLS compression leaked secrets (CRIME).",
    "compression_methods_length": "Length of the compression list: 1, for the single null method.",
    "extensions": "Everything added after 2005 lives here: a 2-byte length, then type-length-value extensions.",
    "extensions_length": "Total length of all the extensions.",
    "extension": "One extension: a 2-byte type, a 2-byte length, then its data.",
    "extension_type": "Which extension this is (IANA registry): 0 server_name, 13 signature_algorithms...",
    "extension_data": "The extension's own data; what it means depends on the type.",
    "extension_data_length": "Length of this extension's data (0 for the flag-like extensions).",
    "server_name_list": "Server Name Indication (RFC 6066): which host the client wants, sent before any encryption.",
    "server_name": "One server name entry: a type (0 = host_name) and the name.",
    "name_type": "0 is host_name, the only type ever defined.",
    "name": "The host name in ASCII, without a trailing dot; never an IP address. Visible to anyone on the path.",
    "supported_signature_algorithms": (
        "Which signatures the client can verify (RFC 5246 section 7.4.1.4.1). OpenSSL 3 refuses a TLS 1.2 "
        "hello without this list, even for RSA key exchange where nothing is signed in the handshake."
    ),
    "signature_scheme": "One signature scheme: hash and signature algorithm, e.g. 0x0804 rsa_pss_rsae_sha256.",
    "named_group_list": "Groups (curves) the client can use for ECDHE key exchange (RFC 8422, RFC 7919).",
    "named_group": "One group: 29 is x25519, 23 secp256r1 (P-256).",
    "ec_point_format_list": "How elliptic-curve points may be encoded; in practice only 'uncompressed' (0).",
    "ec_point_format": "0 is uncompressed, the only format RFC 8422 still allows.",
    "renegotiated_connection": (
        "renegotiation_info (RFC 5746): empty on a first handshake. It ties a renegotiation to the connection "
        "it renegotiates, closing the 2009 renegotiation attack."
    ),
    "ticket": "session_ticket (RFC 5077): empty asks the server for a ticket to resume with later.",
    "data": "Bytes of an extension this decoder does not interpret; a server ignores extensions it does not know.",
}


def explain_field(span: Span | None) -> str:
    """A sentence or two about the field ``span`` holds (empty for fields without a note)."""
    if span is None:
        return ""
    if span.name == "extension" and span.meaning:
        return f"The {span.meaning} extension. " + FIELD_HELP["extension"]
    return FIELD_HELP.get(span.name, "")


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


class ClientHelloBuilder(widgets.VBox):
    """Build a ClientHello, read it in the hex view, send it to a live OpenSSL server.

    :meth:`update` rebuilds (the controls' callback); :meth:`send` talks to OpenSSL (the button's);
    :meth:`close` stops the server.  ``peer`` may be shared; by default the widget owns one.
    """

    def __init__(
        self,
        *,
        version: int = ProtocolVersion.TLS1_2,
        suites: Sequence[str] = ("AES128-GCM-SHA256", "AES128-SHA"),
        server_name: str = "localhost",
        extensions: Iterable[str] = DEFAULT_EXTENSIONS,
        demo_random: bool = False,
        peer: OpenSSLPeer | None = None,
    ) -> None:
        self.peer = peer if peer is not None else OpenSSLPeer()
        self._owns_peer = peer is None
        self.version_box = widgets.Dropdown(
            options=list(VERSION_CHOICES.items()), value=int(version), description="version"
        )
        self.suite_box = widgets.SelectMultiple(
            options=list(SUITE_CHOICES), value=tuple(s for s in suites if s in SUITE_CHOICES), rows=6,
            description="suites", layout=widgets.Layout(width="26em"),
        )
        self.server_name_box = widgets.Text(value=server_name, description="server name")
        chosen = set(extensions)
        self.extension_boxes = {
            name: widgets.Checkbox(value=name in chosen, description=name, indent=False) for name in EXTENSION_CHOICES
        }
        self.random_box = widgets.Checkbox(value=demo_random, description="demo random 00..1f", indent=False)
        self.send_button = widgets.Button(description="Send to OpenSSL", icon="paper-plane")
        self.status = widgets.HTML()
        self.hex_box = widgets.VBox()
        self.explanation = widgets.HTML()
        self.answer_box = widgets.VBox()
        self.hello: ClientHello | None = None
        self.hello_bytes: bytes | None = None
        self.message = ""
        self.explanation_text = ""
        self.answer: ServerAnswer | None = None
        self.answer_text = ""
        self.hexview: HexView | None = None
        self._holding = False
        controls = widgets.HBox(
            [
                widgets.VBox([self.version_box, self.suite_box, self.server_name_box]),
                widgets.VBox([widgets.HTML("<b>extensions</b>"), *self.extension_boxes.values(), self.random_box]),
            ]
        )
        super().__init__(
            [controls, self.status, self.hex_box, self.explanation, self.send_button, self.answer_box]
        )
        for control in (self.version_box, self.suite_box, self.server_name_box, self.random_box,
                        *self.extension_boxes.values()):
            control.observe(self._on_change, names="value")
        self.send_button.on_click(lambda _button: self.send())
        self.update()

    def _on_change(self, change: dict) -> None:
        if not self._holding:
            self.update()

    def update(
        self,
        *,
        version: int | None = None,
        suites: Sequence[str] | None = None,
        server_name: str | None = None,
        extensions: Iterable[str] | None = None,
        demo_random: bool | None = None,
    ) -> bytes | None:
        """Set any control, rebuild the hello once, show it; returns its bytes (None if the choices are bad)."""
        self._holding = True
        try:
            if version is not None:
                self.version_box.value = int(version)
            if suites is not None:
                self.suite_box.value = tuple(s for s in suites if s in SUITE_CHOICES)
            if server_name is not None:
                self.server_name_box.value = server_name
            if extensions is not None:
                chosen = set(extensions)
                for name, box in self.extension_boxes.items():
                    box.value = name in chosen
            if demo_random is not None:
                self.random_box.value = demo_random
        finally:
            self._holding = False
        try:
            hello = build_client_hello(
                version=self.version_box.value,
                suites=self.suite_box.value,
                server_name=self.server_name_box.value.strip() or None,
                extensions=[name for name, box in self.extension_boxes.items() if box.value],
                client_random=DEMO_CLIENT_RANDOM if self.random_box.value else None,
            )
            raw = hello.to_bytes()
        except (ValueError, HandshakeError) as error:
            self.hello, self.hello_bytes, self.message = None, None, str(error)
            self.status.value = f"<i>{html.escape(self.message)}</i>"
            self.send_button.disabled = True
            return None
        _, spans = decode_handshake(raw)
        self.hello, self.hello_bytes, self.message = hello, raw, ""
        self.status.value = f"ClientHello: {len(raw)} bytes (4 header + {len(raw) - 4} body)"
        self.send_button.disabled = False
        self.hexview = HexView(raw, spans, title="your ClientHello")
        self.hexview.observe(self._on_select, names="selected")
        self.hex_box.children = [self.hexview]
        self._explain(None)
        return raw

    def select(self, field: str) -> str:
        """Choose the first field whose dotted name ends with ``field``; returns its explanation."""
        if self.hexview is None:
            return ""
        index = next(
            (i for i, s in enumerate(self.hexview.spans) if s.field == field or s.field.endswith("." + field)), None
        )
        self.hexview.select(index)
        self._explain(index)
        return self.explanation_text

    def _on_select(self, change: dict) -> None:
        self._explain(change["new"])

    def _explain(self, index: int | None) -> None:
        span = None
        if self.hexview is not None and index is not None and 0 <= index < len(self.hexview.spans):
            span = self.hexview.spans[index]
        self.explanation_text = explain_field(span)
        self.explanation.value = f"<p>{html.escape(self.explanation_text)}</p>" if self.explanation_text else ""

    def send(self, *, timeout: float | None = None) -> ServerAnswer | None:
        """Send the current hello to the live OpenSSL server and show what it answered."""
        if self.hello_bytes is None:
            self.answer_text = f"Nothing to send: {self.message}"
            self.answer_box.children = [widgets.HTML(f"<i>{html.escape(self.answer_text)}</i>")]
            return None
        try:
            answer = self.peer.send_client_hello(self.hello_bytes, timeout=timeout)
        except (OSError, HandshakeError) as error:
            self.answer = None
            self.answer_text = f"could not reach the OpenSSL server: {error}"
            self.answer_box.children = [widgets.HTML(f"<i>{html.escape(self.answer_text)}</i>")]
            return None
        self.answer = answer
        self.answer_text = answer.summary()
        children: list[widgets.Widget] = [widgets.HTML("<b>OpenSSL answered</b>" + _pre(self.answer_text))]
        shown = next((m for m in answer.messages if m.message is not None), None)
        if shown is not None:
            children.append(HexView(shown.raw, shown.spans, title=f"{shown.name} from OpenSSL"))
        self.answer_box.children = children
        return answer

    def close(self) -> None:
        if self._owns_peer:
            self.peer.close()
        super().close()


def client_hello_builder(**settings: Any) -> ClientHelloBuilder:
    """Lesson 02's ClientHello widget (``version``, ``suites``, ``server_name``, ``extensions``, ``demo_random``)."""
    return ClientHelloBuilder(**settings)


def _pump(tls: ssl.SSLObject) -> None:
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()


def openssl_client_hello(
    server_name: str = "localhost", *, ciphers: str | None = None, tls13: bool = False
) -> bytes:
    """The ClientHello record(s) OpenSSL's own client writes (Python ``ssl``, memory BIOs, nothing sent).

    ``ciphers`` is an OpenSSL cipher string (default: the ``ssl`` module's default list); TLS 1.3 is
    off unless ``tls13``, so that the hello is comparable with the lesson's TLS 1.2 one.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nothing is received: only the first flight is produced
    if not tls13:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers is not None:
        context.set_ciphers(ciphers)
    out = ssl.MemoryBIO()
    _pump(context.wrap_bio(ssl.MemoryBIO(), out, server_hostname=server_name))
    return out.read()


def record_view(records: bytes, title: str = "") -> HexView:
    """A hex view of ClientHello record(s): record headers, and the hello decoded field by field inside."""
    spans: list[Span] = []
    reader = Reader(records, spans=spans)
    fragments = bytearray()
    starts: list[tuple[int, int]] = []  # (offset of fragment in the records, length)
    problem = ""
    try:
        while not reader.at_end:
            with reader.group("record", "TLS record") as record:
                record.u8("type", lambda v: name_of(ContentType, v))
                record.u16("version", lambda v: name_of(ProtocolVersion, v))
                length = record.u16("length", "fragment length in bytes")
                starts.append((record.offset, length))
                fragments += record.raw(length, "fragment", "handshake data")
    except ProtocolError as error:
        problem = str(error)
    if len(starts) == 1 and not problem:
        # The common case: the whole message in one record; decode it in place.
        offset, _ = starts[0]
        inner = Reader(bytes(fragments), base_offset=offset, spans=spans, path=("record",))
        try:
            ClientHello.decode(inner)
            inner.expect_end("the ClientHello record")
        except ProtocolError as error:
            problem = str(error)
    view = HexView(records, spans, title=title + (f" ({problem})" if problem else ""))
    return view


def compare_extensions(ours: ClientHello, theirs: ClientHello) -> str:
    """A two-column listing: which cipher suites and extensions each hello carries."""
    def suites(hello: ClientHello) -> list[str]:
        return [_NAME_OF_SUITE.get(s, name_of(CipherSuite, s)) for s in hello.cipher_suites]

    def extensions(hello: ClientHello) -> list[str]:
        return [name_of(ExtensionType, e.extension_type) for e in hello.extensions or ()]

    lines = [f"{'':<22}{'yours':<40}OpenSSL's"]
    for label, left, right in (
        ("cipher suites", suites(ours), suites(theirs)),
        ("extensions", extensions(ours), extensions(theirs)),
    ):
        for index in range(max(len(left), len(right))):
            a = left[index] if index < len(left) else ""
            b = right[index] if index < len(right) else ""
            lines.append(f"{label if index == 0 else '':<22}{a:<40}{b}")
    return "\n".join(lines)


# -- lesson 03: how the server chooses -----------------------------------------------------------------
@dataclass
class OpenSSLChoice:
    """What a real OpenSSL server did with one ClientHello from a real OpenSSL client."""

    offered: list[int]  # the cipher_suites field of the ClientHello OpenSSL's client sent, SCSV included
    chosen: CipherSuite | None  # the suite in OpenSSL's ServerHello, or None
    alert: str = ""  # the alert it sent instead, if any
    problem: str = ""  # a configuration that OpenSSL refuses before any handshake

    @property
    def chosen_name(self) -> str:
        return _NAME_OF_SUITE.get(self.chosen, name_of(CipherSuite, self.chosen)) if self.chosen else ""


@functools.lru_cache(maxsize=1)
def _negotiation_pki() -> LivePKI:
    pki = fresh_pki()
    atexit.register(pki.cleanup)
    return pki


@functools.lru_cache(maxsize=64)
def _server_context(supported: tuple[str, ...], prefer: str) -> ssl.SSLContext:
    pki = _negotiation_pki()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki.cert_path, pki.key_path)
    context.set_ciphers(":".join(supported))
    if prefer == "server":
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


@functools.lru_cache(maxsize=64)
def _client_hello_for(offered: tuple[str, ...]) -> bytes:
    return openssl_client_hello("localhost", ciphers=":".join(offered))


def openssl_choice(offered: Sequence[str], supported: Sequence[str], prefer: str = "server") -> OpenSSLChoice:
    """Ask OpenSSL: its client offers ``offered``, its server supports ``supported``; which suite wins?

    Names are OpenSSL's.  Runs in memory (no socket): the client's ClientHello goes to a fresh server
    object, and its ServerHello (or alert) is decoded.  The server's certificate is RSA.
    """
    if prefer not in ("server", "client"):
        raise ValueError("prefer is 'server' or 'client'")
    if not offered or not supported:
        return OpenSSLChoice([], None, problem="both lists need at least one suite")
    try:
        hello_records_ = _client_hello_for(tuple(offered))
        context = _server_context(tuple(supported), prefer)
    except ssl.SSLError as error:
        return OpenSSLChoice([], None, problem=f"OpenSSL refuses the cipher list: {error.reason or error}")
    hello_message, _ = decode_handshake(hello_records_[5:])
    offered_codes = list(hello_message.cipher_suites)  # type: ignore[attr-defined]
    hello, alert = _memory_server_answer(context, hello_records_)
    if hello is None:
        return OpenSSLChoice(offered_codes, None, alert=alert, problem="" if alert else "OpenSSL sent no answer")
    return OpenSSLChoice(offered_codes, CipherSuite(hello.cipher_suite))


def _memory_server_answer(context: ssl.SSLContext, client_hello: bytes) -> tuple[ServerHello | None, str]:
    """Feed ClientHello records to a fresh OpenSSL server object: (its ServerHello, "") or (None, alert name)."""
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(s_in, s_out, server_side=True)
    s_in.write(client_hello)
    with contextlib.suppress(ssl.SSLError):
        server.do_handshake()
    try:
        records = RecordReader().feed(s_out.read())
    except ProtocolError:
        return None, ""
    if records and records[0].content_type == ContentType.alert and len(records[0].fragment) == 2:
        return None, name_of(TLSAlert, records[0].fragment[1])
    fragment = b"".join(r.fragment for r in records if r.content_type == ContentType.handshake)
    if len(fragment) < 4:
        return None, ""
    try:
        message, _ = decode_handshake(fragment[: 4 + int.from_bytes(fragment[1:4], "big")])
    except ProtocolError:
        return None, ""
    return (message, "") if isinstance(message, ServerHello) else (None, "")


def _suite_name(value: int | None) -> str:
    if value is None:
        return ""
    return _NAME_OF_SUITE.get(value, name_of(CipherSuite, value))


@dataclass
class NegotiationResult:
    ours: str  # the library rule's choice (an OpenSSL name), or "" for handshake_failure
    openssl: OpenSSLChoice
    text: str

    @property
    def agree(self) -> bool:
        return not self.openssl.problem and self.ours == self.openssl.chosen_name


class NegotiationExplorer(widgets.VBox):
    """Client offers, server supports, who prefers: the library's choice next to OpenSSL's own."""

    def __init__(
        self,
        offered: Sequence[str] = ("AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
        supported: Sequence[str] = ("ECDHE-RSA-AES128-GCM-SHA256", "AES128-GCM-SHA256", "AES128-SHA"),
        prefer: str = "server",
        *,
        choose: Callable[..., Any] = library_choose_cipher_suite,
    ) -> None:
        self.choose = choose
        self.offered_box = widgets.TagsInput(
            value=list(offered), allowed_tags=list(NEGOTIATION_SUITES), allow_duplicates=False
        )
        self.supported_box = widgets.TagsInput(
            value=list(supported), allowed_tags=list(NEGOTIATION_SUITES), allow_duplicates=False
        )
        self.prefer_box = widgets.ToggleButtons(options=["server", "client"], value=prefer, description="prefer")
        self.output = widgets.HTML()
        self.result: NegotiationResult | None = None
        self._holding = False
        super().__init__(
            [
                widgets.HTML("<b>the client offers</b> (drag to reorder; first = most preferred)"),
                self.offered_box,
                widgets.HTML("<b>the server supports</b> (its order of preference)"),
                self.supported_box,
                self.prefer_box,
                self.output,
            ]
        )
        for control in (self.offered_box, self.supported_box, self.prefer_box):
            control.observe(self._on_change, names="value")
        self.update()

    def _on_change(self, change: dict) -> None:
        if not self._holding:
            self.update()

    def update(
        self,
        *,
        offered: Sequence[str] | None = None,
        supported: Sequence[str] | None = None,
        prefer: str | None = None,
    ) -> NegotiationResult:
        """Set any control and recompute both choices (the widget callback)."""
        self._holding = True
        try:
            if offered is not None:
                self.offered_box.value = [s for s in offered if s in NEGOTIATION_SUITES]
            if supported is not None:
                self.supported_box.value = [s for s in supported if s in NEGOTIATION_SUITES]
            if prefer is not None:
                self.prefer_box.value = prefer
        finally:
            self._holding = False
        offered_names, supported_names = list(self.offered_box.value), list(self.supported_box.value)
        openssl = openssl_choice(offered_names, supported_names, self.prefer_box.value)
        # The library's rule gets exactly what OpenSSL's server got: the suites as the real client sent them.
        offer = openssl.offered or [OPENSSL_NAMES[n] for n in offered_names]
        try:
            ours = _suite_name(
                self.choose(offer, [OPENSSL_NAMES[n] for n in supported_names], prefer=self.prefer_box.value)
            )
        except HandshakeFailure:
            ours = ""
        except Exception as error:  # noqa: BLE001 - a learner's rule may fail any way; show it, do not raise
            ours = f"error: {type(error).__name__}: {error}"
        lines = [
            "ClientHello.cipher_suites as OpenSSL's client sent them: "
            + (", ".join(_suite_name(s) for s in openssl.offered) or "-"),
            f"the rule ({self.prefer_box.value} preference) picks: {ours or 'nothing in common -> handshake_failure'}",
        ]
        if openssl.problem:
            lines.append(f"OpenSSL: {openssl.problem}")
        elif openssl.chosen is not None:
            lines.append(f"OpenSSL's server picks:  {openssl.chosen_name}")
        else:
            lines.append(f"OpenSSL's server answers with the alert {openssl.alert}")
        result = NegotiationResult(ours, openssl, "\n".join(lines))
        if not openssl.problem:
            lines.append("same choice" if result.agree or (not ours and openssl.alert) else "DIFFERENT")
        result.text = "\n".join(lines)
        self.result = result
        self.output.value = _pre(result.text)
        return result


def negotiation_explorer(**settings: Any) -> NegotiationExplorer:
    """Lesson 03's negotiation widget (``offered``, ``supported``, ``prefer``)."""
    return NegotiationExplorer(**settings)


def server_random_demo() -> list[tuple[str, bytes]]:
    """Two real OpenSSL servers answer the same TLS 1.2-only client: one speaks up to 1.2, one up to 1.3.

    Returns ``(description, server_random)``; the TLS 1.3-capable server ends its random with
    ``DOWNGRD\\x01`` (RFC 8446 section 4.1.3), so a 1.3 client would notice a forced downgrade.
    """
    pki = _negotiation_pki()
    hello = openssl_client_hello("localhost", ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    results = []
    for label, maximum in (
        ("server up to TLS 1.2", ssl.TLSVersion.TLSv1_2),
        ("server up to TLS 1.3", ssl.TLSVersion.TLSv1_3),
    ):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.cert_path, pki.key_path)
        context.maximum_version = maximum
        server_hello, alert = _memory_server_answer(context, hello)
        if server_hello is None:
            raise HandshakeFailure(f"OpenSSL did not answer the demo hello ({alert or 'no answer'})")
        results.append((label, server_hello.random))
    return results


# -- X.509 DER, annotated -----------------------------------------------------------------------------
_UNIVERSAL_TAGS = {
    0x01: "BOOLEAN", 0x02: "INTEGER", 0x03: "BIT STRING", 0x04: "OCTET STRING", 0x05: "NULL",
    0x06: "OBJECT IDENTIFIER", 0x0C: "UTF8String", 0x13: "PrintableString", 0x14: "T61String",
    0x16: "IA5String", 0x17: "UTCTime", 0x18: "GeneralizedTime", 0x1E: "BMPString",
    0x30: "SEQUENCE", 0x31: "SET",
}
_OID_NAMES = {
    "1.2.840.113549.1.1.1": "rsaEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.2.1": "id-ecPublicKey",
    "1.2.840.10045.3.1.7": "prime256v1 (P-256)",
    "1.3.132.0.34": "secp384r1 (P-384)",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.3.101.112": "Ed25519",
    "2.5.4.3": "commonName (CN)",
    "2.5.4.6": "countryName (C)",
    "2.5.4.7": "localityName (L)",
    "2.5.4.8": "stateOrProvinceName (ST)",
    "2.5.4.10": "organizationName (O)",
    "2.5.4.11": "organizationalUnitName (OU)",
    "2.5.29.14": "subjectKeyIdentifier",
    "2.5.29.15": "keyUsage",
    "2.5.29.17": "subjectAltName",
    "2.5.29.19": "basicConstraints",
    "2.5.29.31": "cRLDistributionPoints",
    "2.5.29.32": "certificatePolicies",
    "2.5.29.35": "authorityKeyIdentifier",
    "2.5.29.37": "extKeyUsage",
    "1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
    "1.3.6.1.4.1.11129.2.4.2": "signed certificate timestamps (CT)",
}
# Child names by parent field (RFC 5280 section 4.1); context tags [n] name optional fields.
_TBS_FIELDS = ("serialNumber", "signature", "issuer", "validity", "subject", "subjectPublicKeyInfo")
_TBS_TAGGED = {0xA0: "version", 0xA1: "issuerUniqueID", 0xA2: "subjectUniqueID", 0xA3: "extensions"}
_CHILDREN: dict[str, tuple[str, ...]] = {
    "certificate": ("tbsCertificate", "signatureAlgorithm", "signatureValue"),
    "validity": ("notBefore", "notAfter"),
    "subjectPublicKeyInfo": ("algorithm", "subjectPublicKey"),
    "signature": ("algorithm", "parameters"),
    "signatureAlgorithm": ("algorithm", "parameters"),
    "algorithm": ("algorithm", "parameters"),
    "attribute": ("type", "value"),
}
_FIELD_MEANINGS = {
    "tbsCertificate": "TBSCertificate: everything the issuer signs",
    "signatureAlgorithm": "how the issuer signed (must equal tbsCertificate.signature)",
    "signatureValue": "the issuer's signature over the DER of tbsCertificate",
    "version": "[0] EXPLICIT: version",
    "serialNumber": "serial number, unique per issuer",
    "signature": "signature algorithm (repeated inside the signed part)",
    "issuer": "issuer: who vouches for this certificate",
    "validity": "validity: notBefore and notAfter",
    "subject": "subject: whom the certificate is about",
    "subjectPublicKeyInfo": "the subject's public key and its algorithm",
    "extensions": "[3] EXPLICIT: extensions (X.509 v3)",
}
_MAX_DER_DEPTH = 24  # real certificates nest about 8 deep; deeper is malformed or hostile


def _oid_text(body: bytes) -> str:
    if not body or body[-1] & 0x80:
        raise ValueError("OBJECT IDENTIFIER is empty or its last byte has the continuation bit")
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    dotted = ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))
    return f"{_OID_NAMES[dotted]} ({dotted})" if dotted in _OID_NAMES else dotted


def _primitive_meaning(tag: int, body: bytes, field_name: str) -> str:
    if tag == 0x02:
        number = int.from_bytes(body, "big", signed=True)
        if field_name == "versionNumber":
            return f"{number}: X.509 v{number + 1}"
        return f"{number}" if len(body) <= 8 else f"{len(body) * 8}-bit integer 0x{body[:8].hex()}..."
    if tag == 0x06:
        return _oid_text(body)
    if tag in (0x0C, 0x13, 0x14, 0x16, 0x1E):
        encoding = "utf-16-be" if tag == 0x1E else "utf-8"
        return repr(body.decode(encoding, errors="replace"))
    if tag == 0x17:
        text = body.decode("ascii", errors="replace")
        return f"UTCTime {text} (20{text[:2]}-{text[2:4]}-{text[4:6]} {text[6:8]}:{text[8:10]}:{text[10:12]} UTC)"
    if tag == 0x18:
        return f"GeneralizedTime {body.decode('ascii', errors='replace')}"
    if tag == 0x01:
        return "TRUE" if body == b"\xff" else "FALSE" if body == b"\x00" else "invalid BOOLEAN"
    if tag == 0x05:
        return "NULL (no parameters)"
    if tag == 0x03:
        return f"{max(0, (len(body) - 1) * 8 - (body[0] if body else 0))} bits"
    if tag == 0x04:
        return f"{len(body)} bytes"
    if 0x80 <= tag <= 0x8F:
        text = body.decode("ascii", errors="replace")
        return f"[{tag & 0x1F}] {text!r}" if text.isprintable() else f"[{tag & 0x1F}] {len(body)} bytes"
    return f"{len(body)} bytes"


def _tag_name(tag: int) -> str:
    if tag in _UNIVERSAL_TAGS:
        return _UNIVERSAL_TAGS[tag]
    klass = ("universal", "application", "context", "private")[tag >> 6]
    form = "constructed" if tag & 0x20 else "primitive"
    return f"[{tag & 0x1F}] {klass} {form}" if klass == "context" else f"{klass} tag {tag & 0x1F} ({form})"


def _child_name(parent: str, index: int, tag: int, position_in_tbs: list[int]) -> str:
    if parent == "tbsCertificate":
        if tag in _TBS_TAGGED:
            return _TBS_TAGGED[tag]
        slot = position_in_tbs[0]
        position_in_tbs[0] += 1
        return _TBS_FIELDS[slot] if slot < len(_TBS_FIELDS) else "field"
    if parent == "version":
        return "versionNumber"
    if parent in ("issuer", "subject"):
        return "rdn"
    if parent == "rdn":
        return "attribute"
    if parent == "extensions":
        return "extensionList" if index == 0 and tag == 0x30 else "extension"
    if parent == "extensionList":
        return "extension"
    if parent == "extension":
        return ("extnID", "critical", "extnValue")[index] if tag != 0x04 or index == 0 else "extnValue"
    names = _CHILDREN.get(parent)
    if names and index < len(names):
        return names[index]
    return _UNIVERSAL_TAGS.get(tag, "element").lower().replace(" ", "_")


def _read_der(reader: Reader, name: str, depth: int) -> None:
    """Read one DER TLV as a group ``name`` with ``tag``, ``length`` and ``value`` (or children)."""
    if depth > _MAX_DER_DEPTH:
        raise DecodeError(f"DER nested more than {_MAX_DER_DEPTH} deep", field=name, offset=reader.offset)
    peek = reader.data[reader.position] if reader.remaining else 0
    with reader.group(name, _FIELD_MEANINGS.get(name, _tag_name(peek))) as tlv:
        tag = tlv.u8("tag", _tag_name)
        if tag & 0x1F == 0x1F:
            raise DecodeError(
                "high tag numbers (>= 31) do not occur in certificates", field=name, offset=tlv.offset - 1
            )
        first = tlv.data[tlv.position] if tlv.remaining else None
        if first is None:
            raise DecodeError("missing length", field=f"{name}.length", offset=tlv.offset)
        if first < 0x80:
            length = tlv.u8("length", "short form: the length itself")
        elif first == 0x80:
            raise DecodeError("indefinite length is BER, never DER", field=f"{name}.length", offset=tlv.offset)
        else:
            count = first & 0x7F
            if count > 4:
                raise DecodeError(f"a {count}-byte length is absurd here", field=f"{name}.length", offset=tlv.offset)
            start = tlv.offset
            encoded = tlv.raw(
                1 + count, "length",
                lambda v: f"long form: {v[0] & 0x7f} byte(s) of length follow, value {int.from_bytes(v[1:], 'big')}",
            )
            length = int.from_bytes(encoded[1:], "big")
            if length < 0x80 or encoded[1] == 0:
                raise DecodeError("length not in its shortest form (DER requires it)", field=f"{name}.length",
                                  offset=start)
        if tag & 0x20:  # constructed: the value is more TLVs
            with tlv.sub_reader(length, "value", f"{length} bytes of nested elements") as inner:
                position_in_tbs = [0]
                index = 0
                while not inner.at_end:
                    child_tag = inner.data[inner.position]
                    _read_der(inner, _child_name(name, index, child_tag, position_in_tbs), depth + 1)
                    index += 1
        else:
            body = tlv.data[tlv.position : tlv.position + length]
            try:
                meaning = _primitive_meaning(tag, body, name) if len(body) == length else ""
            except (ValueError, IndexError):  # a bad OID or an empty BIT STRING: explain, do not crash
                meaning = "malformed value"
            tlv.raw(length, "value", meaning)


def der_spans(der: bytes) -> tuple[list[Span], DecodeError | None]:
    """Annotate an X.509 certificate's DER: a group per element named as in RFC 5280, tag/length/value.

    Returns the spans and the DecodeError that stopped decoding (spans read before it are kept).
    """
    spans: list[Span] = []
    reader = Reader(der, spans=spans)
    try:
        _read_der(reader, "certificate", 0)
        reader.expect_end("the certificate")
    except DecodeError as error:
        return spans, error
    return spans, None


def certificate_fields(der: bytes) -> list[tuple[str, str]]:
    """What ``cryptography.x509`` reads from the certificate: (field, value) rows for a table."""
    certificate = x509.load_der_x509_certificate(der)
    rows = [
        ("version", certificate.version.name),
        ("serial number", f"0x{certificate.serial_number:x}"),
        ("signature algorithm", certificate.signature_algorithm_oid._name),
        ("issuer", certificate.issuer.rfc4514_string()),
        ("subject", certificate.subject.rfc4514_string()),
        ("not before", certificate.not_valid_before_utc.isoformat()),
        ("not after", certificate.not_valid_after_utc.isoformat()),
    ]
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        rows.append(("public key", f"RSA, {key.key_size}-bit modulus, exponent {key.public_numbers().e}"))
    elif isinstance(key, ec.EllipticCurvePublicKey):
        rows.append(("public key", f"EC, curve {key.curve.name}"))
    else:
        rows.append(("public key", type(key).__name__))
    for extension in certificate.extensions:
        value = extension.value
        if isinstance(value, x509.SubjectAlternativeName):
            text = ", ".join(str(name.value) for name in value)
        elif isinstance(value, x509.BasicConstraints):
            text = f"CA={value.ca}"
        elif isinstance(value, x509.ExtendedKeyUsage):
            text = ", ".join(oid._name for oid in value)
        elif isinstance(value, x509.KeyUsage):
            text = ", ".join(
                name for name in ("digital_signature", "key_encipherment", "key_cert_sign", "crl_sign")
                if getattr(value, name)
            )
        else:
            text = type(value).__name__
        critical = " (critical)" if extension.critical else ""
        rows.append((f"extension {extension.oid._name}{critical}", text))
    rows.append(("signature", f"{len(certificate.signature)} bytes"))
    return rows


class CertificateExplorer(widgets.VBox):
    """A certificate's DER in the hex view, annotated element by element, beside cryptography's reading."""

    def __init__(self, der: bytes, title: str = "certificate") -> None:
        self.der = bytes(der)
        self.spans, self.error = der_spans(self.der)
        try:
            self.fields = certificate_fields(self.der)
            fields_html = "".join(
                f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                f"<td>{html.escape(v)}</td></tr>"
                for k, v in self.fields
            )
            table = widgets.HTML(f"<table style='color:inherit'>{fields_html}</table>")
        except ValueError as error:
            self.fields = []
            table = widgets.HTML(f"<i>cryptography cannot parse it: {html.escape(str(error))}</i>")
        note = f" - stopped: {self.error}" if self.error else ""
        self.hexview = HexView(self.der, self.spans, title=f"{title}: {len(self.der)} bytes of DER{note}")
        super().__init__([table, self.hexview])

    def select(self, field: str) -> Span | None:
        """Choose the element whose dotted path ends with ``field`` (e.g. ``"validity"``, ``"subject"``)."""
        index = next(
            (i for i, s in enumerate(self.spans) if s.field == field or s.field.endswith("." + field)), None
        )
        self.hexview.select(index)
        return self.spans[index] if index is not None else None


def certificate_explorer(der: bytes, title: str = "certificate") -> CertificateExplorer:
    return CertificateExplorer(der, title)


# -- exercise 02: encode a ClientHello --------------------------------------------------------------
def reference_client_hello(client_random: bytes, suites: Sequence[int], server_name: str) -> bytes:
    """Exercise 02's specification, written with the library's message classes (for the tests).

    Its signature is the ``build_client_hello`` stage's, so it can stand in for a learner's encoder.
    """
    return ClientHello(
        legacy_version=ProtocolVersion.TLS1_2,
        random=bytes(client_random),
        session_id=b"",
        cipher_suites=[int(s) for s in suites],
        compression_methods=b"\x00",
        extensions=[
            ServerNameExtension.for_host(server_name),
            SignatureAlgorithmsExtension(list(EXERCISE_SIGNATURE_SCHEMES)),
        ],
    ).to_bytes()


def client_hello_differences(found: bytes, expected: bytes) -> list[str]:
    """Field-by-field differences between two encoded ClientHellos, in the order a reader meets them.

    An empty list means the bytes are identical.  Every message says what was expected and what was
    found, and where.
    """
    if found == expected:
        return []
    if not isinstance(found, bytes | bytearray):
        return [f"expected bytes, found {type(found).__name__}"]
    found = bytes(found)
    problems: list[str] = []
    if len(found) < 4:
        return [f"a handshake message starts with a 4-byte header; found only {len(found)} bytes: {found.hex()}"]
    if found[0] != expected[0]:
        problems.append(f"msg_type (byte 0): expected {expected[0]} (client_hello), found {found[0]}")
    body_length = int.from_bytes(found[1:4], "big")
    if body_length != len(found) - 4:
        problems.append(
            f"handshake length (bytes 1-3): says {body_length}, but {len(found) - 4} bytes follow the header"
        )
    try:
        mine, _ = decode_handshake(found)
    except ProtocolError as error:
        return [*problems, f"the bytes do not decode as a ClientHello: {error}"]
    reference, _ = decode_handshake(expected)
    assert isinstance(reference, ClientHello)
    if not isinstance(mine, ClientHello):
        return [*problems, f"expected a ClientHello, found {type(mine).__name__}"]
    for name, want, got in (
        ("client_version", reference.legacy_version, mine.legacy_version),
        ("random", reference.random.hex(), mine.random.hex()),
        ("session_id", reference.session_id.hex(), mine.session_id.hex()),
        ("cipher_suites", [f"0x{s:04x}" for s in reference.cipher_suites], [f"0x{s:04x}" for s in mine.cipher_suites]),
        ("compression_methods", reference.compression_methods.hex(), mine.compression_methods.hex()),
    ):
        if want != got:
            shown_want = f"0x{want:04x}" if isinstance(want, int) else want
            shown_got = f"0x{got:04x}" if isinstance(got, int) else got
            problems.append(f"{name}: expected {shown_want or '(empty)'}, found {shown_got or '(empty)'}")
    want_types = [name_of(ExtensionType, e.extension_type) for e in reference.extensions or ()]
    got_types = [name_of(ExtensionType, e.extension_type) for e in mine.extensions or ()]
    if want_types != got_types:
        problems.append(f"extensions: expected {want_types} in that order, found {got_types}")
    else:
        for want_ext, got_ext in zip(reference.extensions or (), mine.extensions or (), strict=True):
            if want_ext != got_ext:
                problems.append(
                    f"extension {name_of(ExtensionType, want_ext.extension_type)}: expected {want_ext}, found {got_ext}"
                )
    if not problems:
        problems.append(f"the bytes differ: expected {expected.hex()}, found {found.hex()}")
    return problems


@dataclass
class LearnerHelloRun:
    """Exercise 02's live step: OpenSSL's answer to the learner's bytes, then (if it liked them) a full fetch."""

    answer: ServerAnswer | None = None
    status: int | None = None
    body: bytes = b""
    cipher_suite: str = ""
    error: str = ""

    @property
    def page_arrived(self) -> bool:
        return self.status == 200 and bool(self.body)

    def summary(self) -> str:
        lines = []
        if self.answer is not None:
            lines.append("1. your ClientHello, sent as it is to OpenSSL:")
            lines.extend("   " + line for line in self.answer.summary().splitlines())
        if self.status is not None:
            lines.append(f"2. a full handshake started by your ClientHello: {self.cipher_suite}, HTTP {self.status}")
            lines.append(f"   page: {self.body[:120].decode('utf-8', errors='replace')}")
        if self.error:
            lines.append(f"stopped: {self.error}")
        return "\n".join(lines)


def run_learner_client_hello(
    encode_client_hello: BuildClientHello,
    cipher_suites: Sequence[int] = (
        CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    ),
    *,
    timeout: float = 5.0,
) -> LearnerHelloRun:
    """Exercise 02's last step, against a fresh OpenSSL server on loopback.

    1. The learner's bytes go to OpenSSL exactly as encoded; its answer (ServerHello... or an alert)
       is recorded.
    2. If OpenSSL answered with its whole first flight, our client runs a complete handshake whose
       ClientHello is the learner's (the ``build_client_hello`` stage), and fetches the page.
    """
    from ..tls.session import tls_get

    run = LearnerHelloRun()
    host = "localhost"
    with OpenSSLPeer(SERVER_CIPHERS, timeout=timeout) as peer:
        try:
            first = encode_client_hello(client_random=os.urandom(32), suites=list(cipher_suites), server_name=host)
        except Exception as error:  # noqa: BLE001 - the learner's function; report, do not crash
            run.error = f"encode_client_hello raised {type(error).__name__}: {error}"
            return run
        if not isinstance(first, bytes | bytearray):
            run.error = f"encode_client_hello returned {type(first).__name__}, not bytes"
            return run
        run.answer = peer.send_client_hello(bytes(first), timeout=timeout)
        if not run.answer.complete:
            run.error = "OpenSSL did not accept your ClientHello"
            return run

        assert peer.pki is not None and peer.server is not None
        try:
            response = tls_get(
                f"https://{host}:{peer.server.port}/", cafile=peer.pki.ca_path, cipher_suites=list(cipher_suites),
                stages=Stages(build_client_hello=encode_client_hello), timeout=timeout,
            )
        except HandshakeError as error:
            run.error = f"{type(error).__name__}: {error}"
            return run
        run.status, run.body = response.status, response.body
        run.cipher_suite = name_of(CipherSuite, response.handshake.cipher_suite)
    return run


# -- exercise 03: choose the cipher suite as a server ---------------------------------------------
@dataclass
class LearnerChoiceRun:
    """Exercise 03's live step: what OpenSSL's client negotiated with our server running the learner's rule."""

    offered: list[str]
    supported: list[str]
    prefer: str
    openssl_cipher: str = ""  # from the OpenSSL client's SSLSocket.cipher()
    server_error: str = ""
    client_error: str = ""
    page: bytes = b""

    def summary(self) -> str:
        lines = [
            f"OpenSSL client offers {self.offered}; our server supports {self.supported}, {self.prefer} preference",
        ]
        if self.openssl_cipher:
            lines.append(f"handshake complete: OpenSSL's client reports cipher {self.openssl_cipher}")
        if self.page:
            lines.append(f"page: {self.page[:80].decode('utf-8', errors='replace')}...")
        if self.client_error:
            lines.append(f"OpenSSL's client: {self.client_error}")
        if self.server_error:
            lines.append(f"our server (your rule): {self.server_error}")
        return "\n".join(lines)


def run_learner_cipher_choice(
    choose_cipher_suite: ChooseCipherSuite,
    offered: Sequence[str],
    supported: Sequence[str] = ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "AES128-SHA"),
    *,
    prefer: str = "server",
    pki: LivePKI | None = None,
    timeout: float = 5.0,
) -> LearnerChoiceRun:
    """Our TLS server, with the learner's rule choosing the suite, meets OpenSSL's client (Python ``ssl``).

    ``offered`` and ``supported`` are OpenSSL names; ``supported`` must be RSA key exchange suites
    (what our server runs).  The client verifies our certificate against the course CA.
    """
    from ..tls.session import TLSPageServer

    run = LearnerChoiceRun(list(offered), list(supported), prefer)
    owned = pki is None
    pki = pki or fresh_pki()
    try:
        client = ssl.create_default_context(cafile=str(pki.ca_path))
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        client.set_ciphers(":".join(offered))
        server = TLSPageServer(
            [pki.issued.der], pki.issued.private_key, cipher_suites=[OPENSSL_NAMES[n] for n in supported],
            prefer=prefer, stages=Stages(choose_cipher_suite=choose_cipher_suite), timeout=timeout,
        )
        with server:
            try:
                with (
                    net.connect(server.host, server.port, timeout=timeout) as raw,
                    client.wrap_socket(raw, server_hostname="localhost") as tls,
                ):
                    run.openssl_cipher = tls.cipher()[0]
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    response = b""
                    while chunk := tls.recv(4096):
                        response += chunk
                    run.page = response.partition(b"\r\n\r\n")[2]
            except (ssl.SSLError, OSError) as error:
                run.client_error = str(getattr(error, "reason", None) or error)
        if server.connections and server.connections[0].error is not None:
            run.server_error = str(server.connections[0].error)
    finally:
        if owned:
            pki.cleanup()
    return run


# -- benchmarks (read by `make bench`, see bench/README.md) ----------------------------------------------
@functools.lru_cache(maxsize=1)
def _bench_peer() -> OpenSSLPeer:
    # One server for every benchmark; it starts on the first send and stops at interpreter exit.
    return OpenSSLPeer()


def _bench_builder_suites() -> Callable[[], object]:
    builder = ClientHelloBuilder(peer=_bench_peer())
    choices = itertools.cycle([("AES128-GCM-SHA256",), ("AES128-SHA", "AES256-GCM-SHA384"), tuple(SUITE_CHOICES)])
    return lambda: builder.update(suites=next(choices))


def _bench_builder_extension() -> Callable[[], object]:
    builder = ClientHelloBuilder(peer=_bench_peer())
    flips = itertools.cycle([DEFAULT_EXTENSIONS - {"signature_algorithms"}, DEFAULT_EXTENSIONS])
    return lambda: builder.update(extensions=next(flips))


def _bench_builder_select() -> Callable[[], object]:
    builder = ClientHelloBuilder(peer=_bench_peer())
    names = itertools.cycle(["random", "cipher_suites", "server_name_list", "client_version", "extensions"])
    return lambda: builder.select(next(names))


def _bench_builder_send() -> Callable[[], object]:
    builder = ClientHelloBuilder(peer=_bench_peer())
    builder.send()  # starts the server; the timed calls are the round trips a learner waits for
    return builder.send


def _bench_negotiation() -> Callable[[], object]:
    explorer = NegotiationExplorer()
    orders = itertools.cycle(itertools.permutations(["AES128-SHA", "AES128-GCM-SHA256", "AES256-SHA256"]))
    prefers = itertools.cycle(["server", "client", "client", "server", "server"])
    return lambda: explorer.update(offered=list(next(orders)), prefer=next(prefers))


def _bench_certificate_select() -> Callable[[], object]:
    explorer = CertificateExplorer(_negotiation_pki().certificate_der)
    fields = itertools.cycle(["validity", "subject", "issuer", "subjectPublicKeyInfo", "extensions", "signatureValue"])
    return lambda: explorer.select(next(fields))


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "client_hello_builder.update(suites)": _bench_builder_suites,
    "client_hello_builder.update(extensions)": _bench_builder_extension,
    "client_hello_builder.select": _bench_builder_select,
    "client_hello_builder.send (live OpenSSL)": _bench_builder_send,
    "negotiation_explorer.update (live OpenSSL)": _bench_negotiation,
    "certificate_explorer.select": _bench_certificate_select,
}
