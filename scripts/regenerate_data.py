#!/usr/bin/env python3
"""Re-record the JSON data files in handshake_lib/data/ from live runs against OpenSSL (maintainer tool).

Every recorded vector the library ships is one file ``handshake_lib/data/<name>.json`` of one shape,
``{"format": 1, "made_by": "...", "recordings": [...]}``, byte values as lowercase hex, read with
``handshake_lib.data.load_recordings(name)``.  This script makes them again: each entry of
``RECORDERS`` maps a file name to the function that records it, returning ``(made_by, recordings)``.
A recorder checks what it recorded against OpenSSL itself (for instance the master secret OpenSSL wrote
to its key log) before returning, so a file is never rewritten with values OpenSSL disagrees with.
Adding a data file is one line in ``RECORDERS``.

Usage, from the repository root (Python's ``ssl`` is the OpenSSL that is recorded)::

    python scripts/regenerate_data.py                       # every file
    python scripts/regenerate_data.py rsa_key_schedules     # chosen files
    python scripts/regenerate_data.py --out /tmp/data       # somewhere else (leave the shipped ones)
    python scripts/regenerate_data.py --list

New recordings have fresh randoms and keys, so every value changes: commit the files, then run the
tests that read them.  The packet captures of the TCP lesson (``*.pcap``) are not JSON and are not made
here: ``sudo scripts/record_capture.sh [OUTDIR]`` records them with tcpdump on the loopback interface
(root or CAP_NET_RAW needed); its header says what each capture holds.  The SSH session capture and its
key log (``ssh_session.pcap``, ``ssh_session.keylog``) likewise come from ``sudo
scripts/record_ssh_capture.py [OUTDIR]`` (tcpdump and OpenSSH's sshd).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handshake_lib.data import FORMAT  # noqa: E402
from handshake_lib.peers import openssl_runs, openssl_sessions  # noqa: E402

DATA_DIR = ROOT / "handshake_lib" / "data"

Recorder = Callable[[], tuple[str, list[dict[str, Any]]]]

# File name (without .json) -> the function that records it: (made_by, recordings).
RECORDERS: dict[str, Recorder] = {
    "rsa_key_schedules": openssl_runs.record_key_schedules,  # lesson 06: master secrets from OpenSSL's key log
    "openssl_records": openssl_sessions.record_openssl_records,  # lesson 07: protected records, both directions
    "openssl_finished": openssl_sessions.record_openssl_finished,  # lesson 08 and exercise 08: both Finished
}


def document(made_by: str, recordings: list[dict[str, Any]]) -> str:
    """The text of one data file (stable key order, one field per line, so diffs stay readable)."""
    return json.dumps({"format": FORMAT, "made_by": made_by, "recordings": recordings}, indent=2) + "\n"


def regenerate(names: list[str], out: Path) -> list[Path]:
    """Record each named file into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        made_by, recordings = RECORDERS[name]()
        path = out / f"{name}.json"
        path.write_text(document(made_by, recordings), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"data files to record (default: all of {', '.join(RECORDERS)})")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="folder to write into")
    parser.add_argument("--list", action="store_true", help="list the data files this script records")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(RECORDERS))
        return 0
    unknown = [name for name in args.names if name not in RECORDERS]
    if unknown:
        parser.error(f"unknown data file(s) {', '.join(unknown)}; choose from {', '.join(RECORDERS)}")
    for path in regenerate(args.names or list(RECORDERS), args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
