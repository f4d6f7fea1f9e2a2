"""The real SSH peers (OpenSSH sshd/ssh, asyncssh, paramiko) against each other, as lessons and tests will use them.

Every client meets every other implementation's server: the transport comes up with the algorithms the
test forced, both sides report the same choice, and a login completes (public key everywhere; password
where the client can send one).  Each server's KEXINIT is read off the wire by a small reader here (a
stand-in for slice A's packet layer) to check strict kex and the algorithm constants the interop matrix
is generated from.  Servers are session-scoped; host keys are made once.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest
from conftest import peers_required, require, require_module
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from handshake_lib import wire
from handshake_lib.peers import BackgroundPeer, PeerUnavailable
from handshake_lib.peers import openssh as openssh_module
from handshake_lib.peers.asyncssh_peers import ASYNCSSH_ALGORITHMS, asyncssh_client, asyncssh_server
from handshake_lib.peers.openssh import OPENSSH_ALGORITHMS, SSHD, openssh_client, openssh_server
from handshake_lib.peers.paramiko_peers import PARAMIKO_ALGORITHMS, paramiko_client, paramiko_server

STRICT_KEX_SERVER = "kex-strict-s-v00@openssh.com"
PASSWORD = "wonderland"
ALL_HOST_KEYS = ("ed25519", "ecdsa", "rsa")


def require_sshd() -> None:
    """``require`` for Debian's sshd, which lives in /usr/sbin (not on every user's PATH)."""
    if not os.access(SSHD, os.X_OK):
        message = f"{SSHD} is not installed (Debian package openssh-server)"
        if peers_required():
            pytest.fail(f"REQUIRE_PEERS=1 but {message}")
        pytest.skip(message)
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    require("ssh-keygen", "OpenSSH's key tool (Debian package openssh-client)")


def started(context):  # noqa: ANN001, ANN201 - a context manager in, its value out
    """Enter a peer's context manager; PeerUnavailable becomes a skip, or a failure under REQUIRE_PEERS=1."""
    try:
        return context.__enter__(), context
    except PeerUnavailable as error:
        (pytest.fail if peers_required() else pytest.skip)(f"peer unavailable: {error}")


