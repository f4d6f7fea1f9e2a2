"""TLS hello extensions, each a dataclass whose ``decode_data`` and ``encode_data`` mirror each other.

Theory of operation
-------------------
An extension on the wire is ``extension_type`` (uint16) then ``extension_data`` (a 2-byte vector),
and a hello carries a 2-byte vector of them (RFC 5246 section 7.4.1.4).  What ``extension_data``
holds depends on the type *and* on the message: ``supported_versions`` is a list of versions in a
ClientHello but a single version in a ServerHello (RFC 8446 section 4.2.1), and ``server_name`` is a
list of names from the client but empty from the server (RFC 6066 section 3).  So decoding takes a
``context`` (``"client_hello"`` or ``"server_hello"``) and looks the class up in that context's table.

Extensions this module does not model, and modelled ones met in a message where they have no defined
meaning, are kept as :class:`UnknownExtension` with their raw bytes, in their original order, so
encoding a decoded hello gives back exactly the bytes that were received.  That is also how a real
server treats them: it ignores what it does not understand (RFC 5246 section 7.4.1.4).

Strictness, and the alert each check maps to:

* a length that does not add up, a list with an odd number of bytes for 2-byte items, an empty list
  where the RFC's vector has a minimum, trailing bytes: :class:`~handshake_lib.errors.DecodeError`
  (``decode_error``);
* the same extension type twice in one block: RFC 5246 says it MUST NOT happen but names no alert;
  RFC 8446 section 4.2 keeps the rule, and OpenSSL 3 answers ``illegal_parameter`` (checked live in
  ``tests/test_tls_messages.py``), so we raise :class:`~handshake_lib.errors.IllegalParameter`;
* two server names of the same type (RFC 6066 section 3 forbids it): ``DecodeError``, as OpenSSL.

TLS 1.3 (RFC 8446 section 4.2) adds messages that carry extensions besides the hellos, so a context
is also ``"hello_retry_request"``, ``"encrypted_extensions"``, ``"certificate_request"``,
``"certificate"`` (the extensions of one CertificateEntry) or ``"new_session_ticket"``; the same type
can have a different body in each (``key_share`` is a list of shares in a ClientHello, one share in a
ServerHello and a bare group in a HelloRetryRequest).  RFC 8446's table of which extension may appear
in which message is :data:`ALLOWED_IN`, and it is enforced for those contexts: an extension we
recognise in a message where it is not specified is ``illegal_parameter`` (RFC 8446 section 4.2, as
OpenSSL answers).  The hellos stay lenient, because a TLS 1.2 ServerHello legitimately carries TLS
1.2 extensions: :func:`check_extensions_allowed` applies the table to a ServerHello once its
``supported_versions`` says 1.3.  An extension *type we do not know* (a GREASE value, a new RFC) is
never an error: it is kept as :class:`UnknownExtension`.  A response to an extension the other side
never offered is ``unsupported_extension``: only the receiver knows what it offered, so that check is
:func:`check_solicited`, called with the list it sent.  In a ClientHello, ``pre_shared_key`` must be
the last extension (its binders are computed over everything before them): ``illegal_parameter``.

Checks that depend on more than one extension (RFC 8422 section 5.1.2: ``ec_point_formats`` must
contain ``uncompressed`` *if* the client also offers elliptic curves) belong to the negotiation, not
to the decoder, which would otherwise reject hellos a real server accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..errors import DecodeError, IllegalParameter, UnsupportedExtension
from ..wire import Reader, Writer
from .constants import (
    CertificateStatusType,
    ECPointFormat,
    ExtensionType,
    NamedGroup,
    ProtocolVersion,
    PskKeyExchangeMode,
    SignatureScheme,
    name_of,
)

Context = Literal[
    "client_hello",
    "server_hello",
    "hello_retry_request",
    "encrypted_extensions",
    "certificate_request",
    "certificate",
    "new_session_ticket",
]

__all__ = [
    "Context",
    "Extension",
    "ServerName",
    "ServerNameExtension",
    "SupportedGroupsExtension",
    "ECPointFormatsExtension",
    "SignatureAlgorithmsExtension",
    "RenegotiationInfoExtension",
    "ExtendedMasterSecretExtension",
    "EncryptThenMacExtension",
    "SessionTicketExtension",
    "StatusRequestExtension",
    "SupportedVersionsExtension",
    "SelectedVersionExtension",
    "KeyShareEntry",
    "KeyShareClientHelloExtension",
    "KeyShareServerHelloExtension",
    "KeyShareHelloRetryRequestExtension",
    "PskKeyExchangeModesExtension",
    "PskIdentity",
    "PreSharedKeyClientHelloExtension",
    "PreSharedKeyServerHelloExtension",
    "CookieExtension",
    "SignatureAlgorithmsCertExtension",
    "EarlyDataExtension",
    "EarlyDataTicketExtension",
    "PostHandshakeAuthExtension",
    "UnknownExtension",
    "CLIENT_HELLO_EXTENSIONS",
    "SERVER_HELLO_EXTENSIONS",
    "HELLO_RETRY_REQUEST_EXTENSIONS",
    "ENCRYPTED_EXTENSIONS_EXTENSIONS",
    "CERTIFICATE_REQUEST_EXTENSIONS",
    "CERTIFICATE_ENTRY_EXTENSIONS",
    "NEW_SESSION_TICKET_EXTENSIONS",
    "ALLOWED_IN",
    "is_grease",
    "check_extensions_allowed",
    "check_solicited",
    "decode_extensions",
    "encode_extensions",
    "find_extension",
    "version_name",
]

# Reserved "GREASE" values (RFC 8701) that browsers sprinkle into lists to keep servers tolerant.
_GREASE = {0x0A0A + 0x1010 * i for i in range(16)}


def is_grease(value: int) -> bool:
    """Whether ``value`` is one of RFC 8701's 16 reserved GREASE code points (0x0a0a, 0x1a1a, ... 0xfafa)."""
    return value in _GREASE


