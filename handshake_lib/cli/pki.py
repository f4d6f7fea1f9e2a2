"""``handshakes pki demo DIR``: a fresh course CA and a localhost server certificate, as PEM files.

Handy with ``tls serve`` and curl::

    handshakes pki demo ./pki
    handshakes tls serve --port 8443 --cert ./pki/server.pem --key ./pki/server.key &
    curl --cacert ./pki/ca.pem https://localhost:8443/

The CA's private key is never written: the directory can issue nothing more, and trusting ``ca.pem``
means trusting exactly the one server certificate written next to it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pki import CoursePKI
from .arguments import certificate_name, output_folder
from .errors import CommandError


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("pki", help="course PKI: a demo CA and server certificate")
    commands = parser.add_subparsers(title="commands", metavar="{demo}", required=True)
    demo = commands.add_parser(
        "demo",
        help="write a fresh CA (ca.pem) and a localhost server certificate (server.pem, server.key)",
        description=__doc__.splitlines()[0],
    )
    demo.add_argument("directory", type=output_folder, help="where to write the files (created if missing)")
    demo.add_argument(
        "--key-type", choices=("rsa2048", "ecdsa-p256"), default="rsa2048",
        help="server key type (default rsa2048: TLS_RSA_* key exchange encrypts to it)",
    )
    demo.add_argument(
        "--hostname", action="append", dest="hostnames", type=certificate_name,
        help="a DNS name or IP address for the certificate (repeatable; default localhost and 127.0.0.1)",
    )
    demo.set_defaults(command=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
        pki = CoursePKI.create()
        hostnames = tuple(args.hostnames or ("localhost", "127.0.0.1"))
        issued = pki.issue_server(hostnames, key_type=args.key_type)
        ca_path = pki.write_ca(directory)
        cert_path, key_path = pki.write_issued(issued, directory)
    except OSError as error:
        raise CommandError(f"cannot write to {directory}: {error.strerror or error}") from None
    print(f"CA certificate:     {ca_path}")
    print(f"server certificate: {cert_path}  (for {', '.join(hostnames)}, valid 7 days)")
    print(f"server private key: {key_path}")
    return 0
