"""TLS 1.3 handshake messages (RFC 8446 section 4), beside the TLS 1.2 ones of :mod:`.messages`.

Theory of operation
-------------------
TLS 1.3 keeps the handshake header (``msg_type``, 3-byte length) and four message formats of TLS 1.2:
ClientHello and ServerHello (the same structs: what changed lives in their extensions, and a
HelloRetryRequest is a ServerHello whose random is :data:`~.messages.HELLO_RETRY_REQUEST_RANDOM`),
CertificateVerify (``algorithm`` then ``signature``: only what is signed changed, see
:func:`certificate_verify_content`) and Finished (``verify_data``, now as long as the suite's hash).
Those are reused from :mod:`.messages`.  The rest change shape or are new, and live here:

* :class:`EncryptedExtensions`: the server's extensions that need no key exchange, the first message
  under the handshake keys;
* :class:`CertificateRequest13`: a request context and extensions (signature_algorithms required);
* :class:`Certificate13`: a request context, then entries of ``cert_data`` *and its own extensions*
  (a stapled OCSP response, an SCT) instead of TLS 1.2's bare list;
* :class:`NewSessionTicket13`: lifetime, ``ticket_age_add``, nonce, ticket and extensions, sent after
  the handshake; :class:`KeyUpdate` (``update_requested`` or not) and :class:`EndOfEarlyData` (empty).

Why a module of its own: the bytes of a message do not say which version they belong to (a
Certificate is type 11 in both), so a decoder needs the version's table of types, and which types
exist at all differs (ServerKeyExchange, ServerHelloDone, ClientKeyExchange, HelloRequest and
CertificateStatus are ``unexpected_message`` in TLS 1.3).  :func:`decode_handshake13` is that table's
decoder, as :func:`~.messages.decode_handshake` is TLS 1.2's; extensions stay one module
(:mod:`.extensions`), with one context per message that carries them.

Checks that need more than one message are functions here, for the state machine to call:
:func:`check_key_shares` (a ClientHello's key shares against its supported_groups) and
:func:`check_key_share_selection` (a ServerHello's or HelloRetryRequest's group against the
ClientHello).  :func:`truncated_client_hello` gives the bytes PSK binders are computed over.

Errors, as for TLS 1.2: malformed bytes and vectors outside their bounds ``DecodeError``; a value the
RFC forbids (a KeyUpdate other than 0 or 1, an extension in a message where RFC 8446 section 4.2 does
not allow it, a key share in a group that was not offered) ``IllegalParameter``; a CertificateRequest
without signature_algorithms ``MissingExtension``; a message type TLS 1.3 does not have
``UnexpectedMessage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..errors import IllegalParameter, MissingExtension, UnexpectedMessage
from ..wire import Reader, Span, Writer
from .constants import ExtensionType, HandshakeType, KeyUpdateRequest, NamedGroup, name_of
from .extensions import (
    KEY_SHARE_SIZES,
    Extension,
    KeyShareClientHelloExtension,
    KeyShareHelloRetryRequestExtension,
    KeyShareServerHelloExtension,
    PreSharedKeyClientHelloExtension,
    SupportedGroupsExtension,
    decode_extensions,
    encode_extensions,
    find_extension,
    is_grease,
)
from .messages import (
    HELLO_RETRY_REQUEST_RANDOM,
    CertificateVerify,
    ClientHello,
    Finished,
    HandshakeMessage,
    ServerHello,
    _describe_certificate,
)

__all__ = [
    "MAX_TICKET_LIFETIME",
    "Handshake13Message",
    "EncryptedExtensions",
    "CertificateRequest13",
    "CertificateEntry",
    "Certificate13",
    "NewSessionTicket13",
    "KeyUpdate",
    "EndOfEarlyData",
    "HANDSHAKE_MESSAGES_13",
    "decode_handshake13",
    "is_hello_retry_request",
    "certificate_verify_content",
    "truncated_client_hello",
    "check_key_shares",
    "check_key_share_selection",
]

# RFC 8446 section 4.6.1: "Servers MUST NOT use any value greater than 604800 seconds (7 days)".
MAX_TICKET_LIFETIME = 604_800


class Handshake13Message(HandshakeMessage):
    """Base of the messages whose TLS 1.3 body differs from TLS 1.2's: ``decode`` uses the 1.3 table."""

    @classmethod
    def decode(cls, r: Reader) -> HandshakeMessage:
        return _decode_handshake13(r, expected=cls)


