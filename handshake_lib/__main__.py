"""``python -m handshake_lib`` (also installed as ``handshakes``): the course's command line.

::

    handshakes tls get https://localhost:8443/ --cafile ca.pem --trace     # an annotated TLS 1.3 handshake
    handshakes tls serve --port 8443 --cert server.pem --key server.key  # our TLS server on loopback
    handshakes tcp decode capture.pcap --trace                           # TCP segments of a capture
    handshakes tcp observe                                               # TCP_INFO of a live connection
    handshakes pki demo ./pki                                            # a fresh CA and a localhost cert

Each command group lives in its own module under :mod:`handshake_lib.cli`.  Exit status: 0 success;
1 the network or the peer said no (refused connection, bad certificate, alert, timeout); 2 the command
line itself was wrong (argparse's convention, also used for an unknown cipher suite name).
"""

from __future__ import annotations

import sys

from .cli import run

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
