"""The TLS 1.3 key schedule (RFC 8446 section 7), as plain functions a notebook can call and a learner can replace.

Theory of operation
-------------------
TLS 1.2 made every key from one master secret with its PRF.  TLS 1.3 replaces the PRF with HKDF
(RFC 5869) and walks a fixed ladder of three secrets, each one *extracted* from the one before and a new
input, and each handing out *derived* secrets bound to the transcript so far::

                 0 (or the PSK)
                       |
         0  ->  HKDF-Extract = Early Secret  --> Derive-Secret(., "ext binder" | "res binder", "") = binder_key
                       |                     --> Derive-Secret(., "c e traffic", ClientHello)
                       |                     --> Derive-Secret(., "e exp master", ClientHello)
               Derive-Secret(., "derived", "")
                       |
      (EC)DHE  ->  HKDF-Extract = Handshake Secret --> "c hs traffic", "s hs traffic" (ClientHello..ServerHello)
                       |
               Derive-Secret(., "derived", "")
                       |
         0  ->  HKDF-Extract = Master Secret --> "c ap traffic", "s ap traffic", "exp master" (..server Finished)
                                             --> "res master" (..client Finished)

Three small functions do all of it:

* ``HKDF-Extract(salt, IKM) = HMAC-Hash(salt, IKM)`` (a zero-length salt is a string of Hash.length zeros);
* ``HKDF-Expand-Label(Secret, Label, Context, Length) = HKDF-Expand(Secret, HkdfLabel, Length)``, where the
  ``HkdfLabel`` structure is ``uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255>``;
* ``Derive-Secret(Secret, Label, Messages) = HKDF-Expand-Label(Secret, Label, Transcript-Hash(Messages), Hash.length)``.

Traffic keys come from a traffic secret with the labels ``"key"`` and ``"iv"`` (section 7.3), the Finished
MAC key with ``"finished"`` (4.4.4), the next generation of an application secret after KeyUpdate with
``"traffic upd"`` (7.2), a resumption PSK from the resumption master secret and a ticket's nonce with
``"resumption"`` (4.6.1), and an exported key with ``"exporter"`` (7.5).

The HkdfLabel and the HKDF-Expand loop are built here, with :mod:`wire` and ``cryptography``'s HMAC, because
they are what lesson 10 teaches; :func:`hkdf_label_spans` annotates the HkdfLabel bytes for a hex view.
Every function takes the hash by name (``"sha256"`` or ``"sha384"``, the two TLS 1.3 suites use), so a
learner can replace any one of them.  :class:`KeySchedule13` walks the ladder for one connection and keeps
every step (:class:`ScheduleStep`) for a lesson's diagram.  Checked against the secrets, keys and hashes
RFC 8448's text prints (``tests/test_tls13_key_schedule.py``) and against OpenSSL's key log and Finished
messages, a HelloRetryRequest's included (``tests/test_tls13_key_schedule.py``, ``tests/test_tls13_record.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, hmac

from ..errors import DecodeError, EncodeError, InternalError
from ..wire import Reader, Span, Writer

__all__ = [
    "HASH_LENGTHS",
    "LABEL_PREFIX",
    "HkdfLabel",
    "TrafficKeys",
    "ScheduleStep",
    "KeySchedule13",
    "hash_length",
    "hkdf_extract",
    "hkdf_expand",
    "hkdf_label_bytes",
    "hkdf_label_spans",
    "hkdf_expand_label",
    "transcript_hash",
    "message_hash",
    "transcript_hash_after_hrr",
    "derive_secret",
    "early_secret",
    "binder_key",
    "client_early_traffic_secret",
    "early_exporter_master_secret",
    "handshake_secret",
    "client_handshake_traffic_secret",
    "server_handshake_traffic_secret",
    "master_secret",
    "client_application_traffic_secret_0",
    "server_application_traffic_secret_0",
    "exporter_master_secret",
    "resumption_master_secret",
    "next_application_secret",
    "finished_key",
    "finished_verify_data",
    "psk_binder",
    "traffic_keys",
    "resumption_psk",
    "exporter",
]

# The two hashes TLS 1.3's suites use (RFC 8446 appendix B.4), by the names hashlib and this module share.
HASH_LENGTHS: dict[str, int] = {"sha256": 32, "sha384": 48}
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}
# Every TLS 1.3 label is prefixed with this on the wire (section 7.1).
LABEL_PREFIX = b"tls13 "
# HkdfLabel.label is opaque label<7..255>: the prefix plus at least one byte; the context is <0..255>.
MIN_FULL_LABEL = 7
MAX_FULL_LABEL = 255
MAX_CONTEXT = 255
# HKDF-Expand can produce at most 255 blocks of output (RFC 5869 section 2.3).
MAX_EXPAND_BLOCKS = 255
# Handshake message type of the synthetic message that replaces ClientHello1 after a HelloRetryRequest.
MESSAGE_HASH_TYPE = 254


def hash_length(hash_name: str) -> int:
    """Hash.length of ``"sha256"`` (32) or ``"sha384"`` (48); ValueError for anything TLS 1.3 does not use."""
    try:
        return HASH_LENGTHS[hash_name]
    except KeyError:
        raise ValueError(f"TLS 1.3 uses sha256 or sha384, not {hash_name!r}") from None


def _hmac(hash_name: str, key: bytes, data: bytes) -> bytes:
    hash_length(hash_name)
    mac = hmac.HMAC(key, _HASHES[hash_name]())
    mac.update(data)
    return mac.finalize()


def hkdf_extract(hash_name: str, salt: bytes | None, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 section 2.2): ``HMAC-Hash(salt, IKM)``, a PRK of Hash.length bytes.

    A missing or empty salt is Hash.length zero bytes, as RFC 5869 says and RFC 8448 prints it ("salt: 0").
    """
    salt = salt or bytes(hash_length(hash_name))
    return _hmac(hash_name, salt, ikm)


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 section 2.3): T(i) = HMAC(PRK, T(i-1) | info | i), concatenated, cut to length."""
    size = hash_length(hash_name)
    if not 0 < length <= MAX_EXPAND_BLOCKS * size:
        raise ValueError(f"HKDF-Expand makes 1 to {MAX_EXPAND_BLOCKS * size} bytes with {hash_name}, not {length}")
    output, block = b"", b""
    counter = 1
    while len(output) < length:
        block = _hmac(hash_name, prk, block + info + bytes([counter]))
        output += block
        counter += 1
    return output[:length]


@dataclass(frozen=True)
class HkdfLabel:
    """The HkdfLabel structure of RFC 8446 section 7.1, the ``info`` of every TLS 1.3 HKDF-Expand.

    ``label`` is the label *without* the ``"tls13 "`` prefix (``b"c hs traffic"``), as the RFC's text
    names them; :meth:`encode` adds the prefix, :meth:`decode` checks it and takes it off.
    """

    length: int
    label: bytes
    context: bytes = b""

    def encode(self) -> bytes:
        full = LABEL_PREFIX + self.label
        if not 0 <= self.length <= 0xFFFF:
            raise EncodeError(f"HkdfLabel.length {self.length} does not fit in 16 bits")
        if not MIN_FULL_LABEL <= len(full) <= MAX_FULL_LABEL:
            raise EncodeError(f"HkdfLabel.label is {len(full)} bytes with its prefix; it must be 7..255")
        if len(self.context) > MAX_CONTEXT:
            raise EncodeError(f"HkdfLabel.context is {len(self.context)} bytes; at most 255")
        # uint16 length; opaque label<7..255>; opaque context<0..255>: built directly (it runs ~20 times a
        # handshake); decode() reads it back with spans for the hex view.
        return self.length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(self.context)]) + self.context

    @classmethod
    def decode(cls, data: bytes, *, spans: list[Span] | None = None) -> HkdfLabel:
        """Read an HkdfLabel, recording spans into ``spans`` when given; DecodeError on anything malformed."""
        reader = Reader(data, spans=spans, path=("hkdf_label",), annotate=spans is not None)
        length = reader.u16("length", "bytes HKDF-Expand makes")
        full = reader.vector(1, "label", lambda v: f"{v.decode('ascii', 'replace')!r}", min_length=MIN_FULL_LABEL)
        context = reader.vector(1, "context", _context_meaning)
        reader.expect_end("HkdfLabel")
        if not full.startswith(LABEL_PREFIX):
            raise DecodeError('a TLS 1.3 label starts with "tls13 "', field="hkdf_label.label", offset=3)
        return cls(length, full[len(LABEL_PREFIX) :], context)


def _context_meaning(value: bytes) -> str:
    return "empty" if not value else f"{len(value)} bytes: a transcript hash, a ticket nonce or an exporter context"


def _label(label: str | bytes) -> bytes:
    return label.encode("ascii") if isinstance(label, str) else label


def hkdf_label_bytes(length: int, label: str | bytes, context: bytes = b"") -> bytes:
    """The HkdfLabel for ``label`` (without ``"tls13 "``): what RFC 8448 prints as ``info``."""
    return HkdfLabel(length, _label(label), context).encode()


def hkdf_label_spans(length: int, label: str | bytes, context: bytes = b"") -> tuple[bytes, tuple[Span, ...]]:
    """The HkdfLabel bytes and their annotated spans (length, label with its prefix, context), for a hex view."""
    data = hkdf_label_bytes(length, label, context)
    spans: list[Span] = []
    HkdfLabel.decode(data, spans=spans)
    return data, tuple(spans)


def hkdf_expand_label(hash_name: str, secret: bytes, label: str | bytes, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 section 7.1): HKDF-Expand(Secret, HkdfLabel(Length, "tls13 " + Label, Context))."""
    return hkdf_expand(hash_name, secret, hkdf_label_bytes(length, label, context), length)