def version_name(value: int) -> str:
    if value in _GREASE:
        return f"GREASE 0x{value:04x} (RFC 8701, ignore)"
    return name_of(ProtocolVersion, value)


def _named(enum: type) -> object:
    def explain(value: int) -> str:
        if value in _GREASE:
            return f"GREASE 0x{value:04x} (RFC 8701, ignore)"
        return name_of(enum, value)

    return explain


class Extension:
    """Base of the typed extensions: ``extension_type`` names it, the data codecs mirror each other."""

    extension_type: ClassVar[int]

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> Extension:
        raise NotImplementedError

    def encode_data(self, w: Writer, context: Context) -> None:
        raise NotImplementedError


def _decode_u16_list(r: Reader, field_name: str, item: str, meaning: object) -> list[int]:
    """A ``uint16 items<2..2^16-2>`` list: 2-byte length, an even number of bytes, at least one item."""
    values: list[int] = []
    with r.vector_reader(2, field_name, min_length=2) as items:
        if items.remaining % 2:
            raise DecodeError(f"{field_name} has an odd number of bytes", field=field_name, offset=items.offset)
        while not items.at_end:
            values.append(items.u16(item, meaning))  # type: ignore[arg-type]
    return values


def _encode_u16_list(w: Writer, values: Sequence[int]) -> None:
    with w.vector_writer(2) as items:
        for value in values:
            items.u16(value)


@dataclass
class ServerName:
    """One entry of a ServerNameList: ``name_type`` 0 is ``host_name`` (the only type ever defined)."""

    name_type: int
    name: bytes


@dataclass
class ServerNameExtension(Extension):
    """``server_name`` (SNI, RFC 6066 section 3): the host the client wants; empty from a server."""

    extension_type: ClassVar[int] = ExtensionType.server_name
    server_names: list[ServerName] = field(default_factory=list)

    @classmethod
    def for_host(cls, host_name: str) -> ServerNameExtension:
        return cls([ServerName(0, host_name.encode("ascii"))])

    @property
    def host_name(self) -> str | None:
        for entry in self.server_names:
            if entry.name_type == 0:
                return entry.name.decode("ascii", errors="replace")
        return None

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> ServerNameExtension:
        if context != "client_hello":
            # "the extension_data field of this extension SHALL be empty" (RFC 6066 section 3); in TLS 1.3
            # the server's answer travels in EncryptedExtensions (RFC 8446 section 4.2).
            r.expect_end(f"server_name in {context}, which must be empty")
            return cls([])
        entries: list[ServerName] = []
        with r.vector_reader(2, "server_name_list", min_length=1) as names:
            while not names.at_end:
                with names.group("server_name"):
                    name_type = names.u8("name_type", lambda v: "host_name" if v == 0 else f"unknown name type {v}")
                    name = names.vector(2, "name", lambda v: v.decode("ascii", errors="replace"), min_length=1)
                if any(entry.name_type == name_type for entry in entries):
                    # "The ServerNameList MUST NOT contain more than one name of the same name_type."
                    raise DecodeError(f"two server names of type {name_type}", field="server_name_list")
                entries.append(ServerName(name_type, name))
        return cls(entries)

    def encode_data(self, w: Writer, context: Context) -> None:
        if not self.server_names:
            return
        with w.vector_writer(2) as names:
            for entry in self.server_names:
                names.u8(entry.name_type).vector(2, entry.name)


@dataclass
class SupportedGroupsExtension(Extension):
    """``supported_groups`` (RFC 8422 section 5.1.1, RFC 7919): the key exchange groups the client can use."""

    extension_type: ClassVar[int] = ExtensionType.supported_groups
    groups: list[int] = field(default_factory=list)

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> SupportedGroupsExtension:
        return cls(_decode_u16_list(r, "named_group_list", "named_group", _named(NamedGroup)))

    def encode_data(self, w: Writer, context: Context) -> None:
        _encode_u16_list(w, self.groups)


