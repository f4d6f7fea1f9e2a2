"""RSA key exchange: the client picks the pre-master secret and sends it encrypted to the server's key.

Theory of operation
-------------------
In the ``TLS_RSA_WITH_*`` suites the client makes up 48 bytes, the *pre-master secret*: the two bytes
of the highest version it offered in ClientHello (to stop a version rollback), then 46 random bytes
(RFC 5246 section 7.4.7.1).  It encrypts them with RSAES-PKCS1-v1_5 under the public key in the
server's certificate and sends the result in ClientKeyExchange.  Only the holder of the private key
can recover them, which is also why this exchange has no forward secrecy: whoever steals the key
later can decrypt every recorded session (lesson 09).

The server's side is where the danger lies.  Bleichenbacher (1998) showed that a server which reveals
*whether* a ciphertext had valid PKCS#1 padding (by a different alert, a different timing, or an early
return) is an oracle that lets an attacker decrypt a recorded ClientKeyExchange with about a million
queries; ROBOT (2017) found the bug alive in many products.  The countermeasure of RFC 5246 section
7.4.7.1: generate a random pre-master secret R *before* decrypting, and if anything is wrong (padding,
length, version bytes) carry on with R as if nothing happened.  The handshake then fails later, at
Finished, with exactly the same alert as a client that simply had the wrong key: the attacker learns
nothing.

(RFC 5246 itself only replaces the version bytes when they alone are wrong; OpenSSL, and this module,
treat every failure the same way and continue with R.  Either way the master secrets differ and the
Finished check fails.)

Implicit rejection.  cryptography 50 (OpenSSL 3.2 and later underneath) does not raise on bad PKCS#1
v1.5 padding: it returns a *synthetic* plaintext derived deterministically from the private key and the
ciphertext (draft-irtf-cfrg-rsa-guidance "implicit rejection"), so the decryption call itself no longer
leaks through an exception.  The synthetic message almost never has 48 bytes and the right version, so
our checks still select R; and older versions, which raise ValueError, land in the same place.  We
handle both, with one code path.

A teaching view, set apart at the end of the module.  To *show* the padding, lesson 05 undoes the
encryption with the textbook formula ``m = c^d mod n`` using the private numbers of a key it made itself
(:func:`padded_block`) and reads the block with a :class:`~handshake_lib.wire.Reader` like any other wire
structure (:func:`read_padded_block`), so a hex view can name ``00 02 <nonzero padding> 00 <message>``
and say what is wrong with a tampered one.  That is a picture of the oracle Bleichenbacher needs, not a
way to decrypt: the protocol code never calls it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import DecodeError
from ..wire import Reader, Span
from .constants import ProtocolVersion

__all__ = [
    "PRE_MASTER_SECRET_LENGTH",
    "make_pre_master_secret",
    "encrypt_pre_master_secret",
    "decrypt_pre_master_secret",
    # the teaching view (lesson 05): to look at the padding, never to decrypt
    "PaddingCheck",
    "padded_block",
    "pre_master_secret_spans",
    "read_padded_block",
    "tamper",
]

PRE_MASTER_SECRET_LENGTH = 48

RandomBytes = Callable[[int], bytes]


def make_pre_master_secret(client_version: int, random_bytes: RandomBytes = os.urandom) -> bytes:
    """client_version (2 bytes, the version offered in ClientHello) + 46 random bytes."""
    return client_version.to_bytes(2, "big") + random_bytes(PRE_MASTER_SECRET_LENGTH - 2)


def encrypt_pre_master_secret(pre_master_secret: bytes, server_public_key: rsa.RSAPublicKey) -> bytes:
    """RSAES-PKCS1-v1_5 encryption: the body of an RSA ClientKeyExchange (without its 2-byte length)."""
    return server_public_key.encrypt(pre_master_secret, padding.PKCS1v15())


def _select(condition: int, if_true: bytes, if_false: bytes) -> bytes:
    """``if_true`` when condition is 1 else ``if_false``, chosen with arithmetic instead of a branch.

    Both inputs must have the same length.  Python gives no real constant-time guarantee (big-integer
    arithmetic and allocation have their own timing), but the *structure* is the one a C
    implementation uses: no secret-dependent branch, no early return.
    """
    mask = -condition & ((1 << (8 * len(if_true))) - 1)  # all ones or all zeros
    chosen = (int.from_bytes(if_true, "big") & mask) | (int.from_bytes(if_false, "big") & ~mask)
    return (chosen & ((1 << (8 * len(if_true))) - 1)).to_bytes(len(if_true), "big")


def decrypt_pre_master_secret(
    encrypted_pre_master_secret: bytes,
    server_private_key: rsa.RSAPrivateKey,
    client_version: int,
    random_bytes: RandomBytes = os.urandom,
) -> bytes:
    """Recover the pre-master secret, or a random one if anything is wrong (and never say which).

    ``client_version`` is the version the client offered in ClientHello (not the negotiated one).
    The result always has 48 bytes and starts with ``client_version``; this function never raises
    because of the ciphertext's contents.
    """
    # 1. R first, so that the work done does not depend on what decryption will find.
    fallback = random_bytes(PRE_MASTER_SECRET_LENGTH)
    expected_version = client_version.to_bytes(2, "big")
    # 2. Decrypt.  Old cryptography raises on bad padding; new versions return a synthetic message.
    try:
        message = server_private_key.decrypt(encrypted_pre_master_secret, padding.PKCS1v15())
        decrypted = 1
    except ValueError:
        message = b""
        decrypted = 0
    # 3. Every check contributes to one flag; none of them returns early.
    length_ok = int(len(message) == PRE_MASTER_SECRET_LENGTH)
    # Pad or cut to 48 bytes so the selection below always works on equal lengths.
    candidate = (message + bytes(PRE_MASTER_SECRET_LENGTH))[:PRE_MASTER_SECRET_LENGTH]
    version_ok = int(candidate[0] == expected_version[0]) & int(candidate[1] == expected_version[1])
    good = decrypted & length_ok & version_ok
    secret = _select(good, candidate, fallback)
    # The version bytes are always the ones the client offered (RFC 5246: client_version || ...).
    return expected_version + secret[2:]


# -- a teaching view of the padding: to LOOK at PKCS#1 v1.5, never to decrypt -----------------------------
# Lesson 05 shows the learner the block inside the ciphertext.  The functions below undo the encryption
# with the textbook formula m = c^d mod n and name the parts of the block.  They skip every protection
# a real decryption needs (blinding, constant time, implicit rejection, the countermeasure above) and
# they *report* what is wrong with the padding, which is exactly what a server must never reveal.
# Nothing in the protocol code calls them; decrypt_pre_master_secret is the only way this library
# decrypts a ClientKeyExchange.


def _version_name(value: int) -> str:
    try:
        return f"{ProtocolVersion(value).name} (0x{value:04x})"
    except ValueError:
        return f"unknown version 0x{value:04x}"


def pre_master_secret_spans(pre_master_secret: bytes, *, base_offset: int = 0) -> list[Span]:
    """Annotate 48 pre-master bytes: ``client_version`` (2 bytes) and ``random`` (46 bytes)."""
    reader = Reader(pre_master_secret, base_offset=base_offset, path=("pre_master_secret",))
    reader.u16("client_version", lambda v: f"{_version_name(v)}: the highest version the client offered")
    reader.raw(PRE_MASTER_SECRET_LENGTH - 2, "random", "46 bytes from the client's random number generator")
    reader.expect_end("the pre-master secret")
    return reader.spans


def padded_block(ciphertext: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """The encoded block inside an RSA ciphertext, ``c^d mod n``, as ``k`` bytes (``k`` = modulus size).

    TEACHING VIEW ONLY: textbook RSA with the key's private numbers, to *look at* PKCS#1 v1.5 padding.
    It skips every protection of a real decryption (blinding, constant time, implicit rejection); real
    code calls :func:`decrypt_pre_master_secret`.
    """
    numbers = private_key.private_numbers()
    modulus = numbers.public_numbers.n
    size = (modulus.bit_length() + 7) // 8
    if len(ciphertext) != size:
        raise ValueError(f"an RSA ciphertext for this key has {size} bytes, not {len(ciphertext)}")
    # c >= n is not a valid ciphertext; reducing it first keeps the arithmetic defined for a tampered one.
    c = int.from_bytes(ciphertext, "big") % modulus
    # c^d mod n through the Chinese remainder theorem (two half-size exponentiations, as every RSA
    # implementation does): the same number, about four times faster, which keeps the widget responsive.
    m_p = pow(c, numbers.dmp1, numbers.p)
    m_q = pow(c, numbers.dmq1, numbers.q)
    value = m_q + numbers.q * ((numbers.iqmp * (m_p - m_q)) % numbers.p)
    return value.to_bytes(size, "big")


@dataclass(frozen=True)
class PaddingCheck:
    """What a PKCS#1 v1.5 decoder finds in one encoded block (RFC 8017 section 7.2.2, step 3)."""

    block: bytes
    spans: list[Span]
    valid: bool
    problem: str  # "" when valid
    message: bytes  # the bytes after the 00 separator (empty if there is none, or the block is invalid)

    @property
    def is_pre_master_secret(self) -> bool:
        return self.valid and len(self.message) == PRE_MASTER_SECRET_LENGTH