def transcript_hash(hash_name: str, messages: Iterable[bytes]) -> bytes:
    """Transcript-Hash (section 4.4.1): the hash of the handshake messages (headers included), concatenated."""
    hash_length(hash_name)
    digest = hashlib.new(hash_name)
    for message in messages:
        digest.update(message)
    return digest.digest()


def message_hash(hash_name: str, client_hello1: bytes) -> bytes:
    """The synthetic ``message_hash`` handshake message that stands for ClientHello1 after a HelloRetryRequest.

    RFC 8446 section 4.4.1: type 254, a 3-byte length of Hash.length, then Hash(ClientHello1), so a
    server can keep the first ClientHello's hash in a cookie instead of the message itself.
    """
    digest = transcript_hash(hash_name, [client_hello1])
    return Writer().u8(MESSAGE_HASH_TYPE).u24(len(digest)).raw(digest).getvalue()


def transcript_hash_after_hrr(hash_name: str, client_hello1: bytes, later_messages: Sequence[bytes]) -> bytes:
    """Transcript-Hash(ClientHello1, HelloRetryRequest, ... Mn) as section 4.4.1 defines it.

    ``later_messages`` starts with the HelloRetryRequest; ClientHello1 itself is replaced by its
    :func:`message_hash`.
    """
    return transcript_hash(hash_name, [message_hash(hash_name, client_hello1), *later_messages])


