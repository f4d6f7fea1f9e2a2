"""Host key fingerprints and the randomart picture, exactly as ``ssh-keygen -lv`` prints them.

Theory of operation
-------------------
A fingerprint is a hash of the public key *blob* (the bytes the server sends in KEX_ECDH_REPLY, the
base64 of an OpenSSH ``.pub`` line), short enough for a person to compare.  OpenSSH prints SHA-256 by
default, as ``SHA256:`` and base64 without its ``=`` padding (OpenSSH 6.8 and later); the legacy form,
still offered by ``ssh-keygen -E md5``, is ``MD5:`` and the 16 digest bytes in colon-separated hex.

People do not compare 43 characters well, so OpenSSH also draws the digest (``VisualHostKey``,
``ssh-keygen -lv``): the "drunken bishop" of Dirk Loss et al.  A bishop starts in the middle of a
17 x 9 board; every digest byte gives four moves, two bits each, least significant first (bit 0:
right or left, bit 1: down or up); a move against a wall slides along it.  Each square counts its
visits and shows the count as one of `` .o+=*BOX@%&#/^``; ``S`` marks the start and ``E`` the end.
The frame carries ``[TYPE BITS]`` on top and ``[HASH]`` below, centred the way ``sshkey.c``'s
``fingerprint_randomart`` centres them (any odd character goes to the right).
"""

from __future__ import annotations

import base64
import hashlib

__all__ = [
    "fingerprint_sha256",
    "fingerprint_md5",
    "fingerprint",
    "randomart",
    "key_type_label",
    "FIELD_WIDTH",
    "FIELD_HEIGHT",
]

FIELD_WIDTH = 17  # FLDSIZE_X in sshkey.c: FLDBASE * 2 + 1
FIELD_HEIGHT = 9  # FLDSIZE_Y: FLDBASE + 1
# The symbol for 0, 1, 2, ... visits; the last two are the start and end marks.
_SYMBOLS = " .o+=*BOX@%&#/^SE"
_START = len(_SYMBOLS) - 2  # "S"
_END = len(_SYMBOLS) - 1  # "E"

# sshkey_type(): the short name OpenSSH prints for a key type, in the title and "(ED25519)".
_LABELS = {
    "ssh-ed25519": "ED25519",
    "ecdsa-sha2-nistp256": "ECDSA",
    "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA",
    "ssh-rsa": "RSA",
    "ssh-dss": "DSA",
}


def key_type_label(key_type: str) -> str:
    """OpenSSH's short name for a key type (``ssh-ed25519`` -> ``ED25519``); short names pass through."""
    return _LABELS.get(key_type, key_type)


def _digest(blob: bytes, hash_name: str) -> bytes:
    if hash_name.upper() == "SHA256":
        return hashlib.sha256(blob).digest()
    if hash_name.upper() == "MD5":
        return hashlib.md5(blob, usedforsecurity=False).digest()
    raise ValueError(f"unknown fingerprint hash {hash_name!r} (OpenSSH offers SHA256 and MD5)")


def fingerprint_sha256(blob: bytes) -> str:
    """``SHA256:`` and the base64 of SHA-256(blob) without padding, as ``ssh-keygen -lf`` prints it."""
    return fingerprint(blob, "SHA256")


def fingerprint_md5(blob: bytes) -> str:
    """The legacy fingerprint: ``MD5:`` and MD5(blob) in colon-separated hex (``ssh-keygen -E md5 -lf``)."""
    return fingerprint(blob, "MD5")


def fingerprint(blob: bytes, hash_name: str = "SHA256") -> str:
    """The fingerprint of ``blob`` with ``hash_name`` (``SHA256`` or ``MD5``)."""
    digest = _digest(blob, hash_name)  # refuses an unknown hash name with a clear message
    if hash_name.upper() == "MD5":
        return "MD5:" + ":".join(f"{byte:02x}" for byte in digest)
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _framed(label: str) -> str:
    """A border of FIELD_WIDTH dashes with ``label`` inside, placed as fingerprint_randomart places it."""
    left = (FIELD_WIDTH - len(label)) // 2
    return "+" + "-" * left + label + "-" * (FIELD_WIDTH - left - len(label)) + "+"


def randomart(blob: bytes, key_type: str, bits: int, hash_name: str = "SHA256") -> str:
    """The picture ``ssh-keygen -lv -f`` draws for the key ``blob`` (11 lines, no final newline).

    ``key_type`` is a wire name (``ssh-ed25519``) or OpenSSH's short name (``ED25519``); ``bits`` the
    key size ``ssh-keygen -l`` prints first (256 for Ed25519 and P-256, the modulus size for RSA).
    """
    digest = _digest(blob, hash_name)
    visits = [[0] * FIELD_HEIGHT for _ in range(FIELD_WIDTH)]
    x, y = FIELD_WIDTH // 2, FIELD_HEIGHT // 2
    for byte in digest:
        for _ in range(4):
            x = min(max(x + (1 if byte & 1 else -1), 0), FIELD_WIDTH - 1)
            y = min(max(y + (1 if byte & 2 else -1), 0), FIELD_HEIGHT - 1)
            # A square stops counting two short of the marks, so it never looks like S or E.
            if visits[x][y] < _START - 1:
                visits[x][y] += 1
            byte >>= 2
    visits[FIELD_WIDTH // 2][FIELD_HEIGHT // 2] = _START
    visits[x][y] = _END

    # The title is snprintf'd into FIELD_WIDTH bytes: "[TYPE BITS]" if it fits, else "[TYPE]", cut to 16.
    title = f"[{key_type_label(key_type)} {bits}]"
    if len(title) > FIELD_WIDTH:
        title = f"[{key_type_label(key_type)}]"
    title = title[: FIELD_WIDTH - 1]
    footer = f"[{hash_name.upper()}]"[: FIELD_WIDTH - 1]
    rows = [
        "|" + "".join(_SYMBOLS[visits[col][row]] for col in range(FIELD_WIDTH)) + "|" for row in range(FIELD_HEIGHT)
    ]
    return "\n".join([_framed(title), *rows, _framed(footer)])