def read_padded_block(block: bytes) -> PaddingCheck:
    """Read ``00 02 <at least 8 nonzero bytes> 00 <message>`` with a Reader; never raises on bad bytes.

    A block that breaks the format is annotated as far as it goes and ``problem`` says what is wrong,
    which is precisely the information a server must never let an attacker learn (Bleichenbacher).
    """
    spans: list[Span] = []
    reader = Reader(block, spans=spans, path=("eme_pkcs1_v1_5",))
    problem = ""
    message = b""
    try:
        first = reader.u8("leading_zero", lambda v: "00: keeps the block below the modulus" if v == 0 else "must be 00")
        block_type = reader.u8(
            "block_type", lambda v: "02: encryption padding (01 is for signatures)" if v == 2 else "must be 02"
        )
        separator = block.find(b"\x00", 2)
        if first != 0:
            problem = f"the first byte is 0x{first:02x}, not 0x00"
        elif block_type != 2:
            problem = f"the block type is 0x{block_type:02x}, not 0x02"
        if separator < 0:
            reader.rest("padding_string", "nonzero random bytes, and no 00 separator anywhere")
            problem = problem or "there is no 00 byte to end the padding"
        else:
            padding_length = separator - 2
            reader.raw(padding_length, "padding_string", f"{padding_length} nonzero random bytes (at least 8)")
            reader.u8("separator", "00: the padding ends here")
            if padding_length < 8 and not problem:
                problem = f"only {padding_length} padding bytes before the 00; at least 8 are required"
            message = block[separator + 1 :]
            if not problem and len(message) == PRE_MASTER_SECRET_LENGTH:
                with reader.group("message", "the 48-byte pre-master secret"):
                    reader.u16("client_version", _version_name)
                    reader.raw(PRE_MASTER_SECRET_LENGTH - 2, "random", "46 random bytes")
            else:
                reader.rest("message", f"{len(message)} bytes of message")
    except DecodeError as error:  # a block shorter than 2 bytes
        problem = problem or str(error)
    valid = not problem
    return PaddingCheck(bytes(block), spans, valid, problem, message if valid else b"")


def tamper(ciphertext: bytes, byte_index: int, mask: int) -> bytes:
    """``ciphertext`` with byte ``byte_index`` XORed with ``mask`` (what an attacker on the path can do)."""
    if not 0 <= byte_index < len(ciphertext):
        raise ValueError(f"byte_index must be between 0 and {len(ciphertext) - 1}")
    if not 0 <= mask <= 255:
        raise ValueError("mask must be between 0 and 255")
    changed = bytearray(ciphertext)
    changed[byte_index] ^= mask
    return bytes(changed)
