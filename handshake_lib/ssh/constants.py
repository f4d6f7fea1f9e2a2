"""SSH code points: message numbers and the algorithm names this library offers, in our preference order.

Theory of operation
-------------------
An SSH packet's payload starts with one byte, the message number (RFC 4250 section 4.1).  Numbers
1-19 are transport generic, 20-29 algorithm negotiation, 30-49 belong to whichever key exchange method
was negotiated (so 30 is SSH_MSG_KEXDH_INIT under diffie-hellman-group14-sha256 and
SSH_MSG_KEX_ECDH_INIT under curve25519-sha256: the byte alone does not say which), 50-79 user
authentication (60-79 again method specific) and 80-127 the connection protocol.  :class:`MessageNumber`
lists them; the enum keeps the shared numbers as aliases, and :func:`message_name` says both names
when a number has two meanings.

Algorithms are negotiated by name (RFC 4253 section 7.1).  The tuples below are what our client and
server offer, first choice first; they list only what the library implements.  Compared with Debian's
OpenSSH 9.2 (``ssh -G`` defaults, and ``myproposal.h`` of portable OpenSSH):

* kex: OpenSSH 9.2p1 offers ``sntrup761x25519-sha512@openssh.com`` first; Debian also backported
  the IANA name ``sntrup761x25519-sha512`` (upstream 9.9) and puts it first (see ``ssh -G``).
  OpenSSH 10.0 made ``mlkem768x25519-sha256`` the first choice, and we follow the newer order: ML-KEM
  is the standardised lattice KEM, and asyncssh and paramiko both have it (OpenSSH 9.2 does not, so
  against it we fall through to sntrup761).  We leave out what we do not implement
  (ecdh-sha2-nistp384/521, group exchange, group18).  OpenSSH 10.0's *server* no longer offers
  finite-field Diffie-Hellman; ours keeps group16/group14 in both roles, because lesson 12 teaches
  classic DH and must be able to run it against our server too.
* host keys: OpenSSH's order without certificates, sk- (security key) and nistp384/521 keys.
* ciphers: OpenSSH 9.2 puts the CTR modes before GCM; OpenSSH 10.0 (and asyncssh) put GCM first.  We
  take the newer order: an AEAD needs no separate MAC, and GCM is hardware accelerated.  No aes192-ctr.
* MACs: OpenSSH's order without umac (not in ``cryptography``) and without SHA-1.
* compression: ``none`` only (no ``zlib@openssh.com``).

The *pseudo-algorithms* are names that travel in the kex list but are signals, never chosen:
``ext-info-c``/``ext-info-s`` (RFC 8308: "send me SSH_MSG_EXT_INFO") and the strict key exchange
markers ``kex-strict-c-v00@openssh.com``/``kex-strict-s-v00@openssh.com`` (OpenSSH's Terrapin
countermeasure).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

__all__ = [
    "MessageNumber",
    "message_name",
    "KEX_ALGORITHMS",
    "HOST_KEY_ALGORITHMS",
    "CIPHERS",
    "MACS",
    "COMPRESSION",
    "AEAD_CIPHERS",
    "EXT_INFO_C",
    "EXT_INFO_S",
    "KEX_STRICT_C",
    "KEX_STRICT_S",
    "PSEUDO_ALGORITHMS",
    "KexFamily",
    "KEX_FAMILIES",
    "kex_family",
    "MAX_NAME_LENGTH",
    "MAX_NAMES",
]


class MessageNumber(IntEnum):
    """SSH message numbers (RFC 4250 section 4.1; EXT_INFO and NEWCOMPRESS from RFC 8308).

    Members that share a number are aliases of the first one (``MessageNumber(30)`` is ``KEXDH_INIT``);
    use :func:`message_name` to name a number without guessing the key exchange family.
    """

    # transport layer generic (RFC 4253)
    DISCONNECT = 1
    IGNORE = 2
    UNIMPLEMENTED = 3
    DEBUG = 4
    SERVICE_REQUEST = 5
    SERVICE_ACCEPT = 6
    EXT_INFO = 7  # RFC 8308
    NEWCOMPRESS = 8  # RFC 8308
    # algorithm negotiation
    KEXINIT = 20
    NEWKEYS = 21
    # key exchange method specific (30-49): the same numbers mean different messages per method
    KEXDH_INIT = 30  # RFC 4253 section 8 (fixed groups)
    KEXDH_REPLY = 31
    KEX_ECDH_INIT = 30  # RFC 5656 section 7.1; also curve25519 (RFC 8731) and the PQ hybrids
    KEX_ECDH_REPLY = 31
    KEX_DH_GEX_REQUEST_OLD = 30  # RFC 4419 (group exchange: not implemented here)
    KEX_DH_GEX_GROUP = 31
    KEX_DH_GEX_INIT = 32
    KEX_DH_GEX_REPLY = 33
    KEX_DH_GEX_REQUEST = 34
    # user authentication generic (RFC 4252)
    USERAUTH_REQUEST = 50
    USERAUTH_FAILURE = 51
    USERAUTH_SUCCESS = 52
    USERAUTH_BANNER = 53
    # user authentication method specific (60-79)
    USERAUTH_PK_OK = 60  # publickey (RFC 4252 section 7)
    USERAUTH_PASSWD_CHANGEREQ = 60  # password (RFC 4252 section 8)
    USERAUTH_INFO_REQUEST = 60  # keyboard-interactive (RFC 4256)
    USERAUTH_INFO_RESPONSE = 61
    # connection protocol (RFC 4254)
    GLOBAL_REQUEST = 80
    REQUEST_SUCCESS = 81
    REQUEST_FAILURE = 82
    CHANNEL_OPEN = 90
    CHANNEL_OPEN_CONFIRMATION = 91
    CHANNEL_OPEN_FAILURE = 92
    CHANNEL_WINDOW_ADJUST = 93
    CHANNEL_DATA = 94
    CHANNEL_EXTENDED_DATA = 95
    CHANNEL_EOF = 96
    CHANNEL_CLOSE = 97
    CHANNEL_REQUEST = 98
    CHANNEL_SUCCESS = 99
    CHANNEL_FAILURE = 100


def message_name(number: int) -> str:
    """``20`` -> ``'SSH_MSG_KEXINIT'``; a shared number gets all its names (``30``: ``KEXDH_INIT or ...``)."""
    names = [f"SSH_MSG_{name}" for name, member in MessageNumber.__members__.items() if member == number]
    if names:
        return " or ".join(names)
    if 0 <= number <= 255:
        return f"unknown message {number}"
    raise ValueError(f"{number} is not a message number (one byte)")


# -- algorithm names, first choice first -------------------------------------------------------------
KEX_ALGORITHMS: tuple[str, ...] = (
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
)
HOST_KEY_ALGORITHMS: tuple[str, ...] = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256")
CIPHERS: tuple[str, ...] = (
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
)
MACS: tuple[str, ...] = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
)
COMPRESSION: tuple[str, ...] = ("none",)

# Ciphers that authenticate each packet themselves: with one of them the MAC lists are not used at all
# (OpenSSH's kex_choose_conf skips choose_mac when cipher_authlen() is non-zero).
AEAD_CIPHERS: frozenset[str] = frozenset(
    {"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}
)

# -- pseudo-algorithms: signals in the kex list, never negotiated -------------------------------------
EXT_INFO_C = "ext-info-c"  # client: "server, you may send me SSH_MSG_EXT_INFO" (RFC 8308 section 2.1)
EXT_INFO_S = "ext-info-s"  # server: "client, you may send me SSH_MSG_EXT_INFO"
KEX_STRICT_C = "kex-strict-c-v00@openssh.com"  # strict key exchange (Terrapin countermeasure), client
KEX_STRICT_S = "kex-strict-s-v00@openssh.com"  # ... and server; both must offer it
PSEUDO_ALGORITHMS: frozenset[str] = frozenset({EXT_INFO_C, EXT_INFO_S, KEX_STRICT_C, KEX_STRICT_S})

# -- which messages 30/31 mean, per key exchange method ----------------------------------------------
KexFamily = Literal["ecdh", "dh"]
# "ecdh": SSH_MSG_KEX_ECDH_INIT/REPLY with the public values as strings (RFC 5656 section 4), used by
# ECDH, curve25519 (RFC 8731) and the post-quantum hybrids (draft-ietf-sshm-mlkem-hybrid-kex, RFC 9941).
# "dh": SSH_MSG_KEXDH_INIT/REPLY with e and f as mpints (RFC 4253 section 8).
KEX_FAMILIES: dict[str, KexFamily] = {
    "mlkem768x25519-sha256": "ecdh",
    "sntrup761x25519-sha512": "ecdh",
    "sntrup761x25519-sha512@openssh.com": "ecdh",
    "curve25519-sha256": "ecdh",
    "curve25519-sha256@libssh.org": "ecdh",
    "ecdh-sha2-nistp256": "ecdh",
    "ecdh-sha2-nistp384": "ecdh",
    "ecdh-sha2-nistp521": "ecdh",
    "diffie-hellman-group1-sha1": "dh",
    "diffie-hellman-group14-sha1": "dh",
    "diffie-hellman-group14-sha256": "dh",
    "diffie-hellman-group16-sha512": "dh",
    "diffie-hellman-group18-sha512": "dh",
}


def kex_family(kex_name: str) -> KexFamily | None:
    """The message family of a key exchange method (see :data:`KEX_FAMILIES`); None for one we do not know."""
    return KEX_FAMILIES.get(kex_name)


# -- decoder limits ------------------------------------------------------------------------------------
# RFC 4251 section 6: algorithm and method names MUST NOT be longer than 64 characters.
MAX_NAME_LENGTH = 64
# A cap on names per name-list.  Real peers send about 10-35 (asyncssh's kex list with GSS is the longest
# we have seen: 33 names); 256 leaves room and keeps a hostile list from costing quadratic negotiation time.
MAX_NAMES = 256