@dataclass
class ECPointFormatsExtension(Extension):
    """``ec_point_formats`` (RFC 8422 section 5.1.2): in practice always just ``uncompressed``."""

    extension_type: ClassVar[int] = ExtensionType.ec_point_formats
    formats: list[int] = field(default_factory=lambda: [ECPointFormat.uncompressed])

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> ECPointFormatsExtension:
        formats: list[int] = []
        with r.vector_reader(1, "ec_point_format_list", min_length=1) as items:
            while not items.at_end:
                formats.append(items.u8("ec_point_format", _named(ECPointFormat)))  # type: ignore[arg-type]
        return cls(formats)

    def encode_data(self, w: Writer, context: Context) -> None:
        w.vector(1, bytes(self.formats))


@dataclass
class SignatureAlgorithmsExtension(Extension):
    """``signature_algorithms`` (RFC 5246 section 7.4.1.4.1, RFC 8446 section 4.2.3)."""

    extension_type: ClassVar[int] = ExtensionType.signature_algorithms
    schemes: list[int] = field(default_factory=list)

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> SignatureAlgorithmsExtension:
        return cls(_decode_u16_list(r, "supported_signature_algorithms", "signature_scheme", _named(SignatureScheme)))

    def encode_data(self, w: Writer, context: Context) -> None:
        _encode_u16_list(w, self.schemes)


@dataclass
class RenegotiationInfoExtension(Extension):
    """``renegotiation_info`` (RFC 5746): empty on a first handshake, Finished data on a renegotiation."""

    extension_type: ClassVar[int] = ExtensionType.renegotiation_info
    renegotiated_connection: bytes = b""

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> RenegotiationInfoExtension:
        data = r.vector(
            1,
            "renegotiated_connection",
            lambda v: "empty: a first handshake" if not v else "verify_data of the previous handshake",
        )
        return cls(data)

    def encode_data(self, w: Writer, context: Context) -> None:
        w.vector(1, self.renegotiated_connection)


@dataclass
class ExtendedMasterSecretExtension(Extension):
    """``extended_master_secret`` (RFC 7627): always empty; its presence changes the master secret."""

    extension_type: ClassVar[int] = ExtensionType.extended_master_secret

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> ExtendedMasterSecretExtension:
        r.expect_end("extended_master_secret, which must be empty")
        return cls()

    def encode_data(self, w: Writer, context: Context) -> None:
        return None


@dataclass
class EncryptThenMacExtension(Extension):
    """``encrypt_then_mac`` (RFC 7366): always empty; CBC records get their MAC over the ciphertext.

    The client offers it; the server echoes it only when it picked a CBC suite (RFC 7366 section 3:
    AEAD suites have no separate MAC to move), and from then on each protected record is
    ``encrypt(plaintext + padding)`` followed by ``HMAC(header + IV + ciphertext)``, which closes the
    padding-oracle attacks that MAC-then-encrypt invites.
    """

    extension_type: ClassVar[int] = ExtensionType.encrypt_then_mac

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> EncryptThenMacExtension:
        r.expect_end("encrypt_then_mac, which must be empty")
        return cls()

    def encode_data(self, w: Writer, context: Context) -> None:
        return None


@dataclass
class SessionTicketExtension(Extension):
    """``session_ticket`` (RFC 5077): a ticket to resume with, or empty to ask for one / to agree."""

    extension_type: ClassVar[int] = ExtensionType.session_ticket
    ticket: bytes = b""

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> SessionTicketExtension:
        if context == "server_hello":
            # RFC 5077 section 3.2: the server's extension is empty.
            r.expect_end("session_ticket in a ServerHello, which must be empty")
            return cls()
        return cls(r.rest("ticket", lambda v: "empty: please send me a ticket" if not v else "a ticket to resume"))

    def encode_data(self, w: Writer, context: Context) -> None:
        w.raw(self.ticket)


