"""Live TLS 1.2 sessions between our client and a real OpenSSL, kept whole for lessons 07 and 08.

Theory of operation
-------------------
:func:`capture_session` starts a fresh OpenSSL server (:func:`handshake_lib.peers.openssl.openssl_server`: a new
course PKI, a key log, loopback only), runs one HTTPS request through it with our client
(:func:`~handshake_lib.net.tls.tls_get`), and keeps the transcript, the timings, the key block our core
derived, and the master secret *OpenSSL* wrote to its key log.  It refuses a session where the two
master secrets differ, so every key used afterwards to open a record is OpenSSL's word as much as ours.

:func:`tamper_against_openssl` damages one bit of a record our client sends to a live OpenSSL (through
:meth:`~handshake_lib.net.tls.TLSStream.send_altered`) and reports the alert OpenSSL answered.

:func:`record_openssl_records` and :func:`record_openssl_finished` make the recorded vectors in
``handshake_lib/data/`` (``openssl_records.json``, ``openssl_finished.json``) from such runs; the
lessons and exercises read them with :func:`handshake_lib.data.load_recordings`.

This module drives a peer over sockets, so it sits in ``peers`` above the sans-I/O ``tls`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import HandshakeError, PeerAlert
from ..net.tls import TLSResponse, open_tls, tls_get
from ..tls.captured import CLIENT_TO_SERVER, SERVER_TO_CLIENT, ProtectedRecord, RecordedSession, protected_records
from ..tls.constants import ContentType, HandshakeType
from ..tls.prf import KeyBlock, RecordedFinished
from ..tls.record import RECORD_HEADER_LENGTH, reassemble_handshake
from ..tls.suites import SuiteParams, parse_suite_name, suite_params
from .openssl import openssl_server

__all__ = [
    "LiveSession",
    "TamperOutcome",
    "capture_session",
    "capture_sessions",
    "record_openssl_finished",
    "record_openssl_records",
    "tamper_against_openssl",
]


@dataclass
class LiveSession:
    """One HTTPS request from our client to a live OpenSSL server, with OpenSSL's own master secret."""

    suite_name: str
    response: TLSResponse
    openssl_master_secret: bytes | None
    openssl_cipher: str | None = None
    openssl_error: str = ""

    @property
    def name(self) -> str:
        return f"{self.suite_name} {self.construction}"

    @property
    def params(self) -> SuiteParams:
        return suite_params(self.response.handshake.cipher_suite)

    @property
    def construction(self) -> str:
        if self.params.is_aead:
            return "AEAD (AES-GCM)"
        return "encrypt-then-MAC" if self.response.handshake.encrypt_then_mac else "MAC-then-encrypt"

    @property
    def keys(self) -> KeyBlock:
        """The key block our core derived (from the master secret OpenSSL logged too)."""
        keys = self.response.handshake.key_block
        assert keys is not None  # a completed handshake always has one
        return keys

    @property
    def transcript(self) -> list[Any]:
        return self.response.transcript

    @property
    def same_master_secret(self) -> bool:
        return self.openssl_master_secret == self.response.handshake.master_secret

    def protected_records(self, direction: str | None = None) -> list[ProtectedRecord]:
        records = protected_records(
            self.name, self.transcript, self.params, self.keys, self.response.handshake.encrypt_then_mac
        )
        return [r for r in records if direction is None or r.direction == direction]


def capture_session(
    suite_name: str = "AES128-GCM-SHA256",
    *,
    encrypt_then_mac: bool = True,
    session_ticket: bool = False,
    fragment_size: int | None = None,
    require_same_secret: bool = True,
) -> LiveSession:
    """GET a page from a fresh OpenSSL server restricted to ``suite_name`` (OpenSSL's name); keep everything.

    ``encrypt_then_mac=False`` makes our client not offer RFC 7366, so a CBC suite falls back to the
    classic MAC-then-encrypt; ``session_ticket=True`` asks for a ticket (OpenSSL then sends
    NewSessionTicket before its ChangeCipherSpec); ``fragment_size`` cuts what our client sends into
    records of at most that many bytes.  Raises HandshakeError if OpenSSL's key log disagrees with us
    (unless ``require_same_secret=False``: then ``same_master_secret`` says).
    """
    parse_suite_name(suite_name)  # refuse a typo before starting anything
    options: dict[str, Any] = {"encrypt_then_mac": encrypt_then_mac, "session_ticket": session_ticket}
    if fragment_size is not None:
        options["fragment_size"] = fragment_size
    with openssl_server(suite_name) as peer:
        response = tls_get(peer.url, cafile=peer.cafile, **options)
        secret = peer.master_secret(response.handshake.client_random)
    if require_same_secret and secret != response.handshake.master_secret:
        raise HandshakeError("OpenSSL's key log does not hold the master secret our client derived")
    served = peer.server.connections[-1] if peer.server.connections else None
    return LiveSession(
        suite_name,
        response,
        secret,
        served.cipher if served else None,
        str(served.error) if served and served.error else "",
    )


def capture_sessions() -> dict[str, LiveSession]:
    """Three live sessions with OpenSSL: CBC with encrypt-then-MAC, CBC with MAC-then-encrypt, and GCM."""
    sessions = [
        capture_session("AES128-SHA256", encrypt_then_mac=True),
        capture_session("AES128-SHA256", encrypt_then_mac=False),
        capture_session("AES128-GCM-SHA256"),
    ]
    return {session.name: session for session in sessions}


