"""SSH transport messages: layouts by hand, round trips, fuzzing, and real peers' bytes decoded.

Real peers: an asyncssh 2.24.1 server (in-process, own event loop), a paramiko 5.1.0 server (on a
socketpair) and Debian's OpenSSH 9.2 ``ssh`` client.  Their KEXINITs must decode to exactly the lists
each says it offers (asyncssh's and paramiko's algorithm settings, ``ssh -G``); asyncssh's
KEX_ECDH_REPLY and KEXDH_REPLY must decode to fields whose host key signature verifies over an exchange
hash computed from them (a private stand-in for slice B2's exchange hash: if a single byte of K_S, Q_S,
f or the signature were misread, the signature would not verify); OpenSSH's KEX_ECDH_INIT must have the
size of its method's public value (1190 bytes for sntrup761x25519).
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from conftest import require, require_module
from cryptography.hazmat.primitives.asymmetric import x25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ssh_messages_peers import (
    AsyncsshPeers,
    exchange_hash,
    mpint,
    paramiko_server_socket,
    read_packet,
    read_version_line,
    verify_ed25519,
    write_packet,
)

from handshake_lib.errors import (
    DecodeError,
    EncodeError,
    NoCommonAlgorithm,
    ProtocolError,
    SSHDisconnect,
    UnexpectedMessage,
)
from handshake_lib.ssh.constants import (
    CIPHERS,
    HOST_KEY_ALGORITHMS,
    KEX_ALGORITHMS,
    MACS,
    MAX_NAME_LENGTH,
    MAX_NAMES,
    MessageNumber,
    message_name,
)
from handshake_lib.ssh.messages import (
    MAX_EXTENSIONS,
    MESSAGES,
    Debug,
    Disconnect,
    ExtInfo,
    Ignore,
    KexDHInit,
    KexDHReply,
    KexECDHInit,
    KexECDHReply,
    KexInit,
    Message,
    NewKeys,
    ServiceAccept,
    ServiceRequest,
    Unimplemented,
    UnknownMessage,
    UserauthBanner,
    UserauthFailure,
    UserauthRequest,
    UserauthSuccess,
    decode_message,
)
from handshake_lib.ssh.negotiation import build_kexinit, negotiate, strict_kex
from handshake_lib.wire import Reader, Writer

OUR_VERSION = b"SSH-2.0-HandshakesTest_1.0"


# -- by hand -----------------------------------------------------------------------------------------
def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def test_message_numbers_are_rfc_4250s() -> None:
    assert (MessageNumber.DISCONNECT, MessageNumber.EXT_INFO, MessageNumber.KEXINIT, MessageNumber.NEWKEYS) == (
        1,
        7,
        20,
        21,
    )
    assert MessageNumber.KEX_ECDH_INIT == MessageNumber.KEXDH_INIT == 30
    assert MessageNumber.KEX_ECDH_REPLY == MessageNumber.KEXDH_REPLY == 31
    assert (MessageNumber.USERAUTH_REQUEST, MessageNumber.USERAUTH_BANNER, MessageNumber.USERAUTH_INFO_RESPONSE) == (
        50,
        53,
        61,
    )
    assert (MessageNumber.GLOBAL_REQUEST, MessageNumber.CHANNEL_OPEN, MessageNumber.CHANNEL_FAILURE) == (80, 90, 100)
    assert message_name(20) == "SSH_MSG_KEXINIT"
    assert "SSH_MSG_KEXDH_INIT" in message_name(30) and "SSH_MSG_KEX_ECDH_INIT" in message_name(30)
    assert message_name(200) == "unknown message 200"


def test_kexinit_decodes_the_rfc_layout_written_by_hand() -> None:
    cookie = bytes(range(16))
    lists = [b"curve25519-sha256,ext-info-c", b"ssh-ed25519", b"aes128-ctr", b"aes256-ctr", b"hmac-sha2-256"]
    lists += [b"hmac-sha2-512", b"none", b"none,zlib@openssh.com", b"", b""]
    payload = bytes([20]) + cookie + b"".join(_string(x) for x in lists) + b"\x01" + bytes(4)
    message = decode_message(payload)
    assert message == KexInit(
        cookie,
        ("curve25519-sha256", "ext-info-c"),
        ("ssh-ed25519",),
        ("aes128-ctr",),
        ("aes256-ctr",),
        ("hmac-sha2-256",),
        ("hmac-sha2-512",),
        ("none",),
        ("none", "zlib@openssh.com"),
        (),
        (),
        first_kex_packet_follows=True,
    )
    assert message.to_bytes() == payload
    spans = {span.field: span for span in message.spans}
    assert spans["kexinit"].length == len(payload) and spans["kexinit"].is_group
    assert (spans["kexinit.cookie"].offset, spans["kexinit.cookie"].length) == (1, 16)
    kex = spans["kexinit.kex_algorithms"]
    assert (kex.offset, kex.length) == (21, len(lists[0]))
    assert "ext-info-c" in kex.meaning and "signals" in kex.meaning
    assert spans["kexinit.first_kex_packet_follows"].offset == len(payload) - 5
    # annotate=False: same message, no spans
    quiet = decode_message(payload, annotate=False)
    assert quiet == message and quiet.spans == ()


def test_disconnect_keeps_unknown_reason_codes_and_names_known_ones() -> None:
    payload = bytes([1]) + (3).to_bytes(4, "big") + _string(b"no matching kex") + _string(b"en")
    message = decode_message(payload)
    assert isinstance(message, Disconnect) and message.reason is SSHDisconnect.KEY_EXCHANGE_FAILED
    assert message.reason_name == "SSH_DISCONNECT_KEY_EXCHANGE_FAILED"
    private = decode_message(bytes([1]) + (0xFE000001).to_bytes(4, "big") + _string(b"") + _string(b""))
    assert isinstance(private, Disconnect) and private.reason == 0xFE000001 and "unknown" in private.reason_name
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_message(bytes([1]) + (2).to_bytes(4, "big") + _string(b"\xff\xfe") + _string(b""))


def test_messages_30_and_31_need_the_key_exchange_family() -> None:
    init = bytes([30]) + _string(bytes(32))
    with pytest.raises(UnexpectedMessage, match="depends on the key exchange method"):
        decode_message(init)
    assert decode_message(init, kex_family="ecdh") == KexECDHInit(bytes(32))
    # The same bytes under "dh" are an mpint whose body is 32 zero bytes: not minimal, so malformed.
    with pytest.raises(DecodeError, match="leading byte|zero"):
        decode_message(init, kex_family="dh")
    assert decode_message(bytes([30]) + _string(b"\x01\x00"), kex_family="dh") == KexDHInit(256)
    with pytest.raises(ValueError, match="kex_family"):
        decode_message(init, kex_family="gex")  # type: ignore[arg-type]


@pytest.mark.parametrize("number", [0, 8, 32, 60, 101, 127, 192, 255])
def test_unmodelled_numbers_decode_to_unknown_message(number: int) -> None:
    payload = bytes([number]) + b"\x00\x01body"
    message = decode_message(payload)
    assert isinstance(message, UnknownMessage)
    assert (message.number, message.body, message.message_number) == (number, b"\x00\x01body", number)
    assert message.to_bytes() == payload
    assert message.spans[0].field == "message" and message.spans[-1].field == "message.body"


def test_a_class_decoder_refuses_another_message() -> None:
    with pytest.raises(UnexpectedMessage, match="expected SSH_MSG_KEXINIT"):
        KexInit.decode(Reader(NewKeys().to_bytes()))
    with pytest.raises(DecodeError, match="unexpected bytes"):
        decode_message(NewKeys().to_bytes() + b"\x00")
    with pytest.raises(DecodeError, match="empty payload"):
        decode_message(b"")


def _kexinit_with(kex_names: list[str]) -> bytes:
    w = Writer().u8(20).raw(bytes(16))
    w.ssh_string(",".join(kex_names).encode())
    for _ in range(9):
        w.ssh_string(b"")
    return w.ssh_boolean(False).u32(0).getvalue()


def test_name_lists_are_capped_in_count_and_length() -> None:
    assert len(decode_message(_kexinit_with([f"k{i}" for i in range(MAX_NAMES)])).kex_algorithms) == MAX_NAMES
    with pytest.raises(DecodeError, match=f"more than {MAX_NAMES}"):
        decode_message(_kexinit_with([f"k{i}" for i in range(MAX_NAMES + 1)]))
    assert decode_message(_kexinit_with(["x" * MAX_NAME_LENGTH])).kex_algorithms == ("x" * MAX_NAME_LENGTH,)
    with pytest.raises(DecodeError, match="RFC 4251 section 6"):
        decode_message(_kexinit_with(["x" * (MAX_NAME_LENGTH + 1)]))
    with pytest.raises(DecodeError, match="empty"):
        decode_message(_kexinit_with(["a", "", "b"]))
    with pytest.raises(EncodeError):
        KexInit(kex_algorithms=("x" * (MAX_NAME_LENGTH + 1),)).to_bytes()
    with pytest.raises(EncodeError):
        KexInit(cookie=b"short").to_bytes()


def test_ext_info_reads_server_sig_algs_as_a_name_list() -> None:
    payload = (
        bytes([7])
        + (2).to_bytes(4, "big")
        + _string(b"server-sig-algs")
        + _string(b"ssh-ed25519,rsa-sha2-256")
        + _string(b"publickey-hostbound@openssh.com")
        + _string(b"0")
    )
    message = decode_message(payload)
    assert isinstance(message, ExtInfo)
    assert message.server_sig_algs == ("ssh-ed25519", "rsa-sha2-256")
    assert message.extensions[1] == ("publickey-hostbound@openssh.com", b"0")
    assert message.to_bytes() == payload
    assert ExtInfo.with_server_sig_algs(["ssh-ed25519", "rsa-sha2-256"], ("publickey-hostbound@openssh.com", b"0"))
    value_span = next(s for s in message.spans if s.field == "ext_info.extension.extension_value")
    assert "ssh-ed25519, rsa-sha2-256" in value_span.meaning
    with pytest.raises(DecodeError, match="empty or unprintable"):
        decode_message(bytes([7]) + (1).to_bytes(4, "big") + _string(b"server-sig-algs") + _string(b"a,,b"))
    with pytest.raises(DecodeError, match=f"more than {MAX_EXTENSIONS}"):
        decode_message(bytes([7]) + (MAX_EXTENSIONS + 1).to_bytes(4, "big"))
    assert ExtInfo().server_sig_algs is None


def test_userauth_request_decodes_none_and_keeps_other_methods_raw() -> None:
    none = bytes([50]) + _string(b"alice") + _string(b"ssh-connection") + _string(b"none")
    assert decode_message(none) == UserauthRequest("alice", "ssh-connection", "none")
    with pytest.raises(DecodeError, match="unexpected bytes"):
        decode_message(none + b"\x00")
    password = bytes([50]) + _string(b"bob") + _string(b"ssh-connection") + _string(b"password") + b"\x00"
    password += _string(b"secret")
    message = decode_message(password)
    assert isinstance(message, UserauthRequest) and message.method == "password"
    assert message.method_data == b"\x00" + _string(b"secret") and message.to_bytes() == password
    failure = bytes([51]) + _string(b"publickey,password") + b"\x01"
    assert decode_message(failure) == UserauthFailure(("publickey", "password"), True)


# -- round trips and fuzzing -------------------------------------------------------------------------
_names = st.lists(st.from_regex(r"[a-z0-9@.\-]{1,20}", fullmatch=True), max_size=6).map(tuple)
_text = st.text(max_size=30)
_bytes = st.binary(max_size=80)

MESSAGE_STRATEGY = st.one_of(
    st.builds(Disconnect, st.integers(0, 2**32 - 1), _text, _text),
    st.builds(Ignore, _bytes),
    st.builds(Unimplemented, st.integers(0, 2**32 - 1)),
    st.builds(Debug, st.booleans(), _text, _text),
    st.builds(ServiceRequest, _text),
    st.builds(ServiceAccept, _text),
    st.builds(
        ExtInfo,
        st.lists(
            st.one_of(
                st.tuples(st.just("server-sig-algs"), _names.map(lambda n: ",".join(n).encode())),
                st.tuples(st.from_regex(r"[a-z\-@.]{1,20}", fullmatch=True), _bytes),
            ),
            max_size=4,
        ).map(tuple),
    ),
    st.builds(
        KexInit,
        st.binary(min_size=16, max_size=16),
        *([_names] * 10),
        first_kex_packet_follows=st.booleans(),
        reserved=st.integers(0, 2**32 - 1),
    ),
    st.builds(NewKeys),
    st.builds(UserauthRequest, _text, _text, st.just("none")),
    st.builds(UserauthRequest, _text, _text, st.sampled_from(["publickey", "password"]), _bytes),
    st.builds(UserauthFailure, _names, st.booleans()),
    st.builds(UserauthSuccess),
    st.builds(UserauthBanner, _text, _text),
    st.builds(UnknownMessage, st.sampled_from([0, 8, 33, 60, 101, 127, 150, 255]), _bytes),  # 60: no method given
)
KEX_STRATEGY = st.one_of(
    st.tuples(st.just("ecdh"), st.builds(KexECDHInit, _bytes)),
    st.tuples(st.just("ecdh"), st.builds(KexECDHReply, _bytes, _bytes, _bytes)),
    st.tuples(st.just("dh"), st.builds(KexDHInit, st.integers(0, 2**2048))),
    st.tuples(st.just("dh"), st.builds(KexDHReply, _bytes, st.integers(0, 2**2048), _bytes)),
)


@settings(max_examples=300, deadline=None)
@given(MESSAGE_STRATEGY)
def test_every_message_round_trips(message: Message) -> None:
    payload = message.to_bytes()
    decoded = decode_message(payload)
    assert decoded == message and type(decoded) is type(message)
    assert decoded.to_bytes() == payload
    assert all(span.offset >= 0 and span.end <= len(payload) for span in decoded.spans)


@settings(max_examples=200, deadline=None)
@given(KEX_STRATEGY)
def test_key_exchange_messages_round_trip_within_their_family(pair: tuple[str, Message]) -> None:
    family, message = pair
    payload = message.to_bytes()
    assert decode_message(payload, kex_family=family) == message  # type: ignore[arg-type]


def _decode_or_typed_error(data: bytes, family: str | None) -> None:
    try:
        message = decode_message(data, kex_family=family)  # type: ignore[arg-type]
    except ProtocolError:
        return
    # What decodes re-encodes to the same bytes, but for a boolean byte other than 0 or 1 (RFC 4251 reads
    # every non-zero value as TRUE, and we write TRUE as 1).
    assert decode_message(message.to_bytes(), kex_family=family) == message  # type: ignore[arg-type]
    if not any(
        span.field.endswith(("always_display", "first_kex_packet_follows", "partial_success")) for span in message.spans
    ):
        assert message.to_bytes() == data


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from([None, "ecdh", "dh"]))
def test_fuzzed_payloads_raise_only_typed_errors(data: bytes, family: str | None) -> None:
    _decode_or_typed_error(data, family)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGE_STRATEGY, st.data())
def test_mutated_messages_raise_only_typed_errors(message: Message, data: st.DataObject) -> None:
    payload = bytearray(message.to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        index = data.draw(st.integers(0, max(len(payload) - 1, 0)))
        if action == "flip" and payload:
            payload[index] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del payload[index:]
        else:
            payload[index:index] = data.draw(st.binary(min_size=1, max_size=4))
    _decode_or_typed_error(bytes(payload), data.draw(st.sampled_from([None, "ecdh", "dh"])))


# -- real peers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def asyncssh_peers() -> Iterator[AsyncsshPeers]:
    require_module("asyncssh", "the asyncssh peer")
    peers = AsyncsshPeers()
    yield peers
    peers.close()


@pytest.fixture(scope="session")
def asyncssh_port(asyncssh_peers: AsyncsshPeers) -> int:
    """An asyncssh server with an ed25519 host key and asyncssh's default algorithms."""
    return asyncssh_peers.server(("ssh-ed25519",))


