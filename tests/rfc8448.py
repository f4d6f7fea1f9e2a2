"""Values read from RFC 8448's text (tests/data/rfc8448/sectionN.json) as bytes, and a handshake-message splitter.

The JSON holds no wire messages or records: those were only ever available here through another project's
transcription, which this repository does not carry."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "rfc8448"


@cache
def section(number: int) -> dict[str, Any]:
    """Section ``number``'s values: hex strings become bytes, notes stay text."""
    raw = json.loads((DATA / f"section{number}.json").read_text())
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ("source", "cipher_suite", "hash"):
            values[name] = value
        else:
            values[name] = bytes.fromhex(value)
    return values


def split_handshake(data: bytes) -> list[bytes]:
    """Handshake messages (4-byte header included) laid end to end, cut apart."""
    messages = []
    while data:
        length = 4 + int.from_bytes(data[1:4], "big")
        assert len(data) >= length, "a truncated handshake message"
        messages.append(data[:length])
        data = data[length:]
    return messages
