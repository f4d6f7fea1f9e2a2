"""``handshakes tls get --renegotiate`` and ``tls serve --renegotiate``, judged by OpenSSL.

* ``tls get --renegotiate`` against ``openssl s_server -www -client_renegotiation``: ``handshake 1: full`` then
  ``handshake 2: renegotiated``; s_server's status page (written for the request, which came after the
  renegotiation) shows the new session's Master-Key, the secret of our key log's second line.  A default
  OpenSSL 3 server declines: one line says so, the page still comes (exit 0).
* ``tls serve --renegotiate``: ``openssl s_client`` answers our HelloRequest and gets the page; the serve log
  says ``renegotiated (1)`` and its key log has both handshakes, the second with s_client's Master-Key.
  ``--reconnect`` and ``--renegotiate`` together number every handshake.
"""

from __future__ import annotations

import re

from conftest import require
from test_cli_tls_resume import _line, _s_client, _serve, _stop, handshake_lines

from handshake_lib.__main__ import main
from handshake_lib.peers.openssl import s_server
from handshake_lib.tls.keylog import read_keylog


def test_get_renegotiate_against_s_server(server_files, tmp_path, capsys) -> None:
    require("openssl")
    keylog = tmp_path / "ours.log"
    with s_server(server_files, "-tls1_2", "-www", "-client_renegotiation") as peer:
        status = main([
            "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path),
            "--renegotiate", "--keylog", str(keylog), "--tls", "1.2",
        ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert handshake_lines(captured.err) == ["handshake 1: full", "handshake 2: renegotiated"]
    entries = read_keylog(keylog).entries
    assert len(entries) == 2 and entries[0].secret != entries[1].secret
    # s_server -www describes the session the request came over: the renegotiated one.
    assert f"Master-Key: {entries[1].secret.hex().upper()}" in captured.out
    assert "Secure Renegotiation IS supported" in captured.out


def test_get_renegotiate_declined_by_a_default_openssl_3_server(server_files, capsys) -> None:
    require("openssl")
    with s_server(server_files, "-tls1_2", "-www") as peer:
        status = main([
            "tls", "get", f"https://localhost:{peer.port}/", "--cafile", str(server_files.ca_path), "--renegotiate",
            "--tls", "1.2",
        ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert handshake_lines(captured.err) == ["handshake 1: full"]
    assert "renegotiation declined by the server (no_renegotiation)" in captured.err
    assert "Master-Key" in captured.out  # the page came all the same, over the first handshake's keys


def test_serve_renegotiate_with_s_client(server_files, tmp_path) -> None:
    keylog, theirs = tmp_path / "serve.log", tmp_path / "s_client.log"
    process, port, _ = _serve(server_files, "--tls", "1.2", "--renegotiate", "--keylog", str(keylog), "--no-resumption")
    try:
        output = _s_client(server_files, port, "-keylogfile", str(theirs))
        log = _line(process)
    finally:
        _stop(process)
    assert "Hello from the Handshakes TLS server" in output
    assert ", renegotiated (1): GET / HTTP/1.1 -> 200 OK" in log, log
    entries = read_keylog(keylog).entries
    assert len(entries) == 2 and len({entry.client_random for entry in entries}) == 2
    # s_client logged both handshakes with the secrets we logged: the first one's is the Master-Key it printed
    # once connected, before our HelloRequest.
    assert read_keylog(theirs).entries == entries
    assert re.findall(r"Master-Key: ([0-9A-F]+)", output) == [entries[0].secret.hex().upper()]


def test_get_reconnect_and_renegotiate_number_every_handshake(server_files, capsys) -> None:
    process, port, _ = _serve(server_files, "--tls", "1.2", "--renegotiate")  # it asks too; our client takes part
    try:
        status = main([
            "tls", "get", f"https://localhost:{port}/", "--cafile", str(server_files.ca_path),
            "--reconnect", "1", "--renegotiate", "--tls", "1.2",
        ])  # fmt: skip
        log = [_line(process), _line(process)]
    finally:
        _stop(process)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    # Each connection: its handshake, our renegotiation, then the one the server asked for (HelloRequest).
    assert handshake_lines(captured.err) == [
        "handshake 1: full", "handshake 2: renegotiated", "handshake 3: renegotiated",
        "handshake 4: resumed (ticket)", "handshake 5: renegotiated", "handshake 6: renegotiated",
    ]  # fmt: skip
    assert all(", renegotiated (2): GET / HTTP/1.1 -> 200 OK" in line for line in log), log
    assert ", resumed (ticket)" in log[1] and ", resumed" not in log[0]
