"""Fingerprints and randomart against OpenSSH's ``ssh-keygen -l`` / ``-lv``, byte for byte, for every key type."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from handshake_lib.ssh.fingerprints import fingerprint, fingerprint_md5, fingerprint_sha256, randomart
from handshake_lib.ssh.hostkeys import HostKey, HostKeyPair
from tests.conftest import require
from tests.ssh_keygen_keys import KEYGEN_TYPES, keygen, make_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    require("ssh-keygen", "OpenSSH's ssh-keygen checks our fingerprints")
    return make_keys(tmp_path_factory.mktemp("fingerprint-keys"))


@pytest.mark.parametrize("name", list(KEYGEN_TYPES))
@pytest.mark.parametrize("hash_name", ["SHA256", "MD5"])
def test_fingerprint_and_randomart_match_ssh_keygen(keys, name, hash_name):
    files = keys[name]
    key, comment = HostKey.from_openssh(files.public_line), files.public_line.split(None, 2)[2]
    ours = key.fingerprint_line(comment, hash_name) + "\n" + key.randomart(hash_name) + "\n"
    theirs = keygen("-E", hash_name.lower(), "-lv", "-f", files.public)
    assert ours == theirs
    # The plain -l line, also from the private key file (ssh-keygen derives the public key itself).
    assert keygen("-E", hash_name.lower(), "-l", "-f", files.private) == key.fingerprint_line(comment, hash_name) + "\n"
    assert f"[{key.label} {files.bits}]" in ours.splitlines()[1]


def test_randomart_of_many_keys_matches_ssh_keygen(tmp_path):
    """Two hundred random Ed25519 keys in one file: walls, corners and crowded squares all get drawn."""
    require("ssh-keygen")
    keys = [HostKey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key()) for _ in range(200)]
    path = tmp_path / "many.pub"
    path.write_text("".join(f"{key.openssh(f'k{index}')}\n" for index, key in enumerate(keys)))
    ours = "".join(f"{key.fingerprint_line(f'k{index}')}\n{key.randomart()}\n" for index, key in enumerate(keys))
    assert keygen("-lv", "-f", path) == ours


def test_fingerprint_formats_are_the_hashes_of_the_blob(keys):
    blob = HostKey.from_openssh(keys["ed25519"].public_line).blob
    sha = hashlib.sha256(blob).digest()
    assert fingerprint_sha256(blob) == "SHA256:" + base64.b64encode(sha).decode().rstrip("=")
    assert "=" not in fingerprint_sha256(blob) and len(fingerprint_sha256(blob)) == 7 + 43
    assert fingerprint_md5(blob) == "MD5:" + ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())
    assert fingerprint(blob, "md5") == fingerprint_md5(blob)
    with pytest.raises(ValueError, match="SHA256 and MD5"):
        fingerprint(blob, "SHA1")


def test_randomart_frame_and_marks():
    """The frame is 19 x 11, S sits in the middle of the 17 x 9 board, and each mark appears once."""
    blob = b"x"
    picture = randomart(blob, "ED25519", 256).splitlines()
    assert len(picture) == 11 and all(len(line) == 19 for line in picture)
    assert picture[0] == "+--[ED25519 256]--+" and picture[-1] == "+----[SHA256]-----+"
    body = "".join(line[1:-1] for line in picture[1:-1])
    assert body.count("S") == 1 and body.count("E") == 1
    assert picture[5][9] == "S"  # the start, centre of the 17 x 9 board
    # A long type name falls back to "[TYPE]" as sshkey.c does when "[TYPE BITS]" does not fit.
    assert randomart(blob, "ECDSA-SK-CERT-XYZ", 256).splitlines()[0].startswith("+[ECDSA-SK-CERT-")


def test_our_generated_keys_agree_with_ssh_keygen(tmp_path):
    """Keys we generate, written by us, read by ssh-keygen: same fingerprint and picture."""
    require("ssh-keygen")
    for key_type in ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"):
        pair = HostKeyPair.generate(key_type, rsa_bits=2048, comment="ours")
        path = tmp_path / f"{key_type}.pub"
        path.write_text(pair.public_line() + "\n")
        assert (
            keygen("-lv", "-f", path)
            == pair.host_key.fingerprint_line("ours") + "\n" + pair.host_key.randomart() + "\n"
        )
