"""``handshakes pki demo DIR``: a fresh course CA and a localhost server certificate, as PEM files.

Handy with ``tls serve`` and curl::

    handshakes pki demo ./pki
    handshakes tls serve --port 8443 --cert ./pki/server.pem --key ./pki/server.key &
    curl --cacert ./pki/ca.pem https://localhost:8443/

The CA's private key is never written: the directory can issue nothing more, and trusting ``ca.pem``
means trusting exactly the one server certificate written next to it.

``--variant NAME`` writes one of lesson 04's certificate scenarios instead (``--variant list`` names
them): the leaf, the untrusted intermediates, the trust anchors, CRLs and a stapled OCSP response as
``openssl verify`` reads them, and ``manifest.json`` with the host, the purpose, the validation time,
the verdict a validator should reach, and OpenSSL's command line for it.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..pki import CoursePKI
from ..pki.variants import VARIANTS, build_variant
from .arguments import certificate_name, output_folder
from .errors import EXIT_USAGE, CommandError

LIST = "list"


def variant_name(text: str) -> str:
    """A scenario of :mod:`handshake_lib.pki.variants`, or ``list``."""
    if text == LIST or text in VARIANTS:
        return text
    shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    raise argparse.ArgumentTypeError(f"no variant {shown} (--variant list names them)")


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("pki", help="course PKI: a demo CA and server certificate, or a faulty variant")
    commands = parser.add_subparsers(title="commands", metavar="{demo}", required=True)
    demo = commands.add_parser(
        "demo",
        help="write a fresh CA (ca.pem) and a localhost server certificate (server.pem, server.key)",
        description=__doc__.splitlines()[0],
    )
    demo.add_argument(
        "directory", type=output_folder, nargs="?",
        help="where to write the files (created if missing); not needed with --variant list",
    )
    demo.add_argument(
        "--key-type", choices=("rsa2048", "ecdsa-p256"), default=None,
        help="server key type (default rsa2048: TLS_RSA_* key exchange encrypts to it)",
    )
    demo.add_argument(
        "--hostname", action="append", dest="hostnames", type=certificate_name,
        help="a DNS name or IP address for the certificate (repeatable; default localhost and 127.0.0.1)",
    )
    demo.add_argument(
        "--variant", type=variant_name, metavar="NAME",
        help="write this certificate scenario of lesson 04 instead (expired, wrong-host, ...; 'list' names them)",
    )
    demo.set_defaults(command=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    if args.variant == LIST:
        return list_variants()
    directory: Path | None = args.directory
    if directory is None:
        raise CommandError("pki demo needs a DIR to write into", EXIT_USAGE)
    if args.variant is not None:
        if args.hostnames or args.key_type:
            raise CommandError("--hostname and --key-type do not apply to --variant (each variant fixes its own)",
                               EXIT_USAGE)
        return write_variant(args.variant, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        pki = CoursePKI.create()
        hostnames = tuple(args.hostnames or ("localhost", "127.0.0.1"))
        issued = pki.issue_server(hostnames, key_type=args.key_type or "rsa2048")
        ca_path = pki.write_ca(directory)
        cert_path, key_path = pki.write_issued(issued, directory)
    except OSError as error:
        raise CommandError(f"cannot write to {directory}: {error.strerror or error}") from None
    print(f"CA certificate:     {ca_path}")
    print(f"server certificate: {cert_path}  (for {', '.join(hostnames)}, valid 7 days)")
    print(f"server private key: {key_path}")
    return 0


def list_variants() -> int:
    width = max(len(name) for name in VARIANTS)
    verdict_width = max(len(str(info.expected)) for info in VARIANTS.values())
    for name, info in VARIANTS.items():
        print(f"{name:{width}}  {str(info.expected):{verdict_width}}  {info.summary}")
    return 0


def write_variant(name: str, directory: Path) -> int:
    scenario = build_variant(name)
    try:
        paths = scenario.write(directory)
    except OSError as error:
        raise CommandError(f"cannot write to {directory}: {error.strerror or error}") from None
    print(f"variant {name}: {scenario.summary}")
    target = scenario.host if scenario.host is not None else "(no host: a client certificate)"
    print(f"checked for:  {scenario.purpose} purpose, {target}, at {scenario.at.isoformat()}")
    print(f"expected:     {scenario.expected}")
    if scenario.profiles:
        print(f"profiles:     {scenario.profiles}")
    print(f"files:        {', '.join(sorted(path.name for path in paths.values()))} in {directory}")
    verify = shlex.join(scenario.openssl_verify_arguments())
    print(f"openssl:      cd {shlex.quote(str(directory))} && openssl verify {verify}")
    if scenario.ocsp is not None:
        print(f"              openssl ocsp {shlex.join(scenario.openssl_ocsp_arguments())}")
    return 0
