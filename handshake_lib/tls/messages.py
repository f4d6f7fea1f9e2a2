"""TLS 1.2 messages: the handshake messages, ChangeCipherSpec and Alert.

Theory of operation
-------------------
Every message is a dataclass with two methods that mirror each other, in the style of aioquic's
``tls.py``: ``decode(r)``, a classmethod that reads it from a :class:`~handshake_lib.wire.Reader`
(recording an annotated :class:`~handshake_lib.wire.Span` for every field, so a hex view can say
that bytes 43-44 are ``TLS_RSA_WITH_AES_128_GCM_SHA256``), and ``encode(w)``, which writes the same
bytes to a :class:`~handshake_lib.wire.Writer`.  ``to_bytes()`` is ``encode`` into a fresh Writer.
Decoding keeps everything needed to re-encode, including unknown extensions and their order, so
``decode(x).to_bytes() == x`` for every ``x`` that decodes.

Layering (RFC 5246 sections 6.2 and 7.4)::

    TLSPlaintext   type(1) version(2) length(2) fragment            <- one record
    Handshake      msg_type(1) length(3) body                       <- may span records
    body           ClientHello | ServerHello | Certificate | ...

Records carry fragments of a byte stream; reading records and putting handshake messages back
together across them is the record layer's job (``tls/record.py``: ``RecordReader``, and
``HandshakeReassembler`` / ``reassemble_handshake_messages``, the one place messages are cut apart).
This module decodes *complete* messages: :func:`decode_handshake` for one handshake message, returning
the message and its spans.

Errors (all :class:`~handshake_lib.errors.ProtocolError` subclasses, never IndexError):

* malformed bytes, lengths that do not add up, vectors outside their RFC bounds (an empty cipher
  suite list is one: ``cipher_suites<2..2^16-2>``), trailing bytes: ``DecodeError``;
* a handshake ``msg_type`` that is not defined: ``UnexpectedMessage``.  RFC 5246 names no alert for
  it; a message we do not know can never be the one the state machine expects, RFC 8446 section 4
  asks for ``unexpected_message`` in that case, and OpenSSL 3 sends exactly that (checked live in
  the tests);
* a ClientHello whose compression methods lack ``null``: ``IllegalParameter``.  The field decodes
  fine, it is its value that is refused: RFC 5246 section 7.4.1.2 says the list MUST contain null
  without naming an alert, RFC 8446 section 4.1.2 names ``illegal_parameter`` for the same field,
  and the independent TLS test suite run against ``tls serve`` (issue 8) expects it.  OpenSSL 3 sends
  ``decode_error`` here: a known difference, listed in the tests;
* duplicate extensions: ``IllegalParameter`` (see :mod:`handshake_lib.tls.extensions`).

Where RFC 5246 names no alert we follow OpenSSL 3; where the RFCs do (a vector outside its bounds is
``decode_error``, RFC 8446 section 6.2) we follow them, even when OpenSSL differs.  The test
``test_our_alert_matches_openssl`` lists every case, including the one known difference (an empty
cipher suite list: OpenSSL says ``illegal_parameter``).

ServerKeyExchange and ClientKeyExchange have one body per key exchange (RSA, ECDHE, DHE), which the
bytes do not name: :func:`decode_handshake` takes the suite's ``key_exchange`` to choose.

Known handshake types that this module does not model (TLS 1.3's EncryptedExtensions, KeyUpdate...)
decode as :class:`OpaqueHandshake`, which keeps the body; :mod:`.messages13` decodes a TLS 1.3 flight
with TLS 1.3's table of types, reusing ClientHello, ServerHello, CertificateVerify and Finished from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ..errors import CertificateError, DecodeError, EncodeError, IllegalParameter, TLSAlert, UnexpectedMessage
from ..wire import Reader, Span, Writer
from .constants import (
    AlertLevel,
    CertificateStatusType,
    CipherSuite,
    ClientCertificateType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
    name_of,
)
from .extensions import (
    Context,
    Extension,
    SelectedVersionExtension,
    check_extensions_allowed,
    decode_extensions,
    encode_extensions,
    find_extension,
    version_name,
)
from .record import reassemble_handshake_messages

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "VERIFY_DATA_LENGTH",
    "HELLO_RETRY_REQUEST_RANDOM",
    "DOWNGRADE_TLS12",
    "DOWNGRADE_TLS11",
    "downgrade_sentinel",
    "check_downgrade",
    "HandshakeMessage",
    "ClientHello",
    "ServerHello",
    "Certificate",
    "CertificateRequest",
    "CertificateStatus",
    "MAX_STAPLED_OCSP_RESPONSE",
    "HelloRequest",
    "ServerHelloDone",
    "ClientKeyExchange",
    "ECDHClientKeyExchange",
    "DHClientKeyExchange",
    "ServerKeyExchange",
    "ServerECDHParams",
    "ServerDHParams",
    "CertificateVerify",
    "Finished",
    "NewSessionTicket",
    "OpaqueHandshake",
    "ChangeCipherSpec",
    "Alert",
    "HANDSHAKE_MESSAGES",
    "decode_handshake",
    "split_handshake_messages",
    "cipher_suite_name",
]

VERIFY_DATA_LENGTH = 12  # RFC 5246 section 7.4.9, for every cipher suite this course uses

# A ServerHello with this random is a TLS 1.3 HelloRetryRequest (RFC 8446 section 4.1.3).
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
# The last 8 bytes of a server random that signal a downgrade (RFC 8446 section 4.1.3): a server that can
# do TLS 1.3 but negotiates 1.2 (or 1.1 and below) says so inside the random, which the signatures of
# ServerKeyExchange (1.2) cover, so an attacker who strips supported_versions cannot hide it.
DOWNGRADE_TLS12 = b"DOWNGRD\x01"
DOWNGRADE_TLS11 = b"DOWNGRD\x00"
_DOWNGRADE_SENTINELS = {
    DOWNGRADE_TLS12: "downgrade to TLS 1.2 signalled",
    DOWNGRADE_TLS11: "downgrade to TLS 1.1 or below signalled",
}


def downgrade_sentinel(server_random: bytes) -> int | None:
    """The version a server random's downgrade sentinel signals (TLS1_2 or TLS1_1), or None when there is none."""
    tail = server_random[-8:]
    if tail == DOWNGRADE_TLS12:
        return ProtocolVersion.TLS1_2
    if tail == DOWNGRADE_TLS11:
        return ProtocolVersion.TLS1_1
    return None


