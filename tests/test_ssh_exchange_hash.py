"""The exchange hash H: its fields in the RFCs' order, and the proof that it is right: real servers
(asyncssh, OpenSSH sshd) sign H and the signature verifies over the H our code computes.

The live tests use a small test-only driver (raw socket, the unencrypted part of the transport only:
version exchange, KEXINIT, KEX*_INIT, KEX*_REPLY), because the transport cores come in a later wave.
It is kept private to this file on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require, require_module
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from handshake_lib.ssh import kex
from handshake_lib.ssh.exchange_hash import exchange_hash, session_identifier
from handshake_lib.wire import Reader, Writer

# --- H from its definition, field by field ----------------------------------------------------


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _inputs(method: kex.KexMethod):
    share = method.client_start()
    server_public, secret = method.server_reply(share.public)
    return dict(
        client_version=b"SSH-2.0-OpenSSH_9.2p1 Debian-2",
        server_version="SSH-2.0-AsyncSSH_2.24.1",
        client_kexinit=b"\x14" + bytes(16) + b"client kexinit body",
        server_kexinit=b"\x14" + bytes(range(16)) + b"server kexinit body",
        host_key_blob=_string(b"ssh-ed25519") + _string(bytes(32)),
        client_public=share.public,
        server_public=server_public,
        shared_secret=secret,
    )


@pytest.mark.parametrize("name", ["curve25519-sha256", "mlkem768x25519-sha256", "sntrup761x25519-sha512"])
def test_h_of_a_string_method_is_the_hash_of_its_fields_in_order(name):
    method = kex.kex_method(name)
    inputs = _inputs(method)
    result = exchange_hash(method, **inputs)
    expected_input = (
        _string(inputs["client_version"]) + _string(inputs["server_version"].encode())
        + _string(inputs["client_kexinit"]) + _string(inputs["server_kexinit"]) + _string(inputs["host_key_blob"])
        + _string(inputs["client_public"]) + _string(inputs["server_public"]) + inputs["shared_secret"].encoded
    )
    assert [f.name for f in result.fields] == ["V_C", "V_S", "I_C", "I_S", "K_S", "Q_C", "Q_S", "K"]
    assert result.data == expected_input
    assert result.digest == hashlib.new(method.hash, expected_input).digest()
    assert len(result.digest) == {"sha256": 32, "sha512": 64}[method.hash]
    assert result.field("K").meaning.startswith(method.shared_secret_encoding)
    spans = result.spans()
    assert [s.field for s in spans] == [f.name for f in result.fields]
    assert spans[-1].end == len(result.data) and spans[5].length == 4 + len(inputs["client_public"])


def test_h_of_diffie_hellman_uses_mpints_e_and_f():
    method = kex.kex_method("diffie-hellman-group14-sha256")
    inputs = _inputs(method)
    result = exchange_hash(method, **inputs)
    assert [f.name for f in result.fields][5:7] == ["e", "f"]
    e = Reader(result.field("e").encoded).ssh_mpint("e")
    assert result.field("e").encoded == Writer().ssh_mpint(e).getvalue()
    assert 2 <= e <= method.prime - 2
    # The same H from the ints, and from K given already encoded.
    f = Reader(result.field("f").encoded).ssh_mpint("f")
    again = exchange_hash("diffie-hellman-group14-sha256", **{
        **inputs, "client_public": e, "server_public": f, "shared_secret": inputs["shared_secret"].encoded})
    assert again.digest == result.digest


def test_every_field_changes_h():
    method = kex.kex_method("curve25519-sha256")
    inputs = _inputs(method)
    digest = exchange_hash(method, **inputs).digest
    for key in ("client_version", "client_kexinit", "server_kexinit", "host_key_blob", "client_public"):
        value = inputs[key]
        changed = value[:-1] + bytes([value[-1] ^ 1]) if isinstance(value, bytes) else value + "x"
        assert exchange_hash(method, **{**inputs, key: changed}).digest != digest, key


def test_version_lines_must_come_without_cr_lf():
    method = kex.kex_method("curve25519-sha256")
    inputs = _inputs(method)
    with pytest.raises(ValueError, match="without its CR LF"):
        exchange_hash(method, **{**inputs, "server_version": "SSH-2.0-x\r\n"})


def test_session_identifier_is_the_first_h_and_survives_rekeys():
    first, second = b"\x01" * 32, b"\x02" * 32
    session_id = session_identifier(first)
    assert session_id == first
    assert session_identifier(second, previous=session_id) == first


# --- A test-only driver for the unencrypted start of a connection -------------------------------

CLIENT_VERSION = b"SSH-2.0-HandshakesKexTest_1.0"
MAX_PACKET = 256 * 1024


def _kexinit(kex_name: str) -> bytes:
    writer = Writer().u8(20).raw(os.urandom(16))
    for names in (
        [kex_name], ["ssh-ed25519"], ["aes128-ctr"], ["aes128-ctr"], ["hmac-sha2-256"], ["hmac-sha2-256"],
        ["none"], ["none"], [], [],
    ):
        writer.ssh_name_list(names)
    return writer.ssh_boolean(False).u32(0).getvalue()


class _RawTransport:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def close(self) -> None:
        self.sock.close()

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("peer closed the connection")
            data += chunk
        return data

    def read_version(self) -> bytes:
        for _ in range(20):  # RFC 4253 4.2: a server may send other lines first
            line = b""
            while not line.endswith(b"\n"):
                line += self._read_exact(1)
                assert len(line) <= 255
            if line.startswith(b"SSH-"):
                return line.rstrip(b"\r\n")
        raise AssertionError("no version line")

    def send_packet(self, payload: bytes) -> None:
        padding = 8 - (5 + len(payload)) % 8
        if padding < 4:
            padding += 8
        body = bytes([padding]) + payload + os.urandom(padding)
        self.sock.sendall(len(body).to_bytes(4, "big") + body)

    def read_packet(self) -> bytes:
        length = int.from_bytes(self._read_exact(4), "big")
        assert 5 <= length <= MAX_PACKET
        body = self._read_exact(length)
        return body[1 : length - body[0]]


@dataclass
class _Observed:
    result: object  # ExchangeHash
    host_key_blob: bytes
    signature: bytes


def _run_kex(port: int, kex_name: str) -> _Observed:
    """Version exchange, KEXINIT, our key share, the server's reply; H computed by our code."""
    method = kex.kex_method(kex_name)
    transport = _RawTransport(port)
    try:
        transport.sock.sendall(CLIENT_VERSION + b"\r\n")
        server_version = transport.read_version()
        client_kexinit = _kexinit(kex_name)
        transport.send_packet(client_kexinit)
        server_kexinit = transport.read_packet()
        assert server_kexinit[0] == 20, server_kexinit[:1]
        share = method.client_start()
        transport.send_packet(b"\x1e" + method.encode_public(share.public))  # KEXDH_INIT / KEX_ECDH_INIT (30)
        reply = transport.read_packet()
    finally:
        transport.close()
    reader = Reader(reply)
    assert reader.u8("message") == 31  # KEXDH_REPLY / KEX_ECDH_REPLY
    host_key_blob = reader.ssh_string("K_S")
    server_public = reader.ssh_string("Q_S or f")  # an mpint's bytes for DH: exactly as on the wire
    signature = reader.ssh_string("signature of H")
    reader.expect_end()
    secret = share.finish(server_public)
    result = exchange_hash(
        method, client_version=CLIENT_VERSION, server_version=server_version, client_kexinit=client_kexinit,
        server_kexinit=server_kexinit, host_key_blob=host_key_blob, client_public=share.public,
        server_public=server_public, shared_secret=secret,
    )
    return _Observed(result, host_key_blob, signature)


