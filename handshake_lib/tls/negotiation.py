"""How a TLS 1.2 server chooses, and how a client asks: plain functions the notebooks can call.

Theory of operation
-------------------
The client offers, the server picks; nothing is negotiated back and forth.

* **Version** (RFC 5246 appendix E.1, RFC 8446 section 4.2.1).  If the ClientHello carries
  ``supported_versions``, that list is the whole offer and ``legacy_version`` is ignored; the server
  picks the highest version it shares.  Without the extension the client offers every version up to
  ``legacy_version`` (never TLS 1.3, which requires the extension), and the server answers with the
  highest version it supports that is not above it.  No overlap: ``protocol_version`` alert.
* **Cipher suite** (RFC 5246 section 7.4.1.3).  The server takes one suite from the client's list.
  Which one is policy: OpenSSL walks its own list first when ``SSL_OP_CIPHER_SERVER_PREFERENCE`` is
  set (Python's ``ssl`` sets it on every server context) and the client's list otherwise.  Signalling
  values (SCSV, GREASE) are never chosen.  No overlap: ``handshake_failure``.
* **Extensions** (RFC 5246 section 7.4.1.4).  A server may only answer an extension the client sent
  (otherwise the client aborts with ``unsupported_extension``), so :func:`server_extensions` starts
  from the client's offer.  The order follows OpenSSL's, so our ServerHello looks like a real one.

:func:`client_hello_for` builds a TLS 1.2 ClientHello an OpenSSL 3 server accepts.  OpenSSL 3
refuses a ClientHello without ``signature_algorithms`` even for RSA key exchange, so it is always
included.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from typing import Literal

from ..errors import HandshakeFailure, ProtocolVersionError
from .constants import (
    CipherSuite,
    ECPointFormat,
    ExtensionType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
    name_of,
)
from .extensions import (
    ECPointFormatsExtension,
    EncryptThenMacExtension,
    ExtendedMasterSecretExtension,
    Extension,
    RenegotiationInfoExtension,
    ServerNameExtension,
    SessionTicketExtension,
    SignatureAlgorithmsExtension,
    StatusRequestExtension,
    SupportedGroupsExtension,
    SupportedVersionsExtension,
)
from .messages import ClientHello
from .suites import SUITES

__all__ = [
    "TLS12_SUITES",
    "TLS13_SUITES",
    "ECC_SUITES",
    "DHE_SUITES",
    "suite_authentication",
    "client_groups",
    "choose_group",
    "CBC_SUITES",
    "DEFAULT_SIGNATURE_SCHEMES",
    "DEFAULT_GROUPS",
    "choose_version",
    "choose_cipher_suite",
    "server_extensions",
    "client_hello_for",
    "client_asks_for_ocsp",
    "suite_allowed_in",
    "renegotiation_info",
    "is_ip_address",
]

TLS13_SUITES = frozenset(
    {
        CipherSuite.TLS_AES_128_GCM_SHA256,
        CipherSuite.TLS_AES_256_GCM_SHA384,
        CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        CipherSuite.TLS_AES_128_CCM_SHA256,
    }
)
# Suites with SHA-256/384 PRFs or AEADs did not exist before TLS 1.2 (RFC 5246 section 1.2): read from the
# suite table, so a suite added there is never allowed in TLS 1.0 or 1.1 by omission.
_TLS12_ONLY = frozenset(suite for suite, params in SUITES.items() if params.tls12_only)
TLS12_SUITES = frozenset(
    s for s in CipherSuite if s not in TLS13_SUITES and s != CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
)
# Suites whose key exchange uses elliptic curves: they make ec_point_formats meaningful (RFC 8422).
ECC_SUITES = frozenset(s for s in CipherSuite if s.name.startswith("TLS_ECDHE_"))
# Suites with finite-field ephemeral Diffie-Hellman (RFC 5246; groups from RFC 7919).
DHE_SUITES = frozenset(s for s in CipherSuite if s.name.startswith("TLS_DHE_"))
# Suites with a CBC cipher and a separate MAC: the only ones encrypt_then_mac applies to (RFC 7366).
CBC_SUITES = frozenset(s for s in CipherSuite if "_CBC_" in s.name)

# What OpenSSL 3's client offers for TLS 1.2, minus SHA-224 and DSA: enough for any RSA or ECDSA server.
DEFAULT_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.ecdsa_secp521r1_sha512,
    SignatureScheme.ed25519,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)
DEFAULT_GROUPS: tuple[NamedGroup, ...] = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)


def suite_allowed_in(suite: int, version: int) -> bool:
    """Whether ``suite`` can be used with ``version`` (1.3 suites only in 1.3, SHA-2/AEAD suites from 1.2)."""
    if suite in TLS13_SUITES:
        return version == ProtocolVersion.TLS1_3
    if version == ProtocolVersion.TLS1_3:
        return False
    if suite in _TLS12_ONLY:
        return version == ProtocolVersion.TLS1_2
    return suite in TLS12_SUITES


def _is_signal(value: int) -> bool:
    grease = (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)
    return grease or value == CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV


def choose_version(client_hello: ClientHello, server_supported: Iterable[int]) -> ProtocolVersion:
    """The version a server supporting ``server_supported`` answers ``client_hello`` with.

    Raises ProtocolVersionError when the two sides share no version.
    """
    supported = {int(v) for v in server_supported}
    if not supported:
        raise ValueError("the server must support at least one version")
    offer = client_hello.extension(ExtensionType.supported_versions)
    if isinstance(offer, SupportedVersionsExtension):
        # RFC 8446 section 4.2.1: the extension is the whole offer; legacy_version is ignored.
        common = [v for v in offer.versions if v in supported and v in ProtocolVersion._value2member_map_]
        if not common:
            raise ProtocolVersionError(f"no common version in supported_versions {[hex(v) for v in offer.versions]}")
        return ProtocolVersion(max(common))
    # Without the extension, TLS 1.3 can never be chosen, however high legacy_version is.
    ceiling = min(client_hello.legacy_version, ProtocolVersion.TLS1_2)
    candidates = [v for v in supported if v <= ceiling and v != ProtocolVersion.TLS1_3]
    if client_hello.legacy_version < ProtocolVersion.SSL3 or not candidates:
        raise ProtocolVersionError(
            f"client offers up to 0x{client_hello.legacy_version:04x}, server supports "
            f"{sorted(hex(v) for v in supported)}"
        )
    return ProtocolVersion(max(candidates))


def choose_cipher_suite(
    offered: Sequence[int],
    supported: Sequence[int],
    *,
    prefer: Literal["server", "client"] = "server",
    version: int | None = None,
) -> CipherSuite:
    """The cipher suite a server with ``supported`` (in its order of preference) picks from ``offered``.

    ``prefer="server"`` walks the server's list (OpenSSL with SSL_OP_CIPHER_SERVER_PREFERENCE, the
    default of Python's ``ssl`` servers); ``"client"`` walks the client's.  With ``version``, suites
    that cannot run in that version are skipped.  Raises HandshakeFailure when nothing is shared.
    """
    if prefer not in ("server", "client"):
        raise ValueError(f"prefer must be 'server' or 'client', not {prefer!r}")

    def usable(suite: int) -> bool:
        if _is_signal(suite) or suite not in CipherSuite._value2member_map_:
            return False
        return version is None or suite_allowed_in(suite, version)

    offered_set = {s for s in offered if usable(s)}
    supported_set = {s for s in supported if usable(s)}
    order = supported if prefer == "server" else offered
    other = offered_set if prefer == "server" else supported_set
    for suite in order:
        if usable(suite) and suite in other:
            return CipherSuite(suite)
    raise HandshakeFailure("no cipher suite in common")


def server_extensions(
    client_hello: ClientHello,
    *,
    cipher_suite: int,
    session_tickets: bool = False,
    extended_master_secret: bool = True,
    acknowledge_server_name: bool = False,
    ec_point_formats: Sequence[int] = (ECPointFormat.uncompressed,),
    encrypt_then_mac: bool = True,
    staple_ocsp: bool = False,
) -> list[Extension]:
    """The extensions a TLS 1.2 server puts in its ServerHello, given the ClientHello and its choices.

    Only extensions the client sent (or signalled) are answered:

    * ``renegotiation_info``, empty, when the client sent the extension or the SCSV (RFC 5746 3.6);
    * ``server_name``, empty, if the server used the name and says so (RFC 6066; OpenSSL only does
      with a servername callback, so it is off by default);
    * ``ec_point_formats`` when the chosen suite uses ECC (RFC 8422 section 5.2): ``uncompressed``,
      the only format RFC 8422 still allows; OpenSSL 3 also lists the deprecated compressed ones
      (pass ``ec_point_formats=(0, 1, 2)`` to reproduce its bytes);
    * ``session_ticket``, empty, when the server will send a NewSessionTicket (RFC 5077 3.2);
    * ``encrypt_then_mac``, empty, when both sides want it and the chosen suite is CBC (RFC 7366
      section 3: an AEAD suite has no MAC to move, so the server must not echo it);
    * ``extended_master_secret`` when both sides want it (RFC 7627 section 5.1);
    * ``status_request``, empty, when the client asked for an OCSP response and the server will staple
      one (``staple_ocsp``: it has one).  OpenSSL's server acknowledges only when its status callback
      has a response, and so do we: the acknowledgement then always means a CertificateStatus follows.

    ``encrypt_then_mac`` and ``extended_master_secret`` default to on, as in OpenSSL's server.
    """
    sent = {e.extension_type for e in client_hello.extensions or ()}
    answer: list[Extension] = []
    if ExtensionType.renegotiation_info in sent or (
        CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in client_hello.cipher_suites
    ):
        answer.append(RenegotiationInfoExtension(b""))
    if acknowledge_server_name and ExtensionType.server_name in sent:
        answer.append(ServerNameExtension([]))
    if cipher_suite in ECC_SUITES and ExtensionType.ec_point_formats in sent:
        answer.append(ECPointFormatsExtension(list(ec_point_formats)))
    if session_tickets and ExtensionType.session_ticket in sent:
        answer.append(SessionTicketExtension(b""))
    if staple_ocsp and client_asks_for_ocsp(client_hello):
        answer.append(StatusRequestExtension())  # OpenSSL's place: after session_ticket
    if encrypt_then_mac and cipher_suite in CBC_SUITES and ExtensionType.encrypt_then_mac in sent:
        answer.append(EncryptThenMacExtension())  # OpenSSL's order: just before extended_master_secret
    if extended_master_secret and ExtensionType.extended_master_secret in sent:
        answer.append(ExtendedMasterSecretExtension())
    return answer


def client_asks_for_ocsp(client_hello: ClientHello) -> bool:
    """Whether ``client_hello`` has ``status_request`` of type ocsp (another type is ignored, as OpenSSL does)."""
    request = client_hello.extension(ExtensionType.status_request)
    return isinstance(request, StatusRequestExtension) and request.asks_for_ocsp


def client_hello_for(
    server_name: str | None,
    suites: Sequence[int],
    *,
    client_random: bytes | None = None,
    session_id: bytes = b"",
    signature_schemes: Sequence[int] = DEFAULT_SIGNATURE_SCHEMES,
    groups: Sequence[int] = DEFAULT_GROUPS,
    extended_master_secret: bool = True,
    session_ticket: bool | bytes = False,
    secure_renegotiation: bool = True,
    encrypt_then_mac: bool = False,
    status_request: bool = False,
) -> ClientHello:
    """A TLS 1.2 ClientHello offering ``suites`` (in that order) to ``server_name``.

    ``server_name`` goes in SNI unless it is None or an IP address (RFC 6066 forbids literal
    addresses).  ``supported_groups`` and ``ec_point_formats`` are added only when an ECDHE suite is
    offered (``supported_groups`` alone when only DHE suites are: RFC 7919 section 3).
    ``extended_master_secret`` changes how the master secret is derived (RFC 7627) when the
    server agrees; turn it off to get the classic RFC 5246 derivation.  ``encrypt_then_mac`` offers
    RFC 7366 (MAC over the ciphertext), last, as our client sends it; it is added only when a CBC suite
    is offered, the only kind it changes.  ``status_request`` asks the server to staple an OCSP response
    (RFC 6066 section 8: status_type ocsp, no responder ids, no request extensions).  ``client_random``
    defaults to 32 fresh bytes from ``os.urandom``; pass fixed bytes for a deterministic replay.
    """
    if not suites:
        raise ValueError("offer at least one cipher suite")
    random = os.urandom(32) if client_random is None else client_random
    extensions: list[Extension] = []
    if server_name is not None and not is_ip_address(server_name):
        extensions.append(ServerNameExtension.for_host(server_name.rstrip(".")))
    if any(s in ECC_SUITES for s in suites):
        extensions.append(ECPointFormatsExtension([ECPointFormat.uncompressed]))
        extensions.append(SupportedGroupsExtension(list(groups)))
    elif any(s in DHE_SUITES for s in suites):
        # RFC 7919 section 3: a client offering only DHE names its finite-field groups in supported_groups.
        extensions.append(SupportedGroupsExtension(list(groups)))
    if isinstance(session_ticket, bytes) or session_ticket:
        # True asks for a ticket (empty extension); bytes hand back one the server gave us (RFC 5077 3.1).
        extensions.append(SessionTicketExtension(session_ticket if isinstance(session_ticket, bytes) else b""))
    if status_request:
        extensions.append(StatusRequestExtension())  # after session_ticket, as OpenSSL orders them
    extensions.append(SignatureAlgorithmsExtension(list(signature_schemes)))
    if extended_master_secret:
        extensions.append(ExtendedMasterSecretExtension())
    if secure_renegotiation:
        extensions.append(RenegotiationInfoExtension(b""))
    if encrypt_then_mac and any(s in CBC_SUITES for s in suites):
        extensions.append(EncryptThenMacExtension())
    return ClientHello(
        legacy_version=ProtocolVersion.TLS1_2,
        random=random,
        session_id=session_id,
        cipher_suites=list(suites),
        compression_methods=b"\x00",
        extensions=extensions,
    )


def is_ip_address(name: str) -> bool:
    """Whether ``name`` is an IP address, which server_name (SNI) never carries (RFC 6066 section 3)."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def suite_authentication(suite: int) -> str:
    """Which certificate key a suite needs: ``"ECDSA"`` for TLS_ECDHE_ECDSA_*, ``"RSA"`` for every other
    suite here (TLS_RSA_* encrypts to it, TLS_ECDHE_RSA_* and TLS_DHE_RSA_* sign with it)."""
    return "ECDSA" if "_ECDSA_" in name_of(CipherSuite, suite) else "RSA"


