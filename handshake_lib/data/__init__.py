"""Recorded captures and vectors, in one format, with one loader.

Each ``<name>.json`` here is ``{"format": 1, "made_by": "<how it was made>", "recordings": [...]}``,
byte values as lowercase hex strings.  :func:`load_recordings` returns the list; the library module
that owns the concept turns each item into a typed object (``from_json``).  ``scripts/regenerate_data.py``
makes the files again from live peers.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

FORMAT = 1


def load_recordings(name: str) -> list[dict[str, Any]]:
    """The recordings in ``handshake_lib/data/<name>.json``."""
    document = json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{name}.json has format {document.get('format')!r}, this library reads format {FORMAT}")
    return document["recordings"]
