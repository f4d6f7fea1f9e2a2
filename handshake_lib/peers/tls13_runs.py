"""Lesson 10's live runs (TLS 1.3 beside TLS 1.2) and exercise 10's key schedule in our TLS 1.3 server.

Theory of operation
-------------------
Every run is a real connection on 127.0.0.1, made once in a notebook cell; the lesson's widgets only
rearrange what these functions return, so they never wait on the network.

* :func:`compare_versions`: one OpenSSL server (Python ``ssl``, TLS 1.2 and 1.3 allowed), the same page
  fetched by our client over TLS 1.2 (``ECDHE-RSA-AES128-GCM-SHA256``) and over TLS 1.3, then each again
  ``repeat`` times for steady timings; OpenSSL's key log is kept so the 1.3 secrets our client derived can
  be compared with OpenSSL's (:meth:`VersionComparison.openssl_agrees`).
* :func:`hello_retry_run`: an OpenSSL server whose only group is P-256; our client's default shares
  (X25519MLKEM768 and x25519) do not fit, so OpenSSL answers with a HelloRetryRequest.
* :func:`hybrid_runs`: our own TLS 1.3 server (:class:`~handshake_lib.net.tls.TLSPageServer`), fetched with
  the post-quantum hybrid X25519MLKEM768 and with x25519 alone; Debian's OpenSSL 3.0 has no ML-KEM.
* :func:`refused_legacy_hello`: OpenSSL's client offering only TLS 1.2 with RSA key exchange, refused by
  our TLS 1.3 server, with OpenSSL's and our server's account of it.
* :func:`run_learner_key_schedule`: a learner's HKDF-Expand-Label, Derive-Secret and traffic keys as the
  :class:`~handshake_lib.tls.stages13.Stages13` of our TLS 1.3 server, fetched by OpenSSL's client
  (Python ``ssl``): right, the page arrives; wrong, OpenSSL cannot open the server's first encrypted record.

:func:`key_shares` and :func:`exchange_summary` read a transcript our client kept (the decoded messages
and the timings ``tls_get`` recorded); they decode nothing themselves.
"""

from __future__ import annotations

import ssl
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..net import DEFAULT_TIMEOUT
from ..net.tls import TLSPageServer, TLSResponse, tls_get
from ..pki.builder import CoursePKI
from ..tls.connection import TranscriptEntry
from ..tls.constants import CipherSuite, ContentType, ExtensionType, NamedGroup, name_of
from ..tls.extensions import (
    KeyShareClientHelloExtension,
    KeyShareHelloRetryRequestExtension,
    KeyShareServerHelloExtension,
)
from ..tls.keylog import KeyLog
from ..tls.messages13 import is_hello_retry_request
from ..tls.stages13 import Stages13
from .openssl import ConnectionOutcome, OpenSSLFetch, openssl_fetch, openssl_server

__all__ = [
    "KEYLOG_LABELS",
    "TLS12_SUITE",
    "Exchange",
    "HybridRun",
    "KeyShareSeen",
    "LearnerKeyScheduleRun",
    "RefusedHello",
    "VersionComparison",
    "compare_versions",
    "exchange_summary",
    "hello_retry_run",
    "hybrid_runs",
    "key_shares",
    "refused_legacy_hello",
    "run_learner_key_schedule",
]

TLS12_SUITE = "ECDHE-RSA-AES128-GCM-SHA256"
"""The TLS 1.2 suite of the comparison: ephemeral, as every TLS 1.3 handshake is, with AES-128-GCM."""

KEYLOG_LABELS = {
    "client_handshake_traffic_secret": "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "server_handshake_traffic_secret": "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "client_application_traffic_secret_0": "CLIENT_TRAFFIC_SECRET_0",
    "server_application_traffic_secret_0": "SERVER_TRAFFIC_SECRET_0",
    "exporter_master_secret": "EXPORTER_SECRET",
}
"""The key schedule's steps that OpenSSL writes to its key log, under OpenSSL's labels."""


