"""``handshakes tls get`` and ``tls serve`` over TLS 1.3, judged by OpenSSL 3.0 and curl (the real CLI, in a
child process, every time).

* ``tls get`` (default ``--tls auto``) against ``openssl s_server -www -tls1_3 -keylogfile``: ``--reconnect 2``
  prints three connection lines (TLS 1.3, full then resumed twice), s_server's own status page says "Reused",
  and our ``--keylog`` holds, for each connection, exactly the lines s_server wrote for that client random
  (every TLS 1.3 label, every secret).  ``--key-update``: s_server logs the next traffic secret of both
  directions for our connection (it took our KeyUpdate and answered update_requested with its own).
* ``--trace``'s renderer gives a live TLS 1.3 transcript the same text ``tls decode`` gives its capture.
* HelloRetryRequest: s_server ``-groups P-256`` gets our default shares (X25519MLKEM768, x25519) and asks for
  P-256; ``--trace`` shows both ClientHellos, the HelloRetryRequest, the decrypted EncryptedExtensions,
  Certificate, CertificateVerify and Finished, and says why there were two hellos.
* 0-RTT: s_server ``-early_data`` (no ``-www``: OpenSSL refuses the two together; the test answers the request
  on s_server's stdin) prints "Early data received:" with our request, and our line says "early data accepted".
* ``tls serve`` (both versions by default): ``openssl s_client -tls1_3`` and ``-tls1_2`` each get the page over
  the version they asked for (s_client prints the protocol; the serve log says it), curl ``--tlsv1.3`` too;
  ``--early-data`` lets s_client's resumed 0-RTT request in ("Early data was accepted"), and the serve key log
  equals s_client's.
* Bad input: one line, exit 2.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import ROOT, cli_environment, read_line, require

from handshake_lib.cli.trace import render_entry
from handshake_lib.net.tls import tls_get
from handshake_lib.peers.openssl import s_server
from handshake_lib.tls.key_schedule13 import next_application_secret

TIMEOUT_S = 30
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
PAGE_HEADING = "Hello from the Handshakes TLS server"


def handshakes(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "handshake_lib", *args], capture_output=True, text=True, timeout=TIMEOUT_S,
        env=cli_environment(), cwd=ROOT, **kwargs,
    )  # fmt: skip


def keylog_by_random(path: Path) -> dict[str, set[str]]:
    """An NSS key log's lines grouped by client random (comments skipped): one set per connection."""
    lines: dict[str, set[str]] = defaultdict(set)
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            label, random, _ = line.split()
            lines[random].add(line)
    return dict(lines)


def connection_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("connection ")]


# -- tls get against openssl s_server -www -tls1_3 ----------------------------------------------------------
@pytest.fixture(scope="module")
def www(server_files, tmp_path_factory):
    """One ``s_server -www -tls1_3`` for the module, writing its key log (checked per client random)."""
    require("openssl")
    keylog = tmp_path_factory.mktemp("s_server") / "s_server.keys"
    with s_server(server_files, "-www", "-tls1_3", "-keylogfile", str(keylog)) as peer:
        yield peer, keylog


def test_get_reconnect_resumes_and_keylog_matches_s_servers(www, server_files, tmp_path) -> None:
    peer, server_keylog = www
    ours = tmp_path / "ours.keys"
    result = handshakes(
        "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
        "--reconnect", "2", "--keylog", str(ours),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = connection_lines(result.stderr)
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("connection 1: TLS 1.3, TLS_AES_256_GCM_SHA384, group x25519, resumed no, HRR no")
    for number, line in enumerate(lines[1:], start=2):
        assert line.startswith(f"connection {number}: TLS 1.3, TLS_AES_256_GCM_SHA384, group x25519, "
                               "resumed yes (ticket), HRR no"), line  # fmt: skip
    assert "* TLS 1.3, TLS_AES_256_GCM_SHA384, group x25519, HTTP 200" in result.stderr
    assert "Reused, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" in result.stdout  # s_server's own page
    # Our key log, connection by connection, is s_server's: same labels, same randoms, same secrets.
    ours_by_random, theirs = keylog_by_random(ours), keylog_by_random(server_keylog)
    assert len(ours_by_random) == 3
    labels = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET",
    }  # fmt: skip
    for random, lines_of_ours in ours_by_random.items():
        assert lines_of_ours == theirs.get(random), random
        assert {line.split()[0] for line in lines_of_ours} == labels


