"""The command line: ``python -m handshake_lib`` / ``handshakes``.

Most tests call ``main([...])`` in-process and read what it printed (capsys); one runs the real
``python -m handshake_lib`` as a subprocess, and one runs ``tls serve`` as a subprocess fetched by curl
and stopped with SIGTERM.  ``tls get`` runs against a real OpenSSL server (``PythonSSLServer``), and its
master secret is compared with the one OpenSSL logged for the same client random.
"""

from __future__ import annotations

import datetime
import json
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, cli_environment, require
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from handshake_lib import net
from handshake_lib.__main__ import main
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tcp import Flags, bundled_capture, read_pcap
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite
from handshake_lib.tls.keylog import parse_keylog

PYTHON = sys.executable
OPENSSL_NAME = {suite: name for name, suite in OPENSSL_NAMES.items()}
SUITES = [
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
    CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
]
SUBPROCESS_TIMEOUT_S = 30


@pytest.fixture
def python_ssl_server(server_files: ServerFiles, tmp_path: Path) -> Iterator[tuple[PythonSSLServer, Path]]:
    """An OpenSSL TLS 1.2 server accepting the four RSA suites, writing its key log."""
    keylog = tmp_path / "openssl.keylog"
    ciphers = ":".join(OPENSSL_NAME[suite] for suite in SUITES)
    context = server_context(
        server_files.cert_path,
        server_files.key_path,
        ciphers=ciphers,
        maximum_version=ssl.TLSVersion.TLSv1_2,
        keylog_path=keylog,
    )
    with PythonSSLServer(context) as server:
        yield server, keylog


# -- pki demo --------------------------------------------------------------------------------------------
def test_pki_demo_writes_a_ca_that_issued_the_server_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pki", "demo", str(tmp_path / "pki")]) == 0
    out = capsys.readouterr().out
    ca_path, cert_path, key_path = (tmp_path / "pki" / name for name in ("ca.pem", "server.pem", "server.key"))
    for path in (ca_path, cert_path, key_path):
        assert str(path) in out
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    leaf.verify_directly_issued_by(ca)  # raises if the signature does not check out
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert key_path.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only