# -- reading what our client kept ------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyShareSeen:
    """One key_share on the wire: who sent it, in which message, for which group, how many bytes."""

    sender: str  # "client" or "server"
    message: str  # "ClientHello", "ServerHello" or "HelloRetryRequest"
    group: str
    length: int  # bytes of key_exchange; 0 in a HelloRetryRequest, which only names a group


def key_shares(transcript: Sequence[TranscriptEntry]) -> list[KeyShareSeen]:
    """Every key share in the hellos of ``transcript``, in the order they crossed the wire."""
    seen: list[KeyShareSeen] = []
    for entry in transcript:
        if entry.content_type != ContentType.handshake or entry.encrypted:
            continue
        sender = "client" if entry.direction == "client->server" else "server"
        for message in entry.messages:
            extension = getattr(message, "extension", None)
            found = extension(ExtensionType.key_share) if extension is not None else None
            name = "HelloRetryRequest" if is_hello_retry_request(message) else type(message).__name__
            if isinstance(found, KeyShareClientHelloExtension):
                seen.extend(
                    KeyShareSeen(sender, name, name_of(NamedGroup, s.group), len(s.key_exchange))
                    for s in found.client_shares
                )
            elif isinstance(found, KeyShareServerHelloExtension):
                share = found.server_share
                seen.append(KeyShareSeen(sender, name, name_of(NamedGroup, share.group), len(share.key_exchange)))
            elif isinstance(found, KeyShareHelloRetryRequestExtension):
                seen.append(KeyShareSeen(sender, name, name_of(NamedGroup, found.selected_group), 0))
    return seen


@dataclass(frozen=True)
class Exchange:
    """One fetch in numbers, on our client's clock (seconds from sending the first ClientHello)."""

    version: str
    round_trips: int  # server flights our client waited for before it could send its request
    request_sent: float  # when the request (the first application data) left
    response_arrived: float  # when the first record of the answer arrived
    clear_bytes: int  # record bytes anyone on the path reads (hellos, ChangeCipherSpec, 1.2's certificate...)
    encrypted_bytes: int  # record bytes under a traffic key


def exchange_summary(response: TLSResponse) -> Exchange:
    """Round trips, times and bytes of one ``tls_get``, from its transcript and timings."""
    stamp = {index: time for time, _, index in response.timings}
    transcript = response.transcript
    start = stamp[0]
    request = next(
        i for i, e in enumerate(transcript) if e.direction == "client->server" and e.content_type == 23
    )  # the first application data we sent
    answer = next(
        i for i, e in enumerate(transcript) if i > request and e.direction == "server->client" and e.content_type == 23
    )
    waited = {stamp[i] for i, e in enumerate(transcript[:request]) if e.direction == "server->client"}
    version = "TLS 1.3" if response.handshake.version == 0x0304 else "TLS 1.2"
    clear = sum(len(e.record) for e in transcript if not e.encrypted)
    return Exchange(
        version, len(waited), stamp[request] - start, stamp[answer] - start,
        clear, sum(len(e.record) for e in transcript) - clear,
    )  # fmt: skip


# -- 1.2 beside 1.3 with one OpenSSL server -----------------------------------------------------------------
@dataclass
class VersionComparison:
    """The same page over TLS 1.2 and TLS 1.3 from one OpenSSL server, and what OpenSSL saw."""

    tls12: TLSResponse
    tls13: TLSResponse
    openssl_saw: list[ConnectionOutcome]
    keylog: KeyLog = field(repr=False)  # OpenSSL's key log, read before the server stopped
    repeats: dict[str, list[Exchange]] = field(default_factory=dict)  # "TLS 1.2"/"TLS 1.3" -> more fetches

    def median(self, version: str, what: str) -> float:
        """The median of ``what`` (``"request_sent"``, ``"response_arrived"``) over the repeated fetches."""
        return statistics.median(getattr(exchange, what) for exchange in self.repeats[version])

    def openssl_agrees(self) -> dict[str, bool | None]:
        """For each secret OpenSSL logs: whether our client's (TLS 1.3 fetch) is OpenSSL's (None: not logged)."""
        schedule = self.tls13.handshake.key_schedule
        agrees: dict[str, bool | None] = {}
        for name, label in KEYLOG_LABELS.items():
            theirs = self.keylog.find(label, self.tls13.handshake.client_random)
            agrees[name] = None if theirs is None else theirs == schedule.value(name)
        return agrees