def _greet(port: int) -> tuple[socket.socket, bytes, bytes]:
    """Connect, exchange version lines, return (socket, the server's version line, its KEXINIT payload)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(OUR_VERSION + b"\r\n")
    version = read_version_line(sock).rstrip(b"\r\n")
    return sock, version, read_packet(sock)


def test_asyncssh_server_kexinit_lists_what_asyncssh_offers(asyncssh_port: int) -> None:
    from asyncssh.compression import get_default_compression_algs
    from asyncssh.encryption import get_default_encryption_algs
    from asyncssh.kex import get_default_kex_algs
    from asyncssh.mac import get_default_mac_algs

    def names(algorithms: list[bytes]) -> tuple[str, ...]:
        return tuple(name.decode() for name in algorithms)

    sock, version, payload = _greet(asyncssh_port)
    sock.close()
    assert version == b"SSH-2.0-AsyncSSH_2.24.1"
    message = decode_message(payload)
    assert isinstance(message, KexInit)
    # Without GSS-API credentials asyncssh leaves out its gss-* methods, and adds its two signals.
    expected_kex = tuple(n for n in names(get_default_kex_algs()) if not n.startswith("gss-"))
    assert message.kex_algorithms == (*expected_kex, "ext-info-s", "kex-strict-s-v00@openssh.com")
    assert message.server_host_key_algorithms == ("ssh-ed25519",)
    assert (
        message.encryption_client_to_server
        == message.encryption_server_to_client
        == names(get_default_encryption_algs())
    )
    assert message.mac_client_to_server == message.mac_server_to_client == names(get_default_mac_algs())
    assert message.compression_server_to_client == names(get_default_compression_algs())
    assert message.languages_client_to_server == () and not message.first_kex_packet_follows
    assert message.to_bytes() == payload


def test_paramiko_server_kexinit_lists_what_paramiko_offers() -> None:
    require_module("paramiko", "the paramiko peer")
    import paramiko

    defaults = paramiko.Transport(socket.socket()).get_security_options()
    with paramiko_server_socket() as sock:
        sock.sendall(OUR_VERSION + b"\r\n")
        version = read_version_line(sock)
        payload = read_packet(sock)
    assert version == b"SSH-2.0-paramiko_5.1.0\r\n"
    message = decode_message(payload)
    assert isinstance(message, KexInit)
    # paramiko's server signals strict kex but not ext-info-s, and offers only the key types it holds.
    assert message.kex_algorithms == (*defaults.kex, "kex-strict-s-v00@openssh.com")
    assert message.server_host_key_algorithms == ("ssh-ed25519", "ecdsa-sha2-nistp256")
    assert message.encryption_client_to_server == tuple(defaults.ciphers)
    assert message.mac_server_to_client == tuple(defaults.digests)
    assert message.compression_client_to_server == tuple(defaults.compression)
    assert message.to_bytes() == payload


def _ssh_client(port: int, *options: str) -> subprocess.Popen[bytes]:
    ssh = require("ssh", "OpenSSH's client")
    command = [ssh, "-F", "/dev/null", "-p", str(port), "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=/dev/null"]
    command += ["-o", "ConnectTimeout=5", *options, "127.0.0.1"]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ssh_defaults() -> dict[str, tuple[str, ...]]:
    output = subprocess.run(
        [require("ssh"), "-G", "-F", "/dev/null", "127.0.0.1"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    settings_ = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
    return {key: tuple(settings_[key].split(",")) for key in ("kexalgorithms", "hostkeyalgorithms", "ciphers", "macs")}


def _openssh_first_packets(kex: str) -> tuple[bytes, KexInit, bytes, bytes]:
    """Run ``ssh`` against a socket of ours that offers only ``kex``: (its version, its KEXINIT, our KEXINIT
    payload, its first key exchange payload)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    process = _ssh_client(listener.getsockname()[1])
    try:
        sock, _ = listener.accept()
        with sock:
            sock.sendall(OUR_VERSION + b"\r\n")
            version = read_version_line(sock).rstrip(b"\r\n")
            kexinit = decode_message(read_packet(sock))
            assert isinstance(kexinit, KexInit)
            ours = build_kexinit("server", kex_algorithms=[kex]).to_bytes()
            write_packet(sock, ours)
            first = read_packet(sock)
    finally:
        listener.close()
        process.kill()
        process.communicate(timeout=10)
    return version, kexinit, ours, first