@dataclass
class EncryptedExtensions(Handshake13Message):
    """EncryptedExtensions (RFC 8446 section 4.3.1): the server's answers that need no key exchange.

    ALPN, server_name (empty: "I used it"), supported_groups (my preference, for next time), early_data
    (0-RTT accepted): what TLS 1.2 put in its ServerHello, now encrypted under the handshake keys.
    """

    msg_type: ClassVar[int] = HandshakeType.encrypted_extensions
    extensions: list[Extension] = field(default_factory=list)

    @classmethod
    def decode_body(cls, r: Reader) -> EncryptedExtensions:
        return cls(decode_extensions(r, "encrypted_extensions"))

    def encode_body(self, w: Writer) -> None:
        encode_extensions(w, self.extensions, "encrypted_extensions")

    def extension(self, extension_type: int) -> Extension | None:
        return find_extension(self.extensions, extension_type)


@dataclass
class CertificateRequest13(Handshake13Message):
    """CertificateRequest in TLS 1.3 (RFC 8446 section 4.3.2): a context, then extensions.

    ``certificate_request_context`` is empty during the handshake and unique per request after it
    (post-handshake authentication), where the client's Certificate echoes it.  What TLS 1.2 sent as
    fields (accepted schemes, CA names) are extensions now; ``signature_algorithms`` MUST be one.
    """

    msg_type: ClassVar[int] = HandshakeType.certificate_request
    table_name: ClassVar[str] = "CertificateRequest"  # as the state tables name it
    certificate_request_context: bytes = b""
    extensions: list[Extension] = field(default_factory=list)

    @classmethod
    def decode_body(cls, r: Reader) -> CertificateRequest13:
        context = r.vector(
            1,
            "certificate_request_context",
            lambda v: "empty: during the handshake" if not v else "echoed by the client",
        )
        extensions = decode_extensions(r, "certificate_request", min_length=2)
        if find_extension(extensions, ExtensionType.signature_algorithms) is None:
            raise MissingExtension("a CertificateRequest without signature_algorithms (RFC 8446 section 4.3.2)")
        return cls(context, extensions)

    def encode_body(self, w: Writer) -> None:
        w.vector(1, self.certificate_request_context)
        encode_extensions(w, self.extensions, "certificate_request")

    def extension(self, extension_type: int) -> Extension | None:
        return find_extension(self.extensions, extension_type)


@dataclass
class CertificateEntry:
    """One certificate of a TLS 1.3 chain and its own extensions (an OCSP response, SCTs)."""

    cert_data: bytes
    extensions: list[Extension] = field(default_factory=list)


@dataclass
class Certificate13(Handshake13Message):
    """Certificate in TLS 1.3 (RFC 8446 section 4.4.2): a request context, then the chain, leaf first.

    Each entry carries its own extensions, which is how TLS 1.3 staples OCSP (no CertificateStatus
    message).  An empty list is legal on the wire (a client without a certificate); whether it is
    acceptable is the state machine's question (a server's must not be empty: ``decode_error``).
    """

    msg_type: ClassVar[int] = HandshakeType.certificate
    table_name: ClassVar[str] = "Certificate"  # as the state tables name it
    certificate_request_context: bytes = b""
    entries: list[CertificateEntry] = field(default_factory=list)

    @classmethod
    def decode_body(cls, r: Reader) -> Certificate13:
        context = r.vector(
            1,
            "certificate_request_context",
            lambda v: "empty: in the handshake" if not v else "the CertificateRequest's context",
        )
        entries: list[CertificateEntry] = []
        with r.vector_reader(3, "certificate_list", "certificate chain, leaf first") as chain:
            while not chain.at_end:
                with chain.group("CertificateEntry"):
                    der = chain.vector(3, "cert_data", _describe_certificate, min_length=1)
                    extensions = decode_extensions(chain, "certificate")
                entries.append(CertificateEntry(der, extensions))
        return cls(context, entries)

    def encode_body(self, w: Writer) -> None:
        w.vector(1, self.certificate_request_context)
        with w.vector_writer(3) as chain:
            for entry in self.entries:
                chain.vector(3, entry.cert_data)
                encode_extensions(chain, entry.extensions, "certificate")

    @property
    def certificates(self) -> list[bytes]:
        """The DER chain, leaf first, as TLS 1.2's :class:`~.messages.Certificate` gives it."""
        return [entry.cert_data for entry in self.entries]