def compare_versions(*, repeat: int = 10, timeout: float = DEFAULT_TIMEOUT) -> VersionComparison:
    """Fetch one OpenSSL server's page over TLS 1.2 and over TLS 1.3, then ``repeat`` more times each.

    One fetch of each version first is thrown away: the first connection of a process pays for imports and
    caches (several ms) and would make whichever version went first look slow.
    """
    with openssl_server(TLS12_SUITE, maximum_version=ssl.TLSVersion.TLSv1_3, timeout=timeout) as peer:
        options: dict[str, Any] = {"cafile": peer.cafile, "timeout": timeout}
        for version in ("1.2", "1.3"):  # warm up: a process's first connection pays for imports and caches
            tls_get(peer.url, tls_version=version, **options)
        tls12 = tls_get(peer.url, tls_version="1.2", **options)
        tls13 = tls_get(peer.url, tls_version="1.3", **options)
        repeats: dict[str, list[Exchange]] = {"TLS 1.2": [], "TLS 1.3": []}
        for _ in range(repeat):  # interleaved, so both versions see the same machine load
            for version, name in (("1.2", "TLS 1.2"), ("1.3", "TLS 1.3")):
                repeats[name].append(exchange_summary(tls_get(peer.url, tls_version=version, **options)))
        keylog = peer.keylog()
        return VersionComparison(tls12, tls13, list(peer.connections), keylog, repeats)


def hello_retry_run(*, timeout: float = DEFAULT_TIMEOUT) -> tuple[TLSResponse, list[ConnectionOutcome]]:
    """Our client (shares for X25519MLKEM768 and x25519) against an OpenSSL server that takes only P-256."""
    with openssl_server(
        TLS12_SUITE, maximum_version=ssl.TLSVersion.TLSv1_3, ecdh_curve="prime256v1", timeout=timeout
    ) as peer:
        response = tls_get(peer.url, cafile=peer.cafile, tls_version="1.3", timeout=timeout)
        return response, list(peer.connections)


# -- the post-quantum hybrid, with our own server --------------------------------------------------------------
@dataclass(frozen=True)
class HybridRun:
    """One fetch from our TLS 1.3 server with one key share group."""

    group: str
    response: TLSResponse
    shares: list[KeyShareSeen]
    client_hello_bytes: int  # the whole ClientHello record


def hybrid_runs(*, timeout: float = DEFAULT_TIMEOUT) -> list[HybridRun]:
    """Our TLS 1.3 server fetched with X25519MLKEM768 (our default share) and with x25519 alone."""
    pki = CoursePKI.create()
    issued = pki.issue_server(("localhost", "127.0.0.1"))
    runs = []
    with tempfile.TemporaryDirectory(prefix="handshakes-tls13-") as folder:
        cafile = pki.write_ca(Path(folder))
        with TLSPageServer([issued.der], issued.private_key, tls_versions=("1.3",), timeout=timeout) as server:
            url = f"https://localhost:{server.port}/"
            choices: list[tuple[str, dict[str, Any]]] = [
                ("X25519MLKEM768", {}),
                ("x25519", {"groups": (NamedGroup.x25519,), "key_share_groups": (NamedGroup.x25519,)}),
            ]
            for group, options in choices:
                response = tls_get(url, cafile=cafile, tls_version="1.3", timeout=timeout, **options)
                runs.append(
                    HybridRun(group, response, key_shares(response.transcript), len(response.transcript[0].record))
                )
    return runs


