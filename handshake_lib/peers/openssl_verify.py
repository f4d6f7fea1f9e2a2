"""``openssl verify``'s verdict on a course scenario: the second opinion that runs the real program.

Theory of operation
-------------------
:func:`openssl_opinion` writes the scenario's files (:meth:`Scenario.write`) into a fresh folder, or
uses a folder it was already written to, and runs::

    openssl verify -x509_strict -no-CApath -no-CAstore -CAfile roots.pem -attime T -purpose sslserver|sslclient
        -verify_depth 8 [-untrusted chain.pem] [-verify_hostname H | -verify_ip A]
        [-CRLfile crls.pem -crl_check_all] leaf.pem

(:meth:`Scenario.openssl_verify_arguments`).  OpenSSL goes on after an error and prints each one as
``error N at D depth lookup: why``; every one is mapped to the name of our check it belongs to
(:data:`OPENSSL_ERRORS`, from ``include/openssl/x509_vfy.h``), so the opinion lists them all: a CA
without keyCertSign gets 79 (invalid CA certificate) first and the precise 32 after it.

``openssl verify`` reads no OCSP response, so when it finds the chain valid and the scenario staples
one, ``openssl ocsp -respin ocsp.der`` gives the verdict on it (good, revoked, unknown; "Status
times invalid" for a stale response, which it judges by the clock, not by ``-attime``).

Every run has a deadline (``timeout``, default :data:`OPENSSL_TIMEOUT_S`); a run past it is killed
and raises :class:`OpenSSLTimeout`; no ``openssl`` program raises
:class:`~handshake_lib.peers.PeerUnavailable`; output that says none of the expected things raises
:class:`OpenSSLAnswerError`.  Each is one line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import HandshakeError
from ..pki.second_opinion import Opinion
from ..pki.variants import Scenario
from . import PeerUnavailable

__all__ = [
    "OPENSSL_ERRORS",
    "OPENSSL_TIMEOUT_S",
    "OpenSSLAnswerError",
    "OpenSSLTimeout",
    "openssl_check",
    "openssl_opinion",
]

OPENSSL_TIMEOUT_S = 30.0  # one verify of a ten-certificate chain takes a few ms; this is for a stuck machine
MAX_OUTPUT_CHARS = 4000  # of the program's output kept in an error message's source (the message is one line)

# OpenSSL's verify error numbers (include/openssl/x509_vfy.h) as the check they belong to.  26
# ("unsuitable certificate purpose") is the leaf's EKU at depth 0 and a CA that is no CA above it:
# :func:`openssl_check` decides by the depth.
OPENSSL_ERRORS: dict[int, str] = {
    2: "path", 18: "path", 19: "path", 20: "path", 21: "path", 22: "path",
    7: "signature", 4: "signature",
    9: "validity", 10: "validity",
    24: "basic_constraints", 79: "basic_constraints", 82: "basic_constraints",
    25: "path_length",
    32: "key_usage",
    47: "name_constraints",
    62: "host_name", 64: "host_name",
    3: "revocation", 12: "revocation", 23: "revocation", 35: "key_usage",
    34: "critical_extensions",
}  # fmt: skip

_ERROR_LINE = re.compile(r"error (\d+) at (\d+) depth lookup: (.*)")
_OCSP_STATUS = re.compile(r"leaf\.pem: (?:WARNING: (Status times invalid)\.\n.*\n)?(good|revoked|unknown)")


class OpenSSLTimeout(PeerUnavailable, TimeoutError):
    """``openssl`` gave no answer before the deadline (it was killed)."""


class OpenSSLAnswerError(HandshakeError, ValueError):
    """``openssl`` answered something we cannot read as a verdict."""


def openssl_check(number: int, depth: int) -> str | None:
    """The name of our check that OpenSSL's verify error ``number`` at ``depth`` belongs to (None: no counterpart)."""
    if number == 26:  # unsuitable certificate purpose: the leaf's EKU, or a CA that is no CA
        return "extended_key_usage" if depth == 0 else "basic_constraints"
    return OPENSSL_ERRORS.get(number)


def openssl_opinion(
    scenario: Scenario,
    folder: Path | str | None = None,
    *,
    openssl: str | None = None,
    timeout: float = OPENSSL_TIMEOUT_S,
) -> Opinion:
    """OpenSSL's verdict on ``scenario`` (``openssl verify``, then ``openssl ocsp`` on a stapled response).

    ``folder`` is where :meth:`Scenario.write` already put the scenario's files; without one they are
    written to a temporary folder, deleted afterwards.  ``openssl`` is the program (default: the one on
    PATH).  Raises :class:`PeerUnavailable` without the program, :class:`OpenSSLTimeout` past ``timeout``
    seconds, :class:`OpenSSLAnswerError` for output that is no verdict.
    """
    program = openssl or shutil.which("openssl")
    if program is None:
        raise PeerUnavailable("the openssl program is not installed (it is on PATH nowhere)")
    if folder is not None:
        return _judge(program, scenario, Path(folder), timeout)
    with tempfile.TemporaryDirectory(prefix="handshakes-verify-") as temporary:
        scenario.write(temporary)
        return _judge(program, scenario, Path(temporary), timeout)


def _judge(program: str, scenario: Scenario, folder: Path, timeout: float) -> Opinion:
    verdict = _verify(program, scenario, folder, timeout)
    if verdict.valid and scenario.ocsp is not None:
        return _ocsp(program, scenario, folder, timeout)
    return verdict


def _run(program: str, arguments: list[str], folder: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        # subprocess.run kills the child when the timeout expires, and reaps it, before raising.
        return subprocess.run([program, *arguments], cwd=folder, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OpenSSLTimeout(f"openssl {arguments[0]} gave no answer within {timeout:g} s (killed)") from None
    except OSError as error:
        raise PeerUnavailable(f"cannot run {program}: {error.strerror or error}") from None


def _verify(program: str, scenario: Scenario, folder: Path, timeout: float) -> Opinion:
    run = _run(program, ["verify", *scenario.openssl_verify_arguments()], folder, timeout)
    if run.returncode == 0:
        return Opinion(True, (), "OK")
    errors = [(int(n), int(d), why) for n, d, why in _ERROR_LINE.findall(run.stdout + run.stderr)]
    checks = tuple(openssl_check(number, depth) for number, depth, _ in errors)
    detail = "; ".join(f"error {n} at depth {d}: {why}" for n, d, why in errors)
    return Opinion(False, checks, detail or _one_line(run.stderr) or f"openssl verify exited {run.returncode}")


def _ocsp(program: str, scenario: Scenario, folder: Path, timeout: float) -> Opinion:
    run = _run(program, ["ocsp", *scenario.openssl_ocsp_arguments()], folder, timeout)
    output = run.stdout + run.stderr
    status = _OCSP_STATUS.search(output)
    if run.returncode != 0 or "Response verify OK" not in output or status is None:
        raise OpenSSLAnswerError(f"openssl ocsp gave no status for {scenario.name}: {_one_line(output)}")
    if status[1]:
        return Opinion(False, ("revocation",), f"OCSP says {status[2]}, but: {status[1].lower()}")
    good = status[2] == "good"
    return Opinion(good, () if good else ("revocation",), f"OCSP: {status[2]}")


def _one_line(text: str) -> str:
    return " / ".join(line.strip() for line in text[:MAX_OUTPUT_CHARS].splitlines() if line.strip())[:300]
