"""``make bench``'s sessions group (bench/ssh_sessions.py) times what its rows say they time, and reports every row.

Each client runs once against the real peers, and what happened is read from the other end where it keeps
a record: asyncssh's server says the user logged in by publickey for every exec client (ours, paramiko's,
asyncssh's own); sshd's log says our client and OpenSSH's ``sftp`` logged in by publickey and started
sftp-server.  The bytes each SFTP client read (ours in memory, sftp's file) are the file's, byte for
byte, from both servers, and the session-only calls read nothing.  Then the group runs with a tiny file
and few samples (no timed assertion: only that every row is there, measured, and is the ratio of the
medians it reports), and ``python -m bench --only sessions`` writes the same rows to its JSON file.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
from conftest import require, require_module

from bench import ssh_sessions
from bench.report import ERROR
from bench.ssh_handshakes import _Loop

SMALL = 200 * 1024 + 7  # not a multiple of the 32 KiB reads: the short last one is read too


@pytest.fixture(scope="module")
def key() -> object:
    return ssh_sessions._user_key()


def test_each_exec_client_logs_in_by_publickey_and_gets_the_commands_output(key: object) -> None:
    require_module("asyncssh")
    require_module("paramiko")
    from handshake_lib.peers.asyncssh_peers import asyncssh_server

    with asyncssh_server(authorized_keys={ssh_sessions.USER: [key.public_line()]}) as server, _Loop() as loop:
        endpoint = ssh_sessions.Endpoint(server.host, server.port, server.known_hosts)
        clients = ssh_sessions.exec_clients(loop, endpoint, key)
        assert set(clients) == {"ours", "paramiko", "asyncssh"}
        for who, call in clients.items():
            before = len(server.connections)
            assert call() == ssh_sessions.COMMAND.encode(), who  # asyncssh's handler echoes the command line
            record = server.connections[before]
            deadline = time.monotonic() + 5
            while not record.finished and time.monotonic() < deadline:
                time.sleep(0.01)
            assert record.authenticated and record.username == ssh_sessions.USER, who
            # paramiko knows the same method only by its older name
            assert record.negotiated["kex"] in (ssh_sessions.KEX, ssh_sessions.KEX_PARAMIKO), who
            assert record.negotiated["cipher_client_to_server"] == ssh_sessions.CIPHER, who
        # a command that fails stops the row (the check is not only on stdout)
        with pytest.raises(RuntimeError, match="got"):
            ssh_sessions._checked(clients["ours"], b"something else", "ours")()


def test_each_sftp_client_reads_the_whole_file_from_sshd_and_from_our_server(key: object) -> None:
    require("sshd")
    require("sftp")
    require(ssh_sessions.SFTP_SERVER, "OpenSSH's sftp-server")
    with ssh_sessions.sftp_servers(key, SMALL) as peers:
        clients = ssh_sessions.sftp_clients(peers.servers, key, peers.folder)
        assert {who for who, (_, reads) in clients.items() if reads} == {
            "ours->sshd", "sftp->sshd", "ours->ours", "sftp->ours",
        }  # fmt: skip
        for who, (call, reads) in clients.items():
            got = call()
            if not reads:
                assert not got, who  # the session alone: nothing read
                continue
            data = got.read_bytes() if isinstance(got, Path) else got
            assert len(data) == SMALL and data == peers.content, who
            assert ssh_sessions._sized(call, SMALL, who)()
        with pytest.raises(RuntimeError, match="read 0 bytes"):
            ssh_sessions._sized(clients["ours-session->ours"][0], SMALL, "ours")()
        log = peers.sshd.log
    fingerprint = key.host_key.fingerprint()
    # four sessions each for our client and sftp (with and without the read, before and after the size check)
    assert log.count(f"Accepted publickey for {peers.sshd.user}") >= 4
    assert fingerprint in log
    assert log.count("Starting session: subsystem 'sftp'") >= 4  # LogLevel VERBOSE's line


def test_measure_reports_every_row_as_the_ratio_of_its_medians() -> None:
    rows = ssh_sessions.measure(exec_count=3, sftp_count=2, size=SMALL)
    assert [row.status for row in rows].count(ERROR) == 0, [row.error for row in rows]
    assert len(rows) == 4 and {row.group for row in rows} == {ssh_sessions.GROUP}
    exec_row, sshd_row, ours_row, servers_row = rows
    samples = exec_row.extra["samples_ms"]
    assert set(samples) == {"ours", "paramiko", "asyncssh"} and all(len(v) == 3 for v in samples.values())
    assert exec_row.value == pytest.approx(statistics.median(samples["ours"]) / statistics.median(samples["paramiko"]))
    assert exec_row.target == 1.0 and "asyncssh" in exec_row.detail
    for row in (sshd_row, ours_row):
        medians, samples = row.extra["medians_ms"], row.extra["samples_ms"]
        assert all(len(v) == 2 for v in samples.values()) and len(set(samples["ours"] + samples["sftp"])) > 1
        assert medians["ours"] == pytest.approx(statistics.median(samples["ours"]))
        assert row.value == pytest.approx(medians["ours"] / medians["sftp"])
        assert set(row.extra["transfer_mib_per_s"]) == {"ours", "sftp"} and row.extra["bytes"] == SMALL
        assert "MiB/s" in row.detail
    from_ours, from_sshd = (row.extra["medians_ms"]["sftp"] for row in (ours_row, sshd_row))
    assert servers_row.value == pytest.approx(from_ours / from_sshd)


def test_transfer_speed_is_the_file_over_the_difference_of_medians() -> None:
    assert ssh_sessions.transfer_speed(16 * 1024 * 1024, 300.0, 100.0) == pytest.approx(80.0)
    assert ssh_sessions.transfer_speed(1024, 100.0, 101.0) is None  # lost in the noise: not a negative speed


def test_python_m_bench_only_sessions_writes_its_rows(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as tests/test_bench_cases_tls12.py: gone again afterwards
    from bench.__main__ import main

    path = tmp_path / "latest.json"
    arguments = ["--only", "sessions", "--ssh-sessions", "2", "--sftp-reads", "1", "--sftp-bytes", str(SMALL)]
    assert main([*arguments, "--json", str(path)]) == 0
    results = json.loads(path.read_text())["results"]
    assert [r["group"] for r in results] == [ssh_sessions.GROUP] * 4
    assert all(r["status"] in ("PASS", "FAIL") and r["value"] > 0 for r in results)
    printed = capsys.readouterr().out
    assert "connect + publickey + exec" in printed and "from our server beside from sshd" in printed
