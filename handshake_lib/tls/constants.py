"""TLS code points (IANA "TLS Parameters" registry), as enums, so that every byte has a name.

Only what the course uses is listed; a decoder that meets an unknown value keeps the number and
explains it as ``unknown`` instead of failing, because a real peer may always send something new.
"""

from __future__ import annotations

from enum import IntEnum


class ContentType(IntEnum):
    change_cipher_spec = 20
    alert = 21
    handshake = 22
    application_data = 23


class ProtocolVersion(IntEnum):
    SSL3 = 0x0300
    TLS1_0 = 0x0301
    TLS1_1 = 0x0302
    TLS1_2 = 0x0303
    TLS1_3 = 0x0304


class HandshakeType(IntEnum):
    hello_request = 0
    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    end_of_early_data = 5
    encrypted_extensions = 8
    certificate = 11
    server_key_exchange = 12
    certificate_request = 13
    server_hello_done = 14
    certificate_verify = 15
    client_key_exchange = 16
    finished = 20
    certificate_status = 22  # RFC 6066 section 8: the stapled OCSP response
    key_update = 24
    message_hash = 254


class AlertLevel(IntEnum):
    warning = 1
    fatal = 2


class CipherSuite(IntEnum):
    """Cipher suites by their IANA names.  ``OPENSSL_NAMES`` maps OpenSSL's names to these.

    Every pair in ``OPENSSL_NAMES`` is the one ``openssl ciphers -V`` prints (OpenSSL 3.0; checked by
    ``tests/test_tls_suites_records.py``).
    """

    TLS_RSA_WITH_AES_128_CBC_SHA = 0x002F
    TLS_RSA_WITH_AES_256_CBC_SHA = 0x0035
    TLS_RSA_WITH_AES_128_CBC_SHA256 = 0x003C
    TLS_RSA_WITH_AES_256_CBC_SHA256 = 0x003D
    TLS_RSA_WITH_AES_128_GCM_SHA256 = 0x009C
    TLS_RSA_WITH_AES_256_GCM_SHA384 = 0x009D
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA8
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA9
    TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCAA
    # ECDHE with AES-CBC: HMAC-SHA1 (RFC 4492, the TLS 1.2 PRF), HMAC-SHA256/384 (RFC 5289).
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA = 0xC009
    TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA = 0xC00A
    TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA = 0xC013
    TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA = 0xC014
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 = 0xC023
    TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384 = 0xC024
    TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 = 0xC027
    TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 = 0xC028
    # Finite-field Diffie-Hellman, signed with RSA (RFC 3268, RFC 5246, RFC 5288; groups from RFC 7919).
    TLS_DHE_RSA_WITH_AES_128_CBC_SHA = 0x0033
    TLS_DHE_RSA_WITH_AES_256_CBC_SHA = 0x0039
    TLS_DHE_RSA_WITH_AES_128_CBC_SHA256 = 0x0067
    TLS_DHE_RSA_WITH_AES_256_CBC_SHA256 = 0x006B
    TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 = 0x009E
    TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 = 0x009F
    TLS_AES_128_GCM_SHA256 = 0x1301
    TLS_AES_256_GCM_SHA384 = 0x1302
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303
    TLS_AES_128_CCM_SHA256 = 0x1304
    # Signalling value: "I support secure renegotiation" without an extension (RFC 5746).
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF


OPENSSL_NAMES: dict[str, CipherSuite] = {
    "AES128-SHA": CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    "AES256-SHA": CipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA,
    "AES128-SHA256": CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256,
    "AES256-SHA256": CipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA256,
    "AES128-GCM-SHA256": CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    "AES256-GCM-SHA384": CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
    "ECDHE-RSA-AES128-GCM-SHA256": CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    "ECDHE-RSA-AES256-GCM-SHA384": CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    "ECDHE-ECDSA-AES128-GCM-SHA256": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    "ECDHE-ECDSA-AES256-GCM-SHA384": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    "ECDHE-RSA-CHACHA20-POLY1305": CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    "ECDHE-ECDSA-CHACHA20-POLY1305": CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    "ECDHE-RSA-AES128-SHA": CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    "ECDHE-RSA-AES256-SHA": CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
    "ECDHE-RSA-AES128-SHA256": CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
    "ECDHE-RSA-AES256-SHA384": CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
    "ECDHE-ECDSA-AES128-SHA": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
    "ECDHE-ECDSA-AES256-SHA": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
    "ECDHE-ECDSA-AES128-SHA256": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
    "ECDHE-ECDSA-AES256-SHA384": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
    "DHE-RSA-AES128-GCM-SHA256": CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
    "DHE-RSA-AES256-GCM-SHA384": CipherSuite.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
    "DHE-RSA-CHACHA20-POLY1305": CipherSuite.TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    "DHE-RSA-AES128-SHA": CipherSuite.TLS_DHE_RSA_WITH_AES_128_CBC_SHA,
    "DHE-RSA-AES256-SHA": CipherSuite.TLS_DHE_RSA_WITH_AES_256_CBC_SHA,
    "DHE-RSA-AES128-SHA256": CipherSuite.TLS_DHE_RSA_WITH_AES_128_CBC_SHA256,
    "DHE-RSA-AES256-SHA256": CipherSuite.TLS_DHE_RSA_WITH_AES_256_CBC_SHA256,
}