# -- session fixtures: one user key, one server of each kind ------------------------------------------
@pytest.fixture(scope="session")
def user_key(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One ed25519 user key, as a file for ssh -i, an OpenSSH public line, and asyncssh/paramiko objects."""
    asyncssh = require_module("asyncssh")
    paramiko = require_module("paramiko")
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = (
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    )
    path = tmp_path_factory.mktemp("user-key") / "id_ed25519"
    path.write_bytes(pem)
    path.chmod(0o600)
    import io

    return {
        "path": path,
        "public": public,
        "asyncssh": asyncssh.import_private_key(pem),
        "paramiko": paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode())),
    }


@pytest.fixture(scope="session")
def sshd(user_key: dict):
    require_sshd()
    server, context = started(openssh_server(authorized_keys=user_key["public"], password_auth=True))
    yield server
    context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def asyncssh_peer(user_key: dict):
    server, context = started(
        asyncssh_server(
            host_key_types=ALL_HOST_KEYS, passwords={"alice": PASSWORD}, authorized_keys={"alice": [user_key["public"]]}
        )
    )
    yield server
    context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def paramiko_peer(user_key: dict):
    server, context = started(
        paramiko_server(
            host_key_types=ALL_HOST_KEYS, passwords={"alice": PASSWORD}, authorized_keys={"alice": [user_key["public"]]}
        )
    )
    yield server
    context.__exit__(None, None, None)


def known_hosts_file(tmp_path: Path, server) -> Path:  # noqa: ANN001
    path = tmp_path / "known_hosts"
    path.write_text(server.known_hosts)
    return path


def sshd_side(sshd, since: int) -> dict[str, str]:  # noqa: ANN001
    """What sshd logged it negotiated (its own -e debug log), for connections after log offset ``since``."""
    log = sshd.log[since:]
    found = {
        "kex": re.search(r"debug1: kex: algorithm: (\S+)", log),
        "host_key": re.search(r"debug1: kex: host key algorithm: (\S+)", log),
    }
    ciphers = dict(
        (d, (c, m))
        for d, c, m in re.findall(r"debug1: kex: (client->server|server->client) cipher: (\S+) MAC: (\S+)", log)
    )
    return {
        "kex": found["kex"].group(1) if found["kex"] else None,
        "host_key": found["host_key"].group(1) if found["host_key"] else None,
        "cipher_client_to_server": ciphers.get("client->server", (None, None))[0],
        "mac_client_to_server": ciphers.get("client->server", (None, None))[1],
        "cipher_server_to_client": ciphers.get("server->client", (None, None))[0],
        "mac_server_to_client": ciphers.get("server->client", (None, None))[1],
    }


def expected(kex: str, host_key: str, cipher: str, mac: str) -> dict[str, str]:
    return {
        "kex": kex, "host_key": host_key,
        "cipher_client_to_server": cipher, "cipher_server_to_client": cipher,
        "mac_client_to_server": mac, "mac_server_to_client": mac,
    }  # fmt: skip


# -- each client against each other implementation's server ----------------------------------------------
def test_openssh_client_logs_in_to_asyncssh_with_forced_algorithms(asyncssh_peer, user_key, tmp_path):
    require_sshd()
    run = openssh_client(
        asyncssh_peer.host, asyncssh_peer.port, user="alice",
        known_hosts_file=known_hosts_file(tmp_path, asyncssh_peer),
        kex="curve25519-sha256", ciphers="aes128-gcm@openssh.com", host_key_algorithms="ecdsa-sha2-nistp256",
        identity=user_key["path"], command="hello from ssh",
    )  # fmt: skip
    want = expected("curve25519-sha256", "ecdsa-sha2-nistp256", "aes128-gcm@openssh.com", "<implicit>")
    assert run.negotiated == want, run.stderr[-3000:]
    assert run.authenticated_with == "publickey" and run.returncode == 0
    assert run.stdout == "hello from ssh"  # asyncssh's session handler echoed the exec'd command
    assert asyncssh_peer.connections[-1].negotiated == want  # and asyncssh reports the same choice
    assert asyncssh_peer.connections[-1].client_version.startswith("SSH-2.0-OpenSSH_")


def test_openssh_client_logs_in_to_paramiko_with_forced_algorithms(paramiko_peer, user_key, tmp_path):
    require_sshd()
    run = openssh_client(
        paramiko_peer.host, paramiko_peer.port, user="alice",
        known_hosts_file=known_hosts_file(tmp_path, paramiko_peer),
        kex="curve25519-sha256@libssh.org", ciphers="aes256-ctr", macs="hmac-sha2-512-etm@openssh.com",
        host_key_algorithms="rsa-sha2-512", identity=user_key["path"], command="hello paramiko",
    )  # fmt: skip
    want = expected("curve25519-sha256@libssh.org", "rsa-sha2-512", "aes256-ctr", "hmac-sha2-512-etm@openssh.com")
    assert run.negotiated == want, run.stderr[-3000:]
    assert run.auth_methods == ["publickey", "password"]  # paramiko's answer to ssh's first request
    assert run.authenticated_with == "publickey" and run.stdout == "hello paramiko"
    assert paramiko_peer.connections[-1].negotiated == want


def test_openssh_client_refuses_a_host_key_not_in_known_hosts(asyncssh_peer, paramiko_peer, tmp_path):
    require_sshd()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(paramiko_peer.known_hosts.replace(str(paramiko_peer.port), str(asyncssh_peer.port)))
    run = openssh_client(asyncssh_peer.host, asyncssh_peer.port, user="alice", known_hosts_file=wrong)
    assert run.host_key_verification_failed and not run.reached_user_auth and run.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in run.stderr  # a different key under the same name


def test_asyncssh_client_logs_in_to_sshd(sshd, user_key):
    since = len(sshd.log)
    run = asyncssh_client(
        sshd.host, sshd.port, user=sshd.user, known_hosts=sshd.known_hosts, client_keys=[user_key["asyncssh"]],
        kex_algs="curve25519-sha256", encryption_algs="aes128-gcm@openssh.com", server_host_key_algs="ssh-ed25519",
        command="echo hello from sshd",
    )  # fmt: skip
    want = expected("curve25519-sha256", "ssh-ed25519", "aes128-gcm@openssh.com", "<implicit>")
    assert run.error is None and run.authenticated
    assert run.negotiated == want
    assert run.stdout == "hello from sshd\n" and run.exit_status == 0  # a real shell ran the command
    assert sshd_side(sshd, since) == want  # sshd's own log names the same algorithms


def test_paramiko_client_logs_in_to_sshd(sshd, user_key):
    since = len(sshd.log)
    run = paramiko_client(
        sshd.host, sshd.port, user=sshd.user, known_hosts=sshd.known_hosts, key=user_key["paramiko"],
        kex="ecdh-sha2-nistp256", ciphers="aes256-gcm@openssh.com", host_key_algorithms="rsa-sha2-256",
        command="echo hello",
    )  # fmt: skip
    want = expected("ecdh-sha2-nistp256", "rsa-sha2-256", "aes256-gcm@openssh.com", "<implicit>")
    assert run.error is None and run.authenticated, run.error
    assert run.auth_methods == ["publickey", "password"]  # sshd's answer to "none" (PasswordAuthentication yes)
    assert run.negotiated == want and run.stdout == "hello\n"
    assert sshd_side(sshd, since) == want


def test_asyncssh_client_logs_in_to_paramiko_by_password(paramiko_peer):
    run = asyncssh_client(
        paramiko_peer.host, paramiko_peer.port, user="alice", password=PASSWORD, known_hosts=paramiko_peer.known_hosts,
        kex_algs="diffie-hellman-group14-sha256", encryption_algs="aes128-ctr", mac_algs="hmac-sha2-256",
        command="by password",
    )  # fmt: skip
    want = expected("diffie-hellman-group14-sha256", "ssh-ed25519", "aes128-ctr", "hmac-sha2-256")
    assert run.error is None and run.authenticated and run.stdout == "by password"
    assert run.negotiated == want
    assert paramiko_peer.connections[-1].negotiated == want and paramiko_peer.connections[-1].authenticated


def test_paramiko_client_logs_in_to_asyncssh_with_the_post_quantum_hybrid(asyncssh_peer, user_key):
    run = paramiko_client(
        asyncssh_peer.host, asyncssh_peer.port, user="alice", known_hosts=asyncssh_peer.known_hosts,
        key=user_key["paramiko"], kex="mlkem768x25519-sha256", ciphers="aes128-ctr",
        macs="hmac-sha2-256-etm@openssh.com", command="post-quantum",
    )  # fmt: skip
    want = expected("mlkem768x25519-sha256", "ssh-ed25519", "aes128-ctr", "hmac-sha2-256-etm@openssh.com")
    assert run.error is None and run.authenticated and run.stdout == "post-quantum"
    assert run.negotiated == want
    assert asyncssh_peer.connections[-1].negotiated == want


def test_paramiko_client_with_a_wrong_password_reaches_user_auth_only(asyncssh_peer):
    run = paramiko_client(
        asyncssh_peer.host, asyncssh_peer.port, user="alice", password="not it", known_hosts=asyncssh_peer.known_hosts
    )
    assert run.reached_user_auth and not run.authenticated
    assert "password" in run.auth_methods and "publickey" in run.auth_methods
    assert asyncssh_peer.connections[-1].username == "alice" and not asyncssh_peer.connections[-1].authenticated


def test_asyncssh_and_paramiko_clients_refuse_an_unknown_host_key(asyncssh_peer, paramiko_peer):
    by_asyncssh = asyncssh_client(
        paramiko_peer.host, paramiko_peer.port, user="alice", known_hosts=asyncssh_peer.known_hosts
    )
    assert not by_asyncssh.reached_user_auth and by_asyncssh.error.startswith("HostKeyNotVerifiable")
    by_paramiko = paramiko_client(asyncssh_peer.host, asyncssh_peer.port, user="alice", known_hosts="")
    assert by_paramiko.host_key_verification_failed and not by_paramiko.reached_user_auth


# -- what each server offers, read off the wire --------------------------------------------------------
def server_kexinit(host: str, port: int, timeout: float = 5.0) -> dict[str, list[str]]:
    """The server's first KEXINIT name-lists, read with a raw socket (stand-in for slice A's packet layer)."""
    labels = (
        "kex",
        "host_key",
        "cipher_client_to_server",
        "cipher_server_to_client",
        "mac_client_to_server",
        "mac_server_to_client",
    )
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"SSH-2.0-handshakes_test\r\n")
        data = b""
        while b"\n" not in data or not data.startswith(b"SSH-"):
            chunk = sock.recv(4096)
            assert chunk, "server closed before its version line"
            data += chunk
            if b"\n" in data and not data.startswith(b"SSH-"):
                data = data.split(b"\n", 1)[1]  # a line before the version (RFC 4253 section 4.2)
        data = data.split(b"\n", 1)[1]
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = sock.recv(65536)
            assert chunk, "server closed before its KEXINIT"
            data += chunk
    packet_length, padding_length = int.from_bytes(data[:4], "big"), data[4]
    reader = wire.Reader(data[5 : 4 + packet_length - padding_length])
    assert reader.u8("message") == 20  # SSH_MSG_KEXINIT
    reader.raw(16, "cookie")
    return {label: reader.ssh_name_list(label) for label in labels}


@pytest.mark.parametrize("peer_name", ["sshd", "asyncssh_peer", "paramiko_peer"])
def test_every_server_announces_strict_kex_and_what_its_constant_says(peer_name, request):
    peer = request.getfixturevalue(peer_name)
    offer = server_kexinit(peer.host, peer.port)
    assert STRICT_KEX_SERVER in offer["kex"]  # the Terrapin countermeasure, on the wire
    constant = {"sshd": OPENSSH_ALGORITHMS, "asyncssh_peer": ASYNCSSH_ALGORITHMS, "paramiko_peer": PARAMIKO_ALGORITHMS}[
        peer_name
    ]
    for category, names in (
        ("kex", "kex"),
        ("host_key", "host_key"),
        ("cipher_client_to_server", "cipher"),
        ("mac_client_to_server", "mac"),
    ):
        missing = set(constant[names]) - set(offer[category])
        assert not missing, f"{peer_name} does not offer {missing} ({category})"


def test_server_offers_match_the_design_notes(sshd, asyncssh_peer, paramiko_peer):
    openssh, asyncssh, paramiko = (server_kexinit(p.host, p.port) for p in (sshd, asyncssh_peer, paramiko_peer))
    assert openssh["kex"][0] == "sntrup761x25519-sha512" and "mlkem768x25519-sha256" not in openssh["kex"]
    assert "mlkem768x25519-sha256" in asyncssh["kex"] and "mlkem768x25519-sha256" in paramiko["kex"]
    assert "curve25519-sha256" not in paramiko["kex"] and "curve25519-sha256@libssh.org" in paramiko["kex"]
    assert "chacha20-poly1305@openssh.com" not in paramiko["cipher_client_to_server"]
    assert "chacha20-poly1305@openssh.com" in openssh["cipher_client_to_server"]


def wait_finished(server, timeout: float = 5.0) -> None:  # noqa: ANN001
    """Wait (bounded) until the server's latest connection record is final: the server thread writes it."""
    deadline = time.monotonic() + timeout
    while not (server.connections and server.connections[-1].finished) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.connections and server.connections[-1].finished, "the server did not finish the connection"