# -- what TLS 1.3 removed, refused live --------------------------------------------------------------------------
@dataclass(frozen=True)
class RefusedHello:
    """A client offering only what TLS 1.3 removed, and how our TLS 1.3 server answered."""

    offered: str
    openssl_says: str  # OpenSSL's client's reason
    server_says: str  # our server's error, as its connection record keeps it


def refused_legacy_hello(*, timeout: float = DEFAULT_TIMEOUT) -> RefusedHello:
    """OpenSSL's client, TLS 1.2 only with RSA key exchange (AES128-GCM-SHA256), against our TLS 1.3 server."""
    pki = CoursePKI.create()
    issued = pki.issue_server(("localhost", "127.0.0.1"))
    with tempfile.TemporaryDirectory(prefix="handshakes-tls13-") as folder:
        cafile = pki.write_ca(Path(folder))
        with TLSPageServer([issued.der], issued.private_key, tls_versions=("1.3",), timeout=timeout) as server:
            fetch = openssl_fetch(server.host, server.port, cafile=cafile, ciphers="AES128-GCM-SHA256", timeout=timeout)
        record = server.connections[-1] if server.connections else None  # final once the server has stopped
        said = f"{type(record.error).__name__}: {record.error}" if record and record.error else ""
    return RefusedHello("TLS 1.2 only, TLS_RSA_WITH_AES_128_GCM_SHA256 only", fetch.error, said)


# -- exercise 10: the learner's key schedule carries our server's handshakes --------------------------------------
@dataclass(frozen=True)
class LearnerKeyScheduleRun:
    """OpenSSL's client fetching from our TLS 1.3 server whose key schedule is the learner's."""

    suite: str
    fetch: OpenSSLFetch
    server_error: str  # our server's error ("" when the handshake completed)

    @property
    def page_arrived(self) -> bool:
        return b"</html>" in self.fetch.page

    def line(self) -> str:
        if self.page_arrived:
            return f"{self.suite}: the page arrived ({len(self.fetch.page)} bytes) over {self.fetch.cipher}"
        problem = self.fetch.error or "no page"
        return f"{self.suite}: OpenSSL's client says {problem}" + (
            f"; our server: {self.server_error}" if self.server_error else ""
        )


def run_learner_key_schedule(
    hkdf_expand_label: Callable[..., bytes] | None = None,
    derive_secret: Callable[..., bytes] | None = None,
    traffic_keys: Callable[..., Any] | None = None,
    *,
    suites: Sequence[int] = (0x1301, 0x1302),
    timeout: float = DEFAULT_TIMEOUT,
) -> list[LearnerKeyScheduleRun]:
    """For each suite, our TLS 1.3 server with the learner's stages (None: the library's) fetched by OpenSSL."""
    replaced = {
        name: function
        for name, function in (
            ("hkdf_expand_label", hkdf_expand_label),
            ("derive_secret", derive_secret),
            ("traffic_keys", traffic_keys),
        )
        if function is not None
    }
    stages = Stages13(**replaced)
    pki = CoursePKI.create()
    issued = pki.issue_server(("localhost", "127.0.0.1"))
    runs = []
    with tempfile.TemporaryDirectory(prefix="handshakes-tls13-") as folder:
        cafile = pki.write_ca(Path(folder))
        for suite in suites:
            with TLSPageServer(
                [issued.der], issued.private_key, tls_versions=("1.3",), stages13=stages,
                tls13_cipher_suites=(suite,), timeout=timeout, resumption=False,
            ) as server:  # fmt: skip
                fetch = openssl_fetch(
                    server.host, server.port, cafile=cafile, maximum_version=ssl.TLSVersion.TLSv1_3, timeout=timeout
                )
            record = server.connections[-1] if server.connections else None
            error = record.error if record is not None else None
            said = f"{type(error).__name__}: {error}" if error is not None else ""
            runs.append(LearnerKeyScheduleRun(name_of(CipherSuite, suite), fetch, said))
    return runs