def check_downgrade(server_random: bytes, negotiated_version: int, client_max_version: int) -> None:
    """A client's check of RFC 8446 section 4.1.3: ``illegal_parameter`` if the server random signals a downgrade.

    A client that offered TLS 1.3 (``client_max_version``) and got 1.2 or below must refuse either
    sentinel; a TLS 1.2 client that got 1.1 or below should refuse ``DOWNGRD\\x00``.  A server that
    negotiates its own highest version never sets one, so the check costs a genuine connection nothing.
    """
    signalled = downgrade_sentinel(server_random)
    if signalled is None or negotiated_version >= ProtocolVersion.TLS1_3:
        return
    if client_max_version >= ProtocolVersion.TLS1_3 or (
        client_max_version == ProtocolVersion.TLS1_2 and signalled == ProtocolVersion.TLS1_1
    ):
        raise IllegalParameter(
            f"the server random ends in {server_random[-8:]!r}: a downgrade from the version we offered "
            f"(RFC 8446 section 4.1.3)"
        )


_HANDSHAKE_TYPES = frozenset(int(t) for t in HandshakeType)


def cipher_suite_name(value: int) -> str:
    if (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF):
        return f"GREASE 0x{value:04x} (RFC 8701, ignore)"
    if value == CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV:
        return "TLS_EMPTY_RENEGOTIATION_INFO_SCSV (signal, not a cipher suite: RFC 5746)"
    return name_of(CipherSuite, value)