def _verify_ed25519(observed: _Observed, expected_blob: bytes) -> None:
    assert observed.host_key_blob == expected_blob
    key = Reader(observed.host_key_blob)
    assert key.ssh_string("type") == b"ssh-ed25519"
    public = key.ssh_string("key")
    sig = Reader(observed.signature)
    assert sig.ssh_string("type") == b"ssh-ed25519"
    raw_signature = sig.ssh_string("signature")
    Ed25519PublicKey.from_public_bytes(public).verify(raw_signature, observed.result.digest)
    # And the check can fail: the same signature over an H with one bit changed is refused.
    wrong = bytes([observed.result.digest[0] ^ 1]) + observed.result.digest[1:]
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(public).verify(raw_signature, wrong)


# --- asyncssh 2.24.1 as the server ------------------------------------------------------------------

ASYNCSSH_METHODS = [
    "curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
    "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512", "mlkem768x25519-sha256",
]


@pytest.fixture(scope="module")
def asyncssh_server():
    asyncssh = require_module("asyncssh", "asyncssh is one of the real SSH peers")
    supported = {name.decode() for name in asyncssh.kex.get_kex_algs()}
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="asyncssh-server", daemon=True)
    thread.start()

    async def start():
        return await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[host_key], kex_algs=ASYNCSSH_METHODS, login_timeout=10,
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield acceptor.sockets[0].getsockname()[1], host_key.public_data, supported
    finally:
        acceptor.close()
        asyncio.run_coroutine_threadsafe(acceptor.wait_closed(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_asyncssh_supports_every_method_we_test_it_with(asyncssh_server):
    _, _, supported = asyncssh_server
    ours = set(kex.KEX_METHODS)
    assert set(ASYNCSSH_METHODS) == ours & supported  # (asyncssh has no sntrup761: that one is OpenSSH's)


@pytest.mark.parametrize("kex_name", ASYNCSSH_METHODS)
def test_asyncssh_signs_the_h_we_compute(asyncssh_server, kex_name):
    port, host_key_blob, _ = asyncssh_server
    observed = _run_kex(port, kex_name)
    assert observed.result.method == kex_name
    _verify_ed25519(observed, host_key_blob)


# --- OpenSSH sshd 9.2 as the server -----------------------------------------------------------------

SSHD_METHODS = [
    "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def sshd_server(tmp_path_factory):
    """A private sshd on a loopback port: its own config and ed25519 host key, one process, killed at the end."""
    sshd = require("sshd", "OpenSSH's sshd is the only sntrup761x25519 peer here")
    ssh_keygen = require("ssh-keygen")
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    directory = tmp_path_factory.mktemp("sshd")
    key = directory / "ssh_host_ed25519_key"
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile none\nUsePAM no\nStrictModes no\n"
        f"KexAlgorithms {','.join(SSHD_METHODS)}\nHostKeyAlgorithms ssh-ed25519\nLogLevel ERROR\n"
    )
    process = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"sshd exited: {process.stderr.read().decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("sshd did not start listening within 10 s")
                time.sleep(0.05)
        blob_b64 = (directory / "ssh_host_ed25519_key.pub").read_text().split()[1]
        yield port, base64.b64decode(blob_b64)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.mark.parametrize("kex_name", SSHD_METHODS)
def test_openssh_sshd_signs_the_h_we_compute(sshd_server, kex_name):
    port, host_key_blob = sshd_server
    observed = _run_kex(port, kex_name)
    assert observed.result.method == kex_name
    _verify_ed25519(observed, host_key_blob)


def test_a_changed_kexinit_byte_breaks_the_signature(sshd_server):
    # The same exchange with I_C changed by one bit after the fact: H differs, the signature fails,
    # which is what stops a man in the middle from editing the algorithm lists.
    port, host_key_blob = sshd_server
    observed = _run_kex(port, "curve25519-sha256")
    fields = {f.name: f.encoded for f in observed.result.fields}
    tampered = bytearray(b"".join(fields.values()))
    tampered[len(fields["V_C"]) + len(fields["V_S"]) + 10] ^= 1
    blob = Reader(host_key_blob)
    blob.ssh_string("type")
    key = Ed25519PublicKey.from_public_bytes(blob.ssh_string("key"))
    signature = Reader(observed.signature)
    signature.ssh_string("type")
    raw = signature.ssh_string("sig")
    key.verify(raw, observed.result.digest)
    with pytest.raises(InvalidSignature):
        key.verify(raw, hashlib.sha256(bytes(tampered)).digest())
