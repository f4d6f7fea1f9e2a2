"""ssh/userauth.py: the method fields of USERAUTH_REQUEST and the publickey signature (RFC 4252, 4256).

Real clients against our SSHProbeServer (which answers every request with failure): paramiko's client
sends a *signed* publickey request straight away, so its signature is verified with the session
identifier of the live connection (the first exchange hash, ``SSHServer.session_id``).  asyncssh's
client and OpenSSH's ``ssh`` first send the unsigned query and wait for PK_OK, which this server never
sends: their queries are decoded (the key offered is the key file's), and for asyncssh the signed
request is built with asyncssh's own code (``SSHConnection.get_userauth_request_data`` and its key's
``sign``) over that live session identifier, then verified here.  Keys are made by ``ssh-keygen``.
"""

from __future__ import annotations

import base64
import os

import pytest
from conftest import require
from ssh_keygen_keys import make_keys

from handshake_lib.errors import DecodeError, EncodeError
from handshake_lib.net.ssh import SSHProbeServer
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import known_hosts_line
from handshake_lib.ssh.messages import UserauthRequest, decode_message
from handshake_lib.ssh.userauth import (
    MAX_METHOD_DATA,
    KeyboardInteractiveFields,
    PasswordFields,
    PublickeyFields,
    decode_method_fields,
    publickey_signed_data,
    request_fields,
    verify_publickey_request,
)

HOST_KEY = HostKeyPair.generate("ssh-ed25519")
CLIENT_KEYS = ("ed25519", "ecdsa", "rsa")  # ssh-keygen names: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    require("ssh-keygen", "OpenSSH's ssh-keygen (Debian package openssh-client)")
    return make_keys(tmp_path_factory.mktemp("userauth_keys"))


def blob_of(key_files) -> bytes:
    return base64.b64decode(key_files.public_line.split()[1])


def received_requests(served) -> list[UserauthRequest]:
    """The USERAUTH_REQUESTs the server core decoded, from its transcript."""
    return [e.message for e in served.server.transcript if isinstance(e.message, UserauthRequest)]


def with_fields(request: UserauthRequest, **changes) -> UserauthRequest:
    return UserauthRequest(
        changes.get("user", request.user), request.service, request.method,
        changes.get("method_data", request.method_data),
    )  # fmt: skip