# -- handshake messages ----------------------------------------------------------------------------
class HandshakeMessage:
    """Base of handshake messages: the 4-byte header (RFC 5246 section 7.4) around a typed body.

    Subclasses set ``msg_type`` and implement ``decode_body``/``encode_body``; the header is handled
    here, so ``decode``/``encode``/``to_bytes`` always deal with whole messages.
    """

    msg_type: ClassVar[int]

    @property
    def handshake_type(self) -> int:
        return self.msg_type

    @classmethod
    def decode_body(cls, r: Reader) -> HandshakeMessage:
        raise NotImplementedError

    def encode_body(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def decode(cls, r: Reader) -> HandshakeMessage:
        """Read a whole handshake message that must be of this class's type."""
        return _decode_handshake(r, expected=cls)

    def encode(self, w: Writer) -> None:
        body = Writer()
        self.encode_body(body)
        w.u8(self.handshake_type).vector(3, body.getvalue())

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.getvalue()


def _check_compression(methods: bytes, offset: int) -> None:
    if 0 not in methods:
        raise IllegalParameter(
            f"compression_methods (offset {offset}) does not contain null, which RFC 5246 section 7.4.1.2 requires"
        )


@dataclass
class ClientHello(HandshakeMessage):
    """ClientHello (RFC 5246 section 7.4.1.2): what the client can do, and its random.

    ``extensions`` is None when the message ends after the compression methods (allowed by RFC 5246)
    and a list, possibly empty, when the extensions vector is present.
    """

    msg_type: ClassVar[int] = HandshakeType.client_hello
    legacy_version: int = ProtocolVersion.TLS1_2
    random: bytes = bytes(32)
    session_id: bytes = b""
    cipher_suites: list[int] = field(default_factory=list)
    compression_methods: bytes = b"\x00"
    extensions: list[Extension] | None = field(default_factory=list)

    context: ClassVar[Context] = "client_hello"

    @classmethod
    def decode_body(cls, r: Reader) -> ClientHello:
        legacy_version = r.u16("client_version", version_name)
        random = r.raw(32, "random", "client random: 32 bytes, fresh for every handshake")
        session_id = r.vector(
            1, "session_id", lambda v: "empty: a new session" if not v else "a session to resume", max_length=32
        )
        cipher_suites: list[int] = []
        with r.vector_reader(2, "cipher_suites", "offered cipher suites", min_length=2) as suites:
            if suites.remaining % 2:
                raise DecodeError("cipher_suites has an odd length", field="cipher_suites", offset=suites.offset)
            while not suites.at_end:
                cipher_suites.append(suites.u16("cipher_suite", cipher_suite_name))
        compression_offset = r.offset
        compression_methods = r.vector(
            1, "compression_methods", lambda v: "null" if v == b"\x00" else f"{len(v)} methods", min_length=1
        )
        _check_compression(compression_methods, compression_offset)
        extensions = None if r.at_end else decode_extensions(r, "client_hello")
        return cls(legacy_version, random, session_id, cipher_suites, compression_methods, extensions)

    def encode_body(self, w: Writer) -> None:
        w.u16(self.legacy_version).raw(_exactly(self.random, 32, "random")).vector(1, self.session_id)
        with w.vector_writer(2) as suites:
            for suite in self.cipher_suites:
                suites.u16(suite)
        w.vector(1, self.compression_methods)
        if self.extensions is not None:
            encode_extensions(w, self.extensions, "client_hello")

    def extension(self, extension_type: int) -> Extension | None:
        return find_extension(self.extensions, extension_type)


@dataclass
class ServerHello(HandshakeMessage):
    """ServerHello (RFC 5246 section 7.4.1.3): the version and cipher suite the server chose."""

    msg_type: ClassVar[int] = HandshakeType.server_hello
    legacy_version: int = ProtocolVersion.TLS1_2
    random: bytes = bytes(32)
    session_id: bytes = b""
    cipher_suite: int = CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    compression_method: int = 0
    extensions: list[Extension] | None = field(default_factory=list)

    @classmethod
    def decode_body(cls, r: Reader) -> ServerHello:
        legacy_version = r.u16("server_version", version_name)
        random = r.raw(32, "random", _explain_server_random)
        session_id = r.vector(
            1,
            "session_id",
            lambda v: "empty: this session cannot be resumed by id" if not v else "session id",
            max_length=32,
        )
        cipher_suite = r.u16("cipher_suite", cipher_suite_name)
        compression_method = r.u8("compression_method", lambda v: "null" if v == 0 else f"method {v}")
        # A HelloRetryRequest is a ServerHello with a special random, and its extensions have their own
        # bodies (key_share holds only a group): the random, read first, picks the context.
        context: Context = "hello_retry_request" if random == HELLO_RETRY_REQUEST_RANDOM else "server_hello"
        extensions = None if r.at_end else decode_extensions(r, context)
        hello = cls(legacy_version, random, session_id, cipher_suite, compression_method, extensions)
        if hello.selected_version == ProtocolVersion.TLS1_3:
            # RFC 8446 section 4.2: a TLS 1.3 ServerHello carries only key_share, pre_shared_key and
            # supported_versions; a TLS 1.2 one keeps the TLS 1.2 rules (module docstring of extensions).
            check_extensions_allowed(extensions, context)
        return hello

    def encode_body(self, w: Writer) -> None:
        w.u16(self.legacy_version).raw(_exactly(self.random, 32, "random")).vector(1, self.session_id)
        w.u16(self.cipher_suite).u8(self.compression_method)
        if self.extensions is not None:
            context: Context = "hello_retry_request" if self.is_hello_retry_request else "server_hello"
            encode_extensions(w, self.extensions, context)

    @property
    def selected_version(self) -> int:
        """The version this ServerHello chose: supported_versions' if present (TLS 1.3), else legacy_version."""
        selected = find_extension(self.extensions, ExtensionType.supported_versions)
        if isinstance(selected, SelectedVersionExtension):
            return selected.selected_version
        return self.legacy_version

    def extension(self, extension_type: int) -> Extension | None:
        return find_extension(self.extensions, extension_type)

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HELLO_RETRY_REQUEST_RANDOM


def _explain_server_random(random: bytes) -> str:
    if random == HELLO_RETRY_REQUEST_RANDOM:
        return "HelloRetryRequest marker (RFC 8446 section 4.1.3)"
    sentinel = _DOWNGRADE_SENTINELS.get(random[-8:])
    if sentinel:
        return f"server random; last 8 bytes: {sentinel}"
    return "server random: 32 bytes, fresh for every handshake"


def _describe_certificate(der: bytes) -> str:
    # A display aid only: a certificate that does not parse is still carried, and validation
    # (tls.pki) is where a bad one is rejected.
    try:
        from cryptography import x509

        certificate = x509.load_der_x509_certificate(der)
        return f"X.509 certificate, subject {certificate.subject.rfc4514_string() or '(empty)'}"
    except Exception:  # noqa: BLE001 - any parse failure just means "no description"
        return "certificate (DER did not parse as X.509)"


@dataclass
class Certificate(HandshakeMessage):
    """Certificate (RFC 5246 section 7.4.2): the sender's chain, leaf first, each DER in a 3-byte vector."""

    msg_type: ClassVar[int] = HandshakeType.certificate
    certificates: list[bytes] = field(default_factory=list)

    @classmethod
    def decode_body(cls, r: Reader) -> Certificate:
        certificates = []
        with r.vector_reader(3, "certificate_list", "certificate chain, leaf first") as chain:
            while not chain.at_end:
                certificates.append(chain.vector(3, "ASN.1Cert", _describe_certificate, min_length=1))
        return cls(certificates)

    def encode_body(self, w: Writer) -> None:
        with w.vector_writer(3) as chain:
            for der in self.certificates:
                chain.vector(3, der)

    def x509(self) -> list[x509.Certificate]:
        """Parse the chain with ``cryptography`` for display; a bad certificate is a CertificateError."""
        import warnings

        from cryptography import x509
        from cryptography.utils import CryptographyDeprecationWarning

        parsed = []
        for index, der in enumerate(self.certificates):
            try:
                # cryptography only warns about some RFC 5280 violations (a serial number that is not
                # positive) before it starts refusing them; refuse them now, the same way every time.
                with warnings.catch_warnings():
                    warnings.simplefilter("error", CryptographyDeprecationWarning)
                    parsed.append(x509.load_der_x509_certificate(der))
            except (ValueError, x509.InvalidVersion, CryptographyDeprecationWarning) as exc:
                # InvalidVersion is not a ValueError: a version field other than v1 or v3 raises it.
                raise CertificateError(f"certificate {index} is not valid DER X.509: {exc}") from None
        return parsed


# The largest OCSP response a CertificateStatus may carry: OpenSSL's client caps the message body at 16,384
# bytes (SSL3_RT_MAX_PLAIN_LENGTH for TLS_ST_CR_CERT_STATUS), and the type byte and 3-byte length take
# 4 of them.  A real response is one to three kilobytes (one signature, the responder's certificate).
MAX_STAPLED_OCSP_RESPONSE = (1 << 14) - 4


def describe_ocsp_response(der: bytes) -> str:
    """``OCSP response: successful, good, thisUpdate ..., nextUpdate ...`` read with ``cryptography``.

    A display aid that reads, never validates (whose signature, for which certificate, how fresh: that is
    the validator's question); bytes that do not parse say so.
    """
    try:
        from cryptography.x509 import ocsp

        response = ocsp.load_der_ocsp_response(der)
        status = response.response_status.name.lower()
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return f"OCSP response: {status} (no certificate status in it)"
        next_update = response.next_update_utc.isoformat() if response.next_update_utc else "none"
        return (
            f"OCSP response: {status}, certificate {response.certificate_status.name.lower()}, "
            f"thisUpdate {response.this_update_utc.isoformat()}, nextUpdate {next_update}"
        )
    except Exception:  # noqa: BLE001 - any parse failure just means "no description"
        return "OCSP response (DER did not parse as an OCSPResponse)"


@dataclass
class CertificateStatus(HandshakeMessage):
    """CertificateStatus (RFC 6066 section 8): the OCSP response the server staples to its Certificate.

    ``status_type`` ocsp(1), then ``OCSPResponse ocsp_response<1..2^24-1>``: the DER a CA's responder
    signed about the server's certificate (RFC 6960).  Another status type is ``decode_error``, as OpenSSL
    answers it (SSL_R_UNSUPPORTED_STATUS_TYPE); so is an empty response, which the vector's bound forbids
    (OpenSSL accepts that one).  A response over :data:`MAX_STAPLED_OCSP_RESPONSE` bytes is refused with
    ``decode_error`` too: OpenSSL's client refuses such a message (``excessive message size``).

    With spans, the response is read element by element by the annotating DER decoder
    (:mod:`handshake_lib.pki.der`) when it is well-formed DER, else shown as one opaque span: whether it
    is a *valid* answer is the validator's question, not the decoder's.
    """

    msg_type: ClassVar[int] = HandshakeType.certificate_status
    ocsp_response: bytes = b""
    status_type: int = CertificateStatusType.ocsp

    @classmethod
    def decode_body(cls, r: Reader) -> CertificateStatus:
        offset = r.offset
        status_type = r.u8("status_type", lambda v: name_of(CertificateStatusType, v))
        if status_type != CertificateStatusType.ocsp:
            raise DecodeError(
                f"CertificateStatus of status_type {status_type}; only ocsp(1) is defined for TLS 1.2",
                field="status_type",
                offset=offset,
            )
        meaning = describe_ocsp_response(r.data[r.position + 3 :]) if r.annotating else ""
        with r.vector_reader(3, "ocsp_response", meaning, min_length=1, max_length=MAX_STAPLED_OCSP_RESPONSE) as body:
            response = body.data
            if body.annotating and _is_der(response):
                from ..pki.der import read_der

                read_der(body, "OCSPResponse")
            else:
                body.rest("OCSPResponse", "DER, RFC 6960" if body.annotating else "")
        return cls(response, status_type)

    def encode_body(self, w: Writer) -> None:
        w.u8(self.status_type).vector(3, self.ocsp_response)


def _is_der(data: bytes) -> bool:
    """Whether ``data`` is one well-formed DER element (the annotating decoder then names its parts)."""
    from ..pki.der import der_spans

    _, error = der_spans(data, "OCSPResponse")
    return error is None


def _describe_distinguished_name(der: bytes) -> str:
    # A display aid, as for certificates: the name is carried either way.
    try:
        from cryptography import x509

        return f"a CA the server trusts: {x509.Name.from_bytes(der).rfc4514_string() or '(empty name)'}"
    except Exception:  # noqa: BLE001 - any parse failure just means "no description"
        return "a CA the server trusts (DER did not parse as a Name)"


@dataclass
class CertificateRequest(HandshakeMessage):
    """CertificateRequest (RFC 5246 section 7.4.4): the server asks the client for a certificate.

    ``certificate_types`` are the key kinds it accepts (:class:`ClientCertificateType`),
    ``supported_signature_algorithms`` the schemes the client's CertificateVerify may use
    (:class:`SignatureScheme`: TLS 1.2's SignatureAndHashAlgorithm pairs read as one 16-bit code
    point), and ``certificate_authorities`` the DER subject names of the CAs it trusts (possibly none:
    then any certificate may do).
    """

    msg_type: ClassVar[int] = HandshakeType.certificate_request
    certificate_types: list[int] = field(default_factory=lambda: [ClientCertificateType.rsa_sign])
    supported_signature_algorithms: list[int] = field(default_factory=lambda: [SignatureScheme.rsa_pkcs1_sha256])
    certificate_authorities: list[bytes] = field(default_factory=list)

    @classmethod
    def decode_body(cls, r: Reader) -> CertificateRequest:
        types = r.vector(
            1, "certificate_types", lambda v: ", ".join(name_of(ClientCertificateType, t) for t in v), min_length=1
        )
        schemes: list[int] = []
        with r.vector_reader(
            2, "supported_signature_algorithms", "what the client may sign CertificateVerify with", min_length=2
        ) as items:
            if items.remaining % 2:
                raise DecodeError(
                    "supported_signature_algorithms has an odd number of bytes",
                    field="supported_signature_algorithms",
                    offset=items.offset,
                )
            while not items.at_end:
                schemes.append(items.u16("signature_scheme", lambda v: name_of(SignatureScheme, v)))
        authorities: list[bytes] = []
        with r.vector_reader(2, "certificate_authorities", "DER names of the CAs the server trusts") as names:
            while not names.at_end:
                authorities.append(names.vector(2, "DistinguishedName", _describe_distinguished_name, min_length=1))
        return cls(list(types), schemes, authorities)

    def encode_body(self, w: Writer) -> None:
        w.vector(1, bytes(self.certificate_types))
        with w.vector_writer(2) as schemes:
            for scheme in self.supported_signature_algorithms:
                schemes.u16(scheme)
        with w.vector_writer(2) as names:
            for name in self.certificate_authorities:
                names.vector(2, name)


@dataclass
class CertificateVerify(HandshakeMessage):
    """CertificateVerify (RFC 5246 section 7.4.8): the client signs every handshake message so far.

    Only the holder of the client certificate's private key can make this signature, which is what
    turns "the client sent a certificate" into "the client is who the certificate names".
    """

    msg_type: ClassVar[int] = HandshakeType.certificate_verify
    algorithm: int = SignatureScheme.rsa_pkcs1_sha256
    signature: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> CertificateVerify:
        algorithm = r.u16("algorithm", lambda v: f"SignatureAndHashAlgorithm {name_of(SignatureScheme, v)}")
        signature = r.vector(
            2,
            "signature",
            lambda v: f"{len(v)}-byte signature over the handshake messages so far",
            min_length=1,
        )
        return cls(algorithm, signature)

    def encode_body(self, w: Writer) -> None:
        w.u16(self.algorithm).vector(2, self.signature)


# The ECCurveType of RFC 8422 section 5.4: named_curve is the only one left (explicit curves are gone).
NAMED_CURVE = 3


@dataclass
class ServerECDHParams:
    """ServerECDHParams (RFC 8422 section 5.4): curve_type named_curve, the group, the server's point."""

    named_group: int
    public: bytes

    @classmethod
    def decode(cls, r: Reader) -> ServerECDHParams:
        with r.group("params", "ServerECDHParams (RFC 8422 section 5.4): what the signature covers") as p:
            curve_type = p.u8("curve_type", lambda v: "named_curve" if v == NAMED_CURVE else f"curve type {v}")
            if curve_type != NAMED_CURVE:
                # OpenSSL: SSL_R_WRONG_CURVE with illegal_parameter (explicit curves are not supported).
                raise IllegalParameter(f"ECParameters curve_type {curve_type}: only named_curve (3) is allowed")
            group = p.u16("named_curve", lambda v: name_of(NamedGroup, v))
            public = p.vector(1, "point", lambda v: _describe_public(v), min_length=1)
        return cls(group, public)

    def encode(self, w: Writer) -> None:
        w.u8(NAMED_CURVE).u16(self.named_group).vector(1, self.public)


@dataclass
class ServerDHParams:
    """ServerDHParams (RFC 5246 section 7.4.3): the prime, the generator and the server's public value."""

    p: bytes
    g: bytes
    public: bytes

    @classmethod
    def decode(cls, r: Reader) -> ServerDHParams:
        with r.group("params", "ServerDHParams (RFC 5246 section 7.4.3): what the signature covers") as q:
            p = q.vector(2, "dh_p", lambda v: f"the prime p ({len(v) * 8} bits){_ffdhe_name(v)}", min_length=1)
            g = q.vector(2, "dh_g", lambda v: f"the generator g = {int.from_bytes(v, 'big')}", min_length=1)
            public = q.vector(2, "dh_Ys", "the server's public value g^x mod p", min_length=1)
        return cls(p, g, public)

    def encode(self, w: Writer) -> None:
        w.vector(2, self.p).vector(2, self.g).vector(2, self.public)


def _describe_public(point: bytes) -> str:
    if len(point) == 32:
        return "the server's X25519 public value (32 bytes)"
    form = {4: "uncompressed", 2: "compressed", 3: "compressed"}.get(point[0], "unknown form")
    return f"the server's EC point, {form} ({len(point)} bytes)"


def _ffdhe_name(p: bytes) -> str:
    from .key_exchange import ffdhe_group_for  # a lazy import: key_exchange imports cryptography's EC

    found = ffdhe_group_for(int.from_bytes(p, "big"), 2)
    if found is None:
        return ""
    return f": {found.name} (RFC 7919)" if found.code is not None else f": {found.name}"


@dataclass
class ServerKeyExchange(HandshakeMessage):
    """ServerKeyExchange for ECDHE (RFC 8422 section 5.4) and DHE (RFC 5246 section 7.4.3).

    The server's ephemeral public value and, for DHE, the group itself, then ``signature_algorithm``
    and a signature over ``client_random + server_random + params`` made with the certificate's key:
    the only thing that ties this fresh key to the server the certificate names.

    Its body depends on the key exchange the ServerHello chose; the connection passes it
    (``decode_handshake(..., key_exchange="ECDHE")``).  Without it (a hex view of a lone message), a
    body starting with curve_type 3 is read as ECDHE, anything else as DHE.
    """

    msg_type: ClassVar[int] = HandshakeType.server_key_exchange
    params: ServerECDHParams | ServerDHParams = field(default_factory=lambda: ServerECDHParams(0, b""))
    signature_algorithm: int = SignatureScheme.rsa_pss_rsae_sha256
    signature: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader, key_exchange: str | None = None) -> ServerKeyExchange:
        if key_exchange not in ("ECDHE", "DHE"):  # unknown, or RSA (where the table refuses the message next)
            key_exchange = "ECDHE" if r.remaining and r.data[r.position] == NAMED_CURVE else "DHE"
        params: ServerECDHParams | ServerDHParams = (
            ServerECDHParams.decode(r) if key_exchange == "ECDHE" else ServerDHParams.decode(r)
        )
        algorithm = r.u16("signature_algorithm", lambda v: f"SignatureAndHashAlgorithm {name_of(SignatureScheme, v)}")
        signature = r.vector(
            2, "signature", lambda v: f"{len(v)}-byte signature over client_random + server_random + params",
            min_length=1,
        )  # fmt: skip
        return cls(params, algorithm, signature)

    def encode_body(self, w: Writer) -> None:
        self.params.encode(w)
        w.u16(self.signature_algorithm).vector(2, self.signature)

    @property
    def key_exchange(self) -> str:
        return "ECDHE" if isinstance(self.params, ServerECDHParams) else "DHE"

    def params_bytes(self) -> bytes:
        """The encoded params: with both randoms in front, what the signature covers."""
        w = Writer()
        self.params.encode(w)
        return w.getvalue()