def test_get_key_update_is_taken_by_s_server(www, server_files, tmp_path) -> None:
    peer, server_keylog = www
    ours = tmp_path / "ours.keys"
    result = handshakes(
        "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path), "--tls", "1.3",
        "--key-update", "--keylog", str(ours),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "connection 1: TLS 1.3, TLS_AES_256_GCM_SHA384, group x25519, resumed no, HRR no, KeyUpdate sent" in (
        result.stderr
    )
    assert "Protocol  : TLSv1.3" in result.stdout  # s_server answered over the updated keys
    ((random, lines_of_ours),) = keylog_by_random(ours).items()
    theirs = keylog_by_random(server_keylog)[random]
    # OpenSSL 3.0.22 logs each direction's next secret after a KeyUpdate under the literal labels
    # CLIENT_/SERVER_TRAFFIC_SECRET_N (no number): ours updated (we sent KeyUpdate) and its own (update_requested
    # made it send one).  We log generation 0 only, as Wireshark wants: it derives the later ones itself.
    assert lines_of_ours < theirs
    secrets = {line.split()[0]: bytes.fromhex(line.split()[2]) for line in theirs}
    assert set(secrets) - {line.split()[0] for line in lines_of_ours} == {
        "CLIENT_TRAFFIC_SECRET_N",
        "SERVER_TRAFFIC_SECRET_N",
    }
    # Both are generation 1 of the secrets we logged (RFC 8446 7.2, "traffic upd", SHA-384 for this suite): s_server
    # took our KeyUpdate and, asked to, updated its own sending keys too.
    for direction in ("CLIENT", "SERVER"):
        generation0 = secrets[f"{direction}_TRAFFIC_SECRET_0"]
        assert secrets[f"{direction}_TRAFFIC_SECRET_N"] == next_application_secret("sha384", generation0)


def test_trace_renders_a_live_13_transcript_as_tls_decode_renders_its_capture(www, server_files, tmp_path) -> None:
    """One connection, two views: our client's own transcript through --trace's renderer, and the pcap of the same
    connection through ``handshakes tls decode`` with the key log: the same text, record by record."""
    peer, _ = www
    capture, keylog = tmp_path / "live.pcap", tmp_path / "live.keys"
    response = tls_get(f"https://localhost:{peer.port}/", cafile=server_files.ca_path, tls_version="1.3",
                       record_to=capture, keylog_path=keylog)  # fmt: skip
    result = handshakes("tls", "decode", str(capture), "--keylog", str(keylog))
    assert result.returncode == 0, result.stderr
    assert "decrypted: TLS 1.3" in result.stdout
    assert len(response.transcript) >= 12  # hellos, CCS, the encrypted flight, tickets, data, close_notify
    for number, entry in enumerate(response.transcript, start=1):
        assert render_entry(number, entry) in result.stdout, number


@pytest.fixture(scope="module")
def p256_only(server_files, tmp_path_factory):
    require("openssl")
    keylog = tmp_path_factory.mktemp("s_server_p256") / "s_server.keys"
    with s_server(server_files, "-www", "-tls1_3", "-groups", "P-256", "-keylogfile", str(keylog)) as peer:
        yield peer, keylog


def test_get_hello_retry_request_for_p256_with_trace(p256_only, server_files, tmp_path) -> None:
    peer, server_keylog = p256_only
    ours = tmp_path / "ours.keys"
    result = handshakes(
        "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path), "--trace",
        "--keylog", str(ours),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "* TLS 1.3, TLS_AES_256_GCM_SHA384, group secp256r1 (after a HelloRetryRequest), HTTP 200" in err
    assert "HelloRetryRequest (TLS 1.3): cipher_suite TLS_AES_256_GCM_SHA384, send a key share for secp256r1" in err
    assert ("* HelloRetryRequest: our first ClientHello carried key shares for X25519MLKEM768, x25519; "
            "the server wanted secp256r1") in err  # fmt: skip
    lines = err.splitlines()
    # The first message of each record, as the line under its "=== record" header names it.
    kinds = [
        re.split(r"[ :]", lines[i + 1].strip())[0] for i, line in enumerate(lines) if line.startswith("=== record")
    ]
    assert kinds[:9] == [
        "ClientHello", "HelloRetryRequest", "ClientHello", "ChangeCipherSpec", "ServerHello", "EncryptedExtensions",
        "Certificate", "CertificateVerify", "Finished",
    ]  # fmt: skip
    # The encrypted handshake, decrypted and annotated (TLS 1.3's table of message types).
    for text in ("EncryptedExtensions:", "Certificate: CN=localhost", "Finished: verify_data",
                 "[encrypted]", "--- decrypted with this session's keys"):  # fmt: skip
        assert text in err, text
    assert err.count("    ClientHello:") == 2
    ((random, lines_of_ours),) = keylog_by_random(ours).items()
    assert lines_of_ours == keylog_by_random(server_keylog)[random]


def test_get_groups_choose_the_first_key_shares(p256_only, server_files) -> None:
    """--groups: the first hello carries a key share for the first group listed (x25519: P-256 then costs a
    HelloRetryRequest; P-256: none, and the reconnection resumes)."""
    peer, _ = p256_only
    result = handshakes(
        "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
        "--tls", "1.3", "--groups", "x25519,P-256",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "group secp256r1 (after a HelloRetryRequest), HTTP 200" in result.stderr
    result = handshakes(
        "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
        "--tls", "1.3", "--groups", "P-256,x25519", "--reconnect", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [("HRR no" in line, "resumed yes" in line) for line in connection_lines(result.stderr)] == [
        (True, False),
        (True, True),
    ]


# -- 0-RTT against s_server -early_data ----------------------------------------------------------------------
def test_get_early_data_accepted_by_s_server(server_files, tmp_path) -> None:
    require("openssl")
    ours, theirs = tmp_path / "ours.keys", tmp_path / "s_server.keys"
    body = b"answered by s_server\n"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    with s_server(server_files, "-tls1_3", "-early_data", "-keylogfile", str(theirs), stdin=True) as peer:
        client = subprocess.Popen(
            [sys.executable, "-m", "handshake_lib", "tls", "get", f"https://localhost:{peer.port}/",
             "--cafile", str(server_files.ca_path), "--reconnect", "1", "--early-data", "--keylog", str(ours)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_environment(), cwd=ROOT,
        )  # fmt: skip
        try:
            for requests in (1, 2):  # s_server without -www just prints what it reads: we answer on its stdin
                _wait_for(peer, lambda output, n=requests: output.count(b"GET / HTTP/1.1") >= n)
                peer.write(answer)
            out, err = client.communicate(timeout=TIMEOUT_S)
            # s_server prints through a buffer it flushes when it pleases: wait for every line checked below.
            _wait_for(peer, lambda output: b"Early data received:" in output and b"Reused session-id" in output)
        finally:
            client.kill()
    stderr = err.decode()
    assert client.returncode == 0, stderr
    assert out == body
    first, second = connection_lines(stderr)
    assert "resumed no" in first and "early data not sent" in first  # no ticket yet: nothing to send early
    assert "resumed yes (ticket)" in second and second.endswith("early data accepted"), second
    # s_server's account: nothing early on the first connection, early data on the second (it prints the data
    # itself unbuffered, its "Early data received:" through a buffer: the two may come in either order).
    output = peer.output
    assert output.index(b"No early data received") < output.index(b"Early data received:"), output
    assert output.count(b"GET / HTTP/1.1") == 2 and output.count(b"Reused session-id") == 1, output
    by_random = keylog_by_random(ours)
    assert len(by_random) == 2
    for random, lines_of_ours in by_random.items():
        lines_of_theirs = keylog_by_random(theirs)[random]
        # Every line, CLIENT_EARLY_TRAFFIC_SECRET and EARLY_EXPORTER_SECRET included, is the same.
        assert lines_of_ours == lines_of_theirs
    assert any(line.startswith("CLIENT_EARLY_TRAFFIC_SECRET ") for lines in by_random.values() for line in lines)


def _wait_for(peer, done) -> None:
    """Read what s_server prints until ``done(everything printed so far)``, for at most TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while not done(peer.output) and time.monotonic() < deadline:
        peer.read_output(re.compile(rb"GET / HTTP/1\.1"), wait=0.5)
    assert done(peer.output), peer.output


# -- tls serve against s_client and curl ---------------------------------------------------------------------
def _line(process: subprocess.Popen) -> str:
    return read_line(process, TIMEOUT_S)


@pytest.fixture(scope="module")
def serve_keylog(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve13") / "serve.keys"


@pytest.fixture(scope="module")
def served(server_files, serve_keylog):
    """One ``tls serve`` (both versions, its default) with 0-RTT allowed and a key log, for the module."""
    process = subprocess.Popen(
        [sys.executable, "-m", "handshake_lib", "tls", "serve", "--port", "0", "--cert", str(server_files.cert_path),
         "--key", str(server_files.key_path), "--early-data", "4096", "--keylog", str(serve_keylog)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=cli_environment(), cwd=ROOT,
    )  # fmt: skip
    banner = _line(process)
    match = re.search(r"https://localhost:(\d+)/", banner)
    if match is None:
        process.kill()
        pytest.fail(banner + process.stderr.read().decode())
    try:
        yield process, int(match.group(1)), banner
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT_S)


def _s_client(server_files, port: int, *options: str, request: bytes = REQUEST) -> str:
    openssl = require("openssl")
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(server_files.ca_path),
         "-verify_return_error", "-servername", "localhost", "-ign_eof", *options],
        input=request, capture_output=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "replace")


def test_serve_banner_names_both_versions(served) -> None:
    _, _, banner = served
    assert "(TLS 1.3 and TLS 1.2; sessions resume by ID and by ticket, 0-RTT up to 4096 bytes" in banner


@pytest.mark.parametrize(
    ("flag", "protocol", "suite", "logged"),
    [
        ("-tls1_3", "TLSv1.3", "TLS_AES_256_GCM_SHA384", "TLS 1.3, TLS_AES_256_GCM_SHA384, group x25519"),
        ("-tls1_2", "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384",
         "TLS 1.2, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, group x25519"),
    ],
    ids=["tls1_3", "tls1_2"],
)  # fmt: skip
def test_serve_answers_s_client_over_each_version(served, serve_keylog, server_files, tmp_path, flag, protocol,
                                                  suite, logged) -> None:  # fmt: skip
    process, port, _ = served
    client_keylog = tmp_path / "s_client.keys"
    output = _s_client(server_files, port, flag, "-keylogfile", str(client_keylog))
    assert f"New, {protocol}, Cipher is {suite}" in output
    assert f"Protocol  : {protocol}" in output and PAGE_HEADING in output
    line = _line(process)
    assert f": {logged}: GET / HTTP/1.1 -> 200 OK" in line, line
    ((random, lines_of_theirs),) = keylog_by_random(client_keylog).items()
    assert keylog_by_random(serve_keylog)[random] == lines_of_theirs


def test_serve_answers_curl_over_tls13(served, server_files) -> None:
    curl = require("curl")
    process, port, _ = served
    result = subprocess.run(
        [curl, "--silent", "--show-error", "--cacert", str(server_files.ca_path), "--tlsv1.3",
         "--write-out", "%{http_code}", f"https://localhost:{port}/"],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert PAGE_HEADING in result.stdout and result.stdout.endswith("200")
    line = _line(process)
    assert ": TLS 1.3, TLS_" in line and "-> 200 OK" in line, line


def test_serve_takes_s_clients_early_data(served, server_files, tmp_path) -> None:
    process, port, _ = served
    session = tmp_path / "session.pem"
    first = _s_client(server_files, port, "-tls1_3", "-sess_out", str(session))
    assert "New, TLSv1.3" in first
    assert "TLS 1.3" in _line(process)
    early = tmp_path / "request.txt"
    early.write_bytes(REQUEST)
    second = _s_client(server_files, port, "-tls1_3", "-sess_in", str(session), "-early_data", str(early),
                       request=b"")  # fmt: skip
    assert "Reused, TLSv1.3" in second and "Early data was accepted" in second, second
    assert PAGE_HEADING in second
    line = _line(process)
    assert ", resumed (ticket), early data accepted: GET / HTTP/1.1 -> 200 OK" in line, line


def test_our_get_against_our_serve_uses_every_13_feature(served, server_files) -> None:
    process, port, _ = served
    result = handshakes(
        "tls", "get", f"https://localhost:{port}/", "--cafile", str(server_files.ca_path), "--reconnect", "1",
        "--early-data", "--key-update",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = connection_lines(result.stderr)
    assert "TLS 1.3" in first and "resumed no" in first
    assert "resumed yes (ticket), HRR no, early data accepted, KeyUpdate sent" in second, second
    logged = [_line(process) for _ in range(2)]
    assert "early data accepted" in logged[1], logged


# -- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tls", "get", "https://localhost:1/", "--groups", "x25519,kyber"), "unknown group 'kyber'"),
        (("tls", "get", "https://localhost:1/", "--reconnect", "-1"), "--reconnect"),
        (("tls", "get", "https://localhost:1/", "--tls", "1.2", "--early-data", "--reconnect", "1"),
         "--early-data is TLS 1.3's"),
        (("tls", "get", "https://localhost:1/", "--early-data"), "--early-data needs --reconnect"),
        (("tls", "get", "https://localhost:1/", "--tls", "1.2", "--groups", "X25519MLKEM768"),
         "X25519MLKEM768 is a TLS 1.3 group"),
        (("tls", "get", "https://localhost:1/", "--tls", "1.3", "--groups", "ffdhe3072"),
         "ffdhe3072 is not a TLS 1.3 group"),
        (("tls", "get", "https://localhost:1/", "--tls", "1.3", "--renegotiate"), "--renegotiate is TLS 1.2's"),
        (("tls", "get", "https://localhost:1/", "--tls", "1.3", "--cipher", "ECDHE-RSA-AES128-GCM-SHA256"),
         "--cipher names TLS 1.2 suites"),
        (("tls", "get", "https://localhost:1/", "--ciphersuites", "TLS_AES_512_GCM"), "unknown TLS 1.3 cipher suite"),
        (("tls", "get", "https://localhost:1/", "--tls", "1.4"), "--tls"),
        (("tls", "serve", "--port", "0", "--cert", "{cert}", "--key", "{key}", "--tls", "1.2", "--early-data", "100"),
         "--early-data is TLS 1.3's"),
        (("tls", "serve", "--port", "0", "--cert", "{cert}", "--key", "{key}", "--renegotiate"),
         "--renegotiate is TLS 1.2's"),
        (("tls", "serve", "--port", "0", "--cert", "{cert}", "--key", "{key}", "--early-data", "-5"), "--early-data"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(server_files, args, message) -> None:
    paths = {"cert": str(server_files.cert_path), "key": str(server_files.key_path)}
    result = handshakes(*(arg.format(**paths) for arg in args))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
