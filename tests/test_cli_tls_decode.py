"""``handshakes tls decode``: real captures (tcpdump, our client and OpenSSL's against OpenSSL) decrypted
with a key log or the server's key; exit 0 only when every connection opened; bad input in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_tls_capture import ECDHE_REASON, record_sessions

from handshake_lib.cli import run
from handshake_lib.tcp.pcap import bundled_capture


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tls-decode-cli")
    sessions = record_sessions(directory)
    rsa, ecdhe = sessions["rsa_gcm"], sessions["ecdhe"]
    both = directory / "both.pcap"  # two tcpdump -i lo files: same header, so the records can follow each other
    both.write_bytes(rsa.pcap.read_bytes() + ecdhe.pcap.read_bytes()[24:])
    keylog = directory / "both.keylog"
    keylog.write_bytes(rsa.client_keylog.read_bytes() + ecdhe.client_keylog.read_bytes())
    key = directory / "server.key"
    key.write_bytes(
        rsa.server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ecdhe_key = directory / "ecdhe-server.key"
    ecdhe_key.write_bytes(
        ecdhe.server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return {
        "rsa": rsa.pcap, "rsa_keylog": rsa.client_keylog, "both": both, "both_keylog": keylog, "key": key,
        "ecdhe_key": ecdhe_key, "body": rsa.body, "directory": directory,
    }  # fmt: skip


@pytest.mark.peer
def test_a_key_log_decrypts_the_session_and_the_page_is_printed(files, capsys):
    assert run(["tls", "decode", str(files["rsa"]), "--keylog", str(files["rsa_keylog"])]) == 0
    out = capsys.readouterr().out
    assert "1 TLS connection(s), 1 decrypted" in out
    assert "decrypted: master secret from the key log (CLIENT_RANDOM)" in out
    # --trace's renderer: message summaries, annotated dumps, the decrypted plaintext of protected records.
    assert "ClientHello: 1 cipher_suites offered: TLS_RSA_WITH_AES_128_GCM_SHA256" in out
    assert "Finished: verify_data" in out and "--- decrypted with this session's keys" in out
    assert "--- application data, server -> client" in out
    assert files["body"].decode() in out and "GET / HTTP/1.1" in out


@pytest.mark.peer
def test_the_server_key_decrypts_rsa_explains_ecdhe_and_the_exit_status_says_one_failed(files, capsys):
    assert run(["tls", "decode", str(files["both"]), "--server-key", str(files["key"])]) == 1
    captured = capsys.readouterr()
    assert "2 TLS connection(s), 1 decrypted" in captured.out
    first, second = captured.out.split("\nconnection 2: ")
    assert "decrypted: master secret from the the server's RSA private key" not in first  # no doubled article
    assert "decrypted: master secret from the server's RSA private key" in first and files["body"].decode() in first
    assert f"NOT decrypted: {ECDHE_REASON}" in second and "[encrypted, not decrypted]" in second
    assert "application data" not in second
    assert captured.err.strip().splitlines() == [
        f"handshakes: connection 2 not decrypted: {second.split('NOT decrypted: ', 1)[1].splitlines()[0]}"
    ]


@pytest.mark.peer
def test_a_key_log_with_both_sessions_decrypts_both(files, capsys):
    assert run(["tls", "decode", str(files["both"]), "--keylog", str(files["both_keylog"])]) == 0
    assert "2 TLS connection(s), 2 decrypted" in capsys.readouterr().out


@pytest.mark.peer
def test_the_ecdhe_servers_own_key_does_not_help_either(files, capsys):
    assert run(["tls", "decode", str(files["both"]), "--server-key", str(files["ecdhe_key"])]) == 1
    out = capsys.readouterr().out
    assert "NOT decrypted: the server key given is not the key of the server's certificate" in out
    assert f"NOT decrypted: {ECDHE_REASON}" in out


# -- bad input: one line, never a traceback ------------------------------------------------------------------
def _one_line(capsys, status: int, argv: list[str]) -> str:
    assert run(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith("usage:") and line.startswith("handshakes")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.peer
def test_a_file_that_is_not_a_pcap(files, capsys, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 10)
    line = _one_line(capsys, 1, ["tls", "decode", str(text), "--keylog", str(files["rsa_keylog"])])
    assert "is not a capture we can read" in line


@pytest.mark.peer
def test_a_capture_cut_inside_its_first_record(files, capsys, tmp_path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(files["rsa"].read_bytes()[:30])
    line = _one_line(capsys, 1, ["tls", "decode", str(cut), "--keylog", str(files["rsa_keylog"])])
    assert "is not a capture we can read" in line


@pytest.mark.peer
def test_a_key_log_of_garbage(files, capsys, tmp_path):
    garbage = tmp_path / "garbage.keylog"
    garbage.write_bytes(b"\x00\xff not a key log\nCLIENT_RANDOM zz zz\n")
    assert run(["tls", "decode", str(files["rsa"]), "--keylog", str(garbage)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].endswith(
        "holds no key log line we can read (expected CLIENT_RANDOM <hex> <hex>, or a TLS 1.3 label such as "
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET <hex> <hex>)"
    )


@pytest.mark.peer
def test_a_key_that_is_not_rsa_is_a_usage_error(files, capsys, tmp_path):
    key = tmp_path / "ec.key"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    line = _one_line(capsys, 2, ["tls", "decode", str(files["rsa"]), "--server-key", str(key)])
    assert "holds an EC key: only an RSA key decrypts a pre-master secret" in line


def test_a_capture_without_tls(capsys, tmp_path):
    keylog = tmp_path / "k.keylog"
    keylog.write_text(f"CLIENT_RANDOM {'00' * 32} {'11' * 48}\n")
    line = _one_line(capsys, 1, ["tls", "decode", str(bundled_capture()), "--keylog", str(keylog)])
    assert line.endswith("holds no TLS connection")


@pytest.mark.parametrize(
    "argv",
    [["tls", "decode", "x.pcap"], ["tls", "decode", "--keylog", "a", "--server-key", "b", "x.pcap"]],
)
def test_usage_errors_exit_2(argv, capsys):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "handshakes tls decode: error:" in err
