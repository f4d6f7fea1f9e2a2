"""``python -m bench`` (``make bench``): run the course benchmarks, print a table, write JSON.

Exit status: 0 when every benchmark ran (targets met or not: a missed target is reported as FAIL in the
table and the JSON, for a human to judge); 1 when a benchmark could not run at all (ERROR rows).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Widgets draw with matplotlib outside a kernel: never let it look for a display.
os.environ.setdefault("MPLBACKEND", "Agg")

from . import handshakes, load, notebooks, ssh_handshakes, ssh_sessions, tls12, tls13, tls_decode, widgets  # noqa: E402 - after MPLBACKEND on purpose
from .report import ERROR, Measurement, format_table, write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
GROUPS = ("notebooks", "widgets", "handshakes", "suites", "resumption", "tls13", "ssh", "sessions", "load", "decode")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=GROUPS, action="append", help="run only this group (repeatable)")
    parser.add_argument("--repeat", type=int, default=widgets.DEFAULT_REPEAT, help="timed calls per widget callback")
    parser.add_argument(
        "--handshakes", type=int, default=None, metavar="N",
        help=f"timed handshakes per side per row in the handshakes, suites, resumption and tls13 groups (default "
        f"{handshakes.DEFAULT_COUNT}, {tls12.DEFAULT_SUITE_COUNT}, {tls12.DEFAULT_RESUMPTION_COUNT} and "
        f"{tls13.DEFAULT_COUNT}; the tls13 group's in-memory handshakes per group too, default "
        f"{tls13.DEFAULT_GROUP_COUNT})",
    )
    parser.add_argument(
        "--ssh-handshakes", type=int, default=ssh_handshakes.DEFAULT_COUNT, metavar="N",
        help=f"timed SSH probes per client (default {ssh_handshakes.DEFAULT_COUNT}; half of that against sshd)",
    )
    parser.add_argument(
        "--ssh-sessions", type=int, default=ssh_sessions.DEFAULT_EXEC_COUNT, metavar="N",
        help=f"timed logins + exec per client in the sessions group (default {ssh_sessions.DEFAULT_EXEC_COUNT})",
    )
    parser.add_argument(
        "--sftp-reads", type=int, default=ssh_sessions.DEFAULT_SFTP_COUNT, metavar="N",
        help=f"timed SFTP sessions per client per server (default {ssh_sessions.DEFAULT_SFTP_COUNT})",
    )
    parser.add_argument(
        "--sftp-bytes", type=int, default=ssh_sessions.SFTP_SIZE, metavar="N",
        help=f"size of the file the SFTP sessions read (default {ssh_sessions.SFTP_SIZE}, 16 MiB)",
    )
    parser.add_argument(
        "--load-quick", action="store_true",
        help=f"a small load run ({load.QUICK['burst']} at once, {load.QUICK['connections']} in a row, "
        f"{load.QUICK['slow']} slow) instead of {load.BURST} / {load.CONNECTIONS} / {load.SLOW_CLIENTS}",
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write results (default {RESULTS})")
    parser.add_argument("notebook", nargs="*", type=Path, help="notebooks to time (default: notebooks/ and solutions/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    groups = args.only or GROUPS
    rows: list[Measurement] = []
    notes: list[str] = []
    if "notebooks" in groups:
        paths = [path.resolve() for path in args.notebook] or notebooks.discover()
        if not paths:
            notes.append("no notebooks found in notebooks/ or solutions/")
        for path in paths:
            print(f"running {path.name} ...", file=sys.stderr, flush=True)
            rows.extend(notebooks.measure([path]))
    if "widgets" in groups:
        print("timing widget callbacks ...", file=sys.stderr, flush=True)
        widget_rows, widget_notes = widgets.measure(repeat=args.repeat)
        rows.extend(widget_rows)
        notes.extend(widget_notes)
    if "handshakes" in groups:
        count = args.handshakes or handshakes.DEFAULT_COUNT
        print(f"timing TLS handshakes ({count} per side per suite) ...", file=sys.stderr, flush=True)
        rows.extend(handshakes.measure(count=count))
    if "suites" in groups:
        count = args.handshakes or tls12.DEFAULT_SUITE_COUNT
        print(f"timing ECDHE and DHE handshakes ({count} per side per suite) ...", file=sys.stderr, flush=True)
        rows.extend(tls12.measure_suites(count=count))
    if "resumption" in groups:
        count = args.handshakes or tls12.DEFAULT_RESUMPTION_COUNT
        print(f"timing resumed and full handshakes ({count} per side per row) ...", file=sys.stderr, flush=True)
        rows.extend(tls12.measure_resumption(count=count))
    if "tls13" in groups:
        count = args.handshakes or tls13.DEFAULT_COUNT
        group_count = args.handshakes or tls13.DEFAULT_GROUP_COUNT
        print(
            f"timing TLS 1.3 handshakes ({count} per side per row, {group_count} in memory per group) ...",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        rows.extend(tls13.measure(count=count, group_count=group_count))
    if "ssh" in groups:
        print(f"timing SSH probes ({args.ssh_handshakes} per client) ...", file=sys.stderr, flush=True)
        rows.extend(ssh_handshakes.measure(count=args.ssh_handshakes))
    if "sessions" in groups:
        print(
            f"timing SSH sessions ({args.ssh_sessions} logins + exec per client, {args.sftp_reads} SFTP reads of "
            f"{args.sftp_bytes} bytes per client per server) ...",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        rows.extend(ssh_sessions.measure(args.ssh_sessions, args.sftp_reads, args.sftp_bytes))
    if "load" in groups:
        print("loading our TLS server (bursts, many connections, slow clients) ...", file=sys.stderr, flush=True)
        rows.extend(load.measure(quick=args.load_quick))
    if "decode" in groups:
        print("decoding a 10 MB TLS capture ...", file=sys.stderr, flush=True)
        rows.extend(tls_decode.measure())

    print(format_table(rows))
    for note in notes:
        print(f"note: {note}")
    write_json(rows, args.json)
    print(f"results written to {args.json}")
    return 1 if any(row.status == ERROR for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
