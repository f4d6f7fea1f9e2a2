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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from handshake_lib.ssh import kex
from handshake_lib.ssh.exchange_hash import exchange_hash, session_identifier
from handshake_lib.wire import Reader, Writer

# asyncssh's own finite-field DH code warns that cryptography deprecates FFDH; not ours to fix here.
pytestmark = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields:UserWarning")

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
    def __init__(self, port_or_socket: int | socket.socket) -> None:
        if isinstance(port_or_socket, socket.socket):
            self.sock = port_or_socket
            self.sock.settimeout(10)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port_or_socket), timeout=10)

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


# --- Our server_reply against real clients: they verify our signature over our H ---------------------

SERVER_VERSION = b"SSH-2.0-HandshakesKexTestServer_1.0"


def _ed25519_blob(public: bytes) -> bytes:
    return Writer().ssh_string(b"ssh-ed25519").ssh_string(public).getvalue()


def _serve_one(listener: socket.socket, kex_name: str, *, tamper: bool = False) -> int | None:
    """Answer one client's key exchange with our kex code and sign H (a wrong H when ``tamper``).

    Returns the message number of the client's next packet: 21 (NEWKEYS) means it verified our
    signature over H; a refusing client disconnects (1) or closes (None).
    """
    host_key = Ed25519PrivateKey.generate()
    host_key_blob = _ed25519_blob(host_key.public_key().public_bytes_raw())
    method = kex.kex_method(kex_name)
    conn, _ = listener.accept()
    transport = _RawTransport(conn)
    try:
        transport.sock.sendall(SERVER_VERSION + b"\r\n")
        client_version = transport.read_version()
        server_kexinit = _kexinit(kex_name)
        transport.send_packet(server_kexinit)
        client_kexinit = transport.read_packet()
        assert client_kexinit[0] == 20
        init = Reader(transport.read_packet())
        assert init.u8("message") == 30
        client_public = init.ssh_string("Q_C or e")
        server_public, secret = method.server_reply(client_public)
        result = exchange_hash(
            method, client_version=client_version, server_version=SERVER_VERSION,
            client_kexinit=client_kexinit if not tamper else client_kexinit + b"\x00",
            server_kexinit=server_kexinit, host_key_blob=host_key_blob, client_public=client_public,
            server_public=server_public, shared_secret=secret,
        )
        signature = Writer().ssh_string(b"ssh-ed25519").ssh_string(host_key.sign(result.digest)).getvalue()
        reply = Writer().u8(31).ssh_string(host_key_blob).raw(method.encode_public(server_public))
        transport.send_packet(reply.ssh_string(signature).getvalue())
        transport.send_packet(b"\x15")  # NEWKEYS
        try:
            return transport.read_packet()[0]
        except (ConnectionError, OSError):
            return None
    finally:
        transport.close()


@pytest.fixture
def listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        sock.settimeout(20)
        yield sock


def _ssh_client(port: int, kex_name: str) -> subprocess.Popen:
    ssh = require("ssh", "OpenSSH's client checks our server's H")
    return subprocess.Popen(
        [ssh, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", f"KexAlgorithms={kex_name}",
         "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256",
         "-p", str(port), "kex-test@127.0.0.1", "true"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kex_name", SSHD_METHODS)
def test_openssh_client_accepts_our_servers_h(listener, kex_name):
    client = _ssh_client(listener.getsockname()[1], kex_name)
    try:
        assert _serve_one(listener, kex_name) == 21
    finally:
        client.kill()
        client.communicate(timeout=10)


def test_openssh_client_refuses_a_signature_over_the_wrong_h(listener):
    client = _ssh_client(listener.getsockname()[1], "curve25519-sha256")
    try:
        assert _serve_one(listener, "curve25519-sha256", tamper=True) != 21
    finally:
        _, stderr = client.communicate(timeout=10)
    assert b"incorrect signature" in stderr


async def _asyncssh_client(asyncssh, port: int, kex_name: str) -> str:
    try:
        async with asyncssh.connect(
            "127.0.0.1", port, known_hosts=None, kex_algs=[kex_name], server_host_key_algs=["ssh-ed25519"],
            encryption_algs=["aes128-ctr"], mac_algs=["hmac-sha2-256"], username="kex-test",
            connect_timeout=10, login_timeout=10,
        ):
            return "connected"
    except Exception as exc:  # the test server closes after NEWKEYS; what matters is why asyncssh stopped
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("kex_name", ASYNCSSH_METHODS)
def test_asyncssh_client_accepts_our_servers_h(listener, kex_name):
    asyncssh = require_module("asyncssh", "asyncssh is one of the real SSH peers")
    outcome: list[str] = []
    thread = threading.Thread(
        target=lambda: outcome.append(asyncio.run(_asyncssh_client(asyncssh, listener.getsockname()[1], kex_name)))
    )
    thread.start()
    try:
        assert _serve_one(listener, kex_name) == 21
    finally:
        thread.join(20)
    assert outcome and "mismatch" not in outcome[0].lower()


def test_asyncssh_client_refuses_a_signature_over_the_wrong_h(listener):
    asyncssh = require_module("asyncssh", "asyncssh is one of the real SSH peers")
    outcome: list[str] = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            asyncio.run(_asyncssh_client(asyncssh, listener.getsockname()[1], "mlkem768x25519-sha256"))
        )
    )
    thread.start()
    try:
        assert _serve_one(listener, "mlkem768x25519-sha256", tamper=True) != 21
    finally:
        thread.join(20)
    assert outcome and "KeyExchangeFailed" in outcome[0], outcome
