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
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "PRE_MASTER_SECRET_LENGTH",
    "make_pre_master_secret",
    "encrypt_pre_master_secret",
    "decrypt_pre_master_secret",
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
