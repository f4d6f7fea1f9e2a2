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

:func:`handshake_opinion` asks the same OpenSSL in the setting that matters: a real TLS handshake
(Python's ``ssl``, in memory), one end presenting the scenario's chain and the other checking it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from ..errors import HandshakeError
from ..pki.issue import Authority, new_key
from ..pki.second_opinion import Opinion
from ..pki.variants import Scenario
from . import PeerUnavailable

__all__ = [
    "OPENSSL_ERRORS",
    "OPENSSL_TIMEOUT_S",
    "OpenSSLAnswerError",
    "OpenSSLTimeout",
    "handshake_opinion",
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


# Flights a TLS 1.3 handshake with a client certificate needs, with room to spare: the pump below stops
# after this many exchanges even if neither side finishes, so a stuck handshake cannot spin.
MAX_HANDSHAKE_ROUNDS = 16


def handshake_opinion(scenario: Scenario, folder: Path | str | None = None) -> Opinion:
    """OpenSSL's verdict in a real TLS handshake: one ``ssl`` end presents the chain, the other checks it.

    For a server scenario the presenting end is an ``ssl`` server (``load_cert_chain`` with the leaf,
    the untrusted pool and the leaf's key) and the checking end an ``ssl`` client with the scenario's
    roots, ``check_hostname`` against its host, ``VERIFY_X509_STRICT`` and, with CRLs,
    ``VERIFY_CRL_CHECK_CHAIN``; for a client scenario the roles swap (a server with ``CERT_REQUIRED``).
    The two run over memory buffers (``ssl.MemoryBIO``): no socket, no thread, a few milliseconds.

    A handshake checks at the present time, so this suits scenarios built around now (the course's
    variants); it reads no stapled OCSP response (``ssl`` has no OCSP), so on a scenario whose fault is
    only there it has no opinion.  The checks named are OpenSSL's verify error (``verify_code``) mapped
    to ours, as for ``openssl verify``.
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="handshakes-handshake-") as temporary:
            return handshake_opinion(scenario, temporary)
    folder = Path(folder)
    paths = scenario.write(folder)
    presented = folder / "presented.pem"  # the leaf first, then the pool, as a server sends them
    presented.write_bytes(paths["leaf"].read_bytes() + paths["chain"].read_bytes())

    presenting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT if scenario.purpose == "client" else ssl.PROTOCOL_TLS_SERVER)
    presenting.load_cert_chain(presented, paths["leaf_key"])
    checking = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if scenario.purpose == "client" else ssl.PROTOCOL_TLS_CLIENT)
    if scenario.purpose == "client":  # the server that asks for the client's chain needs an identity of its own
        checking.load_cert_chain(*_checking_server_identity(folder))
    checking.load_verify_locations(cafile=paths["roots"])
    checking.verify_mode = ssl.CERT_REQUIRED
    checking.verify_flags |= ssl.VERIFY_X509_STRICT
    if "crls" in paths:
        checking.load_verify_locations(cafile=paths["crls"])  # a PEM file of CRLs loads into the same store
        checking.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    if scenario.purpose == "client":
        presenting.check_hostname = False
        presenting.verify_mode = ssl.CERT_NONE  # this run is about the client's chain, not the server's
        client, server = _End(presenting, None), _End(checking, None, server_side=True)
    else:
        checking.check_hostname = scenario.host is not None
        client, server = _End(checking, scenario.host), _End(presenting, None, server_side=True)
    try:
        _pump(client, server)
    except ssl.SSLCertVerificationError as error:
        number = error.verify_code
        # 26, unsuitable purpose: the leaf's EKU, or a CA that is no CA (the message does not give the depth).
        depth = 0 if number == 26 and scenario.leaf.extensions is not None and _leaf_purpose_error(error) else 1
        return Opinion(False, (openssl_check(number, depth),), f"verify error {number}: {error.verify_message}")
    except ssl.SSLError as error:
        return Opinion(False, (None,), f"handshake failed: {error.reason or error}")
    if scenario.ocsp is not None:
        return Opinion(True, (), "handshake completed (ssl reads no stapled OCSP response)", has_opinion=False)
    return Opinion(True, (), "handshake completed")


def _checking_server_identity(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed ECDSA server certificate and key, written into ``folder`` (nobody checks it)."""
    now = dt.datetime.now(dt.UTC)
    key = new_key("ecdsa-p256")
    authority = Authority.root("Handshake opinion server", key, now=now, not_after=dt.timedelta(hours=1))
    certificate_path, key_path = folder / "checking-server.pem", folder / "checking-server.key"
    certificate_path.write_bytes(authority.certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


def _leaf_purpose_error(error: ssl.SSLCertVerificationError) -> bool:
    return "purpose" in (error.verify_message or "")


class _End:
    """One end of an in-memory handshake: an ``ssl`` object and the two buffers it reads and writes."""

    def __init__(self, context: ssl.SSLContext, host: str | None, *, server_side: bool = False) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side, server_hostname=host)
        self.done = False

    def step(self, peer: _End) -> None:
        if not self.done:
            try:
                self.tls.do_handshake()
                self.done = True
            except ssl.SSLWantReadError:
                pass
        self.send(peer)

    def settle(self, peer: _End) -> None:
        """Read once after the handshake: TLS 1.3 delivers a refusal of the client's certificate (an alert) here."""
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            self.tls.read(1)
        self.send(peer)

    def send(self, peer: _End) -> None:
        data = self.outgoing.read()
        if data:
            peer.incoming.write(data)


def _pump(client: _End, server: _End) -> None:
    """Run both ends' handshakes, moving each one's output to the other, until both are done.

    The end that checks the chain raises :class:`ssl.SSLCertVerificationError` when it refuses it; an
    alert the other end receives raises :class:`ssl.SSLError`.
    """
    for _ in range(MAX_HANDSHAKE_ROUNDS):
        client.step(server)
        server.step(client)
        if client.done and server.done:
            server.settle(client)
            client.settle(server)
            return
    raise ssl.SSLError(f"the handshake did not finish in {MAX_HANDSHAKE_ROUNDS} rounds")
