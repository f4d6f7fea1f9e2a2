"""How long a full TLS 1.2 handshake plus one small GET takes with our code, next to OpenSSL's.

Two comparisons, each per cipher suite, each timed in the same run and interleaved call by call so that
a busy machine slows both sides alike:

* **our client**: :func:`handshake_lib.net.tls.tls_get` against an OpenSSL server
  (:class:`handshake_lib.peers.openssl.PythonSSLServer`), versus Python's ``ssl`` (OpenSSL) client doing the same GET
  against the same server;
* **our server**: a Python ``ssl`` client fetching the page from
  :class:`handshake_lib.net.tls.TLSPageServer`, versus the same client against ``PythonSSLServer``.

A third pair of rows does the same with a **client certificate** (mutual TLS, ECDSA P-256 client key,
AES128-GCM-SHA256): our client presenting it to an OpenSSL server that requires one, versus Python's
``ssl`` client presenting it to the same server; and Python's ``ssl`` client presenting it to our server
(``client_ca``, required) versus to the OpenSSL server.  Both sides then also sign CertificateVerify and
validate a client chain.

One sample is: TCP connect, full handshake (fresh every time: no session is resumed), send
``GET / HTTP/1.1``, read the response up to its Content-Length, close.  ``TCP_NODELAY`` is on at both
ends of every connection (``net.connect`` and both servers set it), so Nagle's algorithm and delayed
ACKs cannot add their ~40 ms.  Each row reports ours/OpenSSL's ratio of medians, target < 1.5: a
teaching implementation in Python may be slower than C, but not so slow that a learner's widget or
notebook cell waits on it.  Server certificates are RSA-2048, from a fresh course CA.
"""

from __future__ import annotations

import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from handshake_lib import net
from handshake_lib.peers.openssl import openssl_server
from handshake_lib.pki import CoursePKI
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite
from handshake_lib.tls.suites import SUITES

from .report import Measurement

GROUP = "handshake"
RATIO_TARGET = 1.5
DEFAULT_COUNT = 500  # samples per side per row: about 20-30 s for the whole group on a 2-core machine
WARMUP = 5
TIMEOUT_S = 5.0
OPENSSL_NAME = {suite: name for name, suite in OPENSSL_NAMES.items()}
# (suite, encrypt_then_mac): OpenSSL negotiates encrypt-then-MAC for CBC suites by default, so the classic
# MAC-then-encrypt construction (with its constant-work padding check) gets a row of its own.
DEFAULT_SUITES: tuple[tuple[CipherSuite, bool], ...] = (
    (CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256, True),
    (CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256, True),
    (CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA, True),
    (CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA, False),
    (CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384, True),
)


def _read_http_response(read: Callable[[], bytes]) -> bytes:
    """Read one HTTP/1.1 response through ``read`` until Content-Length is satisfied (or EOF)."""
    response = b""
    while True:
        head_end = response.find(b"\r\n\r\n")
        if head_end >= 0:
            for line in response[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and len(response) >= head_end + 4 + int(value):
                    return response
        chunk = read()
        if not chunk:
            return response
        response += chunk


def python_ssl_get(context: ssl.SSLContext, port: int) -> bytes:
    """One GET with Python's ssl (OpenSSL) as the client, over a TCP_NODELAY socket."""
    raw = net.connect(net.LOOPBACK, port, timeout=TIMEOUT_S)
    with raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return _read_http_response(lambda: tls.recv(65536))


# OpenSSL's SSL_OP_NO_ENCRYPT_THEN_MAC (not exported by Python's ssl): the client then does not offer RFC 7366.
OP_NO_ENCRYPT_THEN_MAC = 0x00080000


def client_context(ca_path: Path, suite: CipherSuite, *, encrypt_then_mac: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_path))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(OPENSSL_NAME[suite])
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF  # the servers close after the page, as HTTP/1.1 allows
    if not encrypt_then_mac:
        context.options |= OP_NO_ENCRYPT_THEN_MAC
    return context


def time_pair(
    ours: Callable[[], bytes], theirs: Callable[[], bytes], count: int, expect: bytes
) -> tuple[list[float], list[float]]:
    """Time ``count`` calls of each, alternating; every response must contain ``expect``."""
    for _ in range(WARMUP):
        ours(), theirs()
    our_ms: list[float] = []
    their_ms: list[float] = []
    for _ in range(count):
        for call, samples in ((ours, our_ms), (theirs, their_ms)):
            started = time.perf_counter()
            response = call()
            samples.append((time.perf_counter() - started) * 1000)
            if expect not in response:
                raise RuntimeError(f"unexpected response: {response[:120]!r}")
    return our_ms, their_ms


def ratio_row(name: str, our_ms: list[float], their_ms: list[float], their_label: str) -> Measurement:
    ours, theirs = statistics.median(our_ms), statistics.median(their_ms)
    return Measurement(
        GROUP,
        name,
        ours / theirs,
        "x",
        RATIO_TARGET,
        detail=f"median {ours:.2f} ms vs {their_label} {theirs:.2f} ms, n={len(our_ms)}",
        extra={"ours_median_ms": ours, "theirs_median_ms": theirs, "ours_ms": our_ms, "theirs_ms": their_ms},
    )


