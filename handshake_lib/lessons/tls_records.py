"""The live runs and widgets of lessons 07 (records: encryption and MAC) and 08 (Finished, full handshake).

Theory of operation
-------------------
Nothing here protects, decrypts or derives anything the library does not already do: the record
layer (:mod:`handshake_lib.tls.record`) and the PRF (:mod:`handshake_lib.tls.prf`) do the work, and
this module arranges their results over *real* bytes so a learner can look inside them.

Where the bytes come from.  :func:`openssl_server` starts a real OpenSSL server (Python's ``ssl``) on
loopback with a fresh course PKI and a key log, for as long as its ``with`` block runs;
:func:`capture_session` runs one HTTPS request through it with our client (:func:`~handshake_lib.tls.tls_get`)
and keeps the transcript, the timings and the master secret *OpenSSL* wrote to its key log.  Every key
used to open a record here is derived from OpenSSL's secret, not ours, so "it decrypts and the MAC
matches" is OpenSSL's word.  For deterministic tests and exercises, :data:`RECORDED_SESSIONS` and
:data:`RECORDED_FINISHED` hold records and handshakes captured once from such runs (OpenSSL 3, their
master secrets from OpenSSL's key log); ``tests/test_lesson_tls_records.py`` re-opens them with the
library to prove they are what they claim.

Lesson 07 (records):

* :func:`record_layers` cuts one protected record into its parts (header, IV or explicit nonce,
  ciphertext, MAC or GCM tag) and opens it with the record's keys to show what is inside (plaintext,
  MAC, padding), with :class:`~handshake_lib.wire.Span` annotations for the hex view.  It explains;
  :class:`~handshake_lib.tls.record.RecordProtection` is the judge (the two are compared in tests).
* :func:`cut_handshake` runs a live handshake with OpenSSL in which our client cuts what it sends into
  small records, and :func:`records_and_messages` says which bytes of which message each record held:
  records are not messages, and OpenSSL reassembles them.
* :class:`RecordExplorer` (``record_explorer()``): pick a record, see its parts.
* :class:`TamperLab` (``tamper_lab()``): flip one bit of a real record; the library's record layer
  refuses it with ``BadRecordMac`` (or a header error), and the lab says *which* check caught it:
  the MAC over the ciphertext (encrypt-then-MAC), the padding or the MAC after decryption
  (MAC-then-encrypt, folded into one error on purpose), or the GCM tag.
* :func:`tamper_against_openssl`: the same flip in a record our client sends to a live OpenSSL,
  which answers ``bad_record_mac``.

Lesson 08 (Finished and the full handshake):

* :func:`finished_inputs` lists the handshake messages each Finished hashes and recomputes both
  ``verify_data`` values from OpenSSL's master secret; :func:`downgrade_check` shows what an attacker's
  edit of the ClientHello does to them.
* :func:`handshake_sequence` draws the live handshake as a ladder diagram (our client's clock; see its
  docstring for what is measured and what is placed), :func:`state_machine_picture` the role's state
  table with the path taken, :func:`page_view` the page OpenSSL served (in a sandboxed iframe), and
  :class:`HandshakeStepper` (``handshake_stepper()``) steps through the records one at a time.
* ``tls_get(url, stages=Stages(verify_data=...))`` plugs a learner's ``finished_verify_data(master_secret,
  label, handshake_messages, hash_name)`` into a live handshake: the client's stage that computes its
  own Finished and checks the server's.

Widget callbacks are plain methods (``select``, ``update``, ``show``, ``next``...), used by the tests
and by ``BENCHMARKS`` at the end of this module.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import ipywidgets as widgets
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .. import net
from ..errors import BadRecordMac, HandshakeError, PeerAlert, ProtocolError
from ..tls import prf as prf_module
from ..tls.connection import ApplicationData, TranscriptEntry, record_spans
from ..tls.constants import ContentType, ProtocolVersion, name_of
from ..tls.messages import Alert, split_handshake_messages
from ..tls.record import (
    HANDSHAKE_HEADER_LENGTH,
    RECORD_HEADER_LENGTH,
    RecordProtection,
    RecordReader,
    encode_record,
    mac_input,
    record_mac,
)
from ..tls.session import TLSResponse, tls_get
from ..tls.states import Input, State, diagram_rows, transition_for
from ..tls.suites import SuiteParams, parse_suite_name, suite_params
from ..viz.figures import axes_for
from ..viz.hexview import HexView, render_hex_html
from ..viz.sequence import Arrow, draw_sequence
from ..viz.statediagram import draw_state_diagram
from ..wire import Span

__all__ = [
    "RECORDED_FINISHED",
    "RECORDED_SESSIONS",
    "HandshakeStepper",
    "LiveSession",
    "OpenSSLPeer",
    "ProtectedRecord",
    "RecordExplorer",
    "RecordLayers",
    "RecordedFinished",
    "RecordedSession",
    "TamperLab",
    "TamperOutcome",
    "TamperResult",
    "CutHandshake",
    "RecordPiece",
    "capture_session",
    "cut_handshake",
    "downgrade_check",
    "finished_inputs",
    "handshake_arrows",
    "handshake_messages",
    "handshake_sequence",
    "handshake_stepper",
    "mac_input_layers",
    "openssl_server",
    "page_view",
    "record_explorer",
    "record_layers",
    "record_layout_picture",
    "records_and_messages",
    "state_machine_picture",
    "state_path",
    "tamper_against_openssl",
    "tamper_lab",
    "tamper_record",
]

CLIENT_TO_SERVER = "client->server"
SERVER_TO_CLIENT = "server->client"


# == real peers ==================================================================================
OpenSSLPeer = net.OpenSSLPeer  # a running OpenSSL server: url, cafile, master_secret(), last_error, server


@contextlib.contextmanager
def openssl_server(suite_name: str = "AES128-GCM-SHA256") -> Iterator[OpenSSLPeer]:
    """A real OpenSSL TLS 1.2 server on 127.0.0.1 restricted to ``suite_name`` (OpenSSL's name).

    :func:`handshake_lib.net.openssl_server` with a check first: fresh keys every time (a new course CA
    and server certificate for ``localhost``), a key log in a temporary folder, and everything stops and
    is deleted when the ``with`` block ends.
    """
    parse_suite_name(suite_name)  # refuse a typo before starting anything
    with net.openssl_server(suite_name) as peer:
        yield peer


# == protected records ===========================================================================
@dataclass(frozen=True)
class ProtectedRecord:
    """One protected record as it crossed the wire, with everything needed to open it.

    ``keys`` is the whole key block; ``direction`` picks the writer's half of it.  ``sequence_number``
    is the record's number in its direction since ChangeCipherSpec: never sent, both sides count.
    """

    label: str
    direction: str
    sequence_number: int
    record: bytes
    params: SuiteParams
    keys: prf_module.KeyBlock
    encrypt_then_mac: bool

    @property
    def content_type(self) -> int:
        return self.record[0]

    @property
    def version(self) -> int:
        return int.from_bytes(self.record[1:3], "big")

    @property
    def write_key(self) -> bytes:
        return self.keys.client_write_key if self.direction == CLIENT_TO_SERVER else self.keys.server_write_key

    @property
    def mac_key(self) -> bytes:
        keys = self.keys
        return keys.client_write_mac_key if self.direction == CLIENT_TO_SERVER else keys.server_write_mac_key

    @property
    def fixed_iv(self) -> bytes:
        return self.keys.client_write_iv if self.direction == CLIENT_TO_SERVER else self.keys.server_write_iv

    @property
    def construction(self) -> str:
        if self.params.is_aead:
            return "AEAD (AES-GCM)"
        return "encrypt-then-MAC" if self.encrypt_then_mac else "MAC-then-encrypt"

    def protection(self) -> RecordProtection:
        """The library's record protection for this record's direction, at this record's sequence number."""
        return RecordProtection(
            self.params,
            self.write_key,
            self.mac_key,
            self.fixed_iv,
            sequence_number=self.sequence_number,
            encrypt_then_mac=self.encrypt_then_mac,
        )


def _protected_records(
    name: str,
    transcript: Sequence[TranscriptEntry],
    params: SuiteParams,
    keys: prf_module.KeyBlock,
    encrypt_then_mac: bool,
) -> list[ProtectedRecord]:
    numbers = {CLIENT_TO_SERVER: 0, SERVER_TO_CLIENT: 0}
    records = []
    for entry in transcript:
        if not entry.encrypted:
            continue
        sequence_number = numbers[entry.direction]
        numbers[entry.direction] += 1
        what = ", ".join(type(m).__name__ for m in entry.messages) or entry.content_type_name
        label = f"{name}: {entry.direction} {what} (seq {sequence_number})"
        records.append(
            ProtectedRecord(label, entry.direction, sequence_number, entry.record, params, keys, encrypt_then_mac)
        )
    return records


@dataclass
class LiveSession:
    """One HTTPS request from our client to a live OpenSSL server, with OpenSSL's own master secret."""

    suite_name: str
    response: TLSResponse
    openssl_master_secret: bytes
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
    def keys(self) -> prf_module.KeyBlock:
        """The key block derived from OpenSSL's master secret (not ours) and both randoms."""
        handshake = self.response.handshake
        return prf_module.key_block(
            self.openssl_master_secret, handshake.server_random, handshake.client_random, self.params
        )

    @property
    def transcript(self) -> list[TranscriptEntry]:
        return self.response.transcript

    def protected_records(self, direction: str | None = None) -> list[ProtectedRecord]:
        records = _protected_records(
            self.name, self.transcript, self.params, self.keys, self.response.handshake.encrypt_then_mac
        )
        return [r for r in records if direction is None or r.direction == direction]


def capture_session(
    suite_name: str = "AES128-GCM-SHA256", *, encrypt_then_mac: bool = True, session_ticket: bool = False
) -> LiveSession:
    """GET a page from a fresh OpenSSL server restricted to ``suite_name``; keep everything.

    ``encrypt_then_mac=False`` makes our client not offer RFC 7366, so a CBC suite falls back to the
    classic MAC-then-encrypt; ``session_ticket=True`` asks for a ticket (OpenSSL then sends
    NewSessionTicket before its ChangeCipherSpec).  Raises if OpenSSL's key log disagrees with us.
    """
    with openssl_server(suite_name) as peer:
        response = tls_get(
            peer.url, cafile=peer.cafile, encrypt_then_mac=encrypt_then_mac, session_ticket=session_ticket
        )
        secret = peer.master_secret(response.handshake.client_random)
    if secret is None or secret != response.handshake.master_secret:
        raise HandshakeError("OpenSSL's key log does not hold the master secret our client derived")
    record = peer.server.connections[-1] if peer.server.connections else None
    return LiveSession(
        suite_name,
        response,
        secret,
        record.cipher if record else None,
        str(record.error) if record and record.error else "",
    )


def capture_sessions() -> dict[str, LiveSession]:
    """Three live sessions with OpenSSL: CBC with encrypt-then-MAC, CBC with MAC-then-encrypt, and GCM."""
    sessions = [
        capture_session("AES128-SHA256", encrypt_then_mac=True),
        capture_session("AES128-SHA256", encrypt_then_mac=False),
        capture_session("AES128-GCM-SHA256"),
    ]
    return {session.name: session for session in sessions}


# -- records are not messages -------------------------------------------------------------------
@dataclass(frozen=True)
class RecordPiece:
    """One handshake record and the part of each handshake message it carries (bytes ``start:end``)."""

    index: int  # position in the transcript
    direction: str
    length: int  # plaintext bytes in this record
    pieces: tuple[tuple[str, int, int, int], ...]  # (message name, start, end, message length)

    @property
    def cuts_a_message(self) -> bool:
        """True if some message here began in an earlier record or goes on in a later one."""
        return any(not (start == 0 and end == total) for _, start, end, total in self.pieces)

    def describe(self) -> str:
        """``"ClientKeyExchange bytes 64-127 of 262"``; a whole message is just its name."""
        return ", ".join(
            name if start == 0 and end == total else f"{name} bytes {start}-{end - 1} of {total}"
            for name, start, end, total in self.pieces
        )


def records_and_messages(transcript: Sequence[TranscriptEntry]) -> list[RecordPiece]:
    """Which bytes of which handshake messages each handshake record carried, direction by direction.

    Each direction's handshake records are one byte stream of messages (RFC 5246 section 6.2.1): the
    stream is cut into messages by their headers, and each record's slice of the stream is matched
    against them.  Works whether records hold several messages, part of one, or both, and on a
    transcript that stops in the middle of a message (one attached to a handshake error).
    """
    result: list[RecordPiece] = []
    for direction in (CLIENT_TO_SERVER, SERVER_TO_CLIENT):
        entries = [
            (index, entry)
            for index, entry in enumerate(transcript)
            if entry.direction == direction and entry.content_type == ContentType.handshake and entry.plaintext
        ]
        stream = b"".join(entry.plaintext for _, entry in entries)
        bounds = _message_bounds(stream)
        offset = 0
        for index, entry in entries:
            start, end = offset, offset + len(entry.plaintext)
            pieces = tuple(
                (name, max(start, first) - first, min(end, last) - first, last - first)
                for name, first, last in bounds
                if first < end and start < last
            )
            result.append(RecordPiece(index, direction, len(entry.plaintext), pieces))
            offset = end
    return sorted(result, key=lambda piece: piece.index)


def _message_bounds(stream: bytes) -> list[tuple[str, int, int]]:
    """(name, first byte, one past the last byte) of each handshake message in ``stream``, read from the
    messages' own headers; the last one may run past the end of the stream (not all of it arrived)."""
    bounds, position = [], 0
    while position < len(stream):
        if len(stream) - position < HANDSHAKE_HEADER_LENGTH:
            bounds.append(("(a message header, cut short)", position, position + HANDSHAKE_HEADER_LENGTH))
            break
        total = HANDSHAKE_HEADER_LENGTH + int.from_bytes(stream[position + 1 : position + 4], "big")
        bounds.append((_message_name(stream[position:]), position, position + total))
        position += total
    return bounds


@dataclass(frozen=True)
class CutHandshake:
    """A live handshake with OpenSSL in which our client cut everything it sent into small records."""

    fragment_size: int
    response: TLSResponse
    openssl_master_secret: bytes | None

    @property
    def records(self) -> list[RecordPiece]:
        return records_and_messages(self.response.transcript)

    def summary(self) -> str:
        arrow = {CLIENT_TO_SERVER: "client -> server", SERVER_TO_CLIENT: "server -> client"}
        records = self.records  # computed once: the property walks the whole transcript
        lines = [f"{'record':>6}  {'direction':<16}  {'bytes':>5}  carries"]
        lines += [
            f"{piece.index + 1:>6}  {arrow[piece.direction]:<16}  {piece.length:>5}  {piece.describe()}"
            for piece in records
        ]
        agreed = self.openssl_master_secret == self.response.handshake.master_secret
        cut = any(piece.direction == CLIENT_TO_SERVER and piece.cuts_a_message for piece in records)
        what = f"put our {self.fragment_size}-byte pieces back together" if cut else "got every message whole"
        lines.append(
            f"OpenSSL {what}: HTTP {self.response.status}, "
            f"the master secret in its key log {'equals ours' if agreed else 'DIFFERS from ours'}."
        )
        return "\n".join(lines)


def cut_handshake(fragment_size: int = 64, suite_name: str = "AES128-GCM-SHA256") -> CutHandshake:
    """GET a page from a fresh OpenSSL server, our client sending records of at most ``fragment_size`` bytes."""
    with openssl_server(suite_name) as peer:
        response = tls_get(peer.url, cafile=peer.cafile, fragment_size=fragment_size)
        secret = peer.master_secret(response.handshake.client_random)
    return CutHandshake(fragment_size, response, secret)


# -- recorded vectors ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedSession:
    """Records OpenSSL 3 sent in a real session, and the master secret from OpenSSL's key log."""

    name: str
    suite_name: str
    encrypt_then_mac: bool
    master_secret: bytes
    client_random: bytes
    server_random: bytes
    server_records: tuple[bytes, ...]  # OpenSSL's protected records in order: Finished (seq 0), the page (seq 1)

    @property
    def params(self) -> SuiteParams:
        return suite_params(parse_suite_name(self.suite_name))

    @property
    def keys(self) -> prf_module.KeyBlock:
        return prf_module.key_block(self.master_secret, self.server_random, self.client_random, self.params)

    def protected_records(self) -> list[ProtectedRecord]:
        what = {ContentType.handshake: "Finished", ContentType.application_data: "page"}
        return [
            ProtectedRecord(
                f"recorded {self.name}: OpenSSL's {what.get(record[0], name_of(ContentType, record[0]))} (seq {seq})",
                SERVER_TO_CLIENT,
                seq,
                record,
                self.params,
                self.keys,
                self.encrypt_then_mac,
            )
            for seq, record in enumerate(self.server_records)
        ]


@dataclass(frozen=True)
class RecordedFinished:
    """A real handshake with OpenSSL 3 (extended master secret on): its messages and both Finished."""

    suite_name: str
    master_secret: bytes  # from OpenSSL's key log
    handshake_messages: bytes  # ClientHello .. ClientKeyExchange, exactly as sent (no record headers)
    client_finished: bytes  # our client's Finished message (4-byte header + 12 bytes verify_data)
    server_finished: bytes  # OpenSSL's Finished message

    @property
    def hash_name(self) -> str:
        return suite_params(parse_suite_name(self.suite_name)).prf_hash

    @property
    def client_verify_data(self) -> bytes:
        return self.client_finished[4:]

    @property
    def server_verify_data(self) -> bytes:
        return self.server_finished[4:]


def _hex(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


# Captured with OpenSSL 3 through Python's ssl (``capture_session``), once; master secrets from OpenSSL's
# key log.  Each session: suite, encrypt-then-MAC?, master secret, client random, server random, then
# OpenSSL's protected records (its Finished, then the page).
_RECORDED_SESSIONS_HEX = {
    "AES128-SHA256 MAC-then-encrypt": (
        "AES128-SHA256",
        False,
        "11ced513a586ae96cef4bed86e5cf2d5a7b8caa160dc9ee72eb0b279b7f9aa5f7b2e42069108a66a493d2fed28561958",
        "3020b324ca0dcc7cfa1c3833084dde8eef96ce57078eeaff88272f67b364ab1a",
        "1178ce056a3fc9dce916736fb1c241610dfd655e0c9b4aac1d0d567b68061432",
        "16030300503ab32eee8ec7334c3f610ab9f31bb6c494ebe510e65a668d3bbd9d2880aa5f3e3ca7e1bcc48bf61c0a810d31db"
        "3de852274027411717d72e66d2f86cd32d46cdcc0947f676ab516336b0951863ce7ad6",
        "1703030140fe2262384cc5ea56e1c2410d48fc0b373df9293086cec7bf47a8bbd4bd70fbd67e3241155a708145a5ae22c404"
        "74a5f22d8918f038be17f40b97aef3748fed995ebdab5335ec0e31735eedb9cd3b479e19af911d0ee31ccacf6bfb3ce15627"
        "91bf5d75ff4279b7f2d50ae9aa03483154197e1483fc06906a6ad447c8024864d0b1179198d1106233587138afad99f70595"
        "d242a6e7e80e8eb9e3de26cd85d9f755140cd409bef0e25d4e9ded119b18432230a5e8af5ac2e89d5618d389f591d8e7a97d"
        "922bd9307a40e4474b614045bcf27bcea1a7ba335a5f3f66007fb43fec99c84ac6691d2468bb904e5d2ddae573cf58e50109"
        "6eda64a6b32ead4a510cab8aa508e3e4813a8c5f0f2a608fbcca0deb6a59714ad61558a8fce286541927c2b32c9d15d17efe"
        "a21b72fc46778baa5af33ff1faaf8af30160d00a87a03192f0",
    ),
    "AES128-SHA MAC-then-encrypt": (
        "AES128-SHA",
        False,
        "c7ef060c552b58a06da40ebb951ca0ea58fcd0fb247778c2f16706ed61d76a776445fa9404f86a7ae5c8ef9ef2d17674",
        "c0c56e233b1ea84f8f4d6cc07487d599c4d4e27014efcd10eb56b1f7da80572a",
        "fc6d98bb0d30bed02144b46371c5b14629f46618c34adc684db4b0709d969a56",
        "1603030040605dc38492ccecdfaee261b1d23c61de565308cbd93d435d88f70b6dca1ef991b405a70961df9e79871bc92305"
        "c638b39960ad47cbd7687583efaa2702556f95",
        "1703030130c7ee8575ab00f5c42b0e79d97f43bf5bd0dd4f4b89b15f2e4c7384a1c48c6bb33a1282d878dcfa995c024179e6"
        "7b953378131ca5715611dc2dd661efb8d17016c7cb9967d053f4cf67655f920e136bd11337fe90d5226088093ed5ca9036cf"
        "4913f327f00a7f47d0cb634109fbe2a9e30a8360bf64f4ffd402e5f2da8154bd2b6484ba823bdbf63e1d8245129eccc5c2f5"
        "6752a22a656d1802b8d046a6e94dc87e9e9c6e5d2a1cfd61c142da3fd3b634e9eec6665bdaa9414190f4fbe616d959c37479"
        "9a9d72e08e83c90539ae80fd12c57b0182a7b8bc2834009e1088efacd529f176e5141522b850a089c8e7fe07ab3cd45365bf"
        "36f4e8e8754d6ee63906627b0b8750bb2755289c8fc37f54420fb1100dc675ef5c514408652cd468fdcc81e03c3a37b28fc7"
        "d40decc87673839020",
    ),
    "AES128-SHA256 encrypt-then-MAC": (
        "AES128-SHA256",
        True,
        "19a6a803145acd7194717e2b7594e9088162b285a0f906941883f20605de33b22c268940a3cc2f0476a2939a5fc1db50",
        "ab0af2bc626af900b7150664f5e3c1eafbe6c42f17b8cb72011a83223b55cedd",
        "815269e0292488919a10ad21b971e0bd1c5012dee0f5749eadaa38b2e66682bd",
        "16030300506da653a902021dad0e684719c09ed9ddcc525d35d87a02dca4d23c8523d1e725c6686c496881255e208a82b958"
        "959cfb24e1ccb08f4585bcd50854c45d212d66147b7d6759cc0c6905c839e12a8e0084",
        "170303014053ec5672fc81b5ff09b9cc578ebb06f0c12e2dda9b07c71d1ff07ace6ee8c63078ef134c97f405faa99448dfc8"
        "d10948c3dd3ac8b5984917b05db0f43f33fb323f99a774dcbb1b35fc367325c39422ec715fadbc20fe4b0f43ac6a2cf863d1"
        "e3027aa539dbecd8182ee6fcc08c2f4a2017ac97639e9c6c575a14f1549dae470bbba2a12722d47a8a82e244c8410238e6f9"
        "a1f2159786e13854eba04fdf7264940e6ef9066c8cf892a92afda9e58be2569fe3c8c4f9f5be49b4f07febae22ee39e6d319"
        "9e3c0eada360111f362b0fe68dd18884d2d1a3d50d4395c097051af36c0c91be2a98921e5a33131237f80ca33d2e51b03fd8"
        "e52893c67687713974989d3784c0cd91088aea7541f7d2725476384474afee457b711cf3d4afc8904fbac1c3ae4eaaee6b2b"
        "d0d418c7eb0f0ea3165e9eef8564076f84578f2598069075fe",
    ),
    "AES128-GCM-SHA256": (
        "AES128-GCM-SHA256",
        False,
        "957e320a5e8bcc27ff9036e20d6ae607ad779a269ee3d5b6273f13e669e2fab8049ad492adaee28d818575478d22b725",
        "8325483cb1332d20d59518c5130cfcbc983761c80b0a60c67b7b3e0edb693e24",
        "11980110a3972d2f0947eb92bdecf8967751ff196bd6b8f1ddb3ee1302f842bc",
        "16030300282e67802e58b4cfcdafe69dd2550e99feb01416bf9c78d8b9983220f81c8222fd9cecc74a7a7e17c3",
        "170303011c2e67802e58b4cfced65961adf1e6e26e0737e61b59137e753c0da28ec240251d1fae56694424e59234be8ef2bc"
        "59d32b3c828ea464d1910e5f6e4aa44cd6b2489d2d22cba876cf0026bceb4eee410899fad4b7ab0c399845d1a6738ec78754"
        "635e57b15af7e561e46bc888e17d657cf6078a361688f7ed311dcd33fd939f1648bcb6b893e890da8169da38ca4d91c19911"
        "72daca2154f0daaad1f587d8a6d7848a0e92eea9789365138f369b04396d44a4f8ac35446286a15c1f0fe2b02ef78eb938c1"
        "156de05108530f5a129889a3af30e308939f0729e466a014523d3a7031f504a853589f970400f517064fcb8e4032e0268a9e"
        "7c46c93c271412e052627e1df2a0b79dc75759ff2d68720a3f968b06dbe253525892a64cdf33d0",
    ),
}
_RECORDED_FINISHED_HEX = {
    "AES128-GCM-SHA256": (
        "25afd7e701de1d91fa594f041ce9c75134bf10a364b71a9336192cd79b461d26a09e75a6e11d220a3db7e25babc84ec4",
        "0100006a0303ffd43385486971b565581a234bb22d4e4c796787670d4b1518be5911226b884d000008009d009c003c002f01"
        "0000390000000e000c0000096c6f63616c686f7374000d001600140403050306030807080408050806040105010601001700"
        "00ff0100010000160000020000510303c916d70f782ac68b43f2eecec9cddace2e62e92dcc01a0e41a46fb7fda61de82204a"
        "71b2f53ce7319762ad660562239dd3d0439bc61a21123509792997c390b329009c000009ff01000100001700000b0002ba00"
        "02b70002b4308202b030820255a003020102021475ccec5c4bb134ebc13d3331f1292424ec2d32c7300a06082a8648ce3d04"
        "03023040311a3018060355040a0c1148616e647368616b657320636f757273653122302006035504030c1948616e64736861"
        "6b657320436f7572736520526f6f74204341301e170d3236313132323031353330325a170d3236313132393031353830325a"
        "3030311a3018060355040a0c1148616e647368616b657320636f757273653112301006035504030c096c6f63616c686f7374"
        "30820122300d06092a864886f70d01010105000382010f003082010a0282010100a12377fe9ba7058447f9f4d96ea9935165"
        "a2767cf27eed0d4743c0a79712ad426d9e67b05627f9e71f643f644805dcd46a778b48ddd579cda110d83c75a03777693110"
        "c0f4eaadf3789e3878d17984ce0b965d6874192e0c8b4c4985d646b9cfeffedc9f5fcbc6ed8b9b762600d631f8472f52d24f"
        "9d1f632a55506f89619f30f48f88d1dd5f10f48780ff82d3d1d462327c40e32cb9116302a5746a2d9bfb73f3317c84d31072"
        "3e14cf6563d7387156ee5ecac83e80bda53a9d4644f19fb085f4e8189875f4738b0b627af7ea871a8eac69229fa458b0d61a"
        "36203f804256fe57172ae18166ff8c9c86ebed3c9e6627f352fd7a6c5e67234c6c42f9354e87e50203010001a3723070301a"
        "0603551d110413301182096c6f63616c686f737487047f000001300c0603551d130101ff04023000300e0603551d0f0101ff"
        "0404030205a030130603551d25040c300a06082b06010505070301301f0603551d230418301680140f8f27cf5f828b05e335"
        "dc73fe2b936c17cf829e300a06082a8648ce3d0403020349003046022100fb77018331b52d3277b37baf871481e6b6b686e6"
        "07feb588c18796f4f9168e07022100a966253473a7167eac28132b9cf08c08a14b5521f05e5293c9be431f184933970e0000"
        "0010000102010075fb335752355949ada5fb78effce1635689815d3bfef3fe1aaa5bc87f234080e99bc3fe6204c5e5efc13c"
        "c102b9ec12012c3fa2b3dcbc4fa38caf69a8d421ec646478ac56190c531253866a6f97f8850d481bdce15f2b8706208f3de9"
        "37fc95dafa9371d678254bf8c36d1aa02905d6c3096208ebfd106b53cc7fc0816c8fceca3959f36c45cf452c7a4fe090020e"
        "c3a41814be93607cf820c081d397653b6864a8037edff8dad410179bc2a6bcc02a60552f7a2c7bed1eb14a1d2c8bc6b8f022"
        "28936853e239f2ef82b6582f816065168da7ef75e5f60f014c04d307135174f06da84cf8fd1180aa3b6d66cc37591ae39d23"
        "6eb2ae173603372af4d4cf1165",
        "1400000cd71d2d4c54fe8dfa122febb5",
        "1400000c5c9c2bd61f547a193a526927",
    ),
    "AES256-GCM-SHA384": (
        "ef018bb0a6f18a2b705c2bff5602542c07a62a22e0149377978daec2f9a62f0f3eba299b461c13b80e8fd6938b57bf56",
        "0100006a030357d337c57b661efb805df72188fe79a6b52a58436c994f262a0d69331aa2b47e000008009d009c003c002f01"
        "0000390000000e000c0000096c6f63616c686f7374000d001600140403050306030807080408050806040105010601001700"
        "00ff01000100001600000200005103031bfe70416c9cdb293309e896d2d496a84e87f5dcc24f49191ae2cae1b77f93d420e1"
        "ca0f55ec27d36ef42d2f7a9f35ad2b6ff7182ae1bbe8f34c4fc714ba36805f009d000009ff01000100001700000b0002ba00"
        "02b70002b4308202b030820255a003020102021475ccec5c4bb134ebc13d3331f1292424ec2d32c7300a06082a8648ce3d04"
        "03023040311a3018060355040a0c1148616e647368616b657320636f757273653122302006035504030c1948616e64736861"
        "6b657320436f7572736520526f6f74204341301e170d3236313132323031353330325a170d3236313132393031353830325a"
        "3030311a3018060355040a0c1148616e647368616b657320636f757273653112301006035504030c096c6f63616c686f7374"
        "30820122300d06092a864886f70d01010105000382010f003082010a0282010100a12377fe9ba7058447f9f4d96ea9935165"
        "a2767cf27eed0d4743c0a79712ad426d9e67b05627f9e71f643f644805dcd46a778b48ddd579cda110d83c75a03777693110"
        "c0f4eaadf3789e3878d17984ce0b965d6874192e0c8b4c4985d646b9cfeffedc9f5fcbc6ed8b9b762600d631f8472f52d24f"
        "9d1f632a55506f89619f30f48f88d1dd5f10f48780ff82d3d1d462327c40e32cb9116302a5746a2d9bfb73f3317c84d31072"
        "3e14cf6563d7387156ee5ecac83e80bda53a9d4644f19fb085f4e8189875f4738b0b627af7ea871a8eac69229fa458b0d61a"
        "36203f804256fe57172ae18166ff8c9c86ebed3c9e6627f352fd7a6c5e67234c6c42f9354e87e50203010001a3723070301a"
        "0603551d110413301182096c6f63616c686f737487047f000001300c0603551d130101ff04023000300e0603551d0f0101ff"
        "0404030205a030130603551d25040c300a06082b06010505070301301f0603551d230418301680140f8f27cf5f828b05e335"
        "dc73fe2b936c17cf829e300a06082a8648ce3d0403020349003046022100fb77018331b52d3277b37baf871481e6b6b686e6"
        "07feb588c18796f4f9168e07022100a966253473a7167eac28132b9cf08c08a14b5521f05e5293c9be431f184933970e0000"
        "00100001020100602b64b6a0ed0edd408960060439df185c5e9fae1a47ec4885664b7fb7a64732649b9e877b9a1a1449c264"
        "66b6969af4b52aeca12220e5171784eee7095f4363adbb1da5a8ceb4408626bfc0b332c558ef77d236e5dd075b60a4607485"
        "754c9dbe485d13348eedd39e62a16e4869cd6ddfba774e029931f863f7f156e07b5e77403143200ea44db9cab429a3dc2f95"
        "7ac97b4a9733c417c3b0fd589ce4627ccbc1e811118c783a50d24d05000c0ad08e3f9ab9fab5091812a01d5f58cf52a57bdd"
        "7ed8f242f6f14be716740fb1370f26ca99c1a69f05bf6f79aa0e959ac8b59a063784d0c60d6e5b2cf1ae738e23949e519cab"
        "307496d91c2e5d6106796bfc3b",
        "1400000cbf539a2473ea68f300c3441b",
        "1400000c63ba8ca228d8ec2a302d8201",
    ),
}

RECORDED_SESSIONS: dict[str, RecordedSession] = {
    name: RecordedSession(name, suite, etm, _hex(secret), _hex(client), _hex(server), tuple(_hex(r) for r in records))
    for name, (suite, etm, secret, client, server, *records) in _RECORDED_SESSIONS_HEX.items()
}
"""Real records from OpenSSL, by session name (``"AES128-SHA256 MAC-then-encrypt"`` ...)."""

RECORDED_FINISHED: dict[str, RecordedFinished] = {
    suite: RecordedFinished(suite, _hex(secret), _hex(messages), _hex(client), _hex(server))
    for suite, (secret, messages, client, server) in _RECORDED_FINISHED_HEX.items()
}
"""Real handshakes with OpenSSL (``"AES128-GCM-SHA256"``, ``"AES256-GCM-SHA384"``) for the Finished exercise."""


# == lesson 07: what is inside a protected record ================================================
@dataclass
class RecordLayers:
    """A protected record cut into its parts, and opened.

    ``spans`` annotate ``record`` (the wire bytes); ``inner_spans`` annotate ``inner``, what AES
    decryption gives (CBC: plaintext, then the MAC under MAC-then-encrypt, then padding; GCM: the
    plaintext).  ``mac_in_record`` is the MAC the sender put in the record (b"" for GCM) and
    ``mac_expected`` the one the library computes; ``problems`` says what did not check out.
    """

    record: bytes
    construction: str
    sequence_number: int
    spans: list[Span]
    inner: bytes = b""
    inner_spans: list[Span] = field(default_factory=list)
    plaintext: bytes | None = None
    mac_in_record: bytes = b""
    mac_expected: bytes = b""
    padding: bytes = b""
    problems: list[str] = field(default_factory=list)

    @property
    def mac_matches(self) -> bool:
        return bool(self.mac_in_record) and self.mac_in_record == self.mac_expected


def _header_spans(record: bytes) -> list[Span]:
    return record_spans(record[:RECORD_HEADER_LENGTH], encrypted=False)[:3]


def _content_spans(content_type: int, version: int, plaintext: bytes, *, depth: int = 0) -> list[Span]:
    """Spans of a decrypted plaintext (a Finished, an HTTP request...), relative to the plaintext."""
    inner = record_spans(encode_record(content_type, version, plaintext), encrypted=False)[3:]
    return [
        replace(s, offset=s.offset - RECORD_HEADER_LENGTH, depth=max(depth, s.depth - 1 + depth))
        for s in inner
        if s.offset >= RECORD_HEADER_LENGTH
    ]


def _padding_ok(padded: bytes, mac_length: int) -> bool:
    if not padded:
        return False
    padding_length = padded[-1]
    if padding_length + 1 + mac_length > len(padded):
        return False
    return padded[-(padding_length + 1) :] == bytes([padding_length]) * (padding_length + 1)


def record_layers(protected: ProtectedRecord, data: bytes | None = None) -> RecordLayers:
    """Cut ``protected.record`` (or ``data``, the same record tampered with) into parts and open it.

    Never raises on bad bytes: what does not check out goes to ``problems``.  This explains a record;
    the verdict on a record is the library's :meth:`RecordProtection.unprotect` (see :func:`tamper_record`).
    """
    record = bytes(protected.record if data is None else data)
    params, seq = protected.params, protected.sequence_number
    content_type = record[0] if record else 0
    version = int.from_bytes(record[1:3], "big") if len(record) >= 3 else 0
    fragment = record[RECORD_HEADER_LENGTH:]
    spans = _header_spans(record)
    layers = RecordLayers(record, protected.construction, seq, spans)
    base = RECORD_HEADER_LENGTH
    if params.is_aead:
        nonce_length, tag_length = params.record_iv_length, params.tag_length
        if len(fragment) < nonce_length + tag_length:
            layers.problems.append("too short for an explicit nonce and a GCM tag")
            return layers
        body_length = len(fragment) - nonce_length - tag_length
        spans += [
            Span(
                base,
                nonce_length,
                "record.explicit_nonce",
                f"sent nonce part; full nonce = salt {protected.fixed_iv.hex()} (from the key block) + these 8 bytes",
                1,
            ),
            Span(
                base + nonce_length,
                body_length,
                "record.ciphertext",
                "AES-GCM(plaintext): same length as the plaintext",
                1,
            ),
            Span(
                base + nonce_length + body_length,
                tag_length,
                "record.gcm_tag",
                "authenticates nonce, ciphertext and additional data (seq, type, version, length)",
                1,
            ),
        ]
        nonce = protected.fixed_iv + fragment[:nonce_length]
        additional_data = mac_input(seq, content_type, version, b"")[:-2] + body_length.to_bytes(2, "big")
        try:
            plaintext = AESGCM(protected.write_key).decrypt(nonce, fragment[nonce_length:], additional_data)
        except InvalidTag:
            layers.problems.append("the GCM tag does not verify: AES-GCM returns nothing at all")
            return layers
        layers.inner = layers.plaintext = plaintext
        layers.inner_spans = _content_spans(content_type, version, plaintext)
        return layers

    iv_length, mac_length, block = params.record_iv_length, params.mac_length, params.block_length
    mac_name = f"HMAC-{params.mac_algorithm.upper()}" if params.mac_algorithm else "MAC"
    if protected.encrypt_then_mac:
        ciphertext_length = len(fragment) - iv_length - mac_length
        if ciphertext_length < block or ciphertext_length % block:
            layers.problems.append("impossible length for IV + whole AES blocks + MAC")
            return layers
        encrypted = fragment[: iv_length + ciphertext_length]
        layers.mac_in_record = fragment[-mac_length:]
        layers.mac_expected = record_mac(
            params.mac_algorithm or "sha256", protected.mac_key, seq, content_type, version, encrypted
        )
        spans += [
            Span(base, iv_length, "record.iv", "random CBC IV, sent in the clear", 1),
            Span(base + iv_length, ciphertext_length, "record.ciphertext", "AES-CBC(plaintext + padding)", 1),
            Span(
                base + iv_length + ciphertext_length,
                mac_length,
                "record.mac",
                f"{mac_name}(seq + type + version + length + IV + ciphertext): "
                + ("matches" if layers.mac_matches else "does NOT match"),
                1,
            ),
        ]
        if not layers.mac_matches:
            layers.problems.append(f"the {mac_name} over IV + ciphertext does not match (checked before decrypting)")
    else:
        ciphertext_length = len(fragment) - iv_length
        if ciphertext_length < block or ciphertext_length % block:
            layers.problems.append("impossible length for IV + whole AES blocks")
            return layers
        encrypted = fragment
        spans += [
            Span(base, iv_length, "record.iv", "random CBC IV, sent in the clear", 1),
            Span(base + iv_length, ciphertext_length, "record.ciphertext", "AES-CBC(plaintext + MAC + padding)", 1),
        ]
    decryptor = Cipher(algorithms.AES(protected.write_key), modes.CBC(encrypted[:iv_length])).decryptor()
    inner = decryptor.update(encrypted[iv_length:]) + decryptor.finalize()
    layers.inner = inner
    inside_mac = 0 if protected.encrypt_then_mac else mac_length
    if not _padding_ok(inner, inside_mac):
        layers.problems.append(
            f"the padding is wrong after decryption: the last byte says {inner[-1]} padding bytes, "
            f"and they are not all {inner[-1]}"
        )
        layers.inner_spans = [Span(0, len(inner), "decrypted", "garbled: the padding does not check out", 0)]
        return layers
    padding_length = inner[-1]
    layers.padding = inner[-(padding_length + 1) :]
    content_end = len(inner) - padding_length - 1 - inside_mac
    plaintext = inner[:content_end]
    layers.plaintext = plaintext
    inner_spans = _content_spans(content_type, version, plaintext)
    if not protected.encrypt_then_mac:
        layers.mac_in_record = inner[content_end : content_end + mac_length]
        layers.mac_expected = record_mac(
            params.mac_algorithm or "sha256", protected.mac_key, seq, content_type, version, plaintext
        )
        inner_spans.append(
            Span(
                content_end,
                mac_length,
                "mac",
                f"{mac_name}(seq + type + version + length + plaintext): "
                + ("matches" if layers.mac_matches else "does NOT match"),
            )
        )
        if not layers.mac_matches:
            layers.problems.append(f"the {mac_name} inside the record does not match the decrypted plaintext")
    if padding_length:
        inner_spans.append(
            Span(
                len(inner) - padding_length - 1,
                padding_length,
                "padding",
                f"{padding_length} bytes, each {padding_length}",
            )
        )
    inner_spans.append(
        Span(len(inner) - 1, 1, "padding_length", f"{padding_length}: that many padding bytes before me")
    )
    layers.inner_spans = inner_spans
    return layers


def mac_input_layers(protected: ProtectedRecord) -> tuple[bytes, list[Span]]:
    """What the MAC (or GCM's additional data) covers besides the data: seq, type, version, length.

    These 13 bytes are never sent: the sequence number is counted by both sides, the rest is
    repeated from the header (with the *plaintext* length for MAC-then-encrypt and GCM).
    """
    layers = record_layers(protected)
    if protected.params.is_aead or not protected.encrypt_then_mac:
        length = len(layers.plaintext or b"")
    else:
        length = len(protected.record) - RECORD_HEADER_LENGTH - protected.params.mac_length
    data = mac_input(protected.sequence_number, protected.content_type, protected.version, b"")[:-2]
    data += length.to_bytes(2, "big")
    spans = [
        Span(0, 8, "seq_num", f"{protected.sequence_number}: counted by both sides, never sent"),
        Span(8, 1, "type", name_of(ContentType, protected.content_type)),
        Span(9, 2, "version", name_of(ProtocolVersion, protected.version)),
        Span(
            11,
            2,
            "length",
            f"{length} bytes of "
            + ("IV + ciphertext" if protected.encrypt_then_mac and not protected.params.is_aead else "plaintext"),
        ),
    ]
    return data, spans


def _layers_summary(protected: ProtectedRecord, layers: RecordLayers) -> str:
    lines = [f"{protected.construction}, {protected.params.name}, sequence number {protected.sequence_number}"]
    if layers.mac_in_record:
        lines.append(f"MAC in the record: {layers.mac_in_record.hex()}")
        lines.append(
            f"MAC we compute:    {layers.mac_expected.hex()}  ({'match' if layers.mac_matches else 'NO MATCH'})"
        )
    elif protected.params.is_aead and layers.plaintext is not None:
        lines.append("GCM tag verified (AES-GCM checks it before it returns any plaintext)")
    if layers.plaintext is not None:
        preview = layers.plaintext[:60]
        lines.append(
            f"plaintext ({len(layers.plaintext)} bytes): {preview!r}{' ...' if len(layers.plaintext) > 60 else ''}"
        )
    lines.extend(f"problem: {p}" for p in layers.problems)
    return "\n".join(lines)


def _pre(text: str) -> str:
    return f'<pre style="color:inherit;white-space:pre-wrap;margin:2px 0">{html.escape(text)}</pre>'


class RecordExplorer(widgets.VBox):
    """Protected records (live or recorded), each cut into its parts; see :meth:`select`."""

    def __init__(self, records: Sequence[ProtectedRecord]) -> None:
        self.records = list(records)
        self.record_list = widgets.Select(
            options=[(r.label, i) for i, r in enumerate(self.records)],
            value=None,
            rows=min(8, max(2, len(self.records))),
            layout=widgets.Layout(width="auto"),
        )
        self.record_list.add_class("handshake-span-list")
        self.summary = widgets.HTML()
        self.wire_box = widgets.VBox()
        self.inner_box = widgets.VBox()
        self.mac_input_html = widgets.HTML()
        self.layers: RecordLayers | None = None
        self.hexview: HexView | None = None
        self.inner_view: HexView | None = None
        super().__init__([self.record_list, self.summary, self.wire_box, self.inner_box, self.mac_input_html])
        self.record_list.observe(self._on_change, names="value")
        if self.records:
            self.select(0)
        else:
            self.summary.value = "<i>No protected records to show.</i>"

    def _on_change(self, change: dict) -> None:
        if change["new"] is not None:
            self.select(change["new"])

    def select(self, index: int) -> RecordLayers | None:
        """Show record ``index``: the wire bytes with their parts, what decryption gives, what the MAC covers."""
        if not 0 <= index < len(self.records):
            self.summary.value = f"<i>There is no record number {index}.</i>"
            self.layers = None
            return None
        protected = self.records[index]
        layers = record_layers(protected)
        self.layers = layers
        self.summary.value = _pre(_layers_summary(protected, layers))
        self.hexview = HexView(layers.record, layers.spans, title=f"on the wire: {protected.label}")
        self.wire_box.children = [self.hexview]
        title = "after decryption: " + (
            "plaintext"
            if protected.params.is_aead
            else "plaintext + padding"
            if protected.encrypt_then_mac
            else "plaintext + MAC + padding"
        )
        self.inner_view = HexView(layers.inner, layers.inner_spans, title=title)
        self.inner_box.children = [self.inner_view]
        data, spans = mac_input_layers(protected)
        what = "GCM additional data" if protected.params.is_aead else "MAC input, before the data"
        self.mac_input_html.value = f"<b>{what} (never sent)</b>" + render_hex_html(data, spans)
        if self.record_list.value != index:
            self.record_list.value = index
        return layers


def record_explorer(records: Sequence[ProtectedRecord] | None = None) -> RecordExplorer:
    """The explorer over ``records`` (default: the recorded OpenSSL records of every construction)."""
    if records is None:
        records = [r for session in RECORDED_SESSIONS.values() for r in session.protected_records()]
    return RecordExplorer(records)


# -- tampering -----------------------------------------------------------------------------------
@dataclass
class TamperResult:
    """What the receiving record layer made of one flipped bit."""

    offset: int
    bit: int
    field: str
    original: int
    tampered: int
    error: str  # the exception the library raised, "" if it accepted the record
    check: str  # which check caught it
    explanation: str
    layers: RecordLayers | None = None

    @property
    def rejected(self) -> bool:
        return bool(self.error)


def _field_at(spans: Sequence[Span], offset: int) -> str:
    names = [s.field for s in spans if not s.is_group and s.offset <= offset < s.end]
    return names[-1] if names else "?"


def tamper_record(protected: ProtectedRecord, offset: int, bit: int) -> TamperResult:
    """Flip ``bit`` (0 = least significant) of byte ``offset`` and hand the record to a receiver.

    The receiver is the library: a :class:`RecordReader` for the header (as a connection reads the
    stream), then :meth:`RecordProtection.unprotect` at the record's sequence number.  The lab then
    explains which check caught the change, using :func:`record_layers` on the tampered bytes.
    """
    record = bytearray(protected.record)
    if not 0 <= offset < len(record):
        raise ValueError(f"offset must be between 0 and {len(record) - 1}")
    if not 0 <= bit <= 7:
        raise ValueError("bit must be between 0 and 7")
    original = record[offset]
    record[offset] ^= 1 << bit
    tampered = bytes(record)
    layers = record_layers(protected)
    result = TamperResult(offset, bit, _field_at(layers.spans, offset), original, tampered[offset], "", "", "")
    # As a connection does: read one record from the stream (header checks first), then unprotect it.
    reader = RecordReader(protected=True)
    reader.extend(tampered)
    try:
        first = reader.next_record()
    except ProtocolError as error:
        result.error = f"{type(error).__name__}: {error}"
        result.check = "record header"
        result.explanation = "The header itself is refused before any cryptography: alert " + error.tls_alert.name + "."
        return result
    if first is None:
        result.error = "(none yet: the reader waits)"
        result.check = "record header: length"
        claimed = int.from_bytes(tampered[3:5], "big")
        result.explanation = (
            f"The header now claims {claimed} bytes but only {len(tampered) - RECORD_HEADER_LENGTH} follow: the "
            "receiver waits for the rest, takes it from the next record, and the MAC check fails then (or the "
            "connection times out)."
        )
        return result
    leftover = reader.buffered
    try:
        protected.protection().unprotect(first)
    except BadRecordMac as error:
        result.error = f"BadRecordMac: {error}"
    except ProtocolError as error:
        result.error = f"{type(error).__name__}: {error}"
    result.layers = record_layers(protected, tampered[: len(tampered) - leftover])
    shorter = (
        f" The header now claims {leftover} bytes fewer, so the record the receiver checks is cut short."
        if leftover
        else ""
    )
    if not result.error:
        result.check = "none"
        result.explanation = "The record was accepted: this should never happen for a flipped bit." + shorter
        return result
    if protected.params.is_aead:
        result.check = "GCM tag"
        result.explanation = (
            "AES-GCM checks its 16-byte tag over the explicit nonce, the ciphertext and the additional data "
            "(sequence number, type, version, length) before returning anything: any change fails it, and no "
            "plaintext is ever released." + shorter
        )
    elif protected.encrypt_then_mac:
        result.check = "MAC (over IV + ciphertext, before decryption)"
        result.explanation = (
            "Encrypt-then-MAC: the receiver checks the HMAC over the header fields and the IV + ciphertext "
            "first, and refuses the record without decrypting it. Nothing about the padding is ever computed, "
            "so there is nothing for a padding oracle to leak." + shorter
        )
    elif any("padding" in p for p in result.layers.problems):
        result.check = "padding (after decryption)"
        result.explanation = (
            "MAC-then-encrypt: the receiver must decrypt first; the padding came out wrong. It still computes "
            "a MAC and reports the same bad_record_mac, so that an attacker cannot tell a padding error from a "
            "MAC error (the distinction was Vaudenay's padding oracle)." + shorter
        )
    elif result.offset < RECORD_HEADER_LENGTH:
        result.check = "MAC (after decryption)"
        result.explanation = (
            "MAC-then-encrypt: the header is not encrypted, but the MAC covers type, version and length; after "
            "decryption the receiver's HMAC uses the changed header and no longer matches." + shorter
        )
    else:
        result.check = "MAC (after decryption)"
        result.explanation = (
            "MAC-then-encrypt: decryption worked and the padding looked right, but the changed bits reached the "
            "plaintext (or the MAC itself), so the HMAC over seq + header + plaintext no longer matches." + shorter
        )
    return result


class TamperLab(widgets.VBox):
    """Flip one bit of a real protected record and watch the record layer refuse it; see :meth:`update`."""

    def __init__(self, records: Sequence[ProtectedRecord], *, record: int = 0, offset: int | None = None, bit: int = 0):
        self.records = list(records)
        if not self.records:
            raise ValueError("TamperLab needs at least one protected record")
        self.record_choice = widgets.Dropdown(
            options=[(r.label, i) for i, r in enumerate(self.records)],
            value=0,
            description="record",
            layout=widgets.Layout(width="auto"),
        )
        self.offset_slider = widgets.IntSlider(value=0, min=0, max=len(self.records[0].record) - 1, description="byte")
        self.bit_choice = widgets.Dropdown(
            options=[(f"bit {b} (0x{1 << b:02x})", b) for b in range(8)], value=0, description="flip"
        )
        self.hex_html = widgets.HTML()
        self.verdict = widgets.HTML()
        self.result: TamperResult | None = None
        self.verdict_text = ""
        self._holding = False
        super().__init__(
            [self.record_choice, widgets.HBox([self.offset_slider, self.bit_choice]), self.hex_html, self.verdict]
        )
        for control in (self.record_choice, self.offset_slider, self.bit_choice):
            control.observe(self._on_change, names="value")
        start = self.records[record].record if 0 <= record < len(self.records) else self.records[0].record
        self.update(record=record, offset=len(start) - 1 if offset is None else offset, bit=bit)

    def _on_change(self, change: dict) -> None:
        if not self._holding:
            self.update()

    def update(
        self, *, record: int | None = None, offset: int | None = None, bit: int | None = None
    ) -> TamperResult | None:
        """Set any control, flip the bit, and show what the receiver said (no argument: the controls' values)."""
        if record is not None and not 0 <= record < len(self.records):
            self.verdict_text = f"There is no record number {record}."
            self.verdict.value = f"<i>{html.escape(self.verdict_text)}</i>"
            return None
        self._holding = True
        try:
            if record is not None:
                self.record_choice.value = record
            protected = self.records[self.record_choice.value]
            self.offset_slider.max = len(protected.record) - 1
            if offset is not None:
                if offset < 0:
                    offset += len(protected.record)
                if not 0 <= offset < len(protected.record):
                    self.verdict_text = f"Choose a byte between 0 and {len(protected.record) - 1}."
                    self.verdict.value = f"<i>{html.escape(self.verdict_text)}</i>"
                    return None
                self.offset_slider.value = offset
            if bit is not None:
                if not 0 <= bit <= 7:
                    self.verdict_text = "Choose a bit between 0 and 7."
                    self.verdict.value = f"<i>{html.escape(self.verdict_text)}</i>"
                    return None
                self.bit_choice.value = bit
        finally:
            self._holding = False
        result = tamper_record(protected, self.offset_slider.value, self.bit_choice.value)
        self.result = result
        spans = record_layers(protected).spans
        marked = [*spans, Span(result.offset, 1, "flipped", "the flipped byte", 0, True)]
        tampered = bytearray(protected.record)
        tampered[result.offset] = result.tampered
        self.hex_html.value = render_hex_html(bytes(tampered), marked, selected=len(marked) - 1)
        self.verdict_text = (
            f"byte {result.offset} ({result.field}): 0x{result.original:02x} -> 0x{result.tampered:02x}\n"
            f"receiver: {result.error or 'accepted'}\n"
            f"caught by: {result.check}\n{result.explanation}"
        )
        self.verdict.value = _pre(self.verdict_text)
        return result


def tamper_lab(records: Sequence[ProtectedRecord] | None = None, **settings: Any) -> TamperLab:
    """The tamper lab over ``records`` (default: OpenSSL's recorded records of each construction)."""
    if records is None:
        records = [r for session in RECORDED_SESSIONS.values() for r in session.protected_records()]
    return TamperLab(records, **settings)


@dataclass
class TamperOutcome:
    """What a live OpenSSL server did with a record we damaged on purpose."""

    suite_name: str
    construction: str
    offset: int
    bit: int
    field: str
    alert: str  # the alert OpenSSL sent us ("" if none arrived)
    openssl_error: str  # what OpenSSL's side reported

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
    from ..tls.session import open_tls

    with (
        openssl_server(suite_name) as peer,
        open_tls(
            "127.0.0.1", peer.server.port, "localhost", cafile=peer.cafile, encrypt_then_mac=encrypt_then_mac
        ) as stream,
    ):
        stream.client.send_application_data(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        record = bytearray(stream.client.data_to_send())
        position = offset + len(record) if offset < 0 else offset
        if not RECORD_HEADER_LENGTH <= position < len(record) or not 0 <= bit <= 7:
            raise ValueError(f"choose a byte between {RECORD_HEADER_LENGTH} and {len(record) - 1} and a bit 0-7")
        entry = stream.transcript[-1]
        params = suite_params(stream.handshake.cipher_suite)
        keys = prf_module.key_block(
            stream.handshake.master_secret, stream.handshake.server_random, stream.handshake.client_random, params
        )
        sequence_number = sum(1 for e in stream.transcript if e.encrypted and e.direction == CLIENT_TO_SERVER) - 1
        protected = ProtectedRecord(
            "request",
            CLIENT_TO_SERVER,
            sequence_number,
            entry.record,
            params,
            keys,
            stream.handshake.encrypt_then_mac,
        )
        field_name = _field_at(record_layers(protected).spans, position)
        record[position] ^= 1 << bit
        stream.sock.sendall(bytes(record))
        alert = ""
        try:
            stream.recv()
        except PeerAlert as error:
            alert = str(error)
        construction = protected.construction
    return TamperOutcome(suite_name, construction, position, bit, field_name, alert, peer.last_error or "")


# -- a picture of the three layouts ----------------------------------------------------------------
_LAYOUTS: tuple[tuple[str, tuple[tuple[str, float, str, bool], ...]], ...] = (
    (
        "MAC-then-encrypt (RFC 5246)",
        (
            ("hdr", 5, "#bbbbbb", False),
            ("IV", 16, "#9ecae1", False),
            ("plaintext", 30, "#a1d99b", True),
            ("MAC", 20, "#fdae6b", True),
            ("padding", 9, "#dadaeb", True),
        ),
    ),
    (
        "encrypt-then-MAC (RFC 7366)",
        (
            ("hdr", 5, "#bbbbbb", False),
            ("IV", 16, "#9ecae1", False),
            ("plaintext", 30, "#a1d99b", True),
            ("padding", 9, "#dadaeb", True),
            ("MAC", 20, "#fdae6b", False),
        ),
    ),
    (
        "AES-GCM (RFC 5288)",
        (
            ("hdr", 5, "#bbbbbb", False),
            ("nonce", 8, "#9ecae1", False),
            ("plaintext", 30, "#a1d99b", True),
            ("tag", 16, "#fdae6b", False),
        ),
    ),
)


def record_layout_picture(ax: Any = None) -> Figure:
    """The three record layouts side by side: what is encrypted (hatched) and what the MAC or tag covers."""
    figure, ax = axes_for(ax, (8.0, 4.0))
    for row, (title, parts) in enumerate(_LAYOUTS):
        y = -row * 1.2
        x = 0.0
        ax.text(0, y + 0.62, title, fontsize=9.5, fontweight="bold", va="bottom")
        for name, width, colour, encrypted in parts:
            ax.add_patch(
                Rectangle(
                    (x, y),
                    width,
                    0.55,
                    facecolor=colour,
                    edgecolor="black",
                    linewidth=0.8,
                    hatch="///" if encrypted else None,
                    gid=f"part:{row}:{name}",
                )
            )
            ax.text(x + width / 2, y + 0.27, name, ha="center", va="center", fontsize=8)
            x += width
    ax.text(
        0,
        -3.3,
        "hatched = encrypted.  hdr = type, version, length (5 bytes, in the clear).\n"
        "MAC-then-encrypt: MAC over the plaintext, then encrypt plaintext + MAC + padding.\n"
        "Encrypt-then-MAC: encrypt plaintext + padding, then MAC over IV + ciphertext.\n"
        "GCM: one tag over nonce, ciphertext and seq/type/version/length.\n"
        "Every MAC and tag also covers the sequence number, which is never sent.",
        fontsize=7.5,
        va="top",
    )
    ax.set_xlim(-1, 82)
    ax.set_ylim(-5.3, 1.0)
    ax.set_axis_off()
    return figure


# == lesson 08: Finished, and the whole handshake ================================================
def handshake_messages(transcript: Sequence[TranscriptEntry]) -> list[tuple[str, bytes]]:
    """Every handshake message in ``transcript``, in order, with its sender's direction.

    Handshake records carry a byte stream of messages (type, 3-byte length, body); the Finished
    hashes are over exactly these bytes, without record headers, decrypted where they were protected.
    """
    stream = b""
    owners: list[tuple[int, str]] = []  # (start offset in the stream, direction)
    for entry in transcript:
        if entry.content_type == ContentType.handshake and entry.plaintext:
            owners.append((len(stream), entry.direction))
            stream += entry.plaintext
    messages, position = [], 0
    for raw in split_handshake_messages(stream):
        direction = next(d for start, d in reversed(owners) if start <= position)
        messages.append((direction, raw))
        position += len(raw)
    return messages


def _message_name(raw: bytes) -> str:
    from ..tls.constants import HandshakeType

    names = {
        "hello_request": "HelloRequest",
        "client_hello": "ClientHello",
        "server_hello": "ServerHello",
        "certificate": "Certificate",
        "server_hello_done": "ServerHelloDone",
        "client_key_exchange": "ClientKeyExchange",
        "finished": "Finished",
        "new_session_ticket": "NewSessionTicket",
    }
    name = name_of(HandshakeType, raw[0])
    return names.get(name, name)


@dataclass
class FinishedCheck:
    """Both Finished messages of a handshake, recomputed from the messages and a master secret."""

    hash_name: str
    client_inputs: list[str]  # "client->server ClientHello (115 bytes)", ... in the client Finished's hash
    server_inputs: list[str]
    client_on_wire: bytes
    client_computed: bytes
    server_on_wire: bytes
    server_computed: bytes

    @property
    def both_match(self) -> bool:
        return self.client_on_wire == self.client_computed and self.server_on_wire == self.server_computed

    def summary(self) -> str:
        lines = [f'client Finished = PRF(master_secret, "client finished", {self.hash_name.upper()}(...))[:12] over:']
        lines += [f"  {name}" for name in self.client_inputs]
        lines.append(f"  sent by our client: {self.client_on_wire.hex()}")
        lines.append(
            f"  recomputed:         {self.client_computed.hex()}  "
            f"({'same' if self.client_on_wire == self.client_computed else 'DIFFERENT'})"
        )
        lines.append(
            f'server Finished = PRF(master_secret, "server finished", {self.hash_name.upper()}(...))[:12] over:'
        )
        lines += [f"  {name}" for name in self.server_inputs]
        lines.append(f"  sent by OpenSSL:    {self.server_on_wire.hex()}")
        lines.append(
            f"  recomputed:         {self.server_computed.hex()}  "
            f"({'same' if self.server_on_wire == self.server_computed else 'DIFFERENT'})"
        )
        return "\n".join(lines)


def _finished_split(messages: list[tuple[str, bytes]]) -> tuple[int, int]:
    finished = [i for i, (_, raw) in enumerate(messages) if _message_name(raw) == "Finished"]
    if len(finished) < 2:
        raise ValueError("the transcript does not hold both Finished messages (did the handshake complete?)")
    client = next(i for i in finished if messages[i][0] == CLIENT_TO_SERVER)
    server = next(i for i in finished if messages[i][0] == SERVER_TO_CLIENT)
    return client, server


def finished_inputs(session: LiveSession) -> FinishedCheck:
    """Which messages each Finished hashes, and both verify_data recomputed from OpenSSL's master secret."""
    params = session.params
    messages = handshake_messages(session.transcript)
    client_index, server_index = _finished_split(messages)

    def computed(label: str, upto: int) -> bytes:
        transcript = b"".join(raw for _, raw in messages[:upto])
        return prf_module.verify_data(session.openssl_master_secret, label, transcript, params.prf_hash)

    def names(upto: int) -> list[str]:
        return [f"{d} {_message_name(raw)} ({len(raw)} bytes)" for d, raw in messages[:upto]]

    return FinishedCheck(
        params.prf_hash,
        names(client_index),
        names(server_index),
        messages[client_index][1][4:],
        computed("client finished", client_index),
        messages[server_index][1][4:],
        computed("server finished", server_index),
    )


def downgrade_check(session: LiveSession, keep: str = "TLS_RSA_WITH_AES_128_CBC_SHA") -> str:
    """What Finished does to an attacker who rewrites our ClientHello's cipher suites to ``keep`` only.

    The hellos travel unencrypted, so a man in the middle can edit them.  The server then hashes the
    edited ClientHello while our client hashes the one it sent: the server's check of our Finished
    fails (decrypt_error) even with the same master secret.
    """
    from ..tls.constants import CipherSuite
    from ..tls.messages import decode_handshake

    params = session.params
    messages = handshake_messages(session.transcript)
    client_index, _ = _finished_split(messages)
    original = messages[0][1]
    hello, _ = decode_handshake(original)
    edited_hello = replace(hello, cipher_suites=[CipherSuite[keep]])
    edited = edited_hello.to_bytes()
    rest = b"".join(raw for _, raw in messages[1:client_index])

    def client_verify(first: bytes) -> bytes:
        return prf_module.verify_data(session.openssl_master_secret, "client finished", first + rest, params.prf_hash)

    ours, servers = client_verify(original), client_verify(edited)
    offered = ", ".join(name_of(CipherSuite, s) for s in hello.cipher_suites)
    return "\n".join(
        [
            f"our ClientHello offered: {offered}",
            f"the attacker forwards:   {keep} only ({len(original)} -> {len(edited)} bytes)",
            f"our client's Finished (over what it sent):       {ours.hex()}",
            f"what the server expects (over what it received): {servers.hex()}",
            "-> "
            + (
                "identical?!"
                if ours == servers
                else "different: the server answers decrypt_error and the handshake stops before any application data."
            ),
            "(With the extended master secret the edit changes the master secret itself, so the keys differ too.)"
            if session.response.handshake.extended_master_secret
            else "",
        ]
    ).rstrip()


# -- the live handshake, drawn -----------------------------------------------------------------------
def _entry_label(entry: TranscriptEntry) -> str:
    parts = []
    for message in entry.messages or [None]:
        if message is None:
            text = f"{entry.content_type_name} ({len(entry.plaintext)} B)"
        elif isinstance(message, ApplicationData):
            text = f"ApplicationData ({len(message.data)} B)"
        elif isinstance(message, Alert):
            text = f"Alert {message.description_name}"
        else:
            text = type(message).__name__
        parts.append("{" + text + "}" if entry.encrypted else text)
    return ", ".join(parts)


def _flights(
    transcript: Sequence[TranscriptEntry], timings: Sequence[tuple[float, str, int]]
) -> list[tuple[str, float, list[int]]]:
    stamp = {index: time for time, _, index in timings}
    if any(i not in stamp for i in range(len(transcript))):
        raise ValueError("every transcript entry needs a timing (use a TLSResponse from tls_get)")
    flights: list[tuple[str, float, list[int]]] = []
    for index, entry in enumerate(transcript):
        if flights and flights[-1][0] == entry.direction and flights[-1][1] == stamp[index]:
            flights[-1][2].append(index)
        else:
            flights.append((entry.direction, stamp[index], [index]))
    return flights


def handshake_arrows(transcript: Sequence[TranscriptEntry], timings: Sequence[tuple[float, str, int]]) -> list[Arrow]:
    """One arrow per flight (records sent together), timed with our client's clock.

    The client knows when it sent each flight and when each server flight arrived; it cannot know
    when its bytes reached OpenSSL.  So each round trip is split in half: a flight of ours is drawn
    arriving half-way to the answer, and the answer leaving then.  (Loopback delay and OpenSSL's work
    are inside that round trip together; the client alone cannot separate them.)
    """
    flights = _flights(transcript, timings)
    halves: dict[int, float] = {}
    for number, (direction, time, _) in enumerate(flights[:-1]):
        following = flights[number + 1]
        if direction == CLIENT_TO_SERVER and following[0] == SERVER_TO_CLIENT:
            halves[number] = max((following[1] - time) / 2, 1e-6)
    typical = statistics.median(halves.values()) if halves else 1e-4
    arrows = []
    for number, (direction, time, indices) in enumerate(flights):
        label = ", ".join(_entry_label(transcript[i]) for i in indices)
        if direction == CLIENT_TO_SERVER:
            arrows.append(Arrow("client", "server", label, time, time + halves.get(number, typical)))
        else:
            half = halves.get(number - 1, typical)
            arrows.append(Arrow("server", "client", label, max(time - half, 0.0), time))
    return arrows


def state_path(role: str, transcript: Sequence[TranscriptEntry]) -> list[State]:
    """The ``role``'s state after each transcript entry, by walking its state table over the messages."""
    if role not in ("client", "server"):
        raise ValueError(f"role must be 'client' or 'server', not {role!r}")
    from ..errors import TLSAlert

    state = State.IDLE if role == "client" else State.WAIT_CLIENT_HELLO
    incoming = SERVER_TO_CLIENT if role == "client" else CLIENT_TO_SERVER
    after: list[State] = []
    for entry in transcript:
        if role == "client" and state is State.IDLE and entry.direction == CLIENT_TO_SERVER:
            state = transition_for("client", state, Input.start).target
        for message in entry.messages:
            if isinstance(message, Alert):
                if message.is_fatal:
                    state = State.ERROR
                elif message.description == TLSAlert.close_notify:
                    state = State.CLOSED
                continue
            if entry.direction != incoming or state in (State.CLOSED, State.ERROR):
                continue
            try:
                received = Input(type(message).__name__)
            except ValueError:
                continue
            state = transition_for(role, state, received).target  # type: ignore[arg-type]
        after.append(state)
    return after


def _state_marks(
    arrows: Sequence[Arrow], transcript: Sequence[TranscriptEntry], timings: Sequence[tuple[float, str, int]]
) -> list[tuple[float, str, str]]:
    flights = _flights(transcript, timings)
    marks: list[tuple[float, str, str]] = []
    for role in ("client", "server"):
        path = state_path(role, transcript)
        previous = None
        for arrow, (_, _, indices) in zip(arrows, flights, strict=True):
            state = path[indices[-1]]
            if state is not previous:
                # A side changes state when it sends (start) or when a flight reaches it.
                moment = (
                    arrow.sent_at
                    if arrow.sender == role and role == "client" and previous is None
                    else (arrow.received_at if arrow.receiver == role else arrow.sent_at)
                )
                marks.append((moment or 0.0, role, state.value))
                previous = state
    return marks


def handshake_sequence(
    response: TLSResponse, *, ax: Any = None, states: bool = True, compress_idle: bool = False
) -> Figure:
    """The live handshake as a ladder diagram: one arrow per flight, ``{...}`` = encrypted."""
    arrows = handshake_arrows(response.transcript, response.timings)
    marks = _state_marks(arrows, response.transcript, response.timings) if states else []
    suite = suite_params(response.handshake.cipher_suite).name
    figure = draw_sequence(
        arrows, title=f"TLS 1.2 with OpenSSL: {suite}", ax=ax, states=marks, compress_idle=compress_idle
    )
    # Room for state names such as WAIT_CHANGE_CIPHER_SPEC beside both lines.
    (ax or figure.axes[0]).set_xlim(-1.3, 1.75)
    return figure


def state_machine_picture(
    role: str = "client", transcript: Sequence[TranscriptEntry] | None = None, *, ax: Any = None
) -> Figure:
    """The ``role``'s TLS 1.2 state table, drawn; the path a live transcript took is highlighted."""
    rows = diagram_rows(role)  # type: ignore[arg-type]
    path: list[str] = []
    if transcript is not None:
        start = State.IDLE if role == "client" else State.WAIT_CLIENT_HELLO
        for state in [start, *state_path(role, transcript)]:
            if not path or path[-1] != state.value:
                path.append(state.value)
    return draw_state_diagram(rows, highlight=path, ax=ax)


def page_view(response: TLSResponse) -> widgets.HTML:
    """The page OpenSSL served, drawn in a sandboxed iframe (no scripts, no forms), and its source."""
    body = response.body.decode("utf-8", errors="replace")
    kind = response.headers.get("content-type", "?")
    frame = (
        f'<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{html.escape(body, quote=True)}" '
        'style="width:100%;height:140px;border:1px solid #888;background:white"></iframe>'
    )
    source = f"<details><summary>HTML source ({len(response.body)} bytes)</summary>{_pre(body)}</details>"
    return widgets.HTML(f"<b>HTTP {response.status}</b>, {html.escape(kind)}" + frame + source)


class HandshakeStepper(widgets.VBox):
    """Step through a live handshake one record at a time; see :meth:`show`, :meth:`next`, :meth:`previous`."""

    def __init__(self, response: TLSResponse) -> None:
        self.response = response
        self.transcript = response.transcript
        if not self.transcript:
            raise ValueError("the response holds no transcript")
        self.client_states = state_path("client", self.transcript)
        self.server_states = state_path("server", self.transcript)
        self.previous_button = widgets.Button(description="\u25c0 previous")
        self.next_button = widgets.Button(description="next \u25b6")
        self.position = widgets.HTML()
        self.states_html = widgets.HTML()
        self.wire_box = widgets.VBox()
        self.plain_box = widgets.VBox()
        self.index = 0
        self.status_text = ""
        self.hexview: HexView | None = None
        self.plain_view: HexView | None = None
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        super().__init__(
            [
                widgets.HBox([self.previous_button, self.next_button, self.position]),
                self.states_html,
                self.wire_box,
                self.plain_box,
            ]
        )
        self.show(0)

    def next(self) -> int:
        return self.show(min(self.index + 1, len(self.transcript) - 1))

    def previous(self) -> int:
        return self.show(max(self.index - 1, 0))

    def show(self, index: int) -> int:
        """Show record ``index``: its wire bytes, its decrypted contents if it was protected, both states."""
        if not 0 <= index < len(self.transcript):
            self.position.value = f"<i>There is no record number {index}.</i>"
            return self.index
        self.index = index
        entry = self.transcript[index]
        self.position.value = f"record {index + 1} of {len(self.transcript)}: <b>{html.escape(entry.summary())}</b>"
        self.status_text = (
            f"after it: client {self.client_states[index].value}, server {self.server_states[index].value}"
        )
        self.states_html.value = _pre(self.status_text)
        self.hexview = HexView(entry.record, entry.spans, title=f"on the wire ({len(entry.record)} bytes)")
        self.wire_box.children = [self.hexview]
        if entry.encrypted:
            version = int.from_bytes(entry.record[1:3], "big")
            plain = encode_record(entry.content_type, version, entry.plaintext)
            self.plain_view = HexView(
                plain, record_spans(plain, encrypted=False), title="decrypted (shown with a plaintext record header)"
            )
            self.plain_box.children = [self.plain_view]
        else:
            self.plain_view = None
            self.plain_box.children = [widgets.HTML("<i>Sent in the clear: the bytes above are the message.</i>")]
        self.previous_button.disabled = index == 0
        self.next_button.disabled = index == len(self.transcript) - 1
        return index


def handshake_stepper(response: TLSResponse) -> HandshakeStepper:
    return HandshakeStepper(response)


# -- benchmarks (read by `make bench`, see bench/README.md) ----------------------------------------------
def _bench_explorer_select() -> Any:
    explorer = record_explorer()
    indices = itertools.cycle(range(len(explorer.records)))
    return lambda: explorer.select(next(indices))


def _bench_tamper_offset() -> Any:
    lab = tamper_lab()
    offsets = itertools.cycle(range(0, len(lab.records[0].record), 3))  # a learner dragging the byte slider
    return lambda: lab.update(offset=next(offsets))


def _bench_tamper_record() -> Any:
    lab = tamper_lab()
    choices = itertools.cycle(range(len(lab.records)))
    return lambda: lab.update(record=next(choices), offset=-1)


def _bench_stepper() -> Any:
    stepper = handshake_stepper(capture_session("AES128-SHA256").response)
    indices = itertools.cycle(range(len(stepper.transcript)))
    return lambda: stepper.show(next(indices))


BENCHMARKS: dict[str, Callable[[], Any]] = {
    "record_explorer.select": _bench_explorer_select,
    "tamper_lab.update(offset)": _bench_tamper_offset,
    "tamper_lab.update(record)": _bench_tamper_record,
    "handshake_stepper.show": _bench_stepper,
}