@dataclass
class StatusRequestExtension(Extension):
    """``status_request`` (RFC 6066 section 8): "staple an OCSP response to your certificate, please".

    From the client, a CertificateStatusRequest: ``status_type`` ocsp(1), then an OCSPStatusRequest of
    ``responder_id_list`` (DER ResponderIDs the client trusts; empty: the server knows its responder)
    and ``request_extensions`` (DER Extensions for the OCSP request, such as a nonce; usually empty).
    A status type other than ocsp keeps its bytes in ``request``: a server ignores what it does not
    know, as OpenSSL does.  From the server, empty: "I may send a CertificateStatus after Certificate".
    """

    extension_type: ClassVar[int] = ExtensionType.status_request
    status_type: int = CertificateStatusType.ocsp
    responder_id_list: list[bytes] = field(default_factory=list)
    request_extensions: bytes = b""
    request: bytes = b""  # the request of a status type other than ocsp, as it came

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> StatusRequestExtension:
        if context == "server_hello":
            # "the server MUST have included an extension of type status_request with empty extension_data".
            r.expect_end("status_request in a ServerHello, which must be empty")
            return cls()
        status_type = r.u8("status_type", _named(CertificateStatusType))
        if status_type != CertificateStatusType.ocsp:
            return cls(status_type, request=r.rest("request", "a status type we do not know: ignored"))
        responders: list[bytes] = []
        with r.vector_reader(2, "responder_id_list", "OCSP responders the client trusts (empty: any)") as ids:
            while not ids.at_end:
                responders.append(ids.vector(2, "ResponderID", "DER ResponderID (RFC 6960)", min_length=1))
        extensions = r.vector(
            2, "request_extensions", lambda v: "none" if not v else "DER Extensions for the OCSP request"
        )
        return cls(status_type, responders, extensions)

    def encode_data(self, w: Writer, context: Context) -> None:
        if context == "server_hello":
            return
        w.u8(self.status_type)
        if self.status_type != CertificateStatusType.ocsp:
            w.raw(self.request)
            return
        with w.vector_writer(2) as ids:
            for responder in self.responder_id_list:
                ids.vector(2, responder)
        w.vector(2, self.request_extensions)

    @property
    def asks_for_ocsp(self) -> bool:
        return self.status_type == CertificateStatusType.ocsp


@dataclass
class SupportedVersionsExtension(Extension):
    """``supported_versions`` in a ClientHello (RFC 8446 section 4.2.1): versions, most preferred first."""

    extension_type: ClassVar[int] = ExtensionType.supported_versions
    versions: list[int] = field(default_factory=list)

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> SupportedVersionsExtension:
        versions: list[int] = []
        with r.vector_reader(1, "versions", min_length=2, max_length=254) as items:
            if items.remaining % 2:
                raise DecodeError("versions has an odd number of bytes", field="versions", offset=items.offset)
            while not items.at_end:
                versions.append(items.u16("version", version_name))
        return cls(versions)

    def encode_data(self, w: Writer, context: Context) -> None:
        with w.vector_writer(1) as items:
            for version in self.versions:
                items.u16(version)


@dataclass
class SelectedVersionExtension(Extension):
    """``supported_versions`` in a ServerHello (RFC 8446 section 4.2.1): the one version chosen."""

    extension_type: ClassVar[int] = ExtensionType.supported_versions
    selected_version: int = ProtocolVersion.TLS1_3

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> SelectedVersionExtension:
        return cls(r.u16("selected_version", version_name))

    def encode_data(self, w: Writer, context: Context) -> None:
        w.u16(self.selected_version)


# -- TLS 1.3 (RFC 8446 section 4.2) ------------------------------------------------------------------
# The size of a key share for the groups whose sizes are fixed (RFC 8446 section 4.2.8.2, RFC 7919,
# draft-ietf-tls-ecdhe-mlkem): (client's, server's).  Used by messages13.check_key_shares.
KEY_SHARE_SIZES: dict[int, tuple[int, int]] = {
    NamedGroup.x25519: (32, 32),
    NamedGroup.x448: (56, 56),
    NamedGroup.secp256r1: (65, 65),  # uncompressed points only in TLS 1.3: 0x04 || X || Y
    NamedGroup.secp384r1: (97, 97),
    NamedGroup.secp521r1: (133, 133),
    NamedGroup.ffdhe2048: (256, 256),  # left-padded to the size of p (RFC 8446 section 4.2.8.1)
    NamedGroup.ffdhe3072: (384, 384),
    NamedGroup.ffdhe4096: (512, 512),
    NamedGroup.X25519MLKEM768: (1184 + 32, 1088 + 32),  # ML-KEM-768 encapsulation key / ciphertext, then X25519
    NamedGroup.SecP256r1MLKEM768: (65 + 1184, 65 + 1088),  # P-256 point first, then the ML-KEM part
}


def _describe_share(group: int, data: bytes) -> str:
    if group in _GREASE:
        return f"GREASE share ({len(data)} bytes, ignore)"
    return f"{name_of(NamedGroup, group)} public value ({len(data)} bytes)"


@dataclass
class KeyShareEntry:
    """One ``KeyShareEntry`` (RFC 8446 section 4.2.8): a group and a public value for it."""

    group: int
    key_exchange: bytes

    @classmethod
    def decode(cls, r: Reader) -> KeyShareEntry:
        with r.group("KeyShareEntry") as entry:
            group = entry.u16("group", _named(NamedGroup))
            data = entry.vector(2, "key_exchange", lambda v: _describe_share(group, v), min_length=1)
        return cls(group, data)

    def encode(self, w: Writer) -> None:
        w.u16(self.group).vector(2, self.key_exchange)


