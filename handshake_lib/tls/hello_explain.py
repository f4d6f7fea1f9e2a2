"""ClientHello bytes in words: a note on each field, and the differences between two hellos.

A hex view shows *where* a field is; a learner also needs to know what it is for.  :data:`FIELD_HELP`
holds a sentence or two per field of a ClientHello, keyed by the names the library's decoder gives its
spans (:func:`~handshake_lib.tls.messages.decode_handshake`), and :func:`explain_field` picks the note
for a span.  :func:`client_hello_differences` decodes two encoded ClientHellos and lists, in the order a
reader meets them, every field that differs, each with what was expected and what was found: the
feedback of exercise 02, where a learner's hand-made bytes are compared with the library's encoding of
its specification, :func:`reference_client_hello`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ProtocolError
from ..wire import Span
from .constants import ExtensionType, ProtocolVersion, SignatureScheme, name_of
from .extensions import ServerNameExtension, SignatureAlgorithmsExtension
from .messages import ClientHello, decode_handshake

__all__ = [
    "EXERCISE_SIGNATURE_SCHEMES",
    "FIELD_HELP",
    "client_hello_differences",
    "explain_field",
    "reference_client_hello",
]

# Exercise 02: the signature_algorithms list the learner must send, most preferred first.
EXERCISE_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.ecdsa_secp256r1_sha256,
)

FIELD_HELP: dict[str, str] = {
    "client_hello": "The whole handshake message: a 4-byte header (type and length), then the body.",
    "msg_type": "Handshake message type: 1 is ClientHello, 2 ServerHello, 11 Certificate, 14 ServerHelloDone.",
    "length": "How many bytes follow. Three bytes for a handshake message; two for most vectors inside it.",
    "body": "The ClientHello itself (RFC 5246 section 7.4.1.2).",
    "client_version": (
        "The highest version the client speaks. 0x0303 is TLS 1.2 (TLS 1.2 is 'SSL 3.3'). TLS 1.3 clients still "
        "write 0x0303 here and list their versions in the supported_versions extension instead."
    ),
    "random": (
        "32 bytes the client makes fresh for every handshake. Together with the server's random it goes into "
        "every key, so a recorded handshake cannot be replayed."
    ),
    "session_id": "Empty: a new session. A session id from an earlier connection asks to resume it.",
    "session_id_length": "Length of the session id: 0 for a new session, up to 32.",
    "cipher_suites": (
        "The suites the client can use, most preferred first, two bytes each. The server picks exactly one "
        "(lesson 03)."
    ),
    "cipher_suites_length": "Length of the suite list in bytes: twice the number of suites.",
    "cipher_suite": (
        "One cipher suite: key exchange, bulk cipher and hash in one code point, e.g. 0x009c = "
        "TLS_RSA_WITH_AES_128_GCM_SHA256. 0x00ff is not a suite but a signal (secure renegotiation)."
    ),
    "compression_methods": "Only null (0) is allowed today: TLS compression leaked secrets (CRIME).",
    "compression_methods_length": "Length of the compression list: 1, for the single null method.",
    "extensions": "Everything added after 2005 lives here: a 2-byte length, then type-length-value extensions.",
    "extensions_length": "Total length of all the extensions.",
    "extension": "One extension: a 2-byte type, a 2-byte length, then its data.",
    "extension_type": "Which extension this is (IANA registry): 0 server_name, 13 signature_algorithms...",
    "extension_data": "The extension's own data; what it means depends on the type.",
    "extension_data_length": "Length of this extension's data (0 for the flag-like extensions).",
    "server_name_list": "Server Name Indication (RFC 6066): which host the client wants, sent before any encryption.",
    "server_name": "One server name entry: a type (0 = host_name) and the name.",
    "name_type": "0 is host_name, the only type ever defined.",
    "name": "The host name in ASCII, without a trailing dot; never an IP address. Visible to anyone on the path.",
    "supported_signature_algorithms": (
        "Which signatures the client can verify (RFC 5246 section 7.4.1.4.1). OpenSSL 3 refuses a TLS 1.2 "
        "hello without this list, even for RSA key exchange where nothing is signed in the handshake."
    ),
    "signature_scheme": "One signature scheme: hash and signature algorithm, e.g. 0x0804 rsa_pss_rsae_sha256.",
    "named_group_list": "Groups (curves) the client can use for ECDHE key exchange (RFC 8422, RFC 7919).",
    "named_group": "One group: 29 is x25519, 23 secp256r1 (P-256).",
    "ec_point_format_list": "How elliptic-curve points may be encoded; in practice only 'uncompressed' (0).",
    "ec_point_format": "0 is uncompressed, the only format RFC 8422 still allows.",
    "renegotiated_connection": (
        "renegotiation_info (RFC 5746): empty on a first handshake. It ties a renegotiation to the connection "
        "it renegotiates, closing the 2009 renegotiation attack."
    ),
    "ticket": "session_ticket (RFC 5077): empty asks the server for a ticket to resume with later.",
    "status_type": (
        "status_request (RFC 6066 section 8): 1 (ocsp) asks the server to staple its CA's signed OCSP answer "
        "('this certificate is not revoked') to its certificate, so the client need not ask the CA itself."
    ),
    "responder_id_list": "OCSP responders the client trusts; empty (the usual case) means the server's usual one.",
    "ResponderID": "One trusted OCSP responder, as a DER ResponderID (RFC 6960).",
    "request_extensions": "Extensions for the server's OCSP request (a nonce, say); usually empty.",
    "data": "Bytes of an extension this decoder does not interpret; a server ignores extensions it does not know.",
}


def explain_field(span: Span | None) -> str:
    """A sentence or two about the field ``span`` holds (empty for fields without a note)."""
    if span is None:
        return ""
    if span.name == "extension" and span.meaning:
        return f"The {span.meaning} extension. " + FIELD_HELP["extension"]
    if span.name not in FIELD_HELP and span.name.endswith("_length"):
        what = span.name.removesuffix("_length")
        return f"Length of {what} in bytes: every variable-length field says its length first."
    return FIELD_HELP.get(span.name, "")


def client_hello_differences(found: bytes, expected: bytes) -> list[str]:
    """Field-by-field differences between two encoded ClientHellos, in the order a reader meets them.

    An empty list means the bytes are identical.  Every message says what was expected and what was
    found, and where.
    """
    if found == expected:
        return []
    if not isinstance(found, bytes | bytearray):
        return [f"expected bytes, found {type(found).__name__}"]
    found = bytes(found)
    problems: list[str] = []
    if len(found) < 4:
        return [f"a handshake message starts with a 4-byte header; found only {len(found)} bytes: {found.hex()}"]
    if found[0] != expected[0]:
        problems.append(f"msg_type (byte 0): expected {expected[0]} (client_hello), found {found[0]}")
    body_length = int.from_bytes(found[1:4], "big")
    if body_length != len(found) - 4:
        problems.append(
            f"handshake length (bytes 1-3): says {body_length}, but {len(found) - 4} bytes follow the header"
        )
    try:
        mine, _ = decode_handshake(found)
    except ProtocolError as error:
        return [*problems, f"the bytes do not decode as a ClientHello: {error}"]
    reference, _ = decode_handshake(expected)
    assert isinstance(reference, ClientHello)
    if not isinstance(mine, ClientHello):
        return [*problems, f"expected a ClientHello, found {type(mine).__name__}"]
    for name, want, got in (
        ("client_version", reference.legacy_version, mine.legacy_version),
        ("random", reference.random.hex(), mine.random.hex()),
        ("session_id", reference.session_id.hex(), mine.session_id.hex()),
        ("cipher_suites", [f"0x{s:04x}" for s in reference.cipher_suites], [f"0x{s:04x}" for s in mine.cipher_suites]),
        ("compression_methods", reference.compression_methods.hex(), mine.compression_methods.hex()),
    ):
        if want != got:
            shown_want = f"0x{want:04x}" if isinstance(want, int) else want
            shown_got = f"0x{got:04x}" if isinstance(got, int) else got
            problems.append(f"{name}: expected {shown_want or '(empty)'}, found {shown_got or '(empty)'}")
    want_types = [name_of(ExtensionType, e.extension_type) for e in reference.extensions or ()]
    got_types = [name_of(ExtensionType, e.extension_type) for e in mine.extensions or ()]
    if want_types != got_types:
        problems.append(f"extensions: expected {want_types} in that order, found {got_types}")
    else:
        for want_ext, got_ext in zip(reference.extensions or (), mine.extensions or (), strict=True):
            if want_ext != got_ext:
                problems.append(
                    f"extension {name_of(ExtensionType, want_ext.extension_type)}: expected {want_ext}, found {got_ext}"
                )
    if not problems:
        problems.append(f"the bytes differ: expected {expected.hex()}, found {found.hex()}")
    return problems


def reference_client_hello(client_random: bytes, suites: Sequence[int], server_name: str) -> bytes:
    """Exercise 02's specification, written with the library's message classes (for the tests).

    Its signature is the ``build_client_hello`` stage's, so it can stand in for a learner's encoder.
    """
    return ClientHello(
        legacy_version=ProtocolVersion.TLS1_2,
        random=bytes(client_random),
        session_id=b"",
        cipher_suites=[int(s) for s in suites],
        compression_methods=b"\x00",
        extensions=[
            ServerNameExtension.for_host(server_name),
            SignatureAlgorithmsExtension(list(EXERCISE_SIGNATURE_SCHEMES)),
        ],
    ).to_bytes()