class ExtensionType(IntEnum):
    server_name = 0
    max_fragment_length = 1
    status_request = 5
    supported_groups = 10
    ec_point_formats = 11
    signature_algorithms = 13
    use_srtp = 14
    heartbeat = 15
    application_layer_protocol_negotiation = 16
    signed_certificate_timestamp = 18
    client_certificate_type = 19
    server_certificate_type = 20
    padding = 21
    encrypt_then_mac = 22
    extended_master_secret = 23
    record_size_limit = 28  # RFC 8449
    session_ticket = 35
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    oid_filters = 48
    post_handshake_auth = 49
    signature_algorithms_cert = 50
    key_share = 51
    renegotiation_info = 0xFF01


class NamedGroup(IntEnum):
    secp256r1 = 23
    secp384r1 = 24
    secp521r1 = 25
    x25519 = 29
    x448 = 30
    ffdhe2048 = 256
    ffdhe3072 = 257
    ffdhe4096 = 258
    # Post-quantum hybrids (draft-ietf-tls-ecdhe-mlkem): what Chromium and OpenSSL 3.5 offer first.
    SecP256r1MLKEM768 = 0x11EB
    X25519MLKEM768 = 0x11EC


class PskKeyExchangeMode(IntEnum):
    """How a PSK may be used (RFC 8446 section 4.2.9): alone, or together with a fresh (EC)DHE."""

    psk_ke = 0
    psk_dhe_ke = 1


class KeyUpdateRequest(IntEnum):
    """KeyUpdate.request_update (RFC 8446 section 4.6.3): whether the peer must answer with its own."""

    update_not_requested = 0
    update_requested = 1


class ECPointFormat(IntEnum):
    uncompressed = 0
    ansiX962_compressed_prime = 1
    ansiX962_compressed_char2 = 2


class SignatureScheme(IntEnum):
    rsa_pkcs1_sha1 = 0x0201
    ecdsa_sha1 = 0x0203
    rsa_pkcs1_sha256 = 0x0401
    rsa_pkcs1_sha384 = 0x0501
    rsa_pkcs1_sha512 = 0x0601
    ecdsa_secp256r1_sha256 = 0x0403
    ecdsa_secp384r1_sha384 = 0x0503
    ecdsa_secp521r1_sha512 = 0x0603
    rsa_pss_rsae_sha256 = 0x0804
    rsa_pss_rsae_sha384 = 0x0805
    rsa_pss_rsae_sha512 = 0x0806
    ed25519 = 0x0807
    ed448 = 0x0808
    rsa_pss_pss_sha256 = 0x0809
    rsa_pss_pss_sha384 = 0x080A
    rsa_pss_pss_sha512 = 0x080B
    # TLS 1.2 SignatureAndHashAlgorithm pairs (hash byte, signature byte) that TLS 1.3 left reserved;
    # OpenSSL 3 still lists them in a TLS 1.2 CertificateRequest.
    dsa_sha1_RESERVED = 0x0202
    rsa_sha224_RESERVED = 0x0301
    dsa_sha224_RESERVED = 0x0302
    ecdsa_sha224_RESERVED = 0x0303
    dsa_sha256_RESERVED = 0x0402
    dsa_sha384_RESERVED = 0x0502
    dsa_sha512_RESERVED = 0x0602


class CertificateStatusType(IntEnum):
    """What a ``status_request`` asks for and a CertificateStatus carries (RFC 6066 section 8, RFC 6961)."""

    ocsp = 1
    ocsp_multi_RESERVED = 2  # RFC 6961's status_request_v2, never deployed widely and deprecated by RFC 8446


class ClientCertificateType(IntEnum):
    """The certificate kinds a server asks for in CertificateRequest (RFC 5246 7.4.4, RFC 8422 5.5)."""

    rsa_sign = 1
    dss_sign = 2
    rsa_fixed_dh = 3
    dss_fixed_dh = 4
    rsa_ephemeral_dh_RESERVED = 5
    dss_ephemeral_dh_RESERVED = 6
    fortezza_dms_RESERVED = 20
    ecdsa_sign = 64
    rsa_fixed_ecdh = 65
    ecdsa_fixed_ecdh = 66


def name_of(enum: type[IntEnum], value: int) -> str:
    """``CipherSuite, 0x9c`` -> ``'TLS_RSA_WITH_AES_128_GCM_SHA256'``; unknown values are named as such."""
    try:
        return enum(value).name
    except ValueError:
        return f"unknown {enum.__name__} 0x{value:04x}"