@dataclass
class KeyShareClientHelloExtension(Extension):
    """``key_share`` in a ClientHello: one public value per group the client guesses the server takes.

    ``client_shares<0..2^16-1>``, most preferred first; it may be empty (the client then asks the server
    to pick a group and answer with a HelloRetryRequest).  Checks across extensions (each share's group
    offered in supported_groups, no group twice, sizes) are :func:`~handshake_lib.tls.messages13.check_key_shares`.
    """

    extension_type: ClassVar[int] = ExtensionType.key_share
    client_shares: list[KeyShareEntry] = field(default_factory=list)

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> KeyShareClientHelloExtension:
        shares: list[KeyShareEntry] = []
        with r.vector_reader(2, "client_shares", "the client's key shares, most preferred first") as items:
            while not items.at_end:
                shares.append(KeyShareEntry.decode(items))
        return cls(shares)

    def encode_data(self, w: Writer, context: Context) -> None:
        with w.vector_writer(2) as items:
            for share in self.client_shares:
                share.encode(items)

    def share_for(self, group: int) -> KeyShareEntry | None:
        return next((share for share in self.client_shares if share.group == group), None)


@dataclass
class KeyShareServerHelloExtension(Extension):
    """``key_share`` in a ServerHello: the one share the server answers with, in a group the client offered."""

    extension_type: ClassVar[int] = ExtensionType.key_share
    server_share: KeyShareEntry = field(default_factory=lambda: KeyShareEntry(NamedGroup.x25519, b""))

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> KeyShareServerHelloExtension:
        return cls(KeyShareEntry.decode(r))

    def encode_data(self, w: Writer, context: Context) -> None:
        self.server_share.encode(w)


@dataclass
class KeyShareHelloRetryRequestExtension(Extension):
    """``key_share`` in a HelloRetryRequest: only the group the server wants a share for (no public value)."""

    extension_type: ClassVar[int] = ExtensionType.key_share
    selected_group: int = NamedGroup.secp256r1

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> KeyShareHelloRetryRequestExtension:
        return cls(r.u16("selected_group", lambda v: f"send me a share for {name_of(NamedGroup, v)}"))

    def encode_data(self, w: Writer, context: Context) -> None:
        w.u16(self.selected_group)


@dataclass
class PskKeyExchangeModesExtension(Extension):
    """``psk_key_exchange_modes`` (RFC 8446 section 4.2.9): psk_ke and/or psk_dhe_ke; ``ke_modes<1..255>``."""

    extension_type: ClassVar[int] = ExtensionType.psk_key_exchange_modes
    modes: list[int] = field(default_factory=lambda: [PskKeyExchangeMode.psk_dhe_ke])

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> PskKeyExchangeModesExtension:
        modes: list[int] = []
        with r.vector_reader(1, "ke_modes", "how a resumed session may derive its keys", min_length=1) as items:
            while not items.at_end:
                modes.append(items.u8("ke_mode", _named(PskKeyExchangeMode)))
        return cls(modes)

    def encode_data(self, w: Writer, context: Context) -> None:
        w.vector(1, bytes(self.modes))


@dataclass
class PskIdentity:
    """One offered PSK (RFC 8446 section 4.2.11): a ticket (or external identity) and its obfuscated age.

    ``obfuscated_ticket_age`` is the ticket's age in milliseconds plus the ticket's ``ticket_age_add``,
    modulo 2^32, so an observer cannot link two resumptions by their ages.
    """

    identity: bytes
    obfuscated_ticket_age: int


@dataclass
class PreSharedKeyClientHelloExtension(Extension):
    """``pre_shared_key`` in a ClientHello: ``OfferedPsks`` (identities, then one binder per identity).

    It must be the last extension: each binder is an HMAC over the ClientHello *up to and not including*
    the binders list (the "truncated ClientHello", :func:`~handshake_lib.tls.messages13.truncated_client_hello`),
    which proves the client holds the PSK without the server having to try it first.
    """

    extension_type: ClassVar[int] = ExtensionType.pre_shared_key
    identities: list[PskIdentity] = field(default_factory=list)
    binders: list[bytes] = field(default_factory=list)

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> PreSharedKeyClientHelloExtension:
        identities: list[PskIdentity] = []
        with r.vector_reader(2, "identities", "the PSKs offered, most preferred first", min_length=7) as items:
            while not items.at_end:
                with items.group("PskIdentity"):
                    identity = items.vector(2, "identity", "a ticket, opaque to the client", min_length=1)
                    age = items.u32("obfuscated_ticket_age", "ticket age in ms + ticket_age_add, mod 2^32")
                identities.append(PskIdentity(identity, age))
        binders_offset = r.offset
        binders: list[bytes] = []
        with r.vector_reader(
            2, "binders", "one HMAC per identity over the truncated ClientHello", min_length=33
        ) as items:
            while not items.at_end:
                binders.append(
                    items.vector(
                        1, "PskBinderEntry", "HMAC(binder finished key, Hash(truncated ClientHello))", min_length=32
                    )
                )
        if len(binders) != len(identities):
            # The structure does not add up: every identity has exactly one binder (RFC 8446 section 4.2.11).
            raise DecodeError(
                f"{len(identities)} PSK identities but {len(binders)} binders", field="binders", offset=binders_offset
            )
        return cls(identities, binders)

    def encode_data(self, w: Writer, context: Context) -> None:
        with w.vector_writer(2) as items:
            for identity in self.identities:
                items.vector(2, identity.identity).u32(identity.obfuscated_ticket_age)
        with w.vector_writer(2) as items:
            for binder in self.binders:
                items.vector(1, binder)

    @property
    def binders_size(self) -> int:
        """Bytes the ``binders`` vector takes on the wire, its 2-byte length included."""
        return 2 + sum(1 + len(binder) for binder in self.binders)