def derive_secret(
    hash_name: str,
    secret: bytes,
    label: str | bytes,
    messages: Sequence[bytes] = (),
    *,
    transcript: bytes | None = None,
) -> bytes:
    """Derive-Secret(Secret, Label, Messages): HKDF-Expand-Label(Secret, Label, Transcript-Hash(Messages), Hash.length).

    Give the handshake ``messages`` (hashed here), or the ``transcript`` hash already computed (what a
    connection keeps running); with neither, the messages are the empty string, as for ``"derived"``.
    """
    if transcript is not None and messages:
        raise ValueError("give the messages or their transcript hash, not both")
    context = transcript if transcript is not None else transcript_hash(hash_name, messages)
    if len(context) != hash_length(hash_name):
        raise ValueError(f"a {hash_name} transcript hash is {hash_length(hash_name)} bytes, not {len(context)}")
    return hkdf_expand_label(hash_name, secret, label, context, hash_length(hash_name))


# -- the ladder, one rung per function (section 7.1) ------------------------------------------------------


def early_secret(hash_name: str, psk: bytes | None = None) -> bytes:
    """HKDF-Extract(0, PSK): with no PSK the input is Hash.length zeros (section 7.1)."""
    return hkdf_extract(hash_name, None, psk if psk is not None else bytes(hash_length(hash_name)))


def binder_key(hash_name: str, early: bytes, *, external: bool = False) -> bytes:
    """Derive-Secret(Early Secret, "ext binder" | "res binder", ""): external PSKs and resumption differ."""
    return derive_secret(hash_name, early, "ext binder" if external else "res binder")


def client_early_traffic_secret(hash_name: str, early: bytes, client_hello_hash: bytes) -> bytes:
    """Derive-Secret(Early Secret, "c e traffic", ClientHello): protects 0-RTT data."""
    return derive_secret(hash_name, early, "c e traffic", transcript=client_hello_hash)


def early_exporter_master_secret(hash_name: str, early: bytes, client_hello_hash: bytes) -> bytes:
    """Derive-Secret(Early Secret, "e exp master", ClientHello)."""
    return derive_secret(hash_name, early, "e exp master", transcript=client_hello_hash)


