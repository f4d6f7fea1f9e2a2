"""``handshakes cert check``: the course's validator on a certificate chain, every check with its reason.

    handshakes cert check LEAF.pem [--chain INTERMEDIATES.pem] --cafile ROOTS.pem [--host NAME-OR-IP]
        [--at ISO-8601-TIME] [--purpose server|client] [--crl FILE]... [--ocsp FILE] [--max-depth N] [--json]

prints the report of :func:`handshake_lib.pki.validate.validate` (or, with ``--json``, the same as data)
and exits 0 when the chain is valid, 1 when it is not (a certificate that does not parse included), 2 on
a command-line error and 3 on an internal error.  ``--chain`` is an unordered pool of untrusted
intermediates; ``--at`` takes RFC 3339 times with offsets and fractions of a second (none means UTC;
default now); ``--crl`` takes PEM (one or several CRLs) or DER, and may be given several times;
``--ocsp`` is a DER OCSPResponse, as a server staples it; ``--max-depth`` counts intermediates (0: the
leaf is issued directly by a trust anchor); ``--host`` is an IP address when it parses as one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path

from cryptography import x509

from ..errors import CertificateDecodeError
from ..pki.loading import MAX_INPUT_BYTES, load_certificates, load_crl, load_ocsp_response
from ..pki.report import Purpose, ValidationReport
from ..pki.revocation import MAX_CRL_BYTES, MAX_OCSP_BYTES
from ..pki.validate import DEFAULT_MAX_DEPTH, validate
from .arguments import host, input_file
from .errors import EXIT_FAILURE, EXIT_OK, CommandError

__all__ = ["register", "run_check", "EXIT_INTERNAL"]

EXIT_INTERNAL = 3  # a bug of ours, not a verdict on the certificate: scripts can tell the two apart
MAX_DEPTH_LIMIT = 64  # --max-depth above this is a typo; the validator's own bound is far lower by default
_CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----", re.S)


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("cert", help="certificate checks with the course's own validator")
    commands = parser.add_subparsers(title="commands", metavar="{check}", required=True)
    check = commands.add_parser(
        "check", help="validate a certificate chain and print every check", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    check.add_argument("leaf", type=input_file, help="the certificate to check (PEM or DER)")
    check.add_argument("--chain", type=input_file, metavar="FILE", help="untrusted intermediates (PEM), any order")
    check.add_argument("--cafile", type=input_file, required=True, metavar="FILE", help="trust anchors (PEM)")
    check.add_argument("--host", type=host, metavar="NAME-OR-IP", help="the name the leaf must carry")
    check.add_argument("--at", type=_time, metavar="TIME", help="validation time, RFC 3339 (default: now)")
    check.add_argument("--purpose", choices=[p.value for p in Purpose], default=Purpose.SERVER.value)
    check.add_argument("--crl", type=input_file, action="append", default=[], metavar="FILE",
                       help="a CRL (PEM or DER); repeatable")
    check.add_argument("--ocsp", type=input_file, metavar="FILE", help="an OCSP response (DER), as stapled")
    check.add_argument(
        "--max-depth", type=_depth, default=DEFAULT_MAX_DEPTH, metavar="N",
        help=f"most intermediates in a path (default {DEFAULT_MAX_DEPTH}; 0: issued by an anchor directly)",
    )  # fmt: skip
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(command=run_check)


# -- argument types: one line each, exit 2 ---------------------------------------------------------------
def _time(text: str) -> dt.datetime:
    """RFC 3339 (``2026-12-04T10:00:00Z``, ``...+01:00``, fractions of a second); no offset means UTC."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time such as 2026-12-04T10:00:00Z, not {text!r}"
        ) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_DEPTH_LIMIT:
        raise argparse.ArgumentTypeError(
            f"expected a number of intermediates from 0 to {MAX_DEPTH_LIMIT}, not {text!r}"
        )
    return value


# -- the command -------------------------------------------------------------------------------------------
def _read(path: Path, cap: int, what: str) -> bytes:
    """At most ``cap`` bytes of ``path``; a larger file is refused (verdict: not valid), not read whole."""
    try:
        with path.open("rb") as file:
            data = file.read(cap + 1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > cap:
        raise CertificateDecodeError(f"{what} {path} is larger than {cap} bytes")
    return data


def _crls(path: Path) -> list[x509.CertificateRevocationList]:
    data = _read(path, MAX_CRL_BYTES, "CRL file")
    blocks = _CRL_BLOCK.findall(data) if b"-----BEGIN" in data else [data]
    if not blocks:
        raise CertificateDecodeError(f"CRL file {path} holds no '-----BEGIN X509 CRL-----' block")
    return [load_crl(block, f"CRL in {path}") for block in blocks]


def _report(args: argparse.Namespace) -> ValidationReport:
    leaves = load_certificates(_read(args.leaf, MAX_INPUT_BYTES, "certificate file"), f"certificate {args.leaf}")
    anchors = load_certificates(_read(args.cafile, MAX_INPUT_BYTES, "CA file"), f"CA file {args.cafile}")
    pool: list[x509.Certificate] = []
    if args.chain is not None:
        pool = load_certificates(_read(args.chain, MAX_INPUT_BYTES, "chain file"), f"chain file {args.chain}")
    crls = [crl for path in args.crl for crl in _crls(path)]
    stapled = None
    if args.ocsp is not None:
        stapled = load_ocsp_response(_read(args.ocsp, MAX_OCSP_BYTES, "OCSP file"), f"OCSP response {args.ocsp}")
    # A leaf file with several certificates is a chain as a server sends it: the first is the leaf.
    return validate(
        leaves[0], intermediates=[*leaves[1:], *pool], trust_anchors=anchors, purpose=Purpose(args.purpose),
        at=args.at, host=args.host, crls=crls, stapled_ocsp=stapled, max_depth=args.max_depth,
    )  # fmt: skip


def run_check(args: argparse.Namespace) -> int:
    try:
        report = _report(args)
    except CertificateDecodeError as error:
        # Something that does not parse is a verdict (not valid), not a usage error.
        if args.json:
            print(json.dumps({"verdict": "invalid", "error": str(error)}, indent=2))
        else:
            print(f"verdict: invalid ({error})")
        return EXIT_FAILURE
    except CommandError:
        raise
    except Exception as error:  # noqa: BLE001 - a bug of ours: one line and its own exit status, no traceback
        raise CommandError(f"internal error: {type(error).__name__}: {error}", EXIT_INTERNAL) from None
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return EXIT_OK if report.valid else EXIT_FAILURE