@dataclass
class PreSharedKeyServerHelloExtension(Extension):
    """``pre_shared_key`` in a ServerHello: the index of the identity the server accepted."""

    extension_type: ClassVar[int] = ExtensionType.pre_shared_key
    selected_identity: int = 0

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> PreSharedKeyServerHelloExtension:
        return cls(r.u16("selected_identity", lambda v: f"the client's PSK number {v} (from 0)"))

    def encode_data(self, w: Writer, context: Context) -> None:
        w.u16(self.selected_identity)


@dataclass
class CookieExtension(Extension):
    """``cookie`` (RFC 8446 section 4.2.2): sent by a server in HelloRetryRequest, echoed in the second ClientHello.

    A stateless server can put its state (the hash of the first ClientHello) in it, integrity-protected.
    """

    extension_type: ClassVar[int] = ExtensionType.cookie
    cookie: bytes = b""

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> CookieExtension:
        return cls(r.vector(2, "cookie", "opaque to the client: echo it back", min_length=1))

    def encode_data(self, w: Writer, context: Context) -> None:
        w.vector(2, self.cookie)


@dataclass
class SignatureAlgorithmsCertExtension(SignatureAlgorithmsExtension):
    """``signature_algorithms_cert`` (RFC 8446 section 4.2.3): the schemes accepted in *certificates*.

    Same body as ``signature_algorithms``; without it, that list applies to certificates too.
    """

    extension_type: ClassVar[int] = ExtensionType.signature_algorithms_cert


@dataclass
class EarlyDataExtension(Extension):
    """``early_data`` in a ClientHello ("0-RTT data follows") or EncryptedExtensions ("accepted"): empty."""

    extension_type: ClassVar[int] = ExtensionType.early_data

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> EarlyDataExtension:
        r.expect_end(f"early_data in {context}, which must be empty")
        return cls()

    def encode_data(self, w: Writer, context: Context) -> None:
        return None


@dataclass
class EarlyDataTicketExtension(Extension):
    """``early_data`` in a NewSessionTicket: ``max_early_data_size``, the 0-RTT bytes this ticket allows."""

    extension_type: ClassVar[int] = ExtensionType.early_data
    max_early_data_size: int = 0

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> EarlyDataTicketExtension:
        return cls(r.u32("max_early_data_size", lambda v: f"at most {v} bytes of 0-RTT data with this ticket"))

    def encode_data(self, w: Writer, context: Context) -> None:
        w.u32(self.max_early_data_size)


@dataclass
class PostHandshakeAuthExtension(Extension):
    """``post_handshake_auth`` (RFC 8446 section 4.2.6): empty; the client will answer a later CertificateRequest."""

    extension_type: ClassVar[int] = ExtensionType.post_handshake_auth

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> PostHandshakeAuthExtension:
        r.expect_end("post_handshake_auth, which must be empty")
        return cls()

    def encode_data(self, w: Writer, context: Context) -> None:
        return None


@dataclass
class UnknownExtension(Extension):
    """An extension kept as raw bytes: one we do not model, or one with no meaning in this message."""

    extension_type: int  # type: ignore[misc]
    data: bytes = b""

    @classmethod
    def decode_data(cls, r: Reader, context: Context) -> UnknownExtension:  # pragma: no cover - not in tables
        raise TypeError("UnknownExtension needs its type; decode_extensions builds it")

    def encode_data(self, w: Writer, context: Context) -> None:
        w.raw(self.data)