# -- a damaged record, sent to OpenSSL ---------------------------------------------------------------
@dataclass
class TamperOutcome:
    """What a live OpenSSL server did with a record we damaged on purpose."""

    suite_name: str
    construction: str
    offset: int
    bit: int
    record: ProtectedRecord  # the record as our core protected it (before the flip)
    alert: str  # the alert OpenSSL sent us ("" if none arrived)
    openssl_error: str  # what OpenSSL's side reported

    @property
    def field(self) -> str:
        """The part of the record the flipped byte was in (``record.gcm_tag``...), from the record's own spans."""
        return self.record.open().field_at(self.offset)

    def summary(self) -> str:
        return (
            f"{self.suite_name} ({self.construction}): flipped bit {self.bit} of byte {self.offset} ({self.field}) "
            f"of our HTTP request record\nOpenSSL answered: {self.alert or 'no alert'}\n"
            f"OpenSSL's own error: {self.openssl_error or '-'}"
        )


def tamper_against_openssl(
    suite_name: str = "AES128-GCM-SHA256", *, offset: int = -1, bit: int = 0, encrypt_then_mac: bool = True
) -> TamperOutcome:
    """Complete a handshake with a live OpenSSL, then send it our HTTP request with one bit flipped.

    ``offset`` counts from the start of the record (negative: from its end) and must fall in the
    protected fragment (a damaged header would make OpenSSL wait for bytes that never come).
    """
    if not 0 <= bit <= 7:
        raise ValueError("choose a bit between 0 and 7")
    parse_suite_name(suite_name)
    position = offset

    def flip(record: bytes) -> bytes:
        nonlocal position
        position = offset + len(record) if offset < 0 else offset
        if not RECORD_HEADER_LENGTH <= position < len(record):
            raise ValueError(f"choose a byte between {RECORD_HEADER_LENGTH} and {len(record) - 1}")
        damaged = bytearray(record)
        damaged[position] ^= 1 << bit
        return bytes(damaged)

    request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with (
        openssl_server(suite_name) as peer,
        open_tls(
            "127.0.0.1", peer.server.port, "localhost", cafile=peer.cafile, encrypt_then_mac=encrypt_then_mac
        ) as stream,
    ):
        stream.send_altered(request, flip)
        handshake = stream.handshake
        assert handshake.key_block is not None
        params = suite_params(handshake.cipher_suite)
        ours = protected_records("request", stream.transcript, params, handshake.key_block, handshake.encrypt_then_mac)
        sent = [r for r in ours if r.direction == CLIENT_TO_SERVER][-1]
        alert = ""
        try:
            stream.recv()
        except PeerAlert as error:
            alert = str(error)
    return TamperOutcome(suite_name, sent.construction, position, bit, sent, alert, peer.last_error or "")


# -- the recorded vectors in handshake_lib/data/ -------------------------------------------------------
RECORDED_SESSION_RUNS: tuple[tuple[str, str, bool], ...] = (
    ("AES128-SHA256 MAC-then-encrypt", "AES128-SHA256", False),
    ("AES128-SHA MAC-then-encrypt", "AES128-SHA", False),
    ("AES128-SHA256 encrypt-then-MAC", "AES128-SHA256", True),
    ("AES128-GCM-SHA256", "AES128-GCM-SHA256", False),
)
RECORDED_FINISHED_SUITES: tuple[str, ...] = ("AES128-GCM-SHA256", "AES256-GCM-SHA384")


def _made_by(function: str) -> str:
    return (
        f"OpenSSL 3 through Python's ssl (handshake_lib.peers.openssl_sessions.{function}), our client on loopback; "
        "master secrets from OpenSSL's key log"
    )


def record_openssl_records() -> tuple[str, list[dict[str, Any]]]:
    """``openssl_records.json``'s (made_by, recordings): OpenSSL's protected records (its Finished, then the
    page) for each construction, from sessions whose master secret OpenSSL's key log confirmed."""
    recordings = []
    for name, suite_name, encrypt_then_mac in RECORDED_SESSION_RUNS:
        session = capture_session(suite_name, encrypt_then_mac=encrypt_then_mac)
        handshake = session.response.handshake
        assert session.openssl_master_secret is not None  # capture_session checked it
        server_records = tuple(r.record for r in session.protected_records(SERVER_TO_CLIENT)[:2])
        recorded = RecordedSession(
            name,
            suite_name,
            encrypt_then_mac and not session.params.is_aead,
            session.openssl_master_secret,
            handshake.client_random,
            handshake.server_random,
            server_records,
        )
        recordings.append(recorded.to_json())
    return _made_by("record_openssl_records"), recordings


def record_openssl_finished() -> tuple[str, list[dict[str, Any]]]:
    """``openssl_finished.json``'s (made_by, recordings): a handshake's messages and both Finished, for each
    suite of the exercise, from sessions whose master secret OpenSSL's key log confirmed."""
    recordings = []
    for suite_name in RECORDED_FINISHED_SUITES:
        session = capture_session(suite_name)
        assert session.openssl_master_secret is not None
        fragments = [
            (entry.direction, entry.plaintext)
            for entry in session.transcript
            if entry.content_type == ContentType.handshake and entry.plaintext
        ]
        messages = [message.raw for _, message in reassemble_handshake(fragments)]
        finished = [i for i, raw in enumerate(messages) if raw[0] == HandshakeType.finished]
        recorded = RecordedFinished(
            suite_name,
            session.params.prf_hash,
            session.openssl_master_secret,
            b"".join(messages[: finished[0]]),
            messages[finished[0]],
            messages[finished[1]],
        )
        recordings.append(recorded.to_json())
    return _made_by("record_openssl_finished"), recordings