def test_pki_demo_into_an_unwritable_place_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["pki", "demo", str(blocker / "pki")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_pki_demo_variant_writes_the_scenario_and_what_openssl_says_about_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    openssl = require("openssl")
    folder = tmp_path / "expired"
    assert main(["pki", "demo", str(folder), "--variant", "expired"]) == 0
    out = capsys.readouterr().out
    assert "expected:     invalid (validity)" in out
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["variant"] == "expired" and manifest["host"] == "www.shop.example"
    leaf = x509.load_pem_x509_certificate((folder / "leaf.pem").read_bytes())
    assert leaf.not_valid_after_utc < datetime.datetime.fromisoformat(manifest["at"])
    # The command line it prints is the one that makes OpenSSL say why.
    command = re.search(r"openssl verify (.*)", out)
    assert command is not None
    run = subprocess.run([openssl, "verify", *command[1].split()], cwd=folder, capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT_S)
    assert run.returncode != 0 and "certificate has expired" in run.stdout + run.stderr


def test_pki_demo_variant_list_names_every_variant_with_its_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    from handshake_lib.pki.variants import VARIANTS

    assert main(["pki", "demo", "--variant", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(VARIANTS)
    assert any(line.startswith("wrong-host ") and "invalid (host_name)" in line for line in lines)


# -- tcp decode / observe --------------------------------------------------------------------------------
def test_tcp_decode_lists_every_segment_with_relative_and_raw_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tcp", "decode"]) == 0
    lines = capsys.readouterr().out.splitlines()
    segments = read_pcap(bundled_capture())
    assert len(lines) == 1 + len(segments)
    syn, syn_ack = segments[0].segment, segments[1].segment
    assert Flags.SYN in syn.flags and Flags.ACK in syn_ack.flags
    # The handshake's "+1", relative and raw: SYN seq=0, SYN-ACK ack=1, ACK seq=1 ack=1.
    assert re.search(rf"\bSYN\s+seq=0 \({syn.seq}\)\s+ack=-", lines[1])
    assert re.search(rf"SYN,ACK\s+seq=0 \({syn_ack.seq}\)\s+ack=1 \({syn.seq + 1}\)", lines[2])
    assert re.search(rf"seq=1 \({syn.seq + 1}\)\s+ack=1 \({syn_ack.seq + 1}\)", lines[3])
    assert f"127.0.0.1:{syn.src_port} -> 127.0.0.1:{syn.dst_port}" in lines[1]
    assert "checksum partial" in lines[1]  # loopback captures leave checksums to offload


def test_tcp_decode_trace_shows_annotated_hex_of_each_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tcp", "decode", str(bundled_capture()), "--trace"]) == 0
    out = capsys.readouterr().out
    first = read_pcap(bundled_capture())[0]
    first_row = " ".join(f"{byte:02x}" for byte in first.frame[:16])
    assert f"0000  {first_row}" in out
    hex_rows_at_zero = re.findall(r"^0000  (?:[0-9a-f]{2} ){3}", out, re.MULTILINE)  # not the span list's "0000  14 x"
    assert len(hex_rows_at_zero) == len(read_pcap(bundled_capture()))
    assert all(span.field.rsplit(".", 1)[-1] in out for span in first.spans)


def test_tcp_decode_of_a_file_that_is_not_a_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.pcap"
    bogus.write_bytes(b"this is not a pcap file at all")
    assert main(["tcp", "decode", str(bogus)]) == 1
    err = capsys.readouterr().err
    assert "not a capture" in err and "Traceback" not in err
    assert main(["tcp", "decode", str(tmp_path / "missing.pcap")]) == 2  # refused by argparse, before reading
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")
def test_tcp_observe_reports_both_ends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tcp", "observe"]) == 0
    out = capsys.readouterr().out
    client = re.search(r"^client 127\.0\.0\.1:(\d+)$", out, re.MULTILINE)
    server = re.search(r"^server 127\.0\.0\.1:(\d+)$", out, re.MULTILINE)
    assert client and server and client.group(1) != server.group(1)
    assert out.count("ESTABLISHED") == 2


# -- usage errors: exit 2, one line, no traceback ---------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tls", "get", "https://localhost:1/", "--cipher", "NOPE-SHA"], "unknown cipher suite 'NOPE-SHA'"),
        (["tls", "get", "https://localhost:1/", "--cipher", "AES128-SHA,BOGUS"], "unknown cipher suite 'BOGUS'"),
        (["tls", "get", "https://localhost:1/", "--cipher", "TLS_AES_128_GCM_SHA256"], "not a suite our TLS 1.2"),
        (["tls", "get", "http://localhost:1/"], "expected a URL like https://"),
        (["tls", "get", "https://localhost:1/", "--cafile", "/nonexistent/ca.pem"], "does not exist"),
        (["tls", "serve", "--port", "0", "--cert", "c", "--key", "k", "--host", "0.0.0.0"], "not a loopback"),
        (["tls", "serve", "--port", "0", "--cert", "c", "--key", "k", "--host", "192.0.2.1"], "add --public"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    argv: list[str], message: str, server_files: ServerFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    identity = {"c": str(server_files.cert_path), "k": str(server_files.key_path)}  # --cert and --key must exist
    assert main([identity.get(part, part) for part in argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_command_is_argparse_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tls", "fetch"]) == 2
    assert "invalid choice" in capsys.readouterr().err


# -- tls get against OpenSSL -----------------------------------------------------------------------------
@pytest.mark.parametrize("suite", SUITES, ids=lambda suite: OPENSSL_NAME[suite])
def test_tls_get_fetches_page_from_openssl(
    suite: CipherSuite,
    server_files: ServerFiles,
    python_ssl_server: tuple[PythonSSLServer, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, server_keylog = python_ssl_server
    our_keylog = tmp_path / "ours.keylog"
    argv = [
        "tls", "get", f"https://localhost:{server.port}/", "--cafile", str(server_files.ca_path),
        "--cipher", OPENSSL_NAME[suite], "--keylog", str(our_keylog),
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Hello from OpenSSL" in captured.out
    assert suite.name in captured.err
    assert [record.cipher for record in server.connections] == [OPENSSL_NAME[suite]]
    # The same client random, the same master secret, on both sides of the connection.
    ours = parse_keylog(our_keylog.read_text()).entries
    theirs = {entry.client_random: entry.secret for entry in parse_keylog(server_keylog.read_text()).entries}
    assert len(ours) == 1 and theirs.get(ours[0].client_random) == ours[0].secret


def test_tls_get_cipher_takes_iana_names_comma_separated(
    server_files: ServerFiles, python_ssl_server: tuple[PythonSSLServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = python_ssl_server
    argv = [
        "tls", "get", f"https://localhost:{server.port}/", "--cafile", str(server_files.ca_path),
        "--cipher", "TLS_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_CBC_SHA",
    ]  # fmt: skip
    assert main(argv) == 0
    # OpenSSL picks by its own preference among what we offered; both offered, one chosen and reported.
    chosen = server.connections[0].cipher
    assert chosen in ("AES256-GCM-SHA384", "AES128-SHA")
    assert OPENSSL_NAMES[chosen].name in capsys.readouterr().err


def test_tls_get_trace_shows_annotated_records(
    server_files: ServerFiles, python_ssl_server: tuple[PythonSSLServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = python_ssl_server
    argv = [
        "tls", "get", f"https://localhost:{server.port}/", "--cafile", str(server_files.ca_path),
        "--cipher", "AES128-GCM-SHA256", "--trace",
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Hello from OpenSSL" in captured.out
    assert "ClientHello" not in captured.out  # the trace goes to stderr: stdout is the page only
    trace = captured.err
    for needle in ("ClientHello", "ServerHello", "Certificate", "ClientKeyExchange", "Finished", "cipher_suites"):
        assert needle in trace
    assert "client -> server" in trace and "server -> client" in trace
    # A hex row of the first record: a handshake record (0x16) with a TLS 1.x version.
    assert re.search(r"^0000  16 03 0[1-3] ", trace, re.MULTILINE)
    assert "TLS_RSA_WITH_AES_128_GCM_SHA256" in trace
    assert "decrypted" in trace  # the encrypted Finished and the page, shown as plaintext with a note
    after_note = trace[trace.index("decrypted") :]
    assert "HTTP/1.1 200 OK" in after_note  # the response, decrypted, in the hex dump's ASCII column


def test_tls_get_rejects_an_untrusted_certificate(
    python_ssl_server: tuple[PythonSSLServer, Path], untrusted_ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = python_ssl_server
    assert main(["tls", "get", f"https://localhost:{server.port}/", "--cafile", str(untrusted_ca_file)]) == 1
    captured = capsys.readouterr()
    assert "Hello from OpenSSL" not in captured.out
    error_lines = [line for line in captured.err.splitlines() if "error" in line]
    assert len(error_lines) == 1
    assert "certificate" in error_lines[0] and "alert" in error_lines[0]
    assert "Traceback" not in captured.err
    assert server.connections and server.connections[0].cipher is None  # OpenSSL saw the handshake fail


def test_tls_get_trace_shows_the_handshake_up_to_our_alert(
    python_ssl_server: tuple[PythonSSLServer, Path], untrusted_ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = python_ssl_server
    assert main(["tls", "get", f"https://localhost:{server.port}/", "--cafile", str(untrusted_ca_file), "--trace"]) == 1
    err = capsys.readouterr().err
    headers = re.findall(r"^=== record \d+: (client -> server|server -> client)", err, re.MULTILINE)
    assert headers[0] == "client -> server" and "server -> client" in headers
    assert headers[-1] == "client -> server"  # the last record is ours: the alert
    assert err.index("ClientHello") < err.index("Certificate: ") < err.index("Alert: unknown_ca (fatal)")
    assert re.search(r"^0000  15 03 03 00 02 +02 30 ", err, re.MULTILINE)  # the alert record's bytes: fatal, 48
    assert "error" in err.splitlines()[-1] and "Traceback" not in err


def test_tls_get_trace_shows_the_servers_alert(server_files: ServerFiles, capsys: pytest.CaptureFixture[str]) -> None:
    context = server_context(
        server_files.cert_path,
        server_files.key_path,
        ciphers="AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )
    with PythonSSLServer(context) as server:
        argv = [
            "tls", "get", f"https://localhost:{server.port}/", "--cafile", str(server_files.ca_path),
            "--cipher", "AES128-SHA",
            "--trace",
        ]  # fmt: skip
        assert main(argv) == 1
    err = capsys.readouterr().err
    headers = re.findall(r"^=== record \d+: (client -> server|server -> client)", err, re.MULTILINE)
    assert headers == ["client -> server", "server -> client"]  # our ClientHello, OpenSSL's alert
    assert "Alert: handshake_failure (fatal)" in err


def test_tls_get_insecure_skips_verification_and_warns(
    python_ssl_server: tuple[PythonSSLServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = python_ssl_server
    assert main(["tls", "get", f"https://localhost:{server.port}/", "--insecure"]) == 0
    captured = capsys.readouterr()
    assert "Hello from OpenSSL" in captured.out
    assert "warning" in captured.err and "NOT checked" in captured.err


def test_tls_get_connection_refused(server_files: ServerFiles, capsys: pytest.CaptureFixture[str]) -> None:
    with net.listen_loopback() as listener:
        port = listener.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now.
    argv = ["tls", "get", f"https://127.0.0.1:{port}/", "--cafile", str(server_files.ca_path), "--timeout", "2"]
    assert main(argv) == 1
    assert "connection refused" in capsys.readouterr().err


def test_tls_get_when_openssl_and_we_share_no_suite(
    server_files: ServerFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    context = server_context(
        server_files.cert_path,
        server_files.key_path,
        ciphers="AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )
    with PythonSSLServer(context) as server:
        argv = [
            "tls", "get", f"https://localhost:{server.port}/", "--cafile", str(server_files.ca_path),
            "--cipher", "AES128-SHA",
        ]  # fmt: skip
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "handshake_failure" in err  # OpenSSL's alert, named


# -- as real processes ----------------------------------------------------------------------------------
def test_python_dash_m_runs_tls_get(server_files: ServerFiles, python_ssl_server: tuple[PythonSSLServer, Path]) -> None:
    server, _ = python_ssl_server
    url = f"https://localhost:{server.port}/"
    completed = subprocess.run(
        [PYTHON, "-m", "handshake_lib", "tls", "get", url, "--cafile", str(server_files.ca_path)],
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, env=cli_environment(), cwd=ROOT,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "Hello from OpenSSL" in completed.stdout
    assert "HTTP 200" in completed.stderr


def test_tls_serve_answers_curl_and_stops_on_sigterm(server_files: ServerFiles, tmp_path: Path) -> None:
    curl = require("curl")
    keylog = tmp_path / "server.keylog"
    command = [
        PYTHON, "-m", "handshake_lib", "tls", "serve", "--port", "0", "--cert", str(server_files.cert_path),
        "--key", str(server_files.key_path), "--cipher", "AES128-GCM-SHA256", "--keylog", str(keylog),
    ]  # fmt: skip
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_environment(), cwd=ROOT
    )
    try:
        banner = _read_line_with_timeout(server, SUBPROCESS_TIMEOUT_S)
        match = re.search(r"https://localhost:(\d+)/", banner)
        assert match, banner
        port = int(match.group(1))
        fetched = subprocess.run(
            [curl, "--silent", "--show-error", "--cacert", str(server_files.ca_path), "--tlsv1.2", "--tls-max", "1.2",
             "--ciphers", "AES128-GCM-SHA256", "--max-time", "20", "--write-out", "\n%{http_code}",
             f"https://localhost:{port}/"],
            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S,
        )  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr
        body, _, status = fetched.stdout.rpartition("\n")
        assert status == "200"
        assert "<html" in body.lower()
        assert "CLIENT_RANDOM" in keylog.read_text()
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=SUBPROCESS_TIMEOUT_S)
    assert server.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def _read_line_with_timeout(process: subprocess.Popen, timeout: float) -> str:
    """The process's first stdout line, or a failure after ``timeout`` seconds (never a hang)."""
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            pytest.fail(f"no output within {timeout} s")
        return process.stdout.readline()


@pytest.mark.parametrize(
    "make_key",
    [lambda: ec.generate_private_key(ec.SECP521R1()), ed25519.Ed25519PrivateKey.generate],
    ids=["EC-P521", "Ed25519"],
)
def test_tls_serve_with_a_key_that_is_neither_rsa_nor_ecdsa_p256_p384_says_so(
    make_key, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server identity is RSA or ECDSA on P-256/P-384 (the curves we do ECDHE on): another is a usage error."""
    key = make_key()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )  # fmt: skip
    cert, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    status = main(["tls", "serve", "--port", "0", "--cert", str(cert), "--key", str(key_file)])
    assert status == 2
    err = capsys.readouterr().err
    assert "a server key must be RSA or ECDSA P-256/P-384" in err and ("an EC key" in err or "an Ed25519 key" in err)


def test_tls_get_fragment_size_cuts_our_records_and_openssl_reassembles_them(
    server_files: ServerFiles, python_ssl_server: tuple[PythonSSLServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = python_ssl_server
    argv = [
        "tls", "get", f"https://localhost:{server.port}/", "--cafile", str(server_files.ca_path),
        "--fragment-size", "64", "--trace",
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Hello from OpenSSL" in captured.out and server.connections[0].error is None
    # Our ClientHello did not fit 64 bytes: its first record is a 64-byte piece, annotated as such.
    first_record = captured.err.split("=== record 2")[0]
    assert "client -> server  handshake, 69 bytes" in first_record
    assert "part of a message continued elsewhere" in first_record


@pytest.mark.parametrize("value", ["0", "16385", "lots"])
def test_tls_get_refuses_a_fragment_size_out_of_range(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tls", "get", "https://localhost:1/", "--fragment-size", value]) == 2
    assert "from 1 to 16384" in capsys.readouterr().err