def test_openssh_client_kexinit_lists_what_ssh_G_says() -> None:
    version, kexinit, _, _ = _openssh_first_packets("curve25519-sha256")
    assert version.startswith(b"SSH-2.0-OpenSSH_9.")
    defaults = _ssh_defaults()
    assert kexinit.kex_algorithms == (*defaults["kexalgorithms"], "ext-info-c", "kex-strict-c-v00@openssh.com")
    assert kexinit.kex_algorithms[0] == "sntrup761x25519-sha512"  # Debian's default: post-quantum first
    assert kexinit.server_host_key_algorithms == defaults["hostkeyalgorithms"]
    assert kexinit.encryption_client_to_server == defaults["ciphers"]
    assert kexinit.mac_server_to_client == defaults["macs"]
    # "Compression no" (the default) still lists zlib after none (OpenSSH's readconf.c).
    assert kexinit.compression_client_to_server == ("none", "zlib@openssh.com", "zlib")
    # Every algorithm we offer is one OpenSSH 9.2 knows (ssh -Q), except ML-KEM, which came in 9.9.
    known = set(subprocess.run([require("ssh"), "-Q", "kex"], capture_output=True, text=True).stdout.split())
    assert set(KEX_ALGORITHMS) - known == {"mlkem768x25519-sha256"}
    assert set(HOST_KEY_ALGORITHMS) <= set(kexinit.server_host_key_algorithms)
    assert set(CIPHERS) <= set(kexinit.encryption_client_to_server)
    assert set(MACS) <= set(kexinit.mac_client_to_server)

    # Our order is OpenSSH's with what we lack left out, as constants.py says; the ciphers differ on
    # purpose (GCM before CTR, OpenSSH 10.0's order, not 9.2's).
    def in_the_same_order(ours: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
        remaining = iter(theirs)
        return all(name in remaining for name in ours)

    assert in_the_same_order(KEX_ALGORITHMS[1:], defaults["kexalgorithms"])
    assert in_the_same_order(HOST_KEY_ALGORITHMS, defaults["hostkeyalgorithms"])
    assert in_the_same_order(MACS, defaults["macs"])
    assert not in_the_same_order(CIPHERS, defaults["ciphers"])


@pytest.mark.parametrize(
    ("kex", "family", "public_length"),
    [
        ("curve25519-sha256", "ecdh", 32),
        ("ecdh-sha2-nistp256", "ecdh", 65),
        ("sntrup761x25519-sha512@openssh.com", "ecdh", 1158 + 32),
        ("diffie-hellman-group14-sha256", "dh", 256),
    ],
)
def test_openssh_client_first_kex_packet(kex: str, family: str, public_length: int) -> None:
    _, _, _, first = _openssh_first_packets(kex)
    message = decode_message(first, kex_family=family)  # type: ignore[arg-type]
    if family == "ecdh":
        assert isinstance(message, KexECDHInit) and len(message.client_public) == public_length
        assert f"({public_length} bytes)" in message.spans[-1].meaning
    else:
        assert isinstance(message, KexDHInit)
        assert message.client_public > 1 and (message.client_public.bit_length() + 7) // 8 <= public_length
    assert message.to_bytes() == first


def test_asyncssh_kex_ecdh_reply_fields_carry_a_signature_that_verifies(asyncssh_port: int) -> None:
    sock, server_version, server_kexinit = _greet(asyncssh_port)
    with sock:
        ours = build_kexinit("client", kex_algorithms=["curve25519-sha256"], host_key_algorithms=["ssh-ed25519"])
        write_packet(sock, ours.to_bytes())
        secret = x25519.X25519PrivateKey.generate()
        client_public = secret.public_key().public_bytes_raw()
        write_packet(sock, KexECDHInit(client_public).to_bytes())
        reply = decode_message(read_packet(sock), kex_family="ecdh")
    assert isinstance(reply, KexECDHReply) and len(reply.server_public) == 32
    assert [s.field for s in reply.spans if not s.is_group][-3:] == [
        "kex_ecdh_reply.Q_S",
        "kex_ecdh_reply.signature_length",
        "kex_ecdh_reply.signature",
    ]
    shared = int.from_bytes(secret.exchange(x25519.X25519PublicKey.from_public_bytes(reply.server_public)), "big")
    fields = [OUR_VERSION, server_version, ours.to_bytes(), server_kexinit, reply.host_key, client_public]
    hash_h = exchange_hash(*(_string(x) for x in fields), _string(reply.server_public), shared=shared)
    verify_ed25519(reply.host_key, reply.signature, hash_h)


def test_asyncssh_kexdh_reply_fields_carry_a_signature_that_verifies(asyncssh_port: int) -> None:
    require_module("paramiko")
    from paramiko.kex_group14 import KexGroup14SHA256  # the RFC 3526 group 14 prime, from a peer's code

    prime, private = KexGroup14SHA256.P, int.from_bytes(hashlib.sha256(b"test exponent").digest(), "big")
    client_public = pow(2, private, prime)
    sock, server_version, server_kexinit = _greet(asyncssh_port)
    with sock:
        ours = build_kexinit(
            "client", kex_algorithms=["diffie-hellman-group14-sha256"], host_key_algorithms=["ssh-ed25519"]
        )
        write_packet(sock, ours.to_bytes())
        write_packet(sock, KexDHInit(client_public).to_bytes())
        reply = decode_message(read_packet(sock), kex_family="dh")
    assert isinstance(reply, KexDHReply) and 1 < reply.server_public < prime - 1
    shared = pow(reply.server_public, private, prime)
    fields = [_string(x) for x in (OUR_VERSION, server_version, ours.to_bytes(), server_kexinit, reply.host_key)]
    hash_h = exchange_hash(*fields, mpint(client_public), mpint(reply.server_public), shared=shared)
    verify_ed25519(reply.host_key, reply.signature, hash_h)


def test_asyncssh_disconnects_a_kexinit_with_no_common_kex(asyncssh_port: int) -> None:
    sock, _, server_kexinit = _greet(asyncssh_port)
    with sock:
        ours = build_kexinit("client", kex_algorithms=["sntrup761x25519-sha512@openssh.com"])
        write_packet(sock, ours.to_bytes())
        answer = decode_message(read_packet(sock))
    assert isinstance(answer, Disconnect) and answer.reason is SSHDisconnect.KEY_EXCHANGE_FAILED
    assert "key exchange" in answer.description.lower()
    server = decode_message(server_kexinit)
    assert isinstance(server, KexInit)
    with pytest.raises(NoCommonAlgorithm) as failure:
        negotiate(ours, server)
    assert failure.value.category == "kex" and failure.value.ssh_disconnect == answer.reason


def test_every_payload_of_a_paramiko_session_with_asyncssh_decodes_and_round_trips(
    asyncssh_peers: AsyncsshPeers,
) -> None:
    """The decrypted payloads of a real session, both ways, tapped inside paramiko's packetizer.

    paramiko (client) and asyncssh (server) run the key exchange, then paramiko asks for ssh-userauth,
    tries ``none``, sends a message number nobody defines, then asks for the service again: the EXT_INFO,
    SERVICE_ACCEPT, IGNORE, USERAUTH_BANNER, USERAUTH_FAILURE, UNIMPLEMENTED and DISCONNECT that asyncssh
    sends back, and what paramiko sends, must all decode to the right class and re-encode to the same bytes.
    """
    paramiko = require_module("paramiko", "the paramiko peer")
    from paramiko.packet import Packetizer

    payloads: list[tuple[str, bytes]] = []
    original_send, original_read = Packetizer.send_message, Packetizer.read_message

    def send_message(self: Any, data: Any) -> None:
        payloads.append(("client", data.asbytes()))
        original_send(self, data)

    def read_message(self: Any) -> tuple[int, Any]:
        command, message = original_read(self)
        payloads.append(("server", bytes([command]) + message.asbytes()))
        return command, message

    port = asyncssh_peers.server(("ssh-ed25519",), banner="Welcome to the course\r\n")
    with (
        mock.patch.object(Packetizer, "send_message", send_message),
        mock.patch.object(Packetizer, "read_message", read_message),
    ):
        transport = paramiko.Transport(socket.create_connection(("127.0.0.1", port), timeout=10))
        try:
            transport.start_client(timeout=10)
            with pytest.raises(paramiko.BadAuthenticationType) as allowed:
                transport.auth_none("alice")
            unknown = paramiko.Message()
            # 15: in the transport range, defined by no RFC.  asyncssh answers UNIMPLEMENTED to it (an
            # undefined number in the connection range before authentication ends the connection instead).
            unknown.add_byte(bytes([15]))
            unknown.add_string(b"nobody defines message 15")
            transport.packetizer.send_message(unknown)
            # paramiko sends SERVICE_REQUEST again before the password, which asyncssh refuses with a
            # DISCONNECT (SERVICE_NOT_AVAILABLE); the UNIMPLEMENTED for message 15 comes before it.
            with pytest.raises(paramiko.SSHException):
                transport.auth_password("alice", "wrong", fallback=False)
        finally:
            transport.close()

    client_kexinit = decode_message(next(p for sender, p in payloads if sender == "client"))
    server_kexinit = decode_message(next(p for sender, p in payloads if sender == "server"))
    assert isinstance(client_kexinit, KexInit) and isinstance(server_kexinit, KexInit)
    family = negotiate(client_kexinit, server_kexinit)
    decoded: dict[str, list[Message]] = {"client": [], "server": []}
    in_kex = True
    for sender, payload in payloads:
        message = decode_message(payload, kex_family=family.kex_family if in_kex else None)
        in_kex = in_kex and not isinstance(message, NewKeys)
        assert message.to_bytes() == payload, f"{sender}: {message.name} did not re-encode to its bytes"
        decoded[sender].append(message)

    sent = [type(m) for m in decoded["client"]]
    received = [type(m) for m in decoded["server"]]
    assert sent[:3] == [KexInit, KexECDHInit, NewKeys] and ServiceRequest in sent and UnknownMessage in sent
    assert received[:3] == [KexInit, KexECDHReply, NewKeys]
    for expected in (ExtInfo, ServiceAccept, UserauthBanner, UserauthFailure, Unimplemented):
        assert expected in received, f"asyncssh sent no {expected.__name__}"

    def first(kind: type[Message]) -> Any:
        return next(m for m in decoded["server"] + decoded["client"] if isinstance(m, kind))

    requests = [m for m in decoded["client"] if isinstance(m, UserauthRequest)]
    assert [(r.user, r.service, r.method, r.method_data) for r in requests] == [
        ("alice", "ssh-connection", "none", b"")
    ]
    assert first(ServiceRequest).service == first(ServiceAccept).service == "ssh-userauth"
    assert first(UserauthBanner).message == "Welcome to the course\r\n"
    failure = first(UserauthFailure)
    assert list(failure.methods) == list(allowed.value.allowed_types) and not failure.partial_success
    assert "ssh-ed25519" in first(ExtInfo).server_sig_algs
    # asyncssh names the sequence number of our message 15.  Both sides offered strict kex, so numbering
    # restarted at 0 after NEWKEYS (the Terrapin countermeasure): count paramiko's packets from there.
    assert strict_kex(client_kexinit, server_kexinit)
    assert first(Unimplemented).sequence_number == sent.index(UnknownMessage) - (sent.index(NewKeys) + 1)
    last = decoded["server"][-1]
    assert isinstance(last, Disconnect) and last.reason is SSHDisconnect.SERVICE_NOT_AVAILABLE


def test_message_names_follow_the_rfc_and_the_family() -> None:
    assert KexECDHInit().name == "SSH_MSG_KEX_ECDH_INIT" and KexDHReply().name == "SSH_MSG_KEXDH_REPLY"
    assert KexInit().name == "SSH_MSG_KEXINIT" and UserauthRequest().name == "SSH_MSG_USERAUTH_REQUEST"
    assert ExtInfo().name == "SSH_MSG_EXT_INFO" and UnknownMessage(94).name == "SSH_MSG_CHANNEL_DATA"
    for cls in MESSAGES.values():
        assert cls().name == "SSH_MSG_" + MessageNumber(cls.NUMBER).name


def test_the_number_byte_is_named_after_the_family_the_caller_gave() -> None:
    ecdh = decode_message(KexECDHInit(bytes(32)).to_bytes(), kex_family="ecdh")
    dh = decode_message(KexDHInit(5).to_bytes(), kex_family="dh")
    assert ecdh.spans[1].field == "kex_ecdh_init.message_number" and ecdh.spans[1].meaning == "SSH_MSG_KEX_ECDH_INIT"
    assert dh.spans[1].field == "kexdh_init.message_number" and dh.spans[1].meaning == "SSH_MSG_KEXDH_INIT"