# -- failures, cleanly and within the deadline ---------------------------------------------------------
def test_no_common_cipher_with_sshd_fails_with_openssh_message():
    require_sshd()
    with openssh_server(ciphers="aes256-ctr", host_key_types=("ed25519",)) as server:
        run = openssh_client(
            server.host,
            server.port,
            user="root",
            known_hosts_file=Path("/dev/null"),
            ciphers="aes128-gcm@openssh.com",
            timeout=5,
        )
        assert not run.timed_out and run.returncode == 255 and not run.reached_user_auth
        assert "no matching cipher found" in run.no_matching and "Their offer: aes256-ctr" in run.no_matching
        deadline = time.monotonic() + 5
        while "no matching cipher found" not in server.log and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "no matching cipher found" in server.log  # sshd's side says the same


def test_no_common_kex_between_asyncssh_server_and_paramiko_client_fails_cleanly():
    with asyncssh_server(kex_algs="curve25519-sha256") as server:
        run = paramiko_client(
            server.host, server.port, user="alice", known_hosts=server.known_hosts, kex="ecdh-sha2-nistp256"
        )
        assert run.error is not None and "no acceptable kex algorithm" in run.error
        assert not run.reached_user_auth and run.kex is None
        # Which side hangs up first is a race (both decide on the two KEXINITs), so asyncssh's own message is
        # not asserted; its record shows the exchange never chose a key exchange method nor reached auth.
        wait_finished(server)
        assert server.connections[-1].negotiated["kex"] is None
        assert server.connections[-1].username is None