@dataclass
class HelloRequest(HandshakeMessage):
    """HelloRequest (RFC 5246 section 7.4.1.1): an empty body; the server asks for a new handshake.

    It is left out of the handshake hashes, and a client may ignore it or decline with the warning
    ``no_renegotiation`` (RFC 5746 section 4.5).
    """

    msg_type: ClassVar[int] = HandshakeType.hello_request

    @classmethod
    def decode_body(cls, r: Reader) -> HelloRequest:
        return cls()  # the caller's sub-reader rejects a non-empty body

    def encode_body(self, w: Writer) -> None:
        return None


@dataclass
class ServerHelloDone(HandshakeMessage):
    """ServerHelloDone (RFC 5246 section 7.4.5): an empty body that ends the server's first flight."""

    msg_type: ClassVar[int] = HandshakeType.server_hello_done

    @classmethod
    def decode_body(cls, r: Reader) -> ServerHelloDone:
        return cls()  # the caller's sub-reader rejects a non-empty body

    def encode_body(self, w: Writer) -> None:
        return None


@dataclass
class ClientKeyExchange(HandshakeMessage):
    """ClientKeyExchange for RSA key exchange (RFC 5246 section 7.4.7.1).

    The body is the pre-master secret encrypted with the server's RSA key, in a 2-byte vector (TLS
    1.0 and later; SSL 3 had no length).  Other key exchanges (ECDHE) have a different body.
    """

    msg_type: ClassVar[int] = HandshakeType.client_key_exchange
    encrypted_pre_master_secret: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> ClientKeyExchange:
        return cls(
            r.vector(
                2,
                "encrypted_pre_master_secret",
                lambda v: f"RSA-encrypted pre-master secret ({len(v) * 8}-bit ciphertext)",
                min_length=1,
            )
        )

    def encode_body(self, w: Writer) -> None:
        w.vector(2, self.encrypted_pre_master_secret)