def handshake_secret(hash_name: str, early: bytes, shared_secret: bytes | None) -> bytes:
    """HKDF-Extract(Derive-Secret(Early Secret, "derived", ""), (EC)DHE); zeros for a psk_ke handshake."""
    ikm = shared_secret if shared_secret is not None else bytes(hash_length(hash_name))
    return hkdf_extract(hash_name, derive_secret(hash_name, early, "derived"), ikm)


def client_handshake_traffic_secret(hash_name: str, handshake: bytes, hello_hash: bytes) -> bytes:
    """Derive-Secret(Handshake Secret, "c hs traffic", ClientHello..ServerHello)."""
    return derive_secret(hash_name, handshake, "c hs traffic", transcript=hello_hash)


def server_handshake_traffic_secret(hash_name: str, handshake: bytes, hello_hash: bytes) -> bytes:
    """Derive-Secret(Handshake Secret, "s hs traffic", ClientHello..ServerHello)."""
    return derive_secret(hash_name, handshake, "s hs traffic", transcript=hello_hash)


def master_secret(hash_name: str, handshake: bytes) -> bytes:
    """HKDF-Extract(Derive-Secret(Handshake Secret, "derived", ""), 0)."""
    return hkdf_extract(hash_name, derive_secret(hash_name, handshake, "derived"), bytes(hash_length(hash_name)))


def client_application_traffic_secret_0(hash_name: str, master: bytes, server_finished_hash: bytes) -> bytes:
    """Derive-Secret(Master Secret, "c ap traffic", ClientHello..server Finished)."""
    return derive_secret(hash_name, master, "c ap traffic", transcript=server_finished_hash)


def server_application_traffic_secret_0(hash_name: str, master: bytes, server_finished_hash: bytes) -> bytes:
    """Derive-Secret(Master Secret, "s ap traffic", ClientHello..server Finished)."""
    return derive_secret(hash_name, master, "s ap traffic", transcript=server_finished_hash)


def exporter_master_secret(hash_name: str, master: bytes, server_finished_hash: bytes) -> bytes:
    """Derive-Secret(Master Secret, "exp master", ClientHello..server Finished)."""
    return derive_secret(hash_name, master, "exp master", transcript=server_finished_hash)


def resumption_master_secret(hash_name: str, master: bytes, client_finished_hash: bytes) -> bytes:
    """Derive-Secret(Master Secret, "res master", ClientHello..client Finished)."""
    return derive_secret(hash_name, master, "res master", transcript=client_finished_hash)


def next_application_secret(hash_name: str, secret: bytes) -> bytes:
    """application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length): KeyUpdate (7.2)."""
    return hkdf_expand_label(hash_name, secret, "traffic upd", b"", hash_length(hash_name))


def finished_key(hash_name: str, base_key: bytes) -> bytes:
    """HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (section 4.4.4)."""
    return hkdf_expand_label(hash_name, base_key, "finished", b"", hash_length(hash_name))


def finished_verify_data(hash_name: str, base_key: bytes, transcript: bytes) -> bytes:
    """verify_data = HMAC(finished_key, Transcript-Hash(Handshake Context, Certificate*, CertificateVerify*)).

    ``base_key`` is the sender's handshake traffic secret (or the binder key, for a PSK binder).
    """
    return _hmac(hash_name, finished_key(hash_name, base_key), transcript)


def psk_binder(hash_name: str, binder: bytes, truncated_client_hello_hash: bytes) -> bytes:
    """A PSK binder (4.2.11.2): a Finished made with the binder key over the ClientHello up to its binders."""
    return finished_verify_data(hash_name, binder, truncated_client_hello_hash)


@dataclass(frozen=True)
class TrafficKeys:
    """The write key and IV of one direction and epoch (section 7.3)."""

    key: bytes
    iv: bytes


def traffic_keys(hash_name: str, secret: bytes, key_length: int, iv_length: int = 12) -> TrafficKeys:
    """[sender]_write_key = HKDF-Expand-Label(Secret, "key", "", key_length), and "iv" likewise."""
    return TrafficKeys(
        hkdf_expand_label(hash_name, secret, "key", b"", key_length),
        hkdf_expand_label(hash_name, secret, "iv", b"", iv_length),
    )


def resumption_psk(hash_name: str, resumption_master: bytes, ticket_nonce: bytes) -> bytes:
    """A ticket's PSK: HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length)."""
    return hkdf_expand_label(hash_name, resumption_master, "resumption", ticket_nonce, hash_length(hash_name))


