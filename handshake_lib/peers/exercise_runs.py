"""The last step of exercises 02 and 03: the learner's function inside a real handshake with OpenSSL.

A passing exercise ends with a handshake that succeeds against a real peer, and a wrong answer fails
the way that peer makes it fail (DESIGN section 3, rule 6).  Each function starts what it needs on
loopback with fresh keys, for the duration of the call, and reports instead of raising: the learner's
function may fail any way, and the notebook shows what happened.

* :func:`run_learner_client_hello` (exercise 02): the learner's ClientHello bytes go to an OpenSSL
  server exactly as encoded (:func:`handshake_lib.net.tls.send_client_hello`); if OpenSSL answers with its
  whole first flight, our client runs a complete handshake whose ClientHello is the learner's and
  fetches the page.
* :func:`run_learner_cipher_choice` (exercise 03): our server (:class:`~handshake_lib.net.tls.TLSPageServer`)
  picks the suite with the learner's rule, and OpenSSL's client (:func:`handshake_lib.peers.openssl.openssl_fetch`)
  says what it negotiated.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import HandshakeError
from ..net.tls import TLSPageServer, tls_get
from ..pki.builder import CoursePKI, ServerFiles
from ..tls.constants import OPENSSL_NAMES, CipherSuite, name_of
from ..tls.flight import ServerAnswer
from ..tls.stages import BuildClientHello, ChooseCipherSuite, Stages
from .openssl import openssl_fetch, openssl_server

__all__ = [
    "HELLO_SERVER_CIPHERS",
    "LearnerChoiceRun",
    "LearnerHelloRun",
    "run_learner_cipher_choice",
    "run_learner_client_hello",
]

# What lesson 02's OpenSSL server accepts: the four RSA key exchange suites the course teaches and one
# ECDHE suite, so that offering ECDHE-RSA-AES256-GCM-SHA384 alone finds nothing in common.
HELLO_SERVER_CIPHERS = "AES256-GCM-SHA384:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"


# -- exercise 02: encode a ClientHello --------------------------------------------------------------
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
    server_ciphers: str = HELLO_SERVER_CIPHERS,
    timeout: float = 5.0,
) -> LearnerHelloRun:
    """Exercise 02's last step, against a fresh OpenSSL server on loopback.

    1. The learner's bytes go to OpenSSL exactly as encoded; its answer (ServerHello... or an alert)
       is recorded.
    2. If OpenSSL answered with its whole first flight, our client runs a complete handshake whose
       ClientHello is the learner's (``build_client_hello``), and fetches the page.
    """
    run = LearnerHelloRun()
    host = "localhost"
    with openssl_server(server_ciphers, timeout=timeout) as peer:
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

        try:
            response = tls_get(
                peer.url, cafile=peer.cafile, cipher_suites=list(cipher_suites),
                stages=Stages(build_client_hello=encode_client_hello),
                timeout=timeout,
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
    files: ServerFiles | None = None,
    timeout: float = 5.0,
) -> LearnerChoiceRun:
    """Our TLS server, with the learner's rule choosing the suite, meets OpenSSL's client (Python ``ssl``).

    ``offered`` and ``supported`` are OpenSSL names; ``supported`` must be RSA key exchange suites
    (what our server runs).  The client verifies our certificate against the course CA.
    """
    run = LearnerChoiceRun(list(offered), list(supported), prefer)
    with contextlib.ExitStack() as cleanup:
        if files is None:
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="handshakes-exercise-"))
            files = CoursePKI.create().write_server_files(Path(folder))
        server = TLSPageServer(
            [files.issued.der], files.issued.private_key, cipher_suites=[OPENSSL_NAMES[n] for n in supported],
            prefer=prefer, stages=Stages(choose_cipher_suite=choose_cipher_suite), timeout=timeout,
        )
        with server:
            fetched = openssl_fetch(
                server.host, server.port, cafile=files.ca_path, ciphers=":".join(offered), timeout=timeout
            )
        run.openssl_cipher, run.page, run.client_error = fetched.cipher, fetched.page, fetched.error
        if server.connections and server.connections[0].error is not None:
            run.server_error = str(server.connections[0].error)
    return run
