"""The live runs, pictures and widgets of lessons 05 (the pre-master secret) and 06 (session keys).

Theory of operation
-------------------
Lesson 05 follows the 48 bytes of the pre-master secret: made by our client
(:func:`~handshake_lib.tls.rsa_kx.make_pre_master_secret`), encrypted with RSAES-PKCS1-v1_5 by
``cryptography``, carried in ClientKeyExchange, recovered by the server.  To *show* the padding, the
lesson undoes the encryption with the textbook formula ``m = c^d mod n`` using the private numbers of a
key it generated itself (:func:`padded_block`): teaching only, never a way to decrypt.  The block is
then read with a :class:`~handshake_lib.wire.Reader` like any other wire structure
(:func:`read_padded_block`), so the hex view can name ``00 02 <nonzero padding> 00 <message>``.

:class:`CountermeasureDemo` is the Bleichenbacher widget: it flips bits of one ciphertext byte, shows
what the padding check would have said, and runs a complete handshake *in memory* between the
library's sans-I/O :class:`~handshake_lib.tls.client.TLSClient` and
:class:`~handshake_lib.tls.server.TLSServer`, so the learner sees the server say nothing about the
padding and the connection fail later, at the client's Finished, with ``bad_record_mac``.
:func:`live_tampered_exchange` does the same against a real OpenSSL server.

Lesson 06 turns the pre-master secret into keys.  :func:`p_hash_steps` and :func:`p_hash_picture` unroll
the A(i) chain of P_hash; :class:`RecordedHandshake` holds what key derivation needs from one real
handshake with OpenSSL (pre-master secret, both randoms, the session hash of RFC 7627) together with
the master secret OpenSSL wrote to its key log.  :data:`RECORDED_HANDSHAKES` ships one such recording
per RSA suite, with and without the extended master secret (made by :func:`record_live_handshake`;
regenerate with ``python -m handshake_lib.lessons.tls_keys``), so :class:`KeyScheduleExplorer` can
recompute every value in microseconds and compare it with what OpenSSL computed.

Every widget exposes its callback as a plain method (``update``), answers bad input with a short
message, and lists its benchmarks in :data:`BENCHMARKS`.  Live peers only run inside ``with`` blocks
(:func:`openssl_server`), so nothing outlives its notebook cell.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from matplotlib.figure import Figure

from .. import net
from ..errors import DecodeError, HandshakeError, PeerAlert, TLSAlert
from ..pki import CoursePKI
from ..tls import prf as prf_module
from ..tls import rsa_kx
from ..tls.client import TLSClient
from ..tls.connection import HandshakeComplete, TranscriptEntry
from ..tls.constants import OPENSSL_NAMES, CipherSuite, ContentType, HandshakeType, ProtocolVersion, name_of
from ..tls.messages import ClientKeyExchange, decode_handshake, split_handshake_messages
from ..tls.server import TLSServer
from ..tls.session import TLSResponse, tls_get
from ..tls.stages import LIBRARY_STAGES, Stages
from ..tls.suites import SUITES, SuiteParams, suite_params
from ..viz.figures import axes_for
from ..viz.hexview import HexView
from ..wire import Reader, Span

__all__ = [
    "BENCHMARKS",
    "RECORDED_HANDSHAKES",
    "RSA_SUITE_NAMES",
    "CountermeasureDemo",
    "DerivedKeys",
    "InMemoryHandshake",
    "KeyScheduleExplorer",
    "LiveKeyExchange",
    "OpenSSLPeer",
    "PHashStep",
    "PaddingCheck",
    "RecordedHandshake",
    "TamperedOutcome",
    "client_key_exchange_view",
    "countermeasure_demo",
    "derive_keys",
    "handshake_in_memory",
    "key_block_layout",
    "key_block_layout_html",
    "key_schedule_explorer",
    "live_key_exchange",
    "live_handshake_outcome",
    "live_tampered_exchange",
    "openssl_client_exchange",
    "openssl_server",
    "p_hash_picture",
    "p_hash_steps",
    "padded_block",
    "padding_view",
    "pre_master_secret_spans",
    "read_padded_block",
    "record_live_handshake",
    "recorded_handshake",
    "session_hash_listing",
    "tamper",
]

# The RSA key-exchange suites the library runs, by OpenSSL name, in the order the lessons list them.
RSA_SUITE_NAMES: tuple[str, ...] = tuple(
    name for name, suite in OPENSSL_NAMES.items() if suite in SUITES and SUITES[suite].key_exchange == "RSA"
)
_OPENSSL_NAME: dict[CipherSuite, str] = {suite: name for name, suite in OPENSSL_NAMES.items()}
_TLS12 = int(ProtocolVersion.TLS1_2)


def _hex(data: bytes, group: int = 0) -> str:
    text = data.hex()
    if group:
        text = " ".join(text[i : i + 2 * group] for i in range(0, len(text), 2 * group))
    return text


def _version_name(value: int) -> str:
    try:
        return f"{ProtocolVersion(value).name} (0x{value:04x})"
    except ValueError:
        return f"unknown version 0x{value:04x}"


# -- a real OpenSSL server with a fresh key ------------------------------------------------------------
# The shared helper: fresh CA and server key in a temporary folder, a key log, stopped at the end of the
# ``with``.  ``peer.private_key`` is what lesson 05 decrypts ClientKeyExchange with.
OpenSSLPeer = net.OpenSSLPeer


@contextlib.contextmanager
def openssl_server(cipher: str = "AES128-GCM-SHA256") -> Iterator[OpenSSLPeer]:
    """A real OpenSSL TLS 1.2 server on 127.0.0.1 offering ``cipher`` (OpenSSL's name), with a key log."""
    if cipher not in RSA_SUITE_NAMES:
        raise ValueError(f"choose one of {', '.join(RSA_SUITE_NAMES)} (RSA key exchange), not {cipher!r}")
    with net.openssl_server(cipher) as peer:
        yield peer


# -- lesson 05: the pre-master secret and its padding -------------------------------------------------
def pre_master_secret_spans(pre_master_secret: bytes, *, base_offset: int = 0) -> list[Span]:
    """Annotate 48 pre-master bytes: ``client_version`` (2 bytes) and ``random`` (46 bytes)."""
    reader = Reader(pre_master_secret, base_offset=base_offset, path=("pre_master_secret",))
    reader.u16("client_version", lambda v: f"{_version_name(v)}: the highest version the client offered")
    reader.raw(46, "random", "46 bytes from the client's random number generator")
    reader.expect_end("the pre-master secret")
    return reader.spans


def padded_block(ciphertext: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """The encoded block inside an RSA ciphertext, ``c^d mod n``, as ``k`` bytes (``k`` = modulus size).

    TEACHING ONLY: textbook RSA with the key's private numbers, to *look at* PKCS#1 v1.5 padding.  It
    skips every protection of a real decryption (blinding, constant time, implicit rejection); real
    code calls ``private_key.decrypt(ciphertext, padding.PKCS1v15())`` as ``rsa_kx`` does.
    """
    numbers = private_key.private_numbers()
    modulus = numbers.public_numbers.n
    size = (modulus.bit_length() + 7) // 8
    if len(ciphertext) != size:
        raise ValueError(f"an RSA ciphertext for this key has {size} bytes, not {len(ciphertext)}")
    # c >= n is not a valid ciphertext; reducing it first keeps the arithmetic defined for a tampered one.
    c = int.from_bytes(ciphertext, "big") % modulus
    # c^d mod n through the Chinese remainder theorem (two half-size exponentiations, as every RSA
    # implementation does): the same number, about four times faster, which keeps the widget responsive.
    m_p = pow(c, numbers.dmp1, numbers.p)
    m_q = pow(c, numbers.dmq1, numbers.q)
    value = m_q + numbers.q * ((numbers.iqmp * (m_p - m_q)) % numbers.p)
    return value.to_bytes(size, "big")


@dataclass(frozen=True)
class PaddingCheck:
    """What a PKCS#1 v1.5 decoder finds in one encoded block (RFC 8017 section 7.2.2, step 3)."""

    block: bytes
    spans: list[Span]
    valid: bool
    problem: str  # "" when valid
    message: bytes  # the bytes after the 00 separator (empty if there is none)

    @property
    def is_pre_master_secret(self) -> bool:
        return self.valid and len(self.message) == rsa_kx.PRE_MASTER_SECRET_LENGTH


def read_padded_block(block: bytes) -> PaddingCheck:
    """Read ``00 02 <at least 8 nonzero bytes> 00 <message>`` with a Reader; never raises on bad bytes.

    A block that breaks the format is annotated as far as it goes and ``problem`` says what is wrong,
    which is precisely the information a server must never let an attacker learn (Bleichenbacher).
    """
    spans: list[Span] = []
    reader = Reader(block, spans=spans, path=("eme_pkcs1_v1_5",))
    problem = ""
    message = b""
    try:
        first = reader.u8("leading_zero", lambda v: "00: keeps the block below the modulus" if v == 0 else "must be 00")
        block_type = reader.u8(
            "block_type", lambda v: "02: encryption padding (01 is for signatures)" if v == 2 else "must be 02"
        )
        separator = block.find(b"\x00", 2)
        if first != 0:
            problem = f"the first byte is 0x{first:02x}, not 0x00"
        elif block_type != 2:
            problem = f"the block type is 0x{block_type:02x}, not 0x02"
        if separator < 0:
            reader.rest("padding_string", "nonzero random bytes, and no 00 separator anywhere")
            problem = problem or "there is no 00 byte to end the padding"
        else:
            padding_length = separator - 2
            reader.raw(padding_length, "padding_string", f"{padding_length} nonzero random bytes (at least 8)")
            reader.u8("separator", "00: the padding ends here")
            if padding_length < 8 and not problem:
                problem = f"only {padding_length} padding bytes before the 00; at least 8 are required"
            message = block[separator + 1 :]
            if not problem and len(message) == rsa_kx.PRE_MASTER_SECRET_LENGTH:
                with reader.group("message", "the 48-byte pre-master secret"):
                    reader.u16("client_version", _version_name)
                    reader.raw(46, "random", "46 random bytes")
            else:
                reader.rest("message", f"{len(message)} bytes of message")
    except DecodeError as error:  # a block shorter than 2 bytes
        problem = problem or str(error)
    valid = not problem
    return PaddingCheck(bytes(block), spans, valid, problem, message if valid else b"")


def padding_view(block: bytes, title: str = "") -> HexView:
    """A hex view of an encoded PKCS#1 v1.5 block, each part named."""
    check = read_padded_block(block)
    verdict = "valid padding" if check.valid else f"invalid padding: {check.problem}"
    return HexView(block, check.spans, title=title or f"the block inside the ciphertext ({verdict})")


def client_key_exchange_view(encrypted_pre_master_secret: bytes) -> HexView:
    """The ClientKeyExchange handshake message carrying this ciphertext, annotated by the library's decoder."""
    raw = ClientKeyExchange(encrypted_pre_master_secret).to_bytes()
    _, spans = decode_handshake(raw)
    return HexView(raw, spans, title=f"ClientKeyExchange ({len(raw)} bytes)")


def tamper(ciphertext: bytes, byte_index: int, mask: int) -> bytes:
    """``ciphertext`` with byte ``byte_index`` XORed with ``mask`` (what an attacker on the path can do)."""
    if not 0 <= byte_index < len(ciphertext):
        raise ValueError(f"byte_index must be between 0 and {len(ciphertext) - 1}")
    if not 0 <= mask <= 255:
        raise ValueError("mask must be between 0 and 255")
    changed = bytearray(ciphertext)
    changed[byte_index] ^= mask
    return bytes(changed)


# -- a whole handshake in memory, between the library's own client and server ------------------------
@dataclass
class InMemoryHandshake:
    """Both cores' transcripts and errors after running a handshake by passing bytes between them."""

    client: TLSClient
    server: TLSServer
    client_pre_master_secret: bytes
    server_pre_master_secret: bytes
    client_error: BaseException | None
    server_error: BaseException | None

    @property
    def completed(self) -> bool:
        return self.client.handshake is not None and self.server.handshake is not None

    def steps(self) -> list[str]:
        """The records in the order they crossed, from the server's transcript (it sees both directions)."""
        lines = [
            f"{entry.direction} {entry.content_type_name} (encrypted): does not decrypt with the server's keys"
            if entry.encrypted and not entry.messages
            else entry.summary()
            for entry in self.server.transcript
        ]
        if self.server_error is not None:
            alert = getattr(self.server_error, "tls_alert", TLSAlert.internal_error)
            lines.append(f"server: {type(self.server_error).__name__}: {self.server_error} -> alert {alert.name}")
        if self.client_error is not None:
            lines.append(f"client: {type(self.client_error).__name__}: {self.client_error}")
        return lines


@dataclass
class _DemoKeys:
    chain: list[bytes]
    trusted: list[x509.Certificate]
    private_key: rsa.RSAPrivateKey


def _demo_keys() -> _DemoKeys:
    """A fresh CA and RSA server key, kept in memory (nothing written to disk)."""
    pki = CoursePKI.create()
    issued = pki.issue_server(("localhost",))
    assert isinstance(issued.private_key, rsa.RSAPrivateKey)
    return _DemoKeys([issued.der], [pki.root.certificate], issued.private_key)


def handshake_in_memory(
    keys: _DemoKeys | None = None,
    *,
    encrypt_pre_master_secret: Callable[[bytes, rsa.RSAPublicKey], bytes] = rsa_kx.encrypt_pre_master_secret,
    cipher_suite: CipherSuite = CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
) -> InMemoryHandshake:
    """Run TLSClient against TLSServer with no network at all, the client's ciphertext passing through
    ``encrypt_pre_master_secret`` (give it one that tampers to watch the countermeasure)."""
    keys = keys or _demo_keys()
    seen: dict[str, bytes] = {"client": b"", "server": b""}

    def client_side(pre_master: bytes, public_key: rsa.RSAPublicKey) -> bytes:
        seen["client"] = pre_master
        return encrypt_pre_master_secret(pre_master, public_key)

    def server_side(encrypted: bytes, private_key: rsa.RSAPrivateKey, client_version: int, random_bytes) -> bytes:
        seen["server"] = rsa_kx.decrypt_pre_master_secret(encrypted, private_key, client_version, random_bytes)
        return seen["server"]

    client = TLSClient(
        "localhost",
        trusted_certificates=keys.trusted,
        cipher_suites=[cipher_suite],
        stages=Stages(encrypt_pre_master_secret=client_side),
    )
    server = TLSServer(
        keys.chain, keys.private_key, cipher_suites=[cipher_suite], stages=Stages(decrypt_pre_master_secret=server_side)
    )
    errors: dict[str, BaseException | None] = {"client": None, "server": None}
    client.start()
    for _ in range(16):  # a handshake is four flights; the bound only guards against a core that loops
        moved = False
        for sender, receiver, name in ((client, server, "server"), (server, client, "client")):
            data = sender.data_to_send()
            if data and errors[name] is None:
                moved = True
                try:
                    receiver.receive_data(data)
                except HandshakeError as error:
                    errors[name] = error
        if not moved:
            break
    return InMemoryHandshake(client, server, seen["client"], seen["server"], errors["client"], errors["server"])


class CountermeasureDemo(widgets.VBox):
    """Bleichenbacher's countermeasure: tamper one ciphertext byte and watch the server; see :meth:`update`."""

    def __init__(self, *, byte_index: int = 40, mask: int = 0x01) -> None:
        self.demo_keys = _demo_keys()
        # Replaced by every update with the ciphertext the client really sent; its size fixes the slider.
        self.ciphertext = bytes(self.demo_keys.private_key.key_size // 8)
        size = len(self.ciphertext)
        self.byte_slider = widgets.IntSlider(
            value=min(max(byte_index, 0), size - 1), min=0, max=size - 1, description="byte", continuous_update=False
        )
        self.mask_box = widgets.BoundedIntText(value=mask, min=0, max=255, description="XOR mask")
        self.verdict = widgets.HTML()
        self.block_box = widgets.VBox()
        self.steps = widgets.HTML()
        self.summary_text = ""
        self.check: PaddingCheck | None = None
        self.result: InMemoryHandshake | None = None
        self._holding = False
        super().__init__([widgets.HBox([self.byte_slider, self.mask_box]), self.verdict, self.block_box, self.steps])
        for control in (self.byte_slider, self.mask_box):
            control.observe(self._on_change, names="value")
        self.update()

    def _on_change(self, change: dict) -> None:
        if not self._holding:
            self.update()

    def update(self, *, byte_index: int | None = None, mask: int | None = None) -> InMemoryHandshake | None:
        """Set the byte and/or mask, tamper, re-run the handshake in memory and redraw; the widget callback."""
        size = len(self.ciphertext)
        if byte_index is not None and not 0 <= byte_index < size:
            self._say(f"Choose a byte between 0 and {size - 1} (the ciphertext has {size} bytes).")
            return None
        if mask is not None and not 0 <= mask <= 255:
            self._say("The XOR mask is one byte: choose a value between 0 and 255.")
            return None
        self._holding = True
        try:
            if byte_index is not None:
                self.byte_slider.value = byte_index
            if mask is not None:
                self.mask_box.value = mask
        finally:
            self._holding = False
        index, xor = self.byte_slider.value, self.mask_box.value
        sent: list[bytes] = []

        def tampering(pre_master: bytes, public_key: rsa.RSAPublicKey) -> bytes:
            sent.append(tamper(rsa_kx.encrypt_pre_master_secret(pre_master, public_key), index, xor))
            return sent[-1]

        # A fresh handshake each time: the client's pre-master secret and its ciphertext are new, only the
        # tampering (which byte, which bits) is the learner's choice.
        self.result = handshake_in_memory(self.demo_keys, encrypt_pre_master_secret=tampering)
        self.ciphertext = sent[-1]
        self.check = read_padded_block(padded_block(self.ciphertext, self.demo_keys.private_key))
        same = self.result.server_pre_master_secret == self.result.client_pre_master_secret
        what = "untouched ciphertext" if xor == 0 else f"byte {index} XOR 0x{xor:02x}"
        lines = [
            f"sent: {what}",
            f"padding check (hidden inside the server): {'valid' if self.check.valid else self.check.problem}",
            f"client's pre-master secret: {_hex(self.result.client_pre_master_secret[:8])}...",
            f"server's pre-master secret: {_hex(self.result.server_pre_master_secret[:8])}... "
            + ("= the client's" if same else "!= the client's (the random R the server made before decrypting)"),
            "server's answer to ClientKeyExchange: nothing (it waits for ChangeCipherSpec and Finished, as always)",
            "handshake: " + ("completed" if self.result.completed else "failed at the client's Finished"),
        ]
        if self.result.server_error is not None:
            alert = getattr(self.result.server_error, "tls_alert", TLSAlert.internal_error)
            lines.append(f"alert the server sends: {alert.name} ({int(alert)})")
        self.summary_text = "\n".join(lines)
        self._say(self.summary_text, pre=True)
        self.block_box.children = [padding_view(self.check.block)]
        self.steps.value = (
            "<b>records, as the server saw them</b><pre style='color:inherit'>"
            + html.escape("\n".join(self.result.steps()))
            + "</pre>"
        )
        return self.result

    def _say(self, text: str, *, pre: bool = False) -> None:
        escaped = html.escape(text)
        self.verdict.value = f"<pre style='color:inherit'>{escaped}</pre>" if pre else f"<i>{escaped}</i>"
        if not pre:
            self.summary_text = text


def countermeasure_demo(**settings: Any) -> CountermeasureDemo:
    """The lesson's tampering widget (``byte_index``, ``mask``)."""
    return CountermeasureDemo(**settings)


# -- lesson 05: live runs -----------------------------------------------------------------------------
@dataclass
class LiveKeyExchange:
    """One live handshake of our client with OpenSSL, seen from both ends."""

    response: TLSResponse
    pre_master_secret: bytes  # what our client made
    encrypted_pre_master_secret: bytes  # what crossed the wire in ClientKeyExchange
    decrypted_with_server_key: bytes  # that ciphertext, decrypted with the server's private key
    openssl_master_secret: bytes | None  # OpenSSL's key log line for this connection
    master_secret_from_pre_master: bytes  # what the PRF makes of decrypted_with_server_key

    def lines(self) -> list[str]:
        return [
            f"our client's pre-master secret      {_hex(self.pre_master_secret)}",
            f"decrypted with the server's key     {_hex(self.decrypted_with_server_key)}",
            f"master secret in OpenSSL's key log  {_hex(self.openssl_master_secret or b'')}",
            f"PRF of that pre-master secret       {_hex(self.master_secret_from_pre_master)}",
        ]


def _handshake_messages_through_client_key_exchange(transcript: Sequence[TranscriptEntry]) -> bytes:
    """ClientHello .. ClientKeyExchange as hashed for the session hash (handshake headers, no record headers)."""
    messages = b""
    for entry in transcript:
        if entry.content_type != ContentType.handshake or entry.encrypted:
            continue
        messages += entry.plaintext
        if any(isinstance(message, ClientKeyExchange) for message in entry.messages):
            return messages
    raise ValueError("the transcript has no ClientKeyExchange")


def session_hash_listing(transcript: Sequence[TranscriptEntry], hash_name: str = "sha256") -> list[str]:
    """The messages RFC 7627's session hash covers (ClientHello .. ClientKeyExchange), one line each, and the hash."""
    messages = _handshake_messages_through_client_key_exchange(transcript)
    lines = [
        f"{name_of(HandshakeType, message[0]):<20} {len(message):>5} bytes"
        for message in split_handshake_messages(messages)
    ]
    lines.append(f"{'session_hash':<20} {_hex(prf_module.transcript_hash(hash_name, messages))}  ({hash_name})")
    return lines


def _derive_master(
    pre_master: bytes, client_random: bytes, server_random: bytes, messages: bytes, params: SuiteParams, ems: bool
) -> bytes:
    if ems:
        session_hash = prf_module.transcript_hash(params.prf_hash, messages)
        return prf_module.extended_master_secret(pre_master, session_hash, params.prf_hash)
    return prf_module.master_secret(pre_master, client_random, server_random, params.prf_hash)


def live_key_exchange(peer: OpenSSLPeer, **client_options: Any) -> LiveKeyExchange:
    """Fetch the page from ``peer`` with our client and collect the pre-master secret from every side."""
    made: list[tuple[bytes, bytes]] = []
    stages: Stages = client_options.pop("stages", LIBRARY_STAGES)
    encrypt = stages.encrypt_pre_master_secret

    def recording(pre_master: bytes, public_key: rsa.RSAPublicKey) -> bytes:
        encrypted = encrypt(pre_master, public_key)
        made.append((pre_master, encrypted))
        return encrypted

    # Offer what the server accepts (our client's default list has only four of the six RSA suites).
    client_options.setdefault("cipher_suites", [OPENSSL_NAMES[peer.ciphers]])
    recording_stages = stages.replace(encrypt_pre_master_secret=recording)
    response = tls_get(peer.url, cafile=peer.cafile, stages=recording_stages, **client_options)
    pre_master, encrypted = made[-1]
    # The lesson owns this server's key, so it can do what only the server should be able to do.
    decrypted = rsa_kx.decrypt_pre_master_secret(encrypted, peer.private_key, _TLS12)
    handshake = response.handshake
    messages = _handshake_messages_through_client_key_exchange(response.transcript)
    derived = _derive_master(
        decrypted,
        handshake.client_random,
        handshake.server_random,
        messages,
        suite_params(handshake.cipher_suite),
        handshake.extended_master_secret,
    )
    return LiveKeyExchange(
        response, pre_master, encrypted, decrypted, peer.keylog().master_secret(handshake.client_random), derived
    )


@dataclass
class TamperedOutcome:
    """How a real OpenSSL server ended a handshake whose ClientKeyExchange we corrupted."""

    alert: str  # the alert OpenSSL sent, by name ("" if none arrived)
    openssl_error: str  # OpenSSL's own reason, from the server side
    records: list[str]  # our client's transcript, in order
    completed: bool

    def lines(self) -> list[str]:
        return [
            *self.records,
            f"alert from OpenSSL: {self.alert or 'none'}",
            f"OpenSSL's reason:   {self.openssl_error or 'none'}",
        ]


def live_handshake_outcome(
    peer: OpenSSLPeer, *, timeout: float = net.DEFAULT_TIMEOUT, **client_options: Any
) -> TamperedOutcome:
    """Run our client (with ``client_options``, e.g. ``stages=Stages(prf=mine)``) against ``peer`` up to the end of
    the handshake and report how it ended: completed, or which alert OpenSSL sent and why.

    Unlike :func:`~handshake_lib.tls.session.tls_get`, this keeps the client's transcript when the
    handshake fails, so the lesson can show *at which step* OpenSSL objected.
    """
    client_options.setdefault("cipher_suites", [OPENSSL_NAMES[peer.ciphers]])
    client = TLSClient("localhost", cafile=peer.cafile, **client_options)
    alert = ""
    with net.connect(peer.server.host, peer.server.port, timeout=timeout) as sock:
        client.start()
        try:
            net.run_connection(client, sock, until=lambda event: isinstance(event, HandshakeComplete), timeout=timeout)
        except PeerAlert as error:
            try:
                alert = TLSAlert(error.description).name
            except ValueError:
                alert = str(error)
        except HandshakeError as error:
            alert = f"(none received; our client stopped: {type(error).__name__}: {error})"
    # Stop the server so that its thread has recorded how OpenSSL ended the connection.
    peer.server.close()
    records = [entry.summary() for entry in client.transcript]
    return TamperedOutcome(alert, (peer.last_error or ""), records, client.handshake is not None)


def live_tampered_exchange(
    peer: OpenSSLPeer,
    encrypt_pre_master_secret: Callable[[bytes, rsa.RSAPublicKey], bytes] | None = None,
    *,
    byte_index: int = 40,
    mask: int = 0x01,
    timeout: float = net.DEFAULT_TIMEOUT,
) -> TamperedOutcome:
    """Send ``peer`` a ClientKeyExchange made by ``encrypt_pre_master_secret`` (by default: the right
    ciphertext with byte ``byte_index`` XOR ``mask``) and report OpenSSL's answer.  Stops ``peer``."""

    def corrupting(pre_master: bytes, public_key: rsa.RSAPublicKey) -> bytes:
        return tamper(rsa_kx.encrypt_pre_master_secret(pre_master, public_key), byte_index, mask)

    stages = Stages(encrypt_pre_master_secret=encrypt_pre_master_secret or corrupting)
    return live_handshake_outcome(peer, timeout=timeout, stages=stages)


def openssl_client_exchange(timeout: float = net.DEFAULT_TIMEOUT) -> tuple[str, bytes]:
    """OpenSSL as the *client*, our TLSServer as the server: returns OpenSSL's ``RSA`` key log line and
    the pre-master secret our server decrypted from its ClientKeyExchange."""
    from ..tls.session import TLSPageServer

    keys = _demo_keys()
    decrypted: list[bytes] = []

    def recording(encrypted: bytes, private_key: rsa.RSAPrivateKey, client_version: int, random_bytes) -> bytes:
        pre_master = rsa_kx.decrypt_pre_master_secret(encrypted, private_key, client_version, random_bytes)
        decrypted.append(pre_master)
        return pre_master

    with tempfile.TemporaryDirectory(prefix="handshakes-") as folder:
        keylog = Path(folder) / "openssl-client-keys.log"
        cafile = Path(folder) / "ca.pem"
        cafile.write_bytes(keys.trusted[0].public_bytes(Encoding.PEM))
        context = ssl.create_default_context(cafile=str(cafile))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("AES128-GCM-SHA256")
        context.keylog_filename = str(keylog)
        stages = Stages(decrypt_pre_master_secret=recording)
        server = TLSPageServer(keys.chain, keys.private_key, stages=stages, timeout=timeout)
        with (
            server,
            net.connect(server.host, server.port, timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            tls.recv(4096)
        rsa_lines = [line for line in keylog.read_text().splitlines() if line.startswith("RSA ")]
    return (rsa_lines[-1] if rsa_lines else ""), (decrypted[-1] if decrypted else b"")


# -- lesson 06: P_hash, unrolled -----------------------------------------------------------------------
@dataclass(frozen=True)
class PHashStep:
    """Round ``i`` of P_hash: A(i) = HMAC(secret, A(i-1)) and the output block HMAC(secret, A(i) + seed)."""

    index: int
    a: bytes
    block: bytes
    used: int  # how many bytes of ``block`` end up in the output


def p_hash_steps(secret: bytes, seed: bytes, length: int, hash_name: str = "sha256") -> list[PHashStep]:
    """The rounds of P_hash(secret, seed) needed for ``length`` bytes (RFC 5246 section 5), in order."""
    if length < 0:
        raise ValueError("length must not be negative")
    steps: list[PHashStep] = []
    a = seed
    produced = 0
    while produced < length:
        a = prf_module.hmac_digest(hash_name, secret, a)
        block = prf_module.hmac_digest(hash_name, secret, a + seed)
        used = min(len(block), length - produced)
        steps.append(PHashStep(len(steps) + 1, a, block, used))
        produced += used
    return steps


def p_hash_picture(length: int = 100, hash_name: str = "sha256", *, ax: Any = None) -> Figure:
    """The A(i) chain of P_hash drawn for ``length`` output bytes: which HMAC feeds which, and the cut."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    size = len(prf_module.hmac_digest(hash_name, b"", b""))
    rounds = max(1, -(-length // size))
    step = 2.4  # horizontal distance between rounds
    figure, axes = axes_for(ax, (1.7 * rounds + 2.0, 3.6))
    axes.set_xlim(-0.1, step * rounds + 1.4)
    axes.set_ylim(-0.3, 3.4)
    axes.set_axis_off()
    hmac_colour, value_colour, out_colour, cut_colour = "#d9e7f7", "#f4f4f4", "#dff2df", "#f7e3c9"

    def box(x: float, y: float, text: str, colour: str, width: float, height: float = 0.44) -> None:
        axes.add_patch(
            FancyBboxPatch(
                (x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.03", fc=colour, ec="#555"
            )
        )
        axes.text(x, y, text, ha="center", va="center", fontsize=8)

    def arrow(start: tuple[float, float], end: tuple[float, float]) -> None:
        axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color="#444", lw=1))

    box(0.6, 2.9, "A(0) = seed", value_colour, 1.0)
    for i in range(1, rounds + 1):
        x = 0.6 + step * i
        chain_x = x - step / 2
        box(chain_x, 2.9, "HMAC", hmac_colour, 0.6)
        arrow((x - step + 0.55, 2.9), (chain_x - 0.35, 2.9))
        box(x, 2.9, f"A({i})", value_colour, 0.6)
        arrow((chain_x + 0.35, 2.9), (x - 0.35, 2.9))
        box(x, 1.75, f"HMAC(secret,\nA({i}) + seed)", hmac_colour, 1.5, 0.6)
        arrow((x, 2.66), (x, 2.07))
        used = min(size, length - (i - 1) * size)
        label = f"block {i}\n{used} of {size} bytes" if used < size else f"block {i}\n{size} bytes"
        box(x, 0.65, label, out_colour if used == size else cut_colour, 1.5, 0.6)
        arrow((x, 1.43), (x, 0.97))
    axes.text(
        0.1,
        -0.15,
        f"P_{hash_name.upper()}(secret, seed) = block 1 + block 2 + ... cut to {length} bytes"
        f"  (every HMAC is keyed with the secret)",
        fontsize=8,
        ha="left",
    )
    axes.set_title(
        f"P_{hash_name.upper()}: A(i) = HMAC(secret, A(i-1)); block i = HMAC(secret, A(i) + seed)", fontsize=10
    )
    return figure


# -- lesson 06: the key block ---------------------------------------------------------------------------
_KEY_BLOCK_PARTS = (
    ("client_write_MAC_key", "mac_key_length", "#f6c6c6"),
    ("server_write_MAC_key", "mac_key_length", "#f6dcc6"),
    ("client_write_key", "enc_key_length", "#c6daf6"),
    ("server_write_key", "enc_key_length", "#c6f0f6"),
    ("client_write_IV", "fixed_iv_length", "#d8f6c6"),
    ("server_write_IV", "fixed_iv_length", "#eef6c6"),
)


def key_block_layout(params: SuiteParams) -> list[tuple[str, int, int]]:
    """``(name, offset, length)`` of the six parts of the key block, in RFC 5246 section 6.3 order."""
    layout, offset = [], 0
    for name, attribute, _ in _KEY_BLOCK_PARTS:
        length = getattr(params, attribute)
        layout.append((name, offset, length))
        offset += length
    return layout


def key_block_layout_html(params: SuiteParams, block: bytes | None = None) -> str:
    """A bar (one box per byte range, width by length) and a table of the parts, with values if given."""
    colours = {name: colour for name, _, colour in _KEY_BLOCK_PARTS}
    total = params.key_block_length
    cells, rows = [], []
    for name, offset, length in key_block_layout(params):
        if length == 0:
            rows.append(f"<tr><td>{name}</td><td>-</td><td>0</td><td><i>{_empty_reason(name, params)}</i></td></tr>")
            continue
        cells.append(
            f"<div title='{name}: bytes {offset}..{offset + length - 1}' style='flex:{length};background:"
            f"{colours[name]};border:1px solid #777;padding:2px;overflow:hidden;white-space:nowrap;"
            f"font-size:11px;color:#000'>{name} ({length})</div>"
        )
        value = f"<code>{_hex(block[offset : offset + length])}</code>" if block is not None else ""
        rows.append(f"<tr><td>{name}</td><td>{offset}</td><td>{length}</td><td>{value}</td></tr>")
    bar = f"<div style='display:flex;width:100%;max-width:60em'>{''.join(cells)}</div>"
    table = (
        "<table style='color:inherit'><tr><th>part</th><th>offset</th><th>bytes</th><th>value</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return f"<div><b>{params.name}: key block of {total} bytes</b>{bar}{table}</div>"


def _empty_reason(name: str, params: SuiteParams) -> str:
    if "MAC" in name and params.is_aead:
        return "none: GCM's authentication tag replaces the MAC"
    return "none"


# -- lesson 06: recorded handshakes with OpenSSL ---------------------------------------------------------
@dataclass(frozen=True)
class RecordedHandshake:
    """What key derivation needs from one real TLS 1.2 handshake, and OpenSSL's master secret for it."""

    suite: CipherSuite
    extended_master_secret: bool
    pre_master_secret: bytes
    client_random: bytes
    server_random: bytes
    session_hash: bytes  # Hash(ClientHello .. ClientKeyExchange) with the suite's PRF hash (RFC 7627)
    openssl_master_secret: bytes  # from OpenSSL's key log

    @property
    def params(self) -> SuiteParams:
        return suite_params(self.suite)

    _FIELDS = ("pre_master_secret", "client_random", "server_random", "session_hash", "openssl_master_secret")

    def text(self) -> str:
        """This recording as one block of :data:`RECORDED_HANDSHAKES_TEXT`."""
        mode = "ems" if self.extended_master_secret else "classic"
        values = [f"  {name} {_hex(getattr(self, name))}" for name in self._FIELDS]
        return "\n".join([f"{_OPENSSL_NAME[self.suite]} {mode}", *values])

    @classmethod
    def from_text(cls, block: str) -> RecordedHandshake:
        heading, *lines = block.strip().splitlines()
        name, mode = heading.split()
        values = dict(line.split() for line in lines)
        fields = {key: bytes.fromhex(values[key]) for key in cls._FIELDS}
        return cls(OPENSSL_NAMES[name], mode == "ems", **fields)


def record_live_handshake(peer: OpenSSLPeer, *, extended_master_secret: bool = True) -> RecordedHandshake:
    """Fetch ``peer``'s page with our client and keep what :class:`RecordedHandshake` holds."""
    live = live_key_exchange(peer, extended_master_secret=extended_master_secret)
    handshake = live.response.handshake
    params = suite_params(handshake.cipher_suite)
    messages = _handshake_messages_through_client_key_exchange(live.response.transcript)
    if live.openssl_master_secret is None:
        raise ValueError("OpenSSL wrote no key log line for this connection")
    return RecordedHandshake(
        handshake.cipher_suite,
        handshake.extended_master_secret,
        live.pre_master_secret,
        handshake.client_random,
        handshake.server_random,
        prf_module.transcript_hash(params.prf_hash, messages),
        live.openssl_master_secret,
    )


# Recorded by our client against OpenSSL 3.0.19 on loopback (`python -m handshake_lib.lessons.tls_keys`):
# suite, master secret mode, pre-master secret, client random, server random, session hash, and the
# master secret OpenSSL wrote to its key log.  The server keys were fresh and are gone; these secrets
# protect nothing and are published on purpose, so the lesson can recompute OpenSSL's numbers offline.
RECORDED_HANDSHAKES_TEXT = """
AES128-SHA ems
  pre_master_secret 03036c8a1d2fc6015c87f7501aa0b564895d13d1f7e77c8a365ef07c0e89cd4870bc69888f7994412ebe4285b17ab805
  client_random dbb6de2e88c443f905912d7703004c85b218d8df1bb0425bda00fe38fb852ec9
  server_random e39ddd1d7b45b2a9f1367f40d03ba02be7543349f2f4a15e7facd17d183f362a
  session_hash bacf1422efe0e2989a9206a9a13c6637a5226602e08d21206f67b10d479ab19c
  openssl_master_secret d2ccbe64818037901d1dd23b33aae7925ab5176456f3dffd7e724a3d891e9c00279109e613f503ec453f69f2add94c96

AES128-SHA classic
  pre_master_secret 030397a38ac439bc408452f6c40752c87ee624df6c6c4f001109695de3ad25e7b0f672133325ba4296a5feeeeaa4d27d
  client_random 750ed33fda2a92bdeb32164d58c1bd24f45e617954c4c95ff6ca74d142cf574d
  server_random 2ccd59abf4a2d20c7b90e0f5a9e11cca817410f705e6888f9c9b0acb01e885f5
  session_hash 91b1b9f8012c16b3459238644be3c87ef8ce2b70a4d04a35346945e99acc485f
  openssl_master_secret fe0078262751809070bd9e896d64e9e771b450a1e10a0948c9275fcdb0e33552e8665d30e25bbcd5fd97befd7abafc38

AES256-SHA ems
  pre_master_secret 03034cd4f040df97b955cc2d16dc41597f8bdeefdc41670fd2f4984e4b2439ec807a3447581cf2d874bce40491bf501b
  client_random 7bc7a85571c584974c6050f6ab524d172333d0fd5b0e02896abb957fed7af590
  server_random 18790578c0eba40abe1db72ca20dbd1eb26feec13be779565f10354286c9c6c2
  session_hash f253d9eee473e1fef18ffa2398be18b48345658ca79f34f29aa4d465175b5cda
  openssl_master_secret 3ab7f8a412689037bab936c97178e14ad92c2b579ced9164ac587200cc69485c4a5c95df3be113ae0ac8e690f0bda34b

AES256-SHA classic
  pre_master_secret 0303af2cca1c07634f7ca96c71de130276a306bb9fdc71294537321611cafc4b02b024268cc24032e21e442f33d7c629
  client_random 364bca5d1011a48004dd8455f71fcf1f93c56c7241291697725eabe53da9be15
  server_random 18d97308f929e76a01fa6f985a0499add5e3b5fdc109efe9f42c09c3c9b2d726
  session_hash 33be6a02cbb7cd607a6b4c7480a784a297d05ec2330e02e6fe21ad665e3c9610
  openssl_master_secret 6f9e0b48e23c516c0f4c6263cddb64576c01973cae3d813a294226bd1d13fdc2bb980d5f28a8c5735545849134caf5ec

AES128-SHA256 ems
  pre_master_secret 0303e0c08050ff99a62c215d0f1d86c81461e2fb9db5dd0ba37fb758326c84297ddab9af2d7f734becd02cf3a0837bd0
  client_random 08bc9d5439057339524a3c7774d4262a6779d95c5580cf0f0cb5e682c52e240b
  server_random 7e123ec4b2e108831f8f889740cdf1510f27851497e7e2639a115e8155e83081
  session_hash 887fd4deb40efca7f2db9d8549bb147e14b1bed515928531b38a458dc56e16d9
  openssl_master_secret 819ecb1a5cbcf38786d8dbf2bd4e0b7301825cb1ef36dfb9b0f5408a19e96046de54af9df81542c94e623df392e9bf31

AES128-SHA256 classic
  pre_master_secret 030322acd89f63ead152d5cc78a03fe247d53b011b9b40093ef69769e2045252491f0900541999eabd7b512199f68e67
  client_random a64dcbd563be980c0d1b9419e26fd318e32f76eb8d416f021b5d2a9c9de57793
  server_random a5be3e99192d80594d13f6c54876b35d5b9194d547b2bb20f2523cb20fdd9ad8
  session_hash 3842ac63321c4f0b1c66db2e4f50cf708d258af1ecbc858b328ffee5aa98379b
  openssl_master_secret faddc7ece9d04c8df248af598d363096f6fe2c3fc70b828dc274c4217b9606b66edfc13fd4597a7716f98b0ba0852209

AES256-SHA256 ems
  pre_master_secret 03038e54fc703af2eae651a86e3672eb392ade335e8ebc51f681d89a431144907fd9f223890a28dd944213cf83210f0d
  client_random a642f8069acd8523373d62723984c4ff12bc51535292defbb9585efbfbcf85da
  server_random 36cd0c0e85886dec6c8b49ae6ef7ee08ed423ec7a1c3b68cc671eb8546307239
  session_hash 53a998ee787b56e3b06a3cb9e8f7fe2eba3b998f29171132a795040d6f23ccf7
  openssl_master_secret ad9c7b5d6b5066cc20eec4bb1bbfe87d0fc27262ae8df4a6f5e81e8da9348dbdf9740b1e536ed01dfe09396c6719f533

AES256-SHA256 classic
  pre_master_secret 0303de99004d201ad20d8dbd4ad686d2a6787bd798fda3f7fee9fc40e3a07f6b4c4088d2b893a15b2535c26b9a0fd4e1
  client_random 1e63dfb9e710dc01b63e15d65b6d74e383a4c1e6fe68a428e00ccdd4da786548
  server_random 82387761700f04d6fe4923e8faf5d7581c910fa2626af397149aaff5881d1308
  session_hash 37fc7ef73d072f14bd55378b6f4adc698e650af1ed7a62648eb7879fa817adb3
  openssl_master_secret 347dcc34ac2df00cf0d5ebee019645b26a70e042171b3204425f691ddcd5549c1d90304829e6128d0198257179ad7920

AES128-GCM-SHA256 ems
  pre_master_secret 0303f55be879dde9608677725d2b7670bcf24f7ce02f94af6cb9d70a07894b07baf80e973ecc701482129ec908637317
  client_random f83d32dc0d563f155873a95c55188522422095cfd29abed2cddebe1c77ef39f5
  server_random c0ece3058292e26dba85d9d5d8fac750ea8ddb279cee58a8bc9a01be0841916a
  session_hash 1723961a13107cd1929ed193cabc687c7eb60fc9f210ddca6d2fe80391da2f39
  openssl_master_secret dd6c083c11ecba08d630c7abb7925f5b8f768e77f3287b9b929d0ab4218b24245543141a15c213d33cf7f1a770b5e918

AES128-GCM-SHA256 classic
  pre_master_secret 0303ad7eb83795ee2743b698e81ba63d2cf5c64520b78699c0ea0f61a791ffd05f8a3ca55f77166b3c8a298f37eb4be2
  client_random 4ea49d43473d13dd7886a6d277ff48c96c6471bca5ea63960dd14bc7eef739f4
  server_random 77b6d557cba3dd22bd949eccc3f6265ba72828c5f47759078876369f3f77a08b
  session_hash 169cea20833ecf80215cab9bbb48a8f85f1056a39f40cd72f4f9c1e659cc7f62
  openssl_master_secret 85d3cabfa04f70f5c378202c2593cab34931a6f172fe358a2b45750e4753a4c406720effeded265eb9edf1188db5a846

AES256-GCM-SHA384 ems
  pre_master_secret 0303279edc0392acdf96654c3b0fbfaa216408ecc29865fb9d7f8d00c3bfd2d3aa0f2a4790d51209a0eff7c5b7a5b731
  client_random 350a0e9f639dd6fde2859c8c204b9a8f5c52ee03b8d16a3a5756295f09ed3483
  server_random 88115ee3e7f04f344ed6edc2d5f083b2c7469ad255e0dd5fd5da2577252f0f57
  session_hash 21ecd68a696c675123097bb1cde50fa9dbf653f029183b0259aea6aae925b7cfa0e5d74ce5eb7f1602f19ae90c7da2f4
  openssl_master_secret 126648ebb62f17ca841246dc7f8cbf1b2d83df46848ec3a3daea762e35d99bc8d62aa178187c26a76465cd5edec02f3a

AES256-GCM-SHA384 classic
  pre_master_secret 03039fef7281645191ea24f1c190f781b35511aadc1e4196b6ead47c6496797dca336f813a8043ad81fa4a8f9b544cc6
  client_random 0a73903de316e9e695932b1feac74237e634ad2172e5fb48df87eb8b11b8fce0
  server_random c8eeed6cb5b12d558a415411dd299f026c419c166beb464ff38ddbb81003be95
  session_hash 84f4eaef0f3d5f97c203343bc28f93e9caec84cf08d78c844b2dd7ba2b83de6451942f778b942017a2db5b045411bbfc
  openssl_master_secret 9bdbe918c9dd6f4fbff7e17314fce2a72b77d4584cbb6397fd272d96d1f1269fb9d344c99dcb5b12ca5159b1bc5555b5
"""

RECORDED_HANDSHAKES: dict[tuple[str, bool], RecordedHandshake] = {
    (_OPENSSL_NAME[recorded.suite], recorded.extended_master_secret): recorded
    for recorded in map(RecordedHandshake.from_text, filter(None, RECORDED_HANDSHAKES_TEXT.strip().split("\n\n")))
}


def recorded_handshake(cipher: str = "AES128-GCM-SHA256", extended_master_secret: bool = True) -> RecordedHandshake:
    """The shipped recording for this suite (OpenSSL name) and master secret mode."""
    try:
        return RECORDED_HANDSHAKES[(cipher, extended_master_secret)]
    except KeyError:
        raise ValueError(f"no recording for {cipher!r}; choose one of {', '.join(RSA_SUITE_NAMES)}") from None


@dataclass(frozen=True)
class DerivedKeys:
    """Everything lesson 06 derives from a recording, and whether OpenSSL agrees."""

    recording: RecordedHandshake
    master_secret: bytes
    key_block: bytes
    keys: prf_module.KeyBlock

    @property
    def matches_openssl(self) -> bool:
        return self.master_secret == self.recording.openssl_master_secret


def derive_keys(recording: RecordedHandshake, *, stages: Stages = LIBRARY_STAGES) -> DerivedKeys:
    """Master secret (classic or extended) and key block of ``recording``, run by ``stages`` (the library's
    by default; ``Stages(prf=mine)`` puts a learner's PRF under every step, as a connection would)."""
    params = recording.params
    run = stages.resolved()
    if recording.extended_master_secret:
        master = run.extended_master_secret(recording.pre_master_secret, recording.session_hash, params.prf_hash)
    else:
        randoms = (recording.client_random, recording.server_random)
        master = run.master_secret(recording.pre_master_secret, *randoms, params.prf_hash)
    seed = recording.server_random + recording.client_random
    block = run.prf(master, b"key expansion", seed, params.key_block_length, params.prf_hash)
    keys = run.key_block(master, recording.server_random, recording.client_random, params)
    return DerivedKeys(recording, master, block, keys)


class KeyScheduleExplorer(widgets.VBox):
    """Choose a suite and the master secret mode; see the derivation, the key block and OpenSSL's verdict."""

    def __init__(self, *, cipher: str = "AES128-GCM-SHA256", extended_master_secret: bool = True) -> None:
        self.suite_menu = widgets.Dropdown(
            options=list(RSA_SUITE_NAMES),
            value=cipher if cipher in RSA_SUITE_NAMES else RSA_SUITE_NAMES[0],
            description="suite",
        )
        self.ems_box = widgets.Checkbox(value=extended_master_secret, description="extended master secret (RFC 7627)")
        self.derivation = widgets.HTML()
        self.layout_html = widgets.HTML()
        self.summary_text = ""
        self.derived: DerivedKeys | None = None
        self._holding = False
        super().__init__([widgets.HBox([self.suite_menu, self.ems_box]), self.derivation, self.layout_html])
        for control in (self.suite_menu, self.ems_box):
            control.observe(self._on_change, names="value")
        self.update()

    def _on_change(self, change: dict) -> None:
        if not self._holding:
            self.update()

    def update(self, *, cipher: str | None = None, extended_master_secret: bool | None = None) -> DerivedKeys | None:
        """Set the suite and/or EMS, recompute from the recording, redraw; the widget callback."""
        if cipher is not None and cipher not in RSA_SUITE_NAMES:
            self.summary_text = f"Unknown suite {cipher!r}: choose one of {', '.join(RSA_SUITE_NAMES)}."
            self.derivation.value = f"<i>{html.escape(self.summary_text)}</i>"
            return None
        self._holding = True
        try:
            if cipher is not None:
                self.suite_menu.value = cipher
            if extended_master_secret is not None:
                self.ems_box.value = bool(extended_master_secret)
        finally:
            self._holding = False
        recording = recorded_handshake(self.suite_menu.value, self.ems_box.value)
        derived = derive_keys(recording)
        self.derived = derived
        params = recording.params
        hash_name = params.prf_hash.upper()
        if recording.extended_master_secret:
            how = (
                f'master_secret = PRF_{hash_name}(pre_master_secret, "extended master secret", session_hash)\n'
                f"session_hash  = {hash_name}(ClientHello .. ClientKeyExchange) = {_hex(recording.session_hash)}"
            )
        else:
            how = f'master_secret = PRF_{hash_name}(pre_master_secret, "master secret", client_random + server_random)'
        verdict = "the same" if derived.matches_openssl else "DIFFERENT"
        lines = [
            f"recorded live handshake with OpenSSL, {params.name}",
            f"pre_master_secret = {_hex(recording.pre_master_secret)}",
            f"client_random     = {_hex(recording.client_random)}",
            f"server_random     = {_hex(recording.server_random)}",
            how,
            f"our master secret      {_hex(derived.master_secret)}",
            f"OpenSSL's key log line {_hex(recording.openssl_master_secret)}  -> {verdict}",
            f'key_block = PRF_{hash_name}(master_secret, "key expansion", server_random + client_random), '
            f"{params.key_block_length} bytes",
        ]
        self.summary_text = "\n".join(lines)
        self.derivation.value = f"<pre style='color:inherit'>{html.escape(self.summary_text)}</pre>"
        self.layout_html.value = key_block_layout_html(params, derived.key_block)
        return derived


def key_schedule_explorer(**settings: Any) -> KeyScheduleExplorer:
    """The lesson's key schedule widget (``cipher``, ``extended_master_secret``)."""
    return KeyScheduleExplorer(**settings)


# -- benchmarks (read by `make bench`, see bench/README.md) ----------------------------------------------
def _bench_tamper() -> Callable[[], object]:
    demo = countermeasure_demo()
    positions = itertools.cycle(range(0, len(demo.ciphertext), 7))
    return lambda: demo.update(byte_index=next(positions), mask=0x10)


def _bench_explorer() -> Callable[[], object]:
    explorer = key_schedule_explorer()
    choices = itertools.cycle(itertools.product(RSA_SUITE_NAMES, (True, False)))

    def step() -> object:
        cipher, ems = next(choices)
        return explorer.update(cipher=cipher, extended_master_secret=ems)

    return step


def _bench_padding_view() -> Callable[[], object]:
    keys = _demo_keys()
    public_key = keys.private_key.public_key()
    return lambda: padding_view(
        padded_block(rsa_kx.encrypt_pre_master_secret(os.urandom(48), public_key), keys.private_key)
    )


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "countermeasure_demo.update(byte_index)": _bench_tamper,
    "key_schedule_explorer.update(cipher, ems)": _bench_explorer,
    "padding_view(padded_block)": _bench_padding_view,
}


def _record_all() -> str:
    """Record one live handshake per RSA suite and master secret mode; the text of RECORDED_HANDSHAKES."""
    lines = []
    for cipher in RSA_SUITE_NAMES:
        for ems in (True, False):
            with openssl_server(cipher) as peer:
                recorded = record_live_handshake(peer, extended_master_secret=ems)
            if derive_keys(recorded).master_secret != recorded.openssl_master_secret:
                raise AssertionError(f"{cipher} ems={ems}: our master secret differs from OpenSSL's")
            lines.append(recorded.text())
    return "\n\n".join(lines)


if __name__ == "__main__":
    print(_record_all())
