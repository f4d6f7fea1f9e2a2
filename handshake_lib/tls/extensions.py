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

Checks that depend on more than one extension (RFC 8422 section 5.1.2: ``ec_point_formats`` must
contain ``uncompressed`` *if* the client also offers elliptic curves) belong to the negotiation, not
to the decoder, which would otherwise reject hellos a real server accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..errors import DecodeError, IllegalParameter
from ..wire import Reader, Writer
from .constants import (
    CertificateStatusType,
    ECPointFormat,
    ExtensionType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
    name_of,
)

Context = Literal["client_hello", "server_hello"]

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
    "UnknownExtension",
    "CLIENT_HELLO_EXTENSIONS",
    "SERVER_HELLO_EXTENSIONS",
    "decode_extensions",
    "encode_extensions",
    "find_extension",
    "version_name",
]

# Reserved "GREASE" values (RFC 8701) that browsers sprinkle into lists to keep servers tolerant.
_GREASE = {0x0A0A + 0x1010 * i for i in range(16)}


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
        if context == "server_hello":
            # "the extension_data field of this extension SHALL be empty" (RFC 6066 section 3).
            r.expect_end("server_name in a ServerHello, which must be empty")
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
}

_TABLES: dict[str, dict[int, type[Extension]]] = {
    "client_hello": CLIENT_HELLO_EXTENSIONS,
    "server_hello": SERVER_HELLO_EXTENSIONS,
}


def _extension_name(value: int) -> str:
    if value in _GREASE:
        return f"GREASE 0x{value:04x} (RFC 8701, ignore)"
    return name_of(ExtensionType, value)


def decode_extensions(r: Reader, context: Context) -> list[Extension]:
    """Read the ``extensions`` vector of a hello; see the module docstring for the checks."""
    table = _TABLES[context]
    extensions: list[Extension] = []
    seen: set[int] = set()
    annotating = r.annotating  # meanings are only worth computing for a Reader that records spans
    with r.vector_reader(2, "extensions") as block:
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
                seen.add(extension_type)
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