def flipped(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


# -- codecs --------------------------------------------------------------------------------------------
ROUND_TRIPS = [
    ("publickey", PublickeyFields(False, "ssh-ed25519", b"\x00\x00\x00\x0bssh-ed25519" + bytes(36))),
    ("publickey", PublickeyFields(True, "rsa-sha2-512", b"key", b"sig")),
    ("password", PasswordFields(False, "hunter2")),
    ("password", PasswordFields(True, "old pässword", "new")),
    ("keyboard-interactive", KeyboardInteractiveFields("", "pam")),
    ("keyboard-interactive", KeyboardInteractiveFields()),
]


@pytest.mark.parametrize(("method", "fields"), ROUND_TRIPS)
def test_fields_round_trip_inside_a_whole_message(method, fields):
    message = UserauthRequest("alice", "ssh-connection", method, fields.encode())
    again = decode_message(message.to_bytes())
    assert isinstance(again, UserauthRequest) and again == message
    decoded = request_fields(again)
    assert decoded == fields and decoded.encode() == fields.encode()
    assert decoded.spans and all(
        s.field.split(".")[0] in {"publickey", "password", "keyboard_interactive"} for s in decoded.spans
    )


def test_spans_point_into_the_packet_with_base_offset():
    data = PublickeyFields(True, "ssh-ed25519", b"K" * 5, b"S" * 3).encode()
    fields = decode_method_fields("publickey", data, base_offset=100)
    leaves = {s.name: s for s in fields.spans if not s.is_group}
    assert leaves["has_signature"].offset == 100 and leaves["signature"].end == 100 + len(data)


def test_passwords_never_show_in_spans_or_repr():
    fields = decode_method_fields("password", PasswordFields(True, "s3cret-old", "s3cret-new").encode())
    shown = repr(fields) + "".join(s.meaning + s.field for s in fields.spans)
    assert "s3cret" not in shown and "10 bytes" in shown
    assert fields.password == "s3cret-old" and fields.new_password == "s3cret-new"


BAD = [
    ("publickey", b"", "has_signature"),  # nothing at all
    ("publickey", PublickeyFields(False, "ssh-ed25519", b"k").encode() + b"\x00", "publickey"),  # trailing byte
    ("publickey", PublickeyFields(False, "ssh-ed25519", b"k").encode()[:-1], "public_key"),  # truncated blob
    ("publickey", b"\x01" + PublickeyFields(False, "ssh-ed25519", b"k").encode()[1:], "signature"),  # flag, no sig
    ("publickey", b"\x00\x00\x00\x00\x02\xff\xfe" + b"\x00\x00\x00\x00", "algorithm"),  # not UTF-8
    ("password", b"\x00\xff\xff\xff\xff", "password"),  # a 4 GiB length
    ("password", b"\x01" + PasswordFields(False, "pw").encode()[1:], "new_password"),  # change, no new password
    ("keyboard-interactive", b"\x00\x00\x00\x00", "submethods"),
    ("hostbased", b"", "method_name"),  # a method we do not decode
]


@pytest.mark.parametrize(("method", "data", "where"), BAD)
def test_bad_bytes_are_a_typed_decode_error(method, data, where):
    with pytest.raises(DecodeError) as caught:
        decode_method_fields(method, data)
    assert where in caught.value.field or where in str(caught.value)


def test_oversized_method_data_is_refused_before_reading():
    with pytest.raises(DecodeError, match="more than"):
        decode_method_fields("password", bytes(MAX_METHOD_DATA + 1))


def test_inconsistent_fields_cannot_be_built():
    with pytest.raises(EncodeError):
        PublickeyFields(True, "ssh-ed25519", b"k")
    with pytest.raises(EncodeError):
        PasswordFields(False, "a", "b")


def test_signed_data_is_the_rfc_4252_section_7_blob():
    data = publickey_signed_data(b"\xaa" * 32, "alice", "ssh-connection", "ssh-ed25519", b"KEY")
    assert data == (
        b"\x00\x00\x00\x20" + b"\xaa" * 32 + b"\x32" + b"\x00\x00\x00\x05alice" + b"\x00\x00\x00\x0essh-connection"
        + b"\x00\x00\x00\x09publickey" + b"\x01" + b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x03KEY"
    )  # fmt: skip


@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"])
def test_our_own_signature_verifies_and_unsigned_or_mismatched_do_not(key_type):
    pair = HostKeyPair.generate(key_type, rsa_bits=2048)
    algorithm = pair.signature_algorithms[0]
    sid = os.urandom(32)
    blob = pair.host_key.blob
    signature = pair.sign(publickey_signed_data(sid, "alice", "ssh-connection", algorithm, blob), algorithm)
    request = UserauthRequest(
        "alice", "ssh-connection", "publickey", PublickeyFields(True, algorithm, blob, signature).encode()
    )
    assert verify_publickey_request(sid, request)
    query = with_fields(request, method_data=PublickeyFields(False, algorithm, blob).encode())
    assert not verify_publickey_request(sid, query)
    other = "ssh-rsa" if key_type != "ssh-rsa" else "ssh-ed25519"  # algorithm name that does not match the key
    wrong = with_fields(request, method_data=PublickeyFields(True, other, blob, signature).encode())
    assert not verify_publickey_request(sid, wrong)
    password = UserauthRequest("alice", "ssh-connection", "password", PasswordFields(False, "x").encode())
    assert not verify_publickey_request(sid, password)


# -- real clients ---------------------------------------------------------------------------------------
def assert_verifies_only_as_signed(session_id: bytes, request: UserauthRequest) -> None:
    assert verify_publickey_request(session_id, request)
    assert not verify_publickey_request(flipped(session_id), request)
    assert not verify_publickey_request(flipped(session_id, len(session_id) - 1), request)
    assert not verify_publickey_request(session_id, with_fields(request, user=request.user[:-1] + "x"))


@pytest.mark.peer
@pytest.mark.parametrize("name", CLIENT_KEYS)
def test_paramiko_client_signed_request_verifies(keys, name):
    import paramiko

    from handshake_lib.peers.paramiko_peers import paramiko_client

    key_class = {"ed25519": paramiko.Ed25519Key, "ecdsa": paramiko.ECDSAKey, "rsa": paramiko.RSAKey}[name]
    key = key_class.from_private_key_file(str(keys[name].private))
    with SSHProbeServer([HOST_KEY], auth_methods=("publickey",)) as server:
        known = known_hosts_line(server.host, server.port, HOST_KEY.host_key) + "\n"
        run = paramiko_client(server.host, server.port, user="alice", known_hosts=known, key=key, timeout=10)
    assert not run.authenticated  # our server refuses everyone
    [served] = server.connections
    session_id = served.server.session_id
    assert session_id == served.key_exchanges[0].exchange_hash.digest  # the first H
    signed = [r for r in received_requests(served) if r.method == "publickey"]
    assert signed, "paramiko sent no publickey request"
    for request in signed:
        fields = request_fields(request)
        assert isinstance(fields, PublickeyFields) and fields.has_signature  # signed straight away
        assert fields.public_key == blob_of(keys[name])
        assert fields.algorithm in {"ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512"}
        assert request.user == "alice" and request.service == "ssh-connection"
        assert_verifies_only_as_signed(session_id, request)


@pytest.mark.peer
@pytest.mark.parametrize("name", CLIENT_KEYS)
def test_asyncssh_client_query_and_its_own_signature_verify(keys, name):
    import asyncssh
    from asyncssh.connection import SSHConnection
    from asyncssh.packet import Boolean, String

    from handshake_lib.peers.asyncssh_peers import asyncssh_client

    key = asyncssh.read_private_key(str(keys[name].private))
    with SSHProbeServer([HOST_KEY], auth_methods=("publickey",)) as server:
        known = known_hosts_line(server.host, server.port, HOST_KEY.host_key) + "\n"
        run = asyncssh_client(server.host, server.port, user="alice", known_hosts=known, client_keys=[key], timeout=10)
    assert not run.authenticated
    [served] = server.connections
    session_id = served.server.session_id
    [query] = [r for r in received_requests(served) if r.method == "publickey"]
    fields = request_fields(query)
    assert isinstance(fields, PublickeyFields) and not fields.has_signature  # asyncssh waits for PK_OK
    assert fields.public_key == blob_of(keys[name])
    assert not verify_publickey_request(session_id, query)

    # The request asyncssh would send after PK_OK, signed by asyncssh's own code over this session.
    class Signer:  # the two attributes asyncssh's methods read, and the methods themselves
        _session_id = session_id
        _username = query.user.encode()
        _get_userauth_request_packet = SSHConnection._get_userauth_request_packet
        get_userauth_request_data = SSHConnection.get_userauth_request_data

    [keypair] = asyncssh.load_keypairs([key])
    keypair.set_sig_algorithm(fields.algorithm.encode())
    args = (Boolean(True), String(fields.algorithm), String(fields.public_key))
    data = Signer().get_userauth_request_data(b"publickey", *args)
    assert data == publickey_signed_data(session_id, query.user, query.service, fields.algorithm, fields.public_key)
    signed = with_fields(query, method_data=b"".join(args) + String(keypair.sign(data)))
    assert request_fields(signed).has_signature
    assert_verifies_only_as_signed(session_id, signed)


@pytest.mark.peer
@pytest.mark.parametrize("name", CLIENT_KEYS)
def test_openssh_ssh_query_offers_the_key_file(keys, name, tmp_path):
    require("ssh", "OpenSSH's client (Debian package openssh-client)")
    from handshake_lib.peers.openssh import openssh_client

    with SSHProbeServer([HOST_KEY], auth_methods=("publickey",)) as server:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(known_hosts_line(server.host, server.port, HOST_KEY.host_key) + "\n")
        openssh_client(
            server.host, server.port, user="alice", known_hosts_file=known_hosts, identity=keys[name].private,
            timeout=10,
        )  # fmt: skip
    [served] = server.connections
    queries = [r for r in received_requests(served) if r.method == "publickey"]
    assert queries, "ssh sent no publickey request"
    for query in queries:
        fields = request_fields(query)
        assert isinstance(fields, PublickeyFields) and not fields.has_signature
        assert fields.public_key == blob_of(keys[name])
        want = {"rsa": {"rsa-sha2-256", "rsa-sha2-512"}}.get(name, {keys[name].key_type})
        assert fields.algorithm in want
        assert not verify_publickey_request(served.server.session_id, query)