CLIENT_HELLO_EXTENSIONS: dict[int, type[Extension]] = {
    ExtensionType.server_name: ServerNameExtension,
    ExtensionType.supported_groups: SupportedGroupsExtension,
    ExtensionType.ec_point_formats: ECPointFormatsExtension,
    ExtensionType.signature_algorithms: SignatureAlgorithmsExtension,
    ExtensionType.renegotiation_info: RenegotiationInfoExtension,
    ExtensionType.extended_master_secret: ExtendedMasterSecretExtension,
    ExtensionType.encrypt_then_mac: EncryptThenMacExtension,
    ExtensionType.session_ticket: SessionTicketExtension,
    ExtensionType.status_request: StatusRequestExtension,
    ExtensionType.supported_versions: SupportedVersionsExtension,
    ExtensionType.key_share: KeyShareClientHelloExtension,
    ExtensionType.psk_key_exchange_modes: PskKeyExchangeModesExtension,
    ExtensionType.pre_shared_key: PreSharedKeyClientHelloExtension,
    ExtensionType.cookie: CookieExtension,
    ExtensionType.signature_algorithms_cert: SignatureAlgorithmsCertExtension,
    ExtensionType.early_data: EarlyDataExtension,
    ExtensionType.post_handshake_auth: PostHandshakeAuthExtension,
}

SERVER_HELLO_EXTENSIONS: dict[int, type[Extension]] = {
    ExtensionType.server_name: ServerNameExtension,
    ExtensionType.ec_point_formats: ECPointFormatsExtension,
    ExtensionType.renegotiation_info: RenegotiationInfoExtension,
    ExtensionType.extended_master_secret: ExtendedMasterSecretExtension,
    ExtensionType.encrypt_then_mac: EncryptThenMacExtension,
    ExtensionType.session_ticket: SessionTicketExtension,
    ExtensionType.status_request: StatusRequestExtension,
    ExtensionType.supported_versions: SelectedVersionExtension,
    ExtensionType.key_share: KeyShareServerHelloExtension,
    ExtensionType.pre_shared_key: PreSharedKeyServerHelloExtension,
}

HELLO_RETRY_REQUEST_EXTENSIONS: dict[int, type[Extension]] = {
    ExtensionType.supported_versions: SelectedVersionExtension,
    ExtensionType.key_share: KeyShareHelloRetryRequestExtension,
    ExtensionType.cookie: CookieExtension,
}

ENCRYPTED_EXTENSIONS_EXTENSIONS: dict[int, type[Extension]] = {
    ExtensionType.server_name: ServerNameExtension,
    ExtensionType.supported_groups: SupportedGroupsExtension,  # the server's preference, for next time
    ExtensionType.early_data: EarlyDataExtension,
}

CERTIFICATE_REQUEST_EXTENSIONS: dict[int, type[Extension]] = {
    ExtensionType.signature_algorithms: SignatureAlgorithmsExtension,
    ExtensionType.signature_algorithms_cert: SignatureAlgorithmsCertExtension,
    ExtensionType.status_request: StatusRequestExtension,
}

# A CertificateEntry's status_request (a stapled OCSP response) and signed_certificate_timestamp are
# allowed there but kept raw: nothing here reads them yet.
CERTIFICATE_ENTRY_EXTENSIONS: dict[int, type[Extension]] = {}

NEW_SESSION_TICKET_EXTENSIONS: dict[int, type[Extension]] = {
    ExtensionType.early_data: EarlyDataTicketExtension,
}

_TABLES: dict[str, dict[int, type[Extension]]] = {
    "client_hello": CLIENT_HELLO_EXTENSIONS,
    "server_hello": SERVER_HELLO_EXTENSIONS,
    "hello_retry_request": HELLO_RETRY_REQUEST_EXTENSIONS,
    "encrypted_extensions": ENCRYPTED_EXTENSIONS_EXTENSIONS,
    "certificate_request": CERTIFICATE_REQUEST_EXTENSIONS,
    "certificate": CERTIFICATE_ENTRY_EXTENSIONS,
    "new_session_ticket": NEW_SESSION_TICKET_EXTENSIONS,
}

_E = ExtensionType
# RFC 8446 section 4.2's table: the TLS 1.3 messages each extension may appear in ("server_hello" here
# is a ServerHello that selects TLS 1.3).  Extensions of TLS 1.2 only (ec_point_formats,
# renegotiation_info, extended_master_secret, encrypt_then_mac, session_ticket) appear in no TLS 1.3
# message but the ClientHello, which also offers TLS 1.2.
ALLOWED_IN: dict[str, frozenset[int]] = {
    "client_hello": frozenset(int(t) for t in ExtensionType) - {_E.oid_filters},
    "server_hello": frozenset({_E.pre_shared_key, _E.supported_versions, _E.key_share}),
    "hello_retry_request": frozenset({_E.cookie, _E.supported_versions, _E.key_share}),
    "encrypted_extensions": frozenset(
        {
            _E.server_name,
            _E.max_fragment_length,
            _E.supported_groups,
            _E.use_srtp,
            _E.heartbeat,
            _E.application_layer_protocol_negotiation,
            _E.client_certificate_type,
            _E.server_certificate_type,
            _E.early_data,
            _E.record_size_limit,
        }
    ),  # fmt: skip
    "certificate_request": frozenset(
        {
            _E.status_request,
            _E.signature_algorithms,
            _E.signed_certificate_timestamp,
            _E.certificate_authorities,
            _E.oid_filters,
            _E.signature_algorithms_cert,
        }
    ),  # fmt: skip
    "certificate": frozenset({_E.status_request, _E.signed_certificate_timestamp}),
    "new_session_ticket": frozenset({_E.early_data}),
}
# The contexts decode_extensions checks against ALLOWED_IN as it reads (the hellos are checked by
# their callers, see the module docstring).
_STRICT_CONTEXTS = frozenset(
    {"hello_retry_request", "encrypted_extensions", "certificate_request", "certificate", "new_session_ticket"}
)
_RECOGNISED = frozenset(int(t) for t in ExtensionType)