@dataclass
class NewSessionTicket13(Handshake13Message):
    """NewSessionTicket in TLS 1.3 (RFC 8446 section 4.6.1), sent by the server after the handshake.

    The PSK for resumption is derived from the resumption master secret and ``ticket_nonce``; the
    client reports the ticket's age plus ``ticket_age_add`` (mod 2^32) when it uses it.  Extensions:
    ``early_data`` with ``max_early_data_size`` when the ticket allows 0-RTT.
    """

    msg_type: ClassVar[int] = HandshakeType.new_session_ticket
    table_name: ClassVar[str] = "NewSessionTicket"  # as the state tables name it
    ticket_lifetime: int = 0
    ticket_age_add: int = 0
    ticket_nonce: bytes = b""
    ticket: bytes = b""
    extensions: list[Extension] = field(default_factory=list)

    @classmethod
    def decode_body(cls, r: Reader) -> NewSessionTicket13:
        lifetime = r.u32("ticket_lifetime", _describe_lifetime)
        age_add = r.u32("ticket_age_add", "added to the ticket's age (ms) to hide it, mod 2^32")
        nonce = r.vector(1, "ticket_nonce", "makes this ticket's PSK differ from the others'")
        ticket = r.vector(2, "ticket", "opaque to the client: the server's (encrypted) session state", min_length=1)
        extensions = decode_extensions(r, "new_session_ticket")
        return cls(lifetime, age_add, nonce, ticket, extensions)

    def encode_body(self, w: Writer) -> None:
        w.u32(self.ticket_lifetime).u32(self.ticket_age_add).vector(1, self.ticket_nonce).vector(2, self.ticket)
        encode_extensions(w, self.extensions, "new_session_ticket")

    def extension(self, extension_type: int) -> Extension | None:
        return find_extension(self.extensions, extension_type)


def _describe_lifetime(seconds: int) -> str:
    if seconds > MAX_TICKET_LIFETIME:
        return f"{seconds} seconds: over RFC 8446's 7-day limit, to be capped"
    return f"{seconds} seconds" if seconds else "0: do not resume with this ticket"


@dataclass
class KeyUpdate(Handshake13Message):
    """KeyUpdate (RFC 8446 section 4.6.3): "my next record uses my next traffic secret".

    With ``update_requested`` the peer must answer with a KeyUpdate of its own, so both directions
    move on; TLS 1.3's replacement for renegotiating just to get fresh keys.
    """

    msg_type: ClassVar[int] = HandshakeType.key_update
    request_update: int = KeyUpdateRequest.update_not_requested

    @classmethod
    def decode_body(cls, r: Reader) -> KeyUpdate:
        offset = r.offset
        value = r.u8("request_update", lambda v: name_of(KeyUpdateRequest, v))
        if value not in (KeyUpdateRequest.update_not_requested, KeyUpdateRequest.update_requested):
            # "If an implementation receives any other value, it MUST terminate the connection with an
            # "illegal_parameter" alert."
            raise IllegalParameter(f"KeyUpdate request_update {value} (offset {offset}): only 0 and 1 are defined")
        return cls(value)

    def encode_body(self, w: Writer) -> None:
        w.u8(self.request_update)


@dataclass
class EndOfEarlyData(Handshake13Message):
    """EndOfEarlyData (RFC 8446 section 4.5): empty; the client's 0-RTT data ends here."""

    msg_type: ClassVar[int] = HandshakeType.end_of_early_data

    @classmethod
    def decode_body(cls, r: Reader) -> EndOfEarlyData:
        return cls()  # the caller's sub-reader rejects a non-empty body

    def encode_body(self, w: Writer) -> None:
        return None


