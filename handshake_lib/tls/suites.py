"""What each TLS 1.2 cipher suite means for key derivation and record protection.

Theory of operation
-------------------
A cipher suite name packs four decisions into one code point:
``TLS_RSA_WITH_AES_128_GCM_SHA256`` says the pre-master secret travels RSA-encrypted (``RSA``), records
are protected with AES-128 in GCM mode, and the PRF (and, for CBC suites, the record MAC) uses SHA-256.
:class:`SuiteParams` spells those decisions out as the numbers the key block and the record layer need
(RFC 5246 section 6.3 and appendix C, RFC 5288 for GCM, RFC 5289 for the SHA-384 PRF).

Two IV lengths, because CBC and GCM use their IVs differently:

* CBC (TLS 1.1 and later) sends a fresh random IV in front of every record (``record_iv_length`` 16).
  The key block still contains a 16-byte ``*_write_IV`` (``fixed_iv_length`` 16) that TLS 1.2 never
  uses; it is generated only because the key block layout says so.
* GCM builds a 12-byte nonce from a 4-byte implicit "salt" taken from the key block
  (``fixed_iv_length`` 4) and an 8-byte explicit part sent with every record (``record_iv_length`` 8).

:func:`key_block_layout` says where each of the six parts sits in the key block; the PRF module cuts
the block with the same lengths (:func:`~handshake_lib.tls.prf.key_block`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HandshakeFailure
from .constants import OPENSSL_NAMES, CipherSuite

__all__ = [
    "SuiteParams",
    "SUITES",
    "RSA_SUITE_NAMES",
    "KEY_BLOCK_PARTS",
    "suite_params",
    "parse_suite_name",
    "openssl_name",
    "key_block_layout",
]


@dataclass(frozen=True)
class SuiteParams:
    """The numbers behind one TLS 1.2 cipher suite."""

    suite: CipherSuite
    key_exchange: str  # "RSA", "ECDHE" or "DHE"
    cipher: str  # "AES-CBC" or "AES-GCM"
    enc_key_length: int  # bytes of AES key
    fixed_iv_length: int  # bytes of *_write_IV in the key block (CBC: 16, unused; GCM: 4-byte salt)
    record_iv_length: int  # bytes of IV / explicit nonce sent in each record (CBC: 16, GCM: 8)
    mac_algorithm: str | None  # "sha1" / "sha256" for CBC's HMAC; None for AEAD suites
    mac_key_length: int  # 0 for GCM: the AEAD tag replaces the MAC
    prf_hash: str  # "sha256", or "sha384" for *_SHA384 suites
    verify_data_length: int = 12
    block_length: int = 16  # AES block size, for CBC padding
    tag_length: int = 16  # GCM authentication tag

    @property
    def name(self) -> str:
        return self.suite.name

    @property
    def is_aead(self) -> bool:
        return self.cipher == "AES-GCM"

    @property
    def mac_length(self) -> int:
        """Bytes of HMAC output appended to each CBC record (equal to the MAC key length in TLS 1.2)."""
        return self.mac_key_length

    @property
    def key_block_length(self) -> int:
        """Bytes of PRF output that :func:`~handshake_lib.tls.prf.key_block` needs."""
        return 2 * (self.mac_key_length + self.enc_key_length + self.fixed_iv_length)


def _cbc(suite: CipherSuite, key_length: int, mac: str, mac_length: int) -> SuiteParams:
    return SuiteParams(suite, "RSA", "AES-CBC", key_length, 16, 16, mac, mac_length, "sha256")


def _gcm(suite: CipherSuite, key_exchange: str, key_length: int, prf_hash: str) -> SuiteParams:
    return SuiteParams(suite, key_exchange, "AES-GCM", key_length, 4, 8, None, 0, prf_hash)


_S = CipherSuite
SUITES: dict[CipherSuite, SuiteParams] = {
    params.suite: params
    for params in (
        _cbc(_S.TLS_RSA_WITH_AES_128_CBC_SHA, 16, "sha1", 20),
        _cbc(_S.TLS_RSA_WITH_AES_256_CBC_SHA, 32, "sha1", 20),
        _cbc(_S.TLS_RSA_WITH_AES_128_CBC_SHA256, 16, "sha256", 32),
        _cbc(_S.TLS_RSA_WITH_AES_256_CBC_SHA256, 32, "sha256", 32),
        _gcm(_S.TLS_RSA_WITH_AES_128_GCM_SHA256, "RSA", 16, "sha256"),
        _gcm(_S.TLS_RSA_WITH_AES_256_GCM_SHA384, "RSA", 32, "sha384"),
        _gcm(_S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE", 16, "sha256"),
        _gcm(_S.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE", 32, "sha384"),
        _gcm(_S.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE", 16, "sha256"),
        _gcm(_S.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE", 32, "sha384"),
        _gcm(_S.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256, "DHE", 16, "sha256"),
        _gcm(_S.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384, "DHE", 32, "sha384"),
    )
}


def suite_params(suite: CipherSuite | int) -> SuiteParams:
    """The parameters of a TLS 1.2 suite we implement; HandshakeFailure for any other."""
    try:
        return SUITES[CipherSuite(suite)]
    except (ValueError, KeyError):
        raise HandshakeFailure(
            f"cipher suite 0x{int(suite):04x} is not a TLS 1.2 suite this library implements"
        ) from None


def parse_suite_name(name: str) -> CipherSuite:
    """``"AES128-GCM-SHA256"`` or ``"TLS_RSA_WITH_AES_128_GCM_SHA256"`` -> the CipherSuite."""
    cleaned = name.strip()
    if cleaned in OPENSSL_NAMES:
        return OPENSSL_NAMES[cleaned]
    try:
        return CipherSuite[cleaned.upper()]
    except KeyError:
        raise ValueError(f"unknown cipher suite name {name!r} (IANA or OpenSSL names are accepted)") from None


# The RSA key-exchange suites the library runs, by OpenSSL name, in the order OPENSSL_NAMES lists them
# (the order the lessons offer them in).
RSA_SUITE_NAMES: tuple[str, ...] = tuple(
    name for name, suite in OPENSSL_NAMES.items() if suite in SUITES and SUITES[suite].key_exchange == "RSA"
)


def openssl_name(suite: CipherSuite | int) -> str:
    """OpenSSL's name for a suite (``"AES128-GCM-SHA256"``); ValueError for one it has no name for here."""
    for name, candidate in OPENSSL_NAMES.items():
        if candidate == suite:
            return name
    raise ValueError(f"no OpenSSL name known for cipher suite 0x{int(suite):04x}")


# The six parts of the key block in RFC 5246 section 6.3 order: name, and the SuiteParams field giving
# its length.  The names are the RFC's; lower-cased they are the fields of prf.KeyBlock.
KEY_BLOCK_PARTS: tuple[tuple[str, str], ...] = (
    ("client_write_MAC_key", "mac_key_length"),
    ("server_write_MAC_key", "mac_key_length"),
    ("client_write_key", "enc_key_length"),
    ("server_write_key", "enc_key_length"),
    ("client_write_IV", "fixed_iv_length"),
    ("server_write_IV", "fixed_iv_length"),
)


def key_block_layout(params: SuiteParams) -> list[tuple[str, int, int]]:
    """``(name, offset, length)`` of the six parts of the key block, in RFC 5246 section 6.3 order.

    The lengths add up to ``params.key_block_length``; a part of length 0 (GCM's MAC keys) is listed too.
    """
    layout, offset = [], 0
    for name, attribute in KEY_BLOCK_PARTS:
        length = getattr(params, attribute)
        layout.append((name, offset, length))
        offset += length
    return layout