def _check_allowed(extension_type: int, context: str, offset: int | None = None) -> None:
    if extension_type in _RECOGNISED and extension_type not in ALLOWED_IN[context]:
        where = f"; offset {offset}" if offset is not None else ""
        raise IllegalParameter(
            f"extension {_extension_name(extension_type)} is not allowed in {context} (RFC 8446 section 4.2{where})"
        )


def check_extensions_allowed(extensions: Iterable[Extension] | None, context: str) -> None:
    """Apply RFC 8446 section 4.2's table: a recognised extension where it is not specified is ``illegal_parameter``.

    For a ServerHello that selected TLS 1.3 (``context="server_hello"``); the other TLS 1.3 messages are
    checked as they are decoded.  Unknown types (GREASE included) always pass.
    """
    for extension in extensions or ():
        _check_allowed(extension.extension_type, context)


def check_solicited(
    extensions: Iterable[Extension] | None, offered: Iterable[int], *, hello_retry_request: bool = False
) -> None:
    """A response may only carry extensions the peer offered: otherwise ``unsupported_extension``.

    ``offered`` are the types of the ClientHello (or CertificateRequest) this answers.  RFC 8446
    section 4.2: the only exception is ``cookie`` in a HelloRetryRequest, which the server starts.
    """
    offered_types = set(offered)
    for extension in extensions or ():
        kind = extension.extension_type
        if kind in offered_types or (hello_retry_request and kind == ExtensionType.cookie):
            continue
        raise UnsupportedExtension(f"the peer answered extension {_extension_name(kind)}, which was never offered")


def _extension_name(value: int) -> str:
    if value in _GREASE:
        return f"GREASE 0x{value:04x} (RFC 8701, ignore)"
    return name_of(ExtensionType, value)


def decode_extensions(r: Reader, context: Context, *, min_length: int = 0) -> list[Extension]:
    """Read an ``extensions`` vector (of a hello, or of a TLS 1.3 message); see the module docstring for the checks.

    ``min_length``: the vector's lower bound where the RFC sets one (CertificateRequest's ``<2..2^16-1>``).
    """
    table = _TABLES[context]
    extensions: list[Extension] = []
    seen: set[int] = set()
    annotating = r.annotating  # meanings are only worth computing for a Reader that records spans
    with r.vector_reader(2, "extensions", min_length=min_length) as block:
        while not block.at_end:
            # Peek at the type so the group's span already says which extension it is.
            peeked = int.from_bytes(block.data[block.position : block.position + 2], "big")
            group_meaning = _extension_name(peeked) if annotating and block.remaining >= 2 else ""
            with block.group("extension", group_meaning) as entry:
                type_offset = entry.offset
                extension_type = entry.u16("extension_type", _extension_name)
                if extension_type in seen:
                    raise IllegalParameter(
                        f"extension {_extension_name(extension_type)} appears twice "
                        f"(RFC 5246 section 7.4.1.4; offset {type_offset})"
                    )
                if ExtensionType.pre_shared_key in seen and context == "client_hello":
                    # RFC 8446 section 4.2.11: pre_shared_key MUST be the last extension of a ClientHello.
                    raise IllegalParameter(f"extension after pre_shared_key in the ClientHello (offset {type_offset})")
                seen.add(extension_type)
                if context in _STRICT_CONTEXTS:
                    _check_allowed(extension_type, context, type_offset)
                cls = table.get(extension_type)
                meaning = _extension_name(extension_type) if annotating else ""
                with entry.vector_reader(2, "extension_data", meaning) as data:
                    if cls is None:
                        extension: Extension = UnknownExtension(
                            extension_type, data.rest("data", "not interpreted here; kept as raw bytes")
                        )
                    else:
                        extension = cls.decode_data(data, context)
            extensions.append(extension)
    return extensions


def encode_extensions(w: Writer, extensions: Iterable[Extension], context: Context) -> None:
    with w.vector_writer(2) as block:
        for extension in extensions:
            block.u16(extension.extension_type)
            with block.vector_writer(2) as data:
                extension.encode_data(data, context)


def find_extension(extensions: Iterable[Extension] | None, extension_type: int) -> Extension | None:
    """The extension of ``extension_type`` in ``extensions`` (typed or unknown), or None."""
    for extension in extensions or ():
        if extension.extension_type == extension_type:
            return extension
    return None
