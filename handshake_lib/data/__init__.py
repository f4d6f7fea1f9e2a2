"""Recorded vectors and captures shipped with the library, and the one loader for the recordings.

Theory of operation
-------------------
Every recording made from live runs against real peers is one JSON file here, ``<name>.json``, of one
shape::

    {"format": 1, "made_by": "<how it was made>", "recordings": [{...}, ...]}

Byte values are lowercase hex strings.  :func:`load_recordings` reads a file with
:mod:`importlib.resources` (so it works from a wheel as well as from a checkout), checks the format
number and returns the list of recordings as plain dicts; the library module that owns the concept
turns each dict into its typed dataclass (``from_json``).  ``scripts/regenerate_data.py`` re-records
every JSON file from live OpenSSL runs.  The ``.pcap`` captures of the TCP lesson are read by
:mod:`handshake_lib.tcp.pcap` and made by ``scripts/record_capture.sh``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["FORMAT", "load_recordings"]

FORMAT = 1


def load_recordings(name: str) -> list[dict[str, Any]]:
    """The recordings in ``handshake_lib/data/<name>.json``; ValueError if the file is not format 1."""
    text = (resources.files(__name__) / f"{name}.json").read_text(encoding="utf-8")
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"{name}.json: expected format {FORMAT}, found {found!r}")
    recordings = document.get("recordings")
    if not isinstance(recordings, list):
        raise ValueError(f"{name}.json: 'recordings' must be a list")
    return recordings