def _error_row(name: str, error: BaseException) -> Measurement:
    return Measurement(GROUP, name, None, "x", RATIO_TARGET, error=f"{type(error).__name__}: {error}")


def measure(
    count: int = DEFAULT_COUNT, suites: tuple[tuple[CipherSuite, bool], ...] = DEFAULT_SUITES
) -> list[Measurement]:
    try:
        from handshake_lib.net.tls import TLSPageServer, tls_get
    except Exception as error:  # noqa: BLE001 - our TLS code does not import: one ERROR row says so
        return [_error_row("import handshake_lib.net.tls", error)]
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="handshakes-bench-") as name:
        # One set of keys for every suite, so the rows differ only in the suite.
        files = CoursePKI.create().write_server_files(Path(name))
        ca_path, issued = files.ca_path, files.issued
        for suite, etm in suites:
            label = OPENSSL_NAME[suite]
            context = client_context(ca_path, suite, encrypt_then_mac=etm)
            construction = "" if SUITES[suite].is_aead else (" (encrypt-then-MAC)" if etm else " (MAC-then-encrypt)")
            client_row = f"our client -> OpenSSL server, {label}{construction}: full handshake + GET"
            server_row = f"ssl client -> our server, {label}{construction}: full handshake + GET"
            with ExitStack() as stack:
                # No key log: writing it would slow OpenSSL's side of every comparison.
                openssl = stack.enter_context(openssl_server(label, files=files, keylog=False)).server
                url = f"https://localhost:{openssl.port}/"
                try:
                    our_ms, their_ms = time_pair(
                        lambda url=url, suite=suite, etm=etm: tls_get(
                            url, cafile=ca_path, cipher_suites=[suite], encrypt_then_mac=etm
                        ).body,
                        lambda port=openssl.port, context=context: python_ssl_get(context, port),
                        count,
                        b"Hello from OpenSSL",
                    )
                    rows.append(ratio_row(client_row, our_ms, their_ms, "Python ssl client"))
                except Exception as error:  # noqa: BLE001 - reported as an ERROR row
                    rows.append(_error_row(client_row, error))
                try:
                    our_server = stack.enter_context(
                        TLSPageServer([issued.der], issued.private_key, cipher_suites=[suite], encrypt_then_mac=etm)
                    )
                    our_ms, their_ms = time_pair(
                        lambda port=our_server.port, context=context: python_ssl_get(context, port),
                        lambda port=openssl.port, context=context: python_ssl_get(context, port),
                        count,
                        b"</html>",
                    )
                    rows.append(ratio_row(server_row, our_ms, their_ms, "OpenSSL server"))
                except Exception as error:  # noqa: BLE001 - reported as an ERROR row
                    rows.append(_error_row(server_row, error))
    rows.extend(measure_mutual(count))
    return rows


def measure_mutual(count: int = DEFAULT_COUNT) -> list[Measurement]:
    """Full handshake + GET with an ECDSA client certificate that each server requires, ours beside OpenSSL's."""
    from handshake_lib.net.tls import TLSPageServer, tls_get

    suite = CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256
    label = OPENSSL_NAME[suite]
    client_row = f"our client -> OpenSSL server, {label}, client certificate (ECDSA): full handshake + GET"
    server_row = f"ssl client -> our server, {label}, client certificate (ECDSA): full handshake + GET"
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="handshakes-bench-mtls-") as name:
        files = CoursePKI.create().write_server_files(Path(name))
        client = files.pki.issue_client("bench-client")
        client_cert, client_key = CoursePKI.write_issued(client, Path(name), "client")
        context = client_context(files.ca_path, suite)
        context.load_cert_chain(client_cert, client_key)
        with ExitStack() as stack:
            openssl = stack.enter_context(openssl_server(label, files=files, keylog=False)).server
            openssl.context.verify_mode = ssl.CERT_REQUIRED
            openssl.context.load_verify_locations(files.ca_path)
            url = f"https://localhost:{openssl.port}/"
            try:
                our_ms, their_ms = time_pair(
                    lambda: tls_get(
                        url, cafile=files.ca_path, cipher_suites=[suite],
                        client_certificate_chain=[client.certificate], client_private_key=client.private_key,
                    ).body,  # fmt: skip
                    lambda: python_ssl_get(context, openssl.port),
                    count,
                    b"Hello from OpenSSL",
                )
                rows.append(ratio_row(client_row, our_ms, their_ms, "Python ssl client"))
            except Exception as error:  # noqa: BLE001 - reported as an ERROR row
                rows.append(_error_row(client_row, error))
            try:
                issued = files.issued
                ours = stack.enter_context(
                    TLSPageServer(
                        [issued.der], issued.private_key, cipher_suites=[suite], client_ca=files.ca_path,
                        require_client_certificate=True,
                    )  # fmt: skip
                )
                our_ms, their_ms = time_pair(
                    lambda: python_ssl_get(context, ours.port),
                    lambda: python_ssl_get(context, openssl.port),
                    count,
                    b"</html>",
                )
                rows.append(ratio_row(server_row, our_ms, their_ms, "OpenSSL server"))
            except Exception as error:  # noqa: BLE001 - reported as an ERROR row
                rows.append(_error_row(server_row, error))
    return rows