HANDSHAKE_MESSAGES_13: dict[int, type[HandshakeMessage]] = {
    HandshakeType.client_hello: ClientHello,
    HandshakeType.server_hello: ServerHello,
    HandshakeType.new_session_ticket: NewSessionTicket13,
    HandshakeType.end_of_early_data: EndOfEarlyData,
    HandshakeType.encrypted_extensions: EncryptedExtensions,
    HandshakeType.certificate: Certificate13,
    HandshakeType.certificate_request: CertificateRequest13,
    HandshakeType.certificate_verify: CertificateVerify,
    HandshakeType.finished: Finished,
    HandshakeType.key_update: KeyUpdate,
}


def _decode_handshake13(
    r: Reader, *, expected: type[HandshakeMessage] | None = None, hash_length: int | None = None
) -> HandshakeMessage:
    peek = r.data[r.position] if r.remaining else -1
    group_name = HandshakeType(peek).name if peek in HANDSHAKE_MESSAGES_13 else "handshake"
    with r.group(group_name, "TLS 1.3 handshake message") as hs:
        type_offset = hs.offset
        msg_type = hs.u8("msg_type", lambda v: name_of(HandshakeType, v))
        cls = HANDSHAKE_MESSAGES_13.get(msg_type)
        if cls is None:
            # Not a TLS 1.3 message: undefined, TLS 1.2 only (ServerKeyExchange...), or message_hash,
            # which exists only inside the transcript (RFC 8446 section 4.4.1), never on the wire.
            raise UnexpectedMessage(
                f"handshake message {name_of(HandshakeType, msg_type)} does not exist in TLS 1.3 (offset {type_offset})"
            )
        if expected is not None and cls is not expected:
            raise UnexpectedMessage(
                f"expected {name_of(HandshakeType, expected.msg_type)}, got {name_of(HandshakeType, msg_type)}"
            )
        length = hs.u24("length", "body length in bytes")
        with hs.sub_reader(length, "body", name_of(HandshakeType, msg_type) if hs.annotating else "") as body:
            if cls is Finished:
                message: HandshakeMessage = Finished.decode_body(body, hash_length, tls13=True)
            else:
                message = cls.decode_body(body)
    return message


def decode_handshake13(
    data: bytes, *, hash_length: int | None = None, annotate: bool = True
) -> tuple[HandshakeMessage, list[Span]]:
    """Decode one complete TLS 1.3 handshake message (header included) and return it with its spans.

    ``hash_length`` is the cipher suite's hash size (32 for SHA-256 suites, 48 for SHA-384), which a
    Finished's verify_data must have; None accepts any length (a hex view without the suite).
    """
    r = Reader(data, annotate=annotate)
    message = _decode_handshake13(r, hash_length=hash_length)
    r.expect_end("the handshake message")
    return message, r.spans


def is_hello_retry_request(message: HandshakeMessage) -> bool:
    """Whether ``message`` is a HelloRetryRequest: a ServerHello whose random is RFC 8446's fixed value."""
    return isinstance(message, ServerHello) and message.random == HELLO_RETRY_REQUEST_RANDOM


# -- what is signed, what binders cover -----------------------------------------------------------
_CERTIFICATE_VERIFY_CONTEXTS = {
    "server": b"TLS 1.3, server CertificateVerify",
    "client": b"TLS 1.3, client CertificateVerify",
}


def certificate_verify_content(role: Literal["server", "client"], transcript_hash: bytes) -> bytes:
    """What a TLS 1.3 CertificateVerify signs (RFC 8446 section 4.4.3).

    64 spaces, a context string naming the signer's role, a zero byte, then the transcript hash up to
    (not including) the CertificateVerify.  The spaces make the content's start differ from any TLS 1.2
    signed data (which begins with the client random), so a 1.2 signature cannot be replayed as 1.3;
    the role string keeps a server's signature from passing as a client's.
    """
    return b"\x20" * 64 + _CERTIFICATE_VERIFY_CONTEXTS[role] + b"\x00" + transcript_hash


