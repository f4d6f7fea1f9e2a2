"""What each TLS 1.2 cipher suite means for key derivation and record protection.

Theory of operation
-------------------
A cipher suite name packs four decisions into one code point:
``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`` says the pre-master secret comes from an ephemeral elliptic-curve
Diffie-Hellman exchange (``ECDHE``) whose parameters the server signs with the RSA key of its certificate
(``RSA``), records are protected with AES-128 in GCM mode, and the PRF (and, for CBC suites, the record
MAC) uses SHA-256.  :class:`SuiteParams` spells those decisions out as the numbers the key block and the
record layer need (RFC 5246 section 6.3 and appendix C; RFC 5288 for GCM, RFC 5289 for the ECDHE suites
with SHA-256/384 and the SHA-384 PRF, RFC 7905 for ChaCha20-Poly1305).

Key exchange and authentication are two fields because they are two questions.  ``key_exchange`` is how
the pre-master secret is agreed: ``"RSA"`` (the client encrypts it to the server's RSA key: whoever gets
that key later can decrypt a recorded session), ``"ECDHE"`` or ``"DHE"`` (a fresh Diffie-Hellman key pair
per handshake, thrown away afterwards: forward secrecy).  ``authentication`` is the kind of key the
server's certificate holds and signs the ServerKeyExchange with: ``"RSA"`` or ``"ECDSA"``.  Neither
changes anything in the key block or the records: those depend on the cipher, the MAC and the PRF only.

Three IV layouts, because CBC, GCM and ChaCha20-Poly1305 use their IVs differently.  The key block holds a
``*_write_IV`` of ``fixed_iv_length`` bytes per direction; each record carries ``record_iv_length`` more:

* **CBC** (TLS 1.1 and later) sends a fresh random IV in front of every record (``record_iv_length`` 16).
  The key block still contains a 16-byte ``*_write_IV`` (``fixed_iv_length`` 16) that TLS 1.2 never
  uses; it is generated only because the key block layout says so.  The MAC key is 20 bytes for
  HMAC-SHA1, 32 for HMAC-SHA256 and 48 for HMAC-SHA384 (the ``*_CBC_SHA384`` suites of RFC 5289), and
  the MAC is as long as its key.
* **GCM** (RFC 5288) builds a 12-byte nonce from a 4-byte implicit "salt" taken from the key block
  (``fixed_iv_length`` 4) and an 8-byte explicit part sent with every record (``record_iv_length`` 8)::

      nonce = salt (4, key block) + explicit_nonce (8, in the record)

* **ChaCha20-Poly1305** (RFC 7905) sends no nonce at all (``record_iv_length`` 0): the whole 12-byte
  nonce is the key block's IV (``fixed_iv_length`` 12) XORed with the 64-bit sequence number, padded on
  the left with four zero bytes::

      nonce = write_IV (12, key block) XOR (00 00 00 00 + seq_num (8))

  The record is just ciphertext + 16-byte tag: eight bytes shorter than GCM's, and the nonce can never
  repeat because the sequence number never does.

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
    "KEY_EXCHANGES",
    "AUTHENTICATIONS",
    "AEAD_CIPHERS",
    "CIPHERS",
    "MAC_LENGTHS",
    "RSA_SUITE_NAMES",
    "KEY_BLOCK_PARTS",
    "suite_params",
    "parse_suite_name",
    "openssl_name",
    "key_block_layout",
]


KEY_EXCHANGES = ("RSA", "ECDHE", "DHE")
AUTHENTICATIONS = ("RSA", "ECDSA")
AEAD_CIPHERS = ("AES-GCM", "CHACHA20-POLY1305")
CIPHERS = ("AES-CBC", *AEAD_CIPHERS)
# HMAC output (and key) length by hash: the CBC suites' record MAC (RFC 5246 appendix C, RFC 5289).
MAC_LENGTHS = {"sha1": 20, "sha256": 32, "sha384": 48}


@dataclass(frozen=True)
class SuiteParams:
    """The numbers behind one TLS 1.2 cipher suite."""

    suite: CipherSuite
    key_exchange: str  # "RSA", "ECDHE" or "DHE": how the pre-master secret is agreed
    authentication: str  # "RSA" or "ECDSA": the server certificate's key, which signs (or decrypts, for RSA kx)
    cipher: str  # "AES-CBC", "AES-GCM" or "CHACHA20-POLY1305"
    enc_key_length: int  # bytes of cipher key
    fixed_iv_length: int  # bytes of *_write_IV in the key block (CBC: 16, unused; GCM: 4-byte salt; ChaCha: 12)
    record_iv_length: int  # bytes of IV / explicit nonce sent in each record (CBC: 16, GCM: 8, ChaCha: 0)
    mac_algorithm: str | None  # "sha1" / "sha256" / "sha384" for CBC's HMAC; None for AEAD suites
    mac_key_length: int  # 0 for AEAD suites: the tag replaces the MAC
    prf_hash: str  # "sha256", or "sha384" for *_SHA384 suites
    verify_data_length: int = 12
    block_length: int = 16  # AES block size, for CBC padding
    tag_length: int = 16  # GCM and Poly1305 authentication tag

    def __post_init__(self) -> None:
        # The table below is typed by hand: a misspelt word would silently select the wrong construction.
        if self.key_exchange not in KEY_EXCHANGES or self.authentication not in AUTHENTICATIONS:
            raise ValueError(f"{self.suite.name}: unknown key exchange or authentication")
        if self.cipher not in CIPHERS:
            raise ValueError(f"{self.suite.name}: unknown cipher {self.cipher!r}")
        mac_length = MAC_LENGTHS.get(self.mac_algorithm or "", 0)
        if (self.mac_algorithm is None) != self.is_aead or mac_length != self.mac_key_length:
            raise ValueError(f"{self.suite.name}: MAC and cipher do not fit together")

    @property
    def name(self) -> str:
        return self.suite.name

    @property
    def is_aead(self) -> bool:
        """AES-GCM or ChaCha20-Poly1305: no MAC key, no padding, no encrypt-then-MAC."""
        return self.cipher in AEAD_CIPHERS

    @property
    def forward_secret(self) -> bool:
        """An ephemeral key exchange: the server's long-term key alone cannot decrypt a recorded session."""
        return self.key_exchange in ("ECDHE", "DHE")

    @property
    def tls12_only(self) -> bool:
        """SHA-256/384 MACs and AEADs came with TLS 1.2 (RFC 5246 section 1.2); the CBC-SHA suites are older."""
        return self.is_aead or self.mac_algorithm != "sha1"

    @property
    def mac_length(self) -> int:
        """Bytes of HMAC output appended to each CBC record (equal to the MAC key length in TLS 1.2)."""
        return self.mac_key_length

    @property
    def key_block_length(self) -> int:
        """Bytes of PRF output that :func:`~handshake_lib.tls.prf.key_block` needs."""
        return 2 * (self.mac_key_length + self.enc_key_length + self.fixed_iv_length)


