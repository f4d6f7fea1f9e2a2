"""NSS key log files: the format OpenSSL, curl, browsers and Wireshark use to share session secrets.

Theory of operation
-------------------
A key log (the ``SSLKEYLOGFILE`` format, first written by NSS) is a text file with one secret per
line: ``<LABEL> <client_random in hex> <secret in hex>``.  The client random (32 bytes, from
ClientHello) names the connection; the label names the secret:

* TLS 1.2: ``CLIENT_RANDOM`` followed by the 48-byte master secret.  That is enough to derive the key
  block and decrypt the whole connection.  (``RSA <first 8 bytes of the encrypted pre-master, hex>
  <pre-master secret>`` is an older form, keyed by the ClientKeyExchange instead.)
* TLS 1.3: one line per secret of the key schedule (RFC 8446 section 7.1), each as long as the suite's
  hash (32 bytes for SHA-256 suites, 48 for SHA-384): ``CLIENT_HANDSHAKE_TRAFFIC_SECRET`` and
  ``SERVER_HANDSHAKE_TRAFFIC_SECRET`` open the encrypted handshake, ``CLIENT_TRAFFIC_SECRET_0`` and
  ``SERVER_TRAFFIC_SECRET_0`` the application data (later generations, after a KeyUpdate, are derived
  from them and never logged), ``CLIENT_EARLY_TRAFFIC_SECRET`` 0-RTT data, and ``EXPORTER_SECRET``
  (``EARLY_EXPORTER_SECRET``) the exporter.  :func:`secret_line` writes any of them.

Lines starting with ``#`` and blank lines are comments.  Like Wireshark, the parser skips lines it
cannot read instead of failing, but it keeps them in :attr:`KeyLog.skipped` with the reason, so a
learner can see why a line did nothing.  Everything parsed is kept, including labels this library
does not use yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "KeyLogEntry",
    "KeyLog",
    "KNOWN_LABELS",
    "TLS13_LABELS",
    "TLS13_TRAFFIC_LABELS",
    "TLS13_SECRET_LENGTHS",
    "client_random_line",
    "secret_line",
    "parse_keylog",
    "read_keylog",
    "append_line",
]

# The record-opening secrets of TLS 1.3, in the order a handshake makes them; then every 1.3 label.
TLS13_TRAFFIC_LABELS = (
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
)
TLS13_LABELS = (*TLS13_TRAFFIC_LABELS, "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET")
# A TLS 1.3 secret is one output of the suite's hash: SHA-256 or SHA-384 (RFC 8446 appendix B.4).
TLS13_SECRET_LENGTHS = (32, 48)

KNOWN_LABELS = frozenset(
    {
        "CLIENT_RANDOM",
        "RSA",
        "CLIENT_EARLY_TRAFFIC_SECRET",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EARLY_EXPORTER_SECRET",
        "EXPORTER_SECRET",
    }
)


@dataclass(frozen=True)
class KeyLogEntry:
    """One line: ``label``, the value that identifies the connection (usually the client random), the secret."""

    label: str
    client_random: bytes
    secret: bytes

    def line(self) -> str:
        return f"{self.label} {self.client_random.hex()} {self.secret.hex()}"


def client_random_line(client_random: bytes, master_secret: bytes) -> str:
    """The TLS 1.2 line: ``CLIENT_RANDOM <64 hex digits> <96 hex digits>``."""
    if len(client_random) != 32:
        raise ValueError("a client random has 32 bytes")
    if len(master_secret) != 48:
        raise ValueError("a TLS 1.2 master secret has 48 bytes")
    return KeyLogEntry("CLIENT_RANDOM", client_random, master_secret).line()


def secret_line(label: str, client_random: bytes, secret: bytes) -> str:
    """One key log line for ``client_random``: ``CLIENT_RANDOM`` (a 48-byte master secret) or a TLS 1.3 label
    (:data:`TLS13_LABELS`, a 32- or 48-byte secret), as OpenSSL's ``SSL_CTX_set_keylog_callback`` writes it.

    >>> secret_line("SERVER_TRAFFIC_SECRET_0", bytes(32), bytes(32))[:24]
    'SERVER_TRAFFIC_SECRET_0 '
    """
    if label == "CLIENT_RANDOM":
        return client_random_line(client_random, secret)
    if label not in TLS13_LABELS:
        raise ValueError(f"{label!r} is not a TLS 1.3 key log label ({', '.join(TLS13_LABELS)})")
    if len(client_random) != 32:
        raise ValueError("a client random has 32 bytes")
    if len(secret) not in TLS13_SECRET_LENGTHS:
        raise ValueError(f"a TLS 1.3 secret has 32 or 48 bytes (its suite's hash), not {len(secret)}")
    return KeyLogEntry(label, client_random, secret).line()


@dataclass
class KeyLog:
    """A parsed key log: every entry in file order, and the lines that were skipped (line number, reason)."""

    entries: list[KeyLogEntry] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def find(self, label: str, client_random: bytes) -> bytes | None:
        """The secret logged under ``label`` for this connection; the last one wins, as in Wireshark."""
        found = None
        for entry in self.entries:
            if entry.label == label and entry.client_random == client_random:
                found = entry.secret
        return found

    def master_secret(self, client_random: bytes) -> bytes | None:
        return self.find("CLIENT_RANDOM", client_random)

    def labels(self) -> set[str]:
        return {entry.label for entry in self.entries}

    def text(self) -> str:
        return "".join(entry.line() + "\n" for entry in self.entries)


def parse_keylog(text: str) -> KeyLog:
    """Parse key log text.  Unreadable lines are skipped and listed in ``skipped``, never fatal."""
    log = KeyLog()
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            log.skipped.append((number, f"expected 3 fields, found {len(parts)}"))
            continue
        label, identifier_hex, secret_hex = parts
        try:
            identifier = bytes.fromhex(identifier_hex)
            secret = bytes.fromhex(secret_hex)
        except ValueError:
            log.skipped.append((number, "a field is not hexadecimal"))
            continue
        # RSA lines are keyed by 8 bytes of the encrypted pre-master secret; every other label by a client random.
        expected_identifier_length = 8 if label == "RSA" else 32
        if len(identifier) != expected_identifier_length:
            log.skipped.append((number, f"{label} needs a {expected_identifier_length}-byte identifier"))
            continue
        if label == "CLIENT_RANDOM" and len(secret) != 48:
            log.skipped.append((number, "CLIENT_RANDOM needs a 48-byte master secret"))
            continue
        if label in TLS13_LABELS and len(secret) not in TLS13_SECRET_LENGTHS:
            log.skipped.append((number, f"{label} needs a 32- or 48-byte secret (a SHA-256 or SHA-384 output)"))
            continue
        log.entries.append(KeyLogEntry(label, identifier, secret))
    return log


def read_keylog(path: str | Path) -> KeyLog:
    return parse_keylog(Path(path).read_text(encoding="ascii", errors="replace"))


def append_line(path: str | Path, line: str) -> None:
    """Append one line to a key log file (created if missing), as SSLKEYLOGFILE writers do.

    A key log decrypts every session it lists, so a file we create is readable by its owner only
    (mode 0600, as NSS and curl create theirs); an existing file keeps the mode it has.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with open(descriptor, "a", encoding="ascii") as file:
        file.write(line.rstrip("\n") + "\n")