def truncated_client_hello(hello: ClientHello) -> bytes:
    """The ClientHello bytes PSK binders are computed over (RFC 8446 section 4.2.11.2).

    The whole message, header included (with its full length), up to and not including the
    ``binders`` list of the pre_shared_key extension, which must be the last extension.  To build a
    ClientHello, put binders of the right lengths in (zeros), take this, compute the binders over it,
    and replace them: the length fields do not change.
    """
    psk = hello.extensions[-1] if hello.extensions else None
    if not isinstance(psk, PreSharedKeyClientHelloExtension):
        raise IllegalParameter("a ClientHello whose last extension is not pre_shared_key has no binders")
    encoded = hello.to_bytes()
    return encoded[: len(encoded) - psk.binders_size]


# -- checks across messages ----------------------------------------------------------------------
def _check_size(group: int, data: bytes, side: int, who: str) -> None:
    sizes = KEY_SHARE_SIZES.get(group)
    if sizes is not None and len(data) != sizes[side]:
        # OpenSSL answers a malformed point with illegal_parameter (SSL_R_BAD_ECPOINT / BAD_KEY_SHARE).
        raise IllegalParameter(
            f"{who} key share for {name_of(NamedGroup, group)} is {len(data)} bytes, not {sizes[side]}"
        )


def check_key_shares(hello: ClientHello) -> None:
    """A server's checks of a ClientHello's key_share (RFC 8446 sections 4.2.8 and 9.2).

    Each share's group must be in supported_groups and appear once (``illegal_parameter``), and a
    share in a group of known size must have that size; key_share without supported_groups is
    ``missing_extension``.  Shares in groups we do not know (GREASE, a new hybrid) pass: a server picks
    among the groups it supports and ignores the rest.
    """
    shares = hello.extension(ExtensionType.key_share)
    if not isinstance(shares, KeyShareClientHelloExtension):
        return
    groups = hello.extension(ExtensionType.supported_groups)
    if not isinstance(groups, SupportedGroupsExtension):
        raise MissingExtension("a ClientHello with key_share but no supported_groups (RFC 8446 section 9.2)")
    seen: set[int] = set()
    for share in shares.client_shares:
        if share.group in seen:
            raise IllegalParameter(f"two key shares for {name_of(NamedGroup, share.group)} (RFC 8446 section 4.2.8)")
        seen.add(share.group)
        if share.group not in groups.groups:
            raise IllegalParameter(
                f"a key share for {name_of(NamedGroup, share.group)}, which supported_groups does not offer"
            )
        if not is_grease(share.group):
            _check_size(share.group, share.key_exchange, 0, "the client's")


def check_key_share_selection(hello: ClientHello, answer: ServerHello) -> None:
    """A client's checks of the group a ServerHello or HelloRetryRequest chose (RFC 8446 section 4.2.8).

    A HelloRetryRequest's group must be one the client supports but sent no share for; a ServerHello's
    share must be in a group the client sent a share for, and of its size.  Otherwise
    ``illegal_parameter``.  (That a ServerHello after a HelloRetryRequest keeps its group is the state
    machine's check: it holds both.)
    """
    offered = hello.extension(ExtensionType.key_share)
    shared = (
        {share.group for share in offered.client_shares} if isinstance(offered, KeyShareClientHelloExtension) else set()
    )
    chosen = answer.extension(ExtensionType.key_share)
    if isinstance(chosen, KeyShareHelloRetryRequestExtension):
        groups = hello.extension(ExtensionType.supported_groups)
        supported = groups.groups if isinstance(groups, SupportedGroupsExtension) else []
        if chosen.selected_group not in supported:
            raise IllegalParameter(
                f"HelloRetryRequest asks for {name_of(NamedGroup, chosen.selected_group)}, which we did not offer"
            )
        if chosen.selected_group in shared:
            raise IllegalParameter(
                f"HelloRetryRequest asks for {name_of(NamedGroup, chosen.selected_group)}, for which we sent a share"
            )
    elif isinstance(chosen, KeyShareServerHelloExtension):
        group = chosen.server_share.group
        if group not in shared:
            raise IllegalParameter(f"the server's key share is for {name_of(NamedGroup, group)}, which we did not send")
        _check_size(group, chosen.server_share.key_exchange, 1, "the server's")
