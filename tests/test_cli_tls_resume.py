"""``handshakes tls get --reconnect N`` and ``tls serve``'s resumption, judged by OpenSSL and curl.

* ``tls get --reconnect 3`` against ``openssl s_server -www``: one ``handshake K:`` line per handshake, and
  s_server's own status page (the last fetch's, on stdout) says "Reused" and counts the resumptions in its
  "session cache hits"; its "Master-Key" is the one secret our key log wrote four times.  With tickets
  (s_server's default), with ``-no_ticket`` (our client asks, OpenSSL declines: session ID), and with our
  ``--no-tickets`` (OpenSSL then keeps the session in its cache: "1 items in the session cache").
* ``tls serve`` (resumption on by default): ``openssl s_client -reconnect`` resumes five times (the serve
  key log has six lines, all with the Master-Key s_client printed) and curl's second URL re-uses the
  session, each named in the serve log; our ``tls get --reconnect`` against it
  resumes by ticket; ``tls serve --no-resumption`` makes every handshake full.
* Bad ``--reconnect`` values: one line, exit 2.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, cli_environment, read_line, require

from handshake_lib.__main__ import main
from handshake_lib.cli.tls import MAX_RECONNECT
from handshake_lib.peers.openssl import s_server
from handshake_lib.tls.keylog import read_keylog

TIMEOUT_S = 30
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def handshake_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("handshake ")]


# -- tls get --reconnect against openssl s_server -----------------------------------------------------
@pytest.mark.parametrize(
    ("server_options", "get_options", "how", "cached"),
    [
        ((), (), "ticket", 0),  # OpenSSL keeps nothing: the client carries the session
        (("-no_ticket",), (), "session ID", 1),  # we asked for a ticket, OpenSSL gave none
        ((), ("--no-tickets",), "session ID", 1),
    ],
    ids=["ticket", "server-no-ticket", "client-no-tickets"],
)
def test_get_reconnect_3_against_s_server(server_files, tmp_path, capsys, server_options, get_options, how, cached):
    require("openssl")
    keylog = tmp_path / "ours.log"
    with s_server(server_files, "-tls1_2", "-www", *server_options) as peer:
        status = main([
            "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
            "--reconnect", "3", "--keylog", str(keylog), "--tls", "1.2", *get_options,
        ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    resumed = [f"handshake {n}: resumed ({how})" for n in (2, 3, 4)]
    assert handshake_lines(captured.err) == ["handshake 1: full", *resumed]
    # s_server -www's page is its own account: the last connection reused the session, three hits in all.
    page = captured.out
    assert "Reused, TLSv1.2" in page
    assert re.search(r"^\s*3 session cache hits$", page, re.MULTILINE), page
    assert re.search(rf"^\s*{cached} items in the session cache$", page, re.MULTILINE), page
    # One key log line per handshake: four client randoms, one master secret, and it is s_server's.
    entries = read_keylog(keylog).entries
    assert len(entries) == 4 and len({entry.client_random for entry in entries}) == 4
    (secret,) = {entry.secret for entry in entries}
    assert f"Master-Key: {secret.hex().upper()}" in page


# -- tls serve against s_client, curl and our own tls get ------------------------------------------------
def _line(process: subprocess.Popen) -> str:
    """The next line ``tls serve`` prints, or what came if none ends within TIMEOUT_S."""
    return read_line(process, TIMEOUT_S)


def _serve(server_files, *options: str):
    process = subprocess.Popen(
        [sys.executable, "-m", "handshake_lib", "tls", "serve", "--port", "0",
         "--cert", str(server_files.cert_path), "--key", str(server_files.key_path), *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=cli_environment(), cwd=ROOT,
    )  # fmt: skip
    banner = _line(process)
    match = re.search(r"https://localhost:(\d+)/", banner)
    if match is None:
        process.kill()
        pytest.fail(banner + process.stderr.read().decode())
    return process, int(match.group(1)), banner


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def served_keylog(tmp_path_factory):
    return tmp_path_factory.mktemp("serve") / "server.log"


@pytest.fixture(scope="module")
def served(server_files, served_keylog):
    """One ``tls serve`` for the module, with its default resumption, writing its key log."""
    process, port, banner = _serve(server_files, "--keylog", str(served_keylog))
    try:
        yield process, port, banner
    finally:
        _stop(process)


def _s_client(server_files, port: int, *options: str) -> str:
    openssl = require("openssl")
    result = subprocess.run(
        [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(server_files.ca_path),
         "-verify_return_error", "-servername", "localhost", "-ign_eof", *options],
        input=REQUEST, capture_output=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "replace")


def _outcomes(output: str) -> list[str]:
    return [line.split(",")[0] for line in output.splitlines() if line.startswith(("New, TLSv1.2", "Reused, "))]


def test_serve_says_it_resumes(served) -> None:
    _, _, banner = served
    assert "sessions resume by ID and by ticket" in banner


def test_s_client_reconnect_resumes_with_tls_serve(served, served_keylog, server_files) -> None:
    process, port, _ = served
    logged_before = len(read_keylog(served_keylog).entries)
    output = _s_client(server_files, port, "-reconnect")
    assert _outcomes(output) == ["New"] + ["Reused"] * 5
    log = [_line(process) for _ in range(6)]
    assert ", resumed" not in log[0] and ", group " in log[0]
    assert all(", resumed (ticket): " in line for line in log[1:]), log
    # The server's key log: a line per handshake, six client randoms, and the one master secret s_client
    # printed for every connection.
    entries = read_keylog(served_keylog).entries[logged_before:]
    assert len(entries) == 6 and len({entry.client_random for entry in entries}) == 6
    (secret,) = {entry.secret for entry in entries}
    assert output.count(f"Master-Key: {secret.hex().upper()}") == 6


def test_curl_twice_in_one_command_resumes_with_tls_serve(served, server_files) -> None:
    curl = require("curl")
    process, port, _ = served
    url = f"https://localhost:{port}/"
    result = subprocess.run(
        [curl, "-v", "--silent", "--show-error", "--cacert", str(server_files.ca_path), "--tlsv1.2",
         "--tls-max", "1.2", url, url],
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Hello from the Handshakes TLS server") == 2
    assert result.stderr.count("SSL re-using session ID") == 1
    first, second = _line(process), _line(process)
    assert ", resumed" not in first and "-> 200 OK" in first
    assert ", resumed (session ID): GET / HTTP/1.1 -> 200 OK" in second, second  # curl 7.88 asks for no ticket


def test_our_get_reconnect_resumes_with_tls_serve(served, server_files, capsys) -> None:
    process, port, _ = served
    status = main([
        "tls", "get", f"https://localhost:{port}/", "--cafile", str(server_files.ca_path), "--reconnect", "2",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert handshake_lines(captured.err) == ["handshake 1: full", "handshake 2: resumed (ticket)",
                                             "handshake 3: resumed (ticket)"]  # fmt: skip
    assert captured.out.count("Hello from the Handshakes TLS server") == 1  # the page once: the last fetch's
    log = [_line(process) for _ in range(3)]
    assert [", resumed (ticket)" in line for line in log] == [False, True, True], log


def test_serve_no_resumption_makes_every_handshake_full(server_files, capsys) -> None:
    process, port, banner = _serve(server_files, "--no-resumption")
    try:
        assert "no session resumption" in banner
        status = main([
            "tls", "get", f"https://localhost:{port}/", "--cafile", str(server_files.ca_path), "--reconnect", "2",
        ])  # fmt: skip
        output = _s_client(server_files, port, "-reconnect")
    finally:
        _stop(process)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert handshake_lines(captured.err) == [f"handshake {n}: full" for n in (1, 2, 3)]
    assert _outcomes(output) == ["New"] * 6


# -- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "three", "1.5", "", str(MAX_RECONNECT + 1), "１"])
def test_a_bad_reconnect_value_is_one_line_and_exit_2(value, capsys) -> None:
    assert main(["tls", "get", "https://localhost:1/", "--reconnect", value]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--reconnect" in errors[0] and "Traceback" not in err


def test_no_tickets_without_reconnect_is_one_line_and_exit_2(capsys) -> None:
    assert main(["tls", "get", "https://localhost:1/", "--no-tickets"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--no-tickets needs --reconnect" in err