def client_groups(client_hello: ClientHello) -> list[int] | None:
    """The groups of the client's ``supported_groups``, in its order; None when it sent none."""
    extension = client_hello.extension(ExtensionType.supported_groups)
    return list(extension.groups) if isinstance(extension, SupportedGroupsExtension) else None


def choose_group(client_hello: ClientHello, suite: int, server_groups: Sequence[int]) -> int | None:
    """The group a server with ``server_groups`` (its order of preference) uses for ``suite``; None: no fit.

    ECDHE (RFC 8422 section 5.1): a group both support, or none (the suite cannot be chosen).  A client that
    sent no ``supported_groups`` is taken to support secp256r1 only, as RFC 8422 section 4 says a server
    may assume (OpenSSL does the same).  DHE (RFC 7919 section 4): an ffdhe group both support; a client that
    names no ffdhe group at all gets the server's first one (RFC 7919 lets the server pick its own), while one
    that names ffdhe groups but none of ours is refused.
    """
    offered = client_groups(client_hello)
    finite = [g for g in server_groups if g in (NamedGroup.ffdhe2048, NamedGroup.ffdhe3072)]
    curves = [g for g in server_groups if g not in finite]
    if suite in DHE_SUITES:
        named = [g for g in offered or () if 256 <= g < 512]
        if not named:
            return finite[0] if finite else None
        return next((g for g in finite if g in named), None)
    if suite in ECC_SUITES:
        available = offered if offered is not None else [NamedGroup.secp256r1]
        return next((g for g in curves if g in available), None)
    return None


def renegotiation_info(
    sender: Literal["client", "server"], client_verify_data: bytes, server_verify_data: bytes
) -> bytes:
    """What the renegotiation_info in ``sender``'s hello carries on a renegotiation (RFC 5746 section 3.1):
    the client's last Finished verify_data in ClientHello (3.5), the client's then the server's in ServerHello
    (3.6, 3.7).  Each side builds its own hello's value and checks the peer's against the same function
    (on a first handshake both verify_data are still empty, and so is the extension)."""
    if sender == "client":
        return client_verify_data
    return client_verify_data + server_verify_data