def exporter(hash_name: str, secret: bytes, label: str | bytes, context: bytes, length: int) -> bytes:
    """TLS-Exporter(label, context_value, key_length) (section 7.5).

    ``HKDF-Expand-Label(Derive-Secret(Secret, label, ""), "exporter", Hash(context_value), key_length)``,
    with ``secret`` the exporter_master_secret (or the early one).  RFC 8446 treats no context and an
    empty context alike.
    """
    inner = derive_secret(hash_name, secret, label)
    return hkdf_expand_label(hash_name, inner, "exporter", transcript_hash(hash_name, [context]), length)


# -- one connection's ladder, every step kept ---------------------------------------------------------


@dataclass(frozen=True)
class ScheduleStep:
    """One value of the key schedule: its name, how it was made and what went in, for a lesson's diagram."""

    name: str
    operation: str  # "HKDF-Extract", "Derive-Secret", "HKDF-Expand-Label"
    inputs: tuple[tuple[str, bytes], ...]
    value: bytes


@dataclass
class KeySchedule13:
    """The key schedule of one connection, walked rung by rung as the handshake gives its inputs.

    Create it with the suite's hash and the PSK (None for a full handshake); then call
    :meth:`handshake` with the (EC)DHE shared secret and the ClientHello..ServerHello hash,
    :meth:`application` with the hash up to the server's Finished, :meth:`resumption` with the hash up to
    the client's.  Each returns the secrets it made and all are in :attr:`steps`.

    ``expand_label`` and ``derive`` are the two functions every rung goes through (HKDF-Expand-Label, and
    Derive-Secret taking the transcript *hash*); the cores pass a learner's from
    :class:`~handshake_lib.tls.stages13.Stages13`, so lesson 10's exercise carries a real handshake.
    """

    hash_name: str
    psk: bytes | None = None
    external_psk: bool = False
    steps: list[ScheduleStep] = field(default_factory=list)
    early_secret: bytes = b""
    handshake_secret: bytes = b""
    master_secret: bytes = b""
    expand_label: Callable[[str, bytes, str | bytes, bytes, int], bytes] = field(
        default=hkdf_expand_label, repr=False, compare=False
    )
    derive: Callable[[str, bytes, str | bytes, bytes], bytes] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        size = hash_length(self.hash_name)
        self.early_secret = early_secret(self.hash_name, self.psk)
        self._step("early_secret", "HKDF-Extract", [("salt", b""), ("ikm", self.psk or bytes(size))], self.early_secret)

    def _step(self, name: str, operation: str, inputs: Iterable[tuple[str, bytes]], value: bytes) -> bytes:
        self.steps.append(ScheduleStep(name, operation, tuple(inputs), value))
        return value

    def _derive(self, secret: bytes, label: str, transcript: bytes | None = None) -> bytes:
        """Derive-Secret through this schedule's functions (the empty transcript's hash when none is given)."""
        context = transcript if transcript is not None else transcript_hash(self.hash_name, [])
        if self.derive is not None:
            value = self.derive(self.hash_name, secret, label, context)
        else:
            value = self.expand_label(self.hash_name, secret, label, context, self.hash_length)
        return _checked(value, self.hash_length, f"Derive-Secret({label!r})")

    def value(self, name: str) -> bytes:
        """The last value computed under ``name`` (``"client_handshake_traffic_secret"``); KeyError if none."""
        for step in reversed(self.steps):
            if step.name == name:
                return step.value
        raise KeyError(name)

    @property
    def hash_length(self) -> int:
        return hash_length(self.hash_name)

    def finished_verify_data(self, base_key: bytes, transcript: bytes) -> bytes:
        """HMAC(finished_key, transcript), the finished key from ``base_key`` through ``expand_label`` (4.4.4)."""
        key = _checked(
            self.expand_label(self.hash_name, base_key, "finished", b"", self.hash_length), self.hash_length,
            "HKDF-Expand-Label('finished')",
        )  # fmt: skip
        return _hmac(self.hash_name, key, transcript)

    def binder_key(self) -> bytes:
        label = "ext binder" if self.external_psk else "res binder"
        value = self._derive(self.early_secret, label)
        return self._step(
            "binder_key", "Derive-Secret", [("secret", self.early_secret), ("label", label.encode())], value
        )

    def psk_binder(self, truncated_client_hello_hash: bytes) -> bytes:
        value = self.finished_verify_data(self.binder_key(), truncated_client_hello_hash)
        return self._step("psk_binder", "HMAC", [("transcript", truncated_client_hello_hash)], value)

    def early(self, client_hello_hash: bytes) -> tuple[bytes, bytes]:
        """(client_early_traffic_secret, early_exporter_master_secret) for 0-RTT."""
        inputs = [("secret", self.early_secret), ("transcript", client_hello_hash)]
        client = self._derive(self.early_secret, "c e traffic", client_hello_hash)
        exporter_secret = self._derive(self.early_secret, "e exp master", client_hello_hash)
        self._step("client_early_traffic_secret", "Derive-Secret", inputs, client)
        self._step("early_exporter_master_secret", "Derive-Secret", inputs, exporter_secret)
        return client, exporter_secret

    def handshake(self, shared_secret: bytes | None, hello_hash: bytes) -> tuple[bytes, bytes]:
        """(client, server) handshake traffic secrets, after extracting the handshake secret."""
        derived = self._derive(self.early_secret, "derived")
        self._step("derived_for_handshake", "Derive-Secret", [("secret", self.early_secret)], derived)
        ikm = shared_secret if shared_secret is not None else bytes(self.hash_length)
        self.handshake_secret = hkdf_extract(self.hash_name, derived, ikm)
        self._step("handshake_secret", "HKDF-Extract", [("salt", derived), ("ikm", ikm)], self.handshake_secret)
        inputs = [("secret", self.handshake_secret), ("transcript", hello_hash)]
        client = self._derive(self.handshake_secret, "c hs traffic", hello_hash)
        server = self._derive(self.handshake_secret, "s hs traffic", hello_hash)
        self._step("client_handshake_traffic_secret", "Derive-Secret", inputs, client)
        self._step("server_handshake_traffic_secret", "Derive-Secret", inputs, server)
        return client, server

    def application(self, server_finished_hash: bytes) -> tuple[bytes, bytes, bytes]:
        """(client, server) application traffic secrets _0 and the exporter master secret."""
        if not self.handshake_secret:
            raise ValueError("the handshake secret comes first: call handshake()")
        derived = self._derive(self.handshake_secret, "derived")
        self._step("derived_for_master", "Derive-Secret", [("secret", self.handshake_secret)], derived)
        self.master_secret = hkdf_extract(self.hash_name, derived, bytes(self.hash_length))
        self._step(
            "master_secret", "HKDF-Extract", [("salt", derived), ("ikm", bytes(self.hash_length))], self.master_secret
        )
        inputs = [("secret", self.master_secret), ("transcript", server_finished_hash)]
        client = self._derive(self.master_secret, "c ap traffic", server_finished_hash)
        server = self._derive(self.master_secret, "s ap traffic", server_finished_hash)
        exporter_secret = self._derive(self.master_secret, "exp master", server_finished_hash)
        self._step("client_application_traffic_secret_0", "Derive-Secret", inputs, client)
        self._step("server_application_traffic_secret_0", "Derive-Secret", inputs, server)
        self._step("exporter_master_secret", "Derive-Secret", inputs, exporter_secret)
        return client, server, exporter_secret

    def resumption(self, client_finished_hash: bytes) -> bytes:
        """The resumption master secret, from which each ticket's PSK comes."""
        if not self.master_secret:
            raise ValueError("the master secret comes first: call application()")
        value = self._derive(self.master_secret, "res master", client_finished_hash)
        inputs = [("secret", self.master_secret), ("transcript", client_finished_hash)]
        return self._step("resumption_master_secret", "Derive-Secret", inputs, value)

    def next_application_secret(self, secret: bytes) -> bytes:
        """KeyUpdate's next generation (7.2), through ``expand_label``."""
        value = self.expand_label(self.hash_name, secret, "traffic upd", b"", self.hash_length)
        return _checked(value, self.hash_length, "HKDF-Expand-Label('traffic upd')")

    def resumption_psk(self, ticket_nonce: bytes) -> bytes:
        """A ticket's PSK from the resumption master secret and its nonce (4.6.1), through ``expand_label``."""
        value = self.expand_label(
            self.hash_name, self.value("resumption_master_secret"), "resumption", ticket_nonce, self.hash_length
        )
        return _checked(value, self.hash_length, "HKDF-Expand-Label('resumption')")


def _checked(value: object, length: int, what: str) -> bytes:
    """A stage's result must be ``length`` bytes; a learner's function that returns anything else is named."""
    if not isinstance(value, bytes | bytearray) or len(value) != length:
        raise InternalError(f"{what} returned {value!r:.40}, not {length} bytes")
    return bytes(value)