@dataclass
class ECDHClientKeyExchange(HandshakeMessage):
    """ClientKeyExchange for ECDHE (RFC 8422 section 5.7): the client's ephemeral public value, ECPoint<1..2^8-1>."""

    msg_type: ClassVar[int] = HandshakeType.client_key_exchange
    table_name: ClassVar[str] = "ClientKeyExchange"
    public: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> ECDHClientKeyExchange:
        return cls(
            r.vector(1, "ecdh_Yc", lambda v: f"the client's ephemeral public value ({len(v)} bytes)", min_length=1)
        )

    def encode_body(self, w: Writer) -> None:
        w.vector(1, self.public)


@dataclass
class DHClientKeyExchange(HandshakeMessage):
    """ClientKeyExchange for DHE (RFC 5246 section 7.4.7.2): the client's public value, dh_Yc<1..2^16-1>."""

    msg_type: ClassVar[int] = HandshakeType.client_key_exchange
    table_name: ClassVar[str] = "ClientKeyExchange"
    public: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> DHClientKeyExchange:
        return cls(
            r.vector(2, "dh_Yc", lambda v: f"the client's public value g^y mod p ({len(v) * 8} bits)", min_length=1)
        )

    def encode_body(self, w: Writer) -> None:
        w.vector(2, self.public)


