"""Host keys made by OpenSSH's own ``ssh-keygen`` (one per type we support), for the host key tests.

``make_keys(directory)`` runs ``ssh-keygen -t TYPE -N ''`` once per type and returns
``{name: KeyFiles}``; the test modules wrap it in a module-scoped fixture.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# name -> ssh-keygen arguments, our key type, the size ssh-keygen -l prints
KEYGEN_TYPES = {
    "ed25519": (["-t", "ed25519"], "ssh-ed25519", 256),
    "ecdsa": (["-t", "ecdsa", "-b", "256"], "ecdsa-sha2-nistp256", 256),
    "ecdsa384": (["-t", "ecdsa", "-b", "384"], "ecdsa-sha2-nistp384", 384),
    "ecdsa521": (["-t", "ecdsa", "-b", "521"], "ecdsa-sha2-nistp521", 521),
    "rsa": (["-t", "rsa", "-b", "2048"], "ssh-rsa", 2048),
}


@dataclass(frozen=True)
class KeyFiles:
    name: str
    key_type: str
    bits: int
    private: Path
    public: Path
    comment: str

    @property
    def public_line(self) -> str:
        return self.public.read_text().strip()


def keygen(*arguments: str | Path) -> str:
    """Run ssh-keygen and return its standard output (raising with its stderr if it fails)."""
    done = subprocess.run(["ssh-keygen", *map(str, arguments)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"ssh-keygen {arguments} failed: {done.stderr}")
    return done.stdout


def make_keys(directory: Path) -> dict[str, KeyFiles]:
    keys = {}
    for name, (arguments, key_type, bits) in KEYGEN_TYPES.items():
        private = directory / f"id_{name}"
        comment = f"{name}@handshakes.test"
        keygen("-q", *arguments, "-N", "", "-C", comment, "-f", private)
        keys[name] = KeyFiles(name, key_type, bits, private, directory / f"id_{name}.pub", comment)
    return keys