def test_no_common_mac_between_paramiko_server_and_asyncssh_client_fails_cleanly():
    with paramiko_server(ciphers="aes128-ctr", macs="hmac-sha2-512") as server:
        run = asyncssh_client(
            server.host, server.port, user="alice", known_hosts=server.known_hosts,
            encryption_algs="aes128-ctr", mac_algs="hmac-sha2-256",
        )  # fmt: skip
        assert run.error is not None and not run.timed_out and not run.reached_user_auth
        wait_finished(server)
        # paramiko hangs up without a DISCONNECT, so asyncssh may see the connection lost before it has read
        # paramiko's KEXINIT: then only paramiko says why.  One of the two names the MAC problem.
        said = f"{run.error} | {server.connections[-1].error}"
        assert "No matching MAC algorithm" in said or "no acceptable macs" in said, said


# -- lifetime ---------------------------------------------------------------------------------------------
def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sshd_and_its_connection_children_are_gone_after_the_block():
    require_sshd()
    with openssh_server(host_key_types=("ed25519",)) as server:
        held = socket.create_connection((server.host, server.port), timeout=5)  # sshd forks a child for it
        assert held.recv(64).startswith(b"SSH-2.0-OpenSSH_")
        process = server.process
    held.settimeout(5)
    try:
        assert held.recv(64) == b""  # the child was killed with the listener: the connection ended
    except ConnectionResetError:
        pass
    finally:
        held.close()
    assert process.poll() is not None and refused(server.port)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of sshd's group is left


def test_asyncssh_and_paramiko_servers_are_gone_after_the_block():
    with asyncssh_server() as first, paramiko_server() as second:
        ports = (first.port, second.port)
        assert not refused(ports[0]) and not refused(ports[1])
    assert refused(ports[0]) and refused(ports[1])


def test_background_peer_keeps_sshd_across_cells_and_stops_it():
    require_sshd()
    peer = BackgroundPeer(lambda: openssh_server(host_key_types=("ed25519",)))
    port = peer.get().port
    assert peer.get().port == port and not refused(port)
    peer.stop()
    assert refused(port)


def test_missing_privilege_separation_user_names_the_package(monkeypatch):
    require_sshd()
    monkeypatch.setattr(openssh_module.os, "geteuid", lambda: 0)

    def no_such_user(name: str):  # noqa: ANN202
        raise KeyError(name)

    monkeypatch.setattr(openssh_module.pwd, "getpwnam", no_such_user)
    with pytest.raises(PeerUnavailable, match="openssh-server"), openssh_server():
        pass