@dataclass
class Finished(HandshakeMessage):
    """Finished (RFC 5246 section 7.4.9): verify_data, 12 bytes in TLS 1.2, proves the handshake was seen intact."""

    msg_type: ClassVar[int] = HandshakeType.finished
    verify_data: bytes = bytes(VERIFY_DATA_LENGTH)

    @classmethod
    def decode_body(
        cls, r: Reader, verify_data_length: int | None = VERIFY_DATA_LENGTH, *, tls13: bool = False
    ) -> Finished:
        if verify_data_length is not None and r.remaining != verify_data_length:
            raise DecodeError(
                f"verify_data must be {verify_data_length} bytes, not {r.remaining}",
                field="verify_data",
                offset=r.offset,
            )
        meaning = (
            "HMAC(finished_key, Transcript-Hash(handshake messages)), finished_key from the sender's handshake secret"
            if tls13
            else "PRF(master_secret, finished_label, Hash(handshake_messages))"
        )
        return cls(r.rest("verify_data", meaning))

    def encode_body(self, w: Writer) -> None:
        w.raw(self.verify_data)


@dataclass
class NewSessionTicket(HandshakeMessage):
    """NewSessionTicket in TLS 1.2 (RFC 5077 section 3.3): a lifetime hint and an opaque ticket."""

    msg_type: ClassVar[int] = HandshakeType.new_session_ticket
    ticket_lifetime_hint: int = 0
    ticket: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> NewSessionTicket:
        hint = r.u32("ticket_lifetime_hint", lambda v: f"{v} seconds" if v else "unspecified")
        return cls(hint, r.vector(2, "ticket", "opaque to the client: the server's encrypted session state"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.ticket_lifetime_hint).vector(2, self.ticket)


@dataclass
class OpaqueHandshake(HandshakeMessage):
    """A defined handshake type this module does not model: the body is kept as bytes."""

    msg_type_value: int
    body: bytes = b""

    @property
    def handshake_type(self) -> int:
        return self.msg_type_value

    @classmethod
    def decode_body(cls, r: Reader) -> OpaqueHandshake:  # pragma: no cover - built by _decode_handshake
        raise TypeError("OpaqueHandshake needs its type; use decode_handshake")

    def encode_body(self, w: Writer) -> None:
        w.raw(self.body)


HANDSHAKE_MESSAGES: dict[int, type[HandshakeMessage]] = {
    cls.msg_type: cls
    for cls in (
        HelloRequest,
        ClientHello,
        ServerHello,
        Certificate,
        CertificateRequest,
        CertificateStatus,
        ServerHelloDone,
        CertificateVerify,
        ClientKeyExchange,
        ServerKeyExchange,
        Finished,
        NewSessionTicket,
    )
}


def _decode_handshake(
    r: Reader,
    *,
    expected: type[HandshakeMessage] | None = None,
    verify_data_length: int | None = VERIFY_DATA_LENGTH,
    key_exchange: str | None = None,
) -> HandshakeMessage:
    # Name the group after the message so spans read "server_hello.body.cipher_suite"; peeking is
    # safe because reading msg_type below raises DecodeError when there is no byte.
    peek = r.data[r.position] if r.remaining else -1
    group_name = HandshakeType(peek).name if peek in _HANDSHAKE_TYPES else "handshake"
    with r.group(group_name, "handshake message") as hs:
        type_offset = hs.offset
        msg_type = hs.u8("msg_type", lambda v: name_of(HandshakeType, v))
        if msg_type not in _HANDSHAKE_TYPES:
            raise UnexpectedMessage(f"handshake message type {msg_type} is not defined (offset {type_offset})")
        if expected is not None and msg_type != expected.msg_type:
            raise UnexpectedMessage(
                f"expected {name_of(HandshakeType, expected.msg_type)}, got {name_of(HandshakeType, msg_type)}"
            )
        length = hs.u24("length", "body length in bytes")
        with hs.sub_reader(length, "body", name_of(HandshakeType, msg_type) if hs.annotating else "") as body:
            cls = HANDSHAKE_MESSAGES.get(msg_type)
            if cls is None:
                message: HandshakeMessage = OpaqueHandshake(msg_type, body.rest("data", "not modelled; raw bytes"))
            elif cls is Finished:
                message = Finished.decode_body(body, verify_data_length)
            elif cls is ServerKeyExchange:
                message = ServerKeyExchange.decode_body(body, key_exchange)
            elif cls is ClientKeyExchange:
                message = _client_key_exchange_class(body, key_exchange).decode_body(body)
            else:
                message = cls.decode_body(body)
    return message


def _client_key_exchange_class(body: Reader, key_exchange: str | None) -> type[HandshakeMessage]:
    """The ClientKeyExchange variant for ``key_exchange``; without it, guessed from the body's shape (a
    one-byte length that covers the rest of a 32/65/97-byte value is an ECDHE point; DHE and RSA look alike
    and are read as RSA)."""
    if key_exchange == "ECDHE":
        return ECDHClientKeyExchange
    if key_exchange == "DHE":
        return DHClientKeyExchange
    if key_exchange is None and body.remaining in (33, 66, 98) and body.data[body.position] + 1 == body.remaining:
        return ECDHClientKeyExchange
    return ClientKeyExchange


def decode_handshake(
    data: bytes,
    *,
    verify_data_length: int | None = VERIFY_DATA_LENGTH,
    annotate: bool = True,
    key_exchange: str | None = None,
) -> tuple[HandshakeMessage, list[Span]]:
    """Decode one complete handshake message of any type (header included) and return its spans.

    ``verify_data_length`` is the Finished length to enforce (None accepts any, as in TLS 1.3).
    ``annotate=False`` skips the spans (the list comes back empty): same checks, same errors, faster,
    for a protocol core that only needs the message.  ``key_exchange`` (``"RSA"``, ``"ECDHE"``,
    ``"DHE"``: the suite's) picks the ServerKeyExchange and ClientKeyExchange bodies, which the bytes
    alone do not say; a connection always passes it once the ServerHello has chosen.
    """
    r = Reader(data, annotate=annotate)
    message = _decode_handshake(r, verify_data_length=verify_data_length, key_exchange=key_exchange)
    r.expect_end("the handshake message")
    return message, r.spans


def split_handshake_messages(data: bytes) -> list[bytes]:
    """Cut concatenated *complete* handshake messages apart by their headers (a truncated one is a DecodeError).

    The record layer's reassembler does the cutting (:func:`~handshake_lib.tls.record.reassemble_handshake_messages`).
    """
    return [message.raw for message in reassemble_handshake_messages([data])]


# -- other content types ---------------------------------------------------------------------------
@dataclass
class ChangeCipherSpec:
    """ChangeCipherSpec (RFC 5246 section 7.1): a record holding the single byte 1.

    Any other content (another value, more bytes) is malformed: DecodeError.
    """

    @classmethod
    def decode(cls, r: Reader) -> ChangeCipherSpec:
        with r.group("change_cipher_spec", "switch to the newly negotiated keys") as ccs:
            offset = ccs.offset
            value = ccs.u8("type", lambda v: "change_cipher_spec" if v == 1 else f"invalid value {v}")
            if value != 1:
                raise DecodeError(f"ChangeCipherSpec must be 1, not {value}", field="change_cipher_spec", offset=offset)
        return cls()

    def encode(self, w: Writer) -> None:
        w.u8(1)

    def to_bytes(self) -> bytes:
        return b"\x01"


def _alert_name(value: int) -> str:
    return name_of(TLSAlert, value)


@dataclass
class Alert:
    """Alert (RFC 5246 section 7.2): a level (warning or fatal) and a description."""

    level: int = AlertLevel.fatal
    description: int = TLSAlert.handshake_failure

    @classmethod
    def decode(cls, r: Reader) -> Alert:
        with r.group("alert", "alert") as alert:
            level = alert.u8("level", lambda v: name_of(AlertLevel, v))
            description = alert.u8("description", _alert_name)
        return cls(level, description)

    def encode(self, w: Writer) -> None:
        w.u8(self.level).u8(self.description)

    def to_bytes(self) -> bytes:
        return bytes([self.level, self.description])

    @property
    def description_name(self) -> str:
        return _alert_name(self.description)

    @property
    def is_fatal(self) -> bool:
        return self.level == AlertLevel.fatal


def _exactly(data: bytes, size: int, what: str) -> bytes:
    if len(data) != size:
        raise EncodeError(f"{what} must be {size} bytes, not {len(data)}")
    return data
