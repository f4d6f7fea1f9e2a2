"""OpenSSL in memory: its client's ClientHello and its server's choice, with no socket at all.

Theory of operation
-------------------
Python's ``ssl`` module *is* OpenSSL, and ``SSLContext.wrap_bio`` runs it over two memory buffers
(``ssl.MemoryBIO``) instead of a socket: bytes written into the incoming buffer are what OpenSSL reads,
and what it writes lands in the outgoing one.  One ``do_handshake()`` call then produces one flight:

* a client object writes its ClientHello (:func:`openssl_client_hello`) and stops, waiting for an
  answer that never comes;
* a server object given those records writes its ServerHello flight, or a fatal alert
  (:func:`memory_server_answer`), and stops.

That is enough to ask a real OpenSSL which suite it picks for an offer and a configuration
(:func:`openssl_choice`), or what its ServerHello random looks like (:func:`downgrade_randoms`), in
about a millisecond and without ports, threads or timeouts.  The answers are read with the library's
own framing (:class:`~handshake_lib.tls.flight.FirstFlightReader`).  The server's certificate comes
from a course PKI made once per process, in a private temporary folder removed at exit.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import HandshakeFailure
from ..pki.builder import CoursePKI, ServerFiles
from ..tls.constants import OPENSSL_NAMES, CipherSuite, name_of
from ..tls.flight import FirstFlightReader, ServerAnswer
from ..tls.messages import ClientHello, ServerHello

__all__ = [
    "OpenSSLChoice",
    "downgrade_randoms",
    "memory_server_answer",
    "openssl_choice",
    "openssl_client_hello",
    "openssl_suite_name",
]

_NAME_OF_SUITE = {suite: name for name, suite in OPENSSL_NAMES.items()}


def openssl_suite_name(value: int | None) -> str:
    """OpenSSL's name for a suite (``AES128-GCM-SHA256``), the IANA one if OpenSSL has none, "" for None."""
    if value is None:
        return ""
    return _NAME_OF_SUITE.get(value, name_of(CipherSuite, value))


def openssl_client_hello(server_name: str = "localhost", *, ciphers: str | None = None, tls13: bool = False) -> bytes:
    """The ClientHello record(s) OpenSSL's own client writes (memory BIOs, nothing sent).

    ``ciphers`` is an OpenSSL cipher string (default: the ``ssl`` module's default list); TLS 1.3 is
    off unless ``tls13``, so that the hello is comparable with the lessons' TLS 1.2 one.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nothing is received: only the first flight is produced
    if not tls13:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers is not None:
        context.set_ciphers(ciphers)
    outgoing = ssl.MemoryBIO()
    client = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def memory_server_answer(context: ssl.SSLContext, client_hello_records: bytes) -> ServerAnswer:
    """Feed ClientHello records to a fresh OpenSSL server object; its first flight (or alert), decoded."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(client_hello_records)
    with contextlib.suppress(ssl.SSLError):  # SSLWantReadError after a flight, SSLError after an alert
        server.do_handshake()
    reader = FirstFlightReader(client_hello_records)
    reader.receive_data(outgoing.read())
    return reader.answer


@functools.lru_cache(maxsize=1)
def _server_files() -> tuple[ServerFiles, tempfile.TemporaryDirectory[str]]:
    # The folder object is kept with the files: it deletes them at exit (or when the cache is cleared).
    folder = tempfile.TemporaryDirectory(prefix="handshakes-memory-")
    return CoursePKI.create().write_server_files(Path(folder.name), ("localhost", "127.0.0.1")), folder


def _server_context(maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    files, _ = _server_files()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = maximum
    context.load_cert_chain(files.cert_path, files.key_path)
    return context


@functools.lru_cache(maxsize=64)
def _negotiation_context(supported: tuple[str, ...], prefer: str) -> ssl.SSLContext:
    context = _server_context()
    context.set_ciphers(":".join(supported))
    if prefer == "server":
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


@functools.lru_cache(maxsize=64)
def _client_hello_for(offered: tuple[str, ...]) -> bytes:
    return openssl_client_hello("localhost", ciphers=":".join(offered))


@dataclass
class OpenSSLChoice:
    """What a real OpenSSL server did with one ClientHello from a real OpenSSL client."""

    offered: list[int]  # the cipher_suites field of the ClientHello OpenSSL's client sent, SCSV included
    chosen: CipherSuite | None  # the suite in OpenSSL's ServerHello, or None
    alert: str = ""  # the alert it sent instead, if any
    problem: str = ""  # a configuration that OpenSSL refuses before any handshake

    @property
    def chosen_name(self) -> str:
        return openssl_suite_name(self.chosen)


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
        hello_records = _client_hello_for(tuple(offered))
        context = _negotiation_context(tuple(supported), prefer)
    except ssl.SSLError as error:  # set_ciphers raises one without a reason: "No cipher can be selected."
        reason = getattr(error, "reason", None) or error
        return OpenSSLChoice([], None, problem=f"OpenSSL refuses the cipher list: {reason}")
    sent = FirstFlightReader()
    sent.receive_data(hello_records)  # the library reads OpenSSL's ClientHello with the same framing
    hello = next((m.message for m in sent.answer.messages if isinstance(m.message, ClientHello)), None)
    offered_codes = list(hello.cipher_suites) if hello is not None else []
    answer = memory_server_answer(context, hello_records)
    server_hello = answer.server_hello
    if server_hello is None:
        alert = answer.alert_name or ""
        return OpenSSLChoice(offered_codes, None, alert=alert, problem="" if alert else "OpenSSL sent no answer")
    return OpenSSLChoice(offered_codes, CipherSuite(server_hello.cipher_suite))


def downgrade_randoms() -> list[tuple[str, bytes]]:
    """Two real OpenSSL servers answer the same TLS 1.2-only client: one speaks up to 1.2, one up to 1.3.

    Returns ``(description, server_random)``; the TLS 1.3-capable server ends its random with
    ``DOWNGRD\\x01`` (RFC 8446 section 4.1.3), so a 1.3 client would notice a forced downgrade.
    Raises :class:`~handshake_lib.errors.HandshakeFailure` if OpenSSL does not answer.
    """
    hello = openssl_client_hello("localhost", ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    results = []
    for label, maximum in (
        ("server up to TLS 1.2", ssl.TLSVersion.TLSv1_2),
        ("server up to TLS 1.3", ssl.TLSVersion.TLSv1_3),
    ):
        answer = memory_server_answer(_server_context(maximum), hello)
        server_hello: ServerHello | None = answer.server_hello
        if server_hello is None:
            raise HandshakeFailure(f"OpenSSL did not answer the demo hello ({answer.summary()})")
        results.append((label, server_hello.random))
    return results