def _cbc(
    suite: CipherSuite, key_exchange: str, authentication: str, key_length: int, mac: str, prf_hash: str = "sha256"
) -> SuiteParams:
    return SuiteParams(
        suite, key_exchange, authentication, "AES-CBC", key_length, 16, 16, mac, MAC_LENGTHS[mac], prf_hash
    )


def _gcm(suite: CipherSuite, key_exchange: str, authentication: str, key_length: int, prf_hash: str) -> SuiteParams:
    return SuiteParams(suite, key_exchange, authentication, "AES-GCM", key_length, 4, 8, None, 0, prf_hash)


def _chacha(suite: CipherSuite, key_exchange: str, authentication: str) -> SuiteParams:
    # RFC 7905 section 2: a 256-bit key, a 96-bit IV in the key block, nothing sent per record, the SHA-256 PRF.
    return SuiteParams(suite, key_exchange, authentication, "CHACHA20-POLY1305", 32, 12, 0, None, 0, "sha256")


_S = CipherSuite
SUITES: dict[CipherSuite, SuiteParams] = {
    params.suite: params
    for params in (
        # RSA key exchange (RFC 5246, RFC 5288).
        _cbc(_S.TLS_RSA_WITH_AES_128_CBC_SHA, "RSA", "RSA", 16, "sha1"),
        _cbc(_S.TLS_RSA_WITH_AES_256_CBC_SHA, "RSA", "RSA", 32, "sha1"),
        _cbc(_S.TLS_RSA_WITH_AES_128_CBC_SHA256, "RSA", "RSA", 16, "sha256"),
        _cbc(_S.TLS_RSA_WITH_AES_256_CBC_SHA256, "RSA", "RSA", 32, "sha256"),
        _gcm(_S.TLS_RSA_WITH_AES_128_GCM_SHA256, "RSA", "RSA", 16, "sha256"),
        _gcm(_S.TLS_RSA_WITH_AES_256_GCM_SHA384, "RSA", "RSA", 32, "sha384"),
        # ECDHE, signed with RSA or ECDSA (RFC 8422; RFC 5289 for SHA-256/384; RFC 7905 for ChaCha20).
        _gcm(_S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "ECDHE", "RSA", 16, "sha256"),
        _gcm(_S.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "ECDHE", "RSA", 32, "sha384"),
        _gcm(_S.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "ECDHE", "ECDSA", 16, "sha256"),
        _gcm(_S.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "ECDHE", "ECDSA", 32, "sha384"),
        _chacha(_S.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE", "RSA"),
        _chacha(_S.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "ECDHE", "ECDSA"),
        _cbc(_S.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE", "RSA", 16, "sha1"),
        _cbc(_S.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE", "RSA", 32, "sha1"),
        _cbc(_S.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "ECDHE", "RSA", 16, "sha256"),
        _cbc(_S.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384, "ECDHE", "RSA", 32, "sha384", "sha384"),
        _cbc(_S.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE", "ECDSA", 16, "sha1"),
        _cbc(_S.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "ECDHE", "ECDSA", 32, "sha1"),
        _cbc(_S.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, "ECDHE", "ECDSA", 16, "sha256"),
        _cbc(_S.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, "ECDHE", "ECDSA", 32, "sha384", "sha384"),
        # Finite-field DHE, signed with RSA (RFC 5246, RFC 5288, RFC 7905; groups from RFC 7919).
        _gcm(_S.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256, "DHE", "RSA", 16, "sha256"),
        _gcm(_S.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384, "DHE", "RSA", 32, "sha384"),
        _chacha(_S.TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "DHE", "RSA"),
        _cbc(_S.TLS_DHE_RSA_WITH_AES_128_CBC_SHA, "DHE", "RSA", 16, "sha1"),
        _cbc(_S.TLS_DHE_RSA_WITH_AES_256_CBC_SHA, "DHE", "RSA", 32, "sha1"),
        _cbc(_S.TLS_DHE_RSA_WITH_AES_128_CBC_SHA256, "DHE", "RSA", 16, "sha256"),
        _cbc(_S.TLS_DHE_RSA_WITH_AES_256_CBC_SHA256, "DHE", "RSA", 32, "sha256"),
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
