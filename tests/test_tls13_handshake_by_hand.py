"""A TLS 1.3 handshake driven by hand against a real OpenSSL server, one group at a time.

The library's TLS 1.3 slices are not wired into the client yet; this test shows they fit.  We build the
ClientHello with our messages and a key share from key_share13.py, feed it to a Python ``ssl`` server
(OpenSSL 3.0, memory BIOs, TLS 1.3 only, one group allowed via ``set_ecdh_curve``), compute the shared
secret from its ServerHello and the handshake secrets with key_schedule13.py, and check them against the
server's own key log.  Then record13.py opens the server's encrypted flight, our finished_verify_data
must equal its Finished, our sealed Finished must make OpenSSL's ``do_handshake()`` succeed, and the
tickets and data it sends afterwards must open with our application traffic keys.

X25519MLKEM768 needs OpenSSL 3.5 or later; Debian's 3.0 has none.  The OpenSSL inside ``cryptography``'s
wheel (4.0) has it, so the same hand-driven handshake runs against that one through ``cryptography``'s
cffi bindings; the hybrid is also checked apart: its round trip, ML-KEM's decapsulation of an
encapsulation made by ``cryptography`` alone, X25519 against ``cryptography``, and its sizes.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from handshake_lib.errors import HandshakeFailure, IllegalParameter
from handshake_lib.tls.constants import (
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    ProtocolVersion,
    SignatureScheme,
)
from handshake_lib.tls.extensions import (
    KeyShareClientHelloExtension,
    KeyShareHelloRetryRequestExtension,
    KeyShareServerHelloExtension,
    ServerNameExtension,
    SignatureAlgorithmsExtension,
    SupportedGroupsExtension,
    SupportedVersionsExtension,
)
from handshake_lib.tls.key_exchange import FFDHE2048_P
from handshake_lib.tls.key_schedule13 import (
    KeySchedule13,
    finished_verify_data,
    transcript_hash,
    transcript_hash_after_hrr,
)
from handshake_lib.tls.key_share13 import KEY_SHARE_GROUPS13, ClientKeyShare13, key_share_group13
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.messages import ClientHello, Finished, ServerHello
from handshake_lib.tls.messages13 import (
    Certificate13,
    EncryptedExtensions,
    NewSessionTicket13,
    check_key_share_selection,
    check_key_shares,
    decode_handshake13,
    is_hello_retry_request,
)
from handshake_lib.tls.record import RecordReader, encode_record, reassemble_handshake_messages
from handshake_lib.tls.record13 import RecordOpener13, RecordSealer13, suite13

# One suite per group, so the three suites (and SHA-384's schedule) are covered by the four handshakes.
_CASES = {  # group: (OpenSSL's name for it, suite)
    NamedGroup.x25519: ("X25519", 0x1301),  # TLS_AES_128_GCM_SHA256
    NamedGroup.secp256r1: ("prime256v1", 0x1303),  # TLS_CHACHA20_POLY1305_SHA256
    NamedGroup.secp384r1: ("secp384r1", 0x1302),  # TLS_AES_256_GCM_SHA384
    NamedGroup.ffdhe2048: ("ffdhe2048", 0x1301),
}
_SCHEMES = [
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.ed25519,
    SignatureScheme.rsa_pss_rsae_sha384,
]


def _seeded(seed: int):  # type: ignore[no-untyped-def]
    """Deterministic random_bytes: a replayable client (its randoms and key shares)."""
    import hashlib

    counter = iter(range(1 << 30))
    return lambda n: b"".join(hashlib.sha256(f"{seed}/{next(counter)}".encode()).digest() for _ in range(n // 32 + 1))[
        :n
    ]


@dataclass
class OpenSSLServer:
    """A Python ``ssl`` (OpenSSL) TLS 1.3 server over memory BIOs that takes one group."""

    server: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    keylog: Path
    handshake_done: bool = False
    reader: RecordReader = field(default_factory=lambda: RecordReader(protected=True))

    def send(self, data: bytes) -> list[tuple[int, bytes]]:
        """Give it our bytes; the records (type, whole record) it answers with."""
        self.incoming.write(data)
        with contextlib.suppress(ssl.SSLWantReadError):
            self.server.do_handshake()
            self.handshake_done = True
        return self._records(self.outgoing.read())

    def _records(self, data: bytes) -> list[tuple[int, bytes]]:
        return [(r.content_type, encode_record(r.content_type, r.version, r.fragment)) for r in self.reader.feed(data)]

    def write(self, data: bytes) -> list[tuple[int, bytes]]:
        """Application data through it; the records it sends (with any it had not yet flushed)."""
        self.server.write(data)
        return self._records(self.outgoing.read())

    def version(self) -> str | None:
        return self.server.version()


class BundledOpenSSLServer(OpenSSLServer):
    """OpenSSL 4 (the one inside ``cryptography``'s wheel, which has ML-KEM) driven through its bindings.

    Debian's OpenSSL 3.0, behind Python's ``ssl``, has no X25519MLKEM768; the copy ``cryptography`` links
    has it among its default groups.  Its cffi bindings keep the SSL calls pyOpenSSL uses: enough for a
    server over memory BIOs with a key log callback.
    """

    def __init__(self, files, keylog: Path) -> None:  # type: ignore[no-untyped-def]
        from cryptography.hazmat.bindings.openssl.binding import Binding

        lib, ffi = Binding.lib, Binding.ffi
        self.lib, self.ffi, self.keylog, self.handshake_done = lib, ffi, keylog, False
        self.reader = RecordReader(protected=True)
        self._ctx = ffi.gc(lib.SSL_CTX_new(lib.TLS_server_method()), lib.SSL_CTX_free)
        assert lib.SSL_CTX_use_certificate_chain_file(self._ctx, str(files.cert_path).encode()) == 1
        assert lib.SSL_CTX_use_PrivateKey_file(self._ctx, str(files.key_path).encode(), lib.SSL_FILETYPE_PEM) == 1
        assert lib.SSL_CTX_set_min_proto_version(self._ctx, lib.TLS1_3_VERSION) == 1

        def log_line(_ssl, line) -> None:  # type: ignore[no-untyped-def]
            with keylog.open("a") as out:
                out.write(ffi.string(line).decode() + "\n")

        self._keylog_callback = ffi.callback(ffi.typeof(lib.SSL_CTX_set_keylog_callback).args[1], log_line)
        lib.SSL_CTX_set_keylog_callback(self._ctx, self._keylog_callback)
        self._ssl = ffi.gc(lib.SSL_new(self._ctx), lib.SSL_free)
        self._in, self._out = lib.BIO_new(lib.BIO_s_mem()), lib.BIO_new(lib.BIO_s_mem())
        lib.SSL_set_bio(self._ssl, self._in, self._out)  # the SSL owns both BIOs now
        lib.SSL_set_accept_state(self._ssl)

    def _drain(self) -> bytes:
        buffer, chunks = self.ffi.new("char[]", 65536), []
        while (n := self.lib.BIO_read(self._out, buffer, 65536)) > 0:
            chunks.append(self.ffi.buffer(buffer, n)[:])
        return b"".join(chunks)

    def send(self, data: bytes) -> list[tuple[int, bytes]]:
        assert self.lib.BIO_write(self._in, data, len(data)) == len(data)
        result = self.lib.SSL_do_handshake(self._ssl)
        if result == 1:
            self.handshake_done = True
        else:
            assert self.lib.SSL_get_error(self._ssl, result) == self.lib.SSL_ERROR_WANT_READ, "OpenSSL 4 failed"
        return self._records(self._drain())

    def write(self, data: bytes) -> list[tuple[int, bytes]]:
        assert self.lib.SSL_write(self._ssl, data, len(data)) == len(data)
        return self._records(self._drain())

    def version(self) -> str | None:
        return self.ffi.string(self.lib.SSL_get_version(self._ssl)).decode()


def _server(files, folder: Path, curve: str) -> OpenSSLServer:  # type: ignore[no-untyped-def]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_path, files.key_path)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_ecdh_curve(curve)  # OpenSSL 3: SSL_CTX_set1_groups with this one group
    keylog = folder / "server.keys"
    context.keylog_filename = str(keylog)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    return OpenSSLServer(context.wrap_bio(incoming, outgoing, server_side=True), incoming, outgoing, keylog)


def _client_hello(random: bytes, suite: int, groups: list[int], shares: list[ClientKeyShare13]) -> ClientHello:
    return ClientHello(
        random=random,
        session_id=bytes(32),  # middlebox compatibility mode (RFC 8446 D.4): OpenSSL echoes it
        cipher_suites=[suite],
        extensions=[
            ServerNameExtension.for_host("localhost"),
            SupportedVersionsExtension([ProtocolVersion.TLS1_3]),
            SupportedGroupsExtension(groups),
            SignatureAlgorithmsExtension(list(_SCHEMES)),
            KeyShareClientHelloExtension([share.entry for share in shares]),
        ],
    )


def _handshake_messages(fragments: list[bytes]) -> list[bytes]:
    return [message.raw for message in reassemble_handshake_messages(fragments)]


def _plaintext_messages(records: list[tuple[int, bytes]]) -> list[bytes]:
    return _handshake_messages([r[len(r) - int.from_bytes(r[3:5], "big") :] for t, r in records if t == 22])


@pytest.fixture(scope="module")
def server_files(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from handshake_lib.pki import CoursePKI

    return CoursePKI.create().write_server_files(tmp_path_factory.mktemp("tls13-by-hand"), ("localhost",))


def _finish(
    peer: OpenSSLServer,
    hello_messages: list[bytes],
    client_hello: ClientHello,
    share: ClientKeyShare13,
    suite_code: int,
    server_records: list[tuple[int, bytes]],
    *,
    after_retry: bool = False,
) -> None:
    """From the ServerHello on: the secrets against the key log, the server's flight, our Finished, its tickets.

    ``hello_messages`` is every handshake message before the ServerHello (CH, or CH1, HRR, CH2).
    """
    suite = suite13(suite_code)
    hash_name = suite.hash_name
    server_hello_bytes = _plaintext_messages(server_records)[0]
    server_hello, _ = decode_handshake13(server_hello_bytes)
    assert isinstance(server_hello, ServerHello) and not is_hello_retry_request(server_hello)
    assert server_hello.cipher_suite == suite_code and server_hello.session_id == client_hello.session_id
    check_key_share_selection(client_hello, server_hello)
    chosen = server_hello.extension(ExtensionType.key_share)
    assert isinstance(chosen, KeyShareServerHelloExtension) and chosen.server_share.group == share.group.code

    shared = share.shared_secret(chosen.server_share.key_exchange)
    assert len(shared) == share.group.secret_length
    schedule = KeySchedule13(hash_name)
    if after_retry:
        client_hello1, retry, client_hello2 = hello_messages
        hello_hash = transcript_hash_after_hrr(hash_name, client_hello1, [retry, client_hello2, server_hello_bytes])
    else:
        hello_hash = transcript_hash(hash_name, [*hello_messages, server_hello_bytes])
    client_hs, server_hs = schedule.handshake(shared, hello_hash)
    logged = read_keylog(peer.keylog)
    assert logged.find("CLIENT_HANDSHAKE_TRAFFIC_SECRET", client_hello.random) == client_hs
    assert logged.find("SERVER_HANDSHAKE_TRAFFIC_SECRET", client_hello.random) == server_hs

    # The rest of the flight: a compatibility ChangeCipherSpec (unless already sent before the HRR), then
    # EncryptedExtensions, Certificate, CertificateVerify, Finished in protected records.
    protected = [r for t, r in server_records if t == ContentType.application_data]
    expected = [22] if after_retry else [22, 20]
    assert [t for t, _ in server_records][: len(expected)] == expected
    opener = RecordOpener13.from_secret(suite, server_hs)
    opened = [opener.open(record) for record in protected]
    assert {o.content_type for o in opened} == {ContentType.handshake}
    flight = _handshake_messages([o.content for o in opened])
    kinds = [decode_handshake13(m, hash_length=len(server_hs))[0] for m in flight]
    assert [type(k) for k in kinds[:2]] == [EncryptedExtensions, Certificate13]
    assert kinds[2].msg_type == HandshakeType.certificate_verify
    server_finished = kinds[3]
    assert isinstance(server_finished, Finished) and len(kinds) == 4

    def transcript(upto: list[bytes]) -> bytes:
        if after_retry:
            return transcript_hash_after_hrr(hash_name, hello_messages[0], [*hello_messages[1:], *upto])
        return transcript_hash(hash_name, [*hello_messages, *upto])

    assert server_finished.verify_data == finished_verify_data(
        hash_name, server_hs, transcript([server_hello_bytes, *flight[:3]])
    )
    through_server_finished = transcript([server_hello_bytes, *flight])
    client_ap, server_ap, _ = schedule.application(through_server_finished)

    # Our Finished, sealed with the client handshake keys: OpenSSL completes its handshake only if it verifies.
    ours = Finished(finished_verify_data(hash_name, client_hs, through_server_finished)).to_bytes()
    sealer = RecordSealer13.from_secret(suite, client_hs)
    assert not peer.handshake_done
    after = peer.send(sealer.seal(ours, ContentType.handshake))
    assert peer.handshake_done and peer.version() == "TLSv1.3"
    logged = read_keylog(peer.keylog)  # OpenSSL logs the application secrets only now
    assert logged.find("CLIENT_TRAFFIC_SECRET_0", client_hello.random) == client_ap
    assert logged.find("SERVER_TRAFFIC_SECRET_0", client_hello.random) == server_ap
    after += peer.write(b"hello from OpenSSL")

    # Its tickets and data, opened with our server application traffic keys.
    app_opener = RecordOpener13.from_secret(suite, server_ap)
    records = [app_opener.open(record) for _, record in after]
    tickets = _handshake_messages([r.content for r in records if r.content_type == ContentType.handshake])
    assert tickets and all(isinstance(decode_handshake13(t)[0], NewSessionTicket13) for t in tickets)
    assert records[-1].content_type == ContentType.application_data
    assert records[-1].content == b"hello from OpenSSL"


@pytest.mark.parametrize("code", list(_CASES), ids=[g.name for g in _CASES])
def test_a_hand_driven_handshake_per_group_with_openssl(code: NamedGroup, server_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    curve, suite = _CASES[code]
    peer = _server(server_files, tmp_path, curve)
    random_bytes = _seeded(code)
    share = key_share_group13(code).client_share(random_bytes)
    hello = _client_hello(random_bytes(32), suite, [code], [share])
    check_key_shares(hello)  # what a server checks of it: our own hello passes
    hello_bytes = hello.to_bytes()
    answer = peer.send(encode_record(ContentType.handshake, ProtocolVersion.TLS1_0, hello_bytes))
    _finish(peer, [hello_bytes], hello, share, suite, answer)


def test_hello_retry_request_to_p256_then_the_same_handshake(server_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An x25519 share to a server that takes P-256 only: HRR, a second hello with a P-256 share, done."""
    peer = _server(server_files, tmp_path, "prime256v1")
    random_bytes = _seeded(7)
    groups = [NamedGroup.x25519, NamedGroup.secp256r1]
    first_share = key_share_group13(NamedGroup.x25519).client_share(random_bytes)
    hello1 = _client_hello(random_bytes(32), 0x1301, groups, [first_share])
    hello1_bytes = hello1.to_bytes()
    answer = peer.send(encode_record(ContentType.handshake, ProtocolVersion.TLS1_0, hello1_bytes))
    [retry_bytes] = _plaintext_messages(answer)
    retry, _ = decode_handshake13(retry_bytes)
    assert isinstance(retry, ServerHello) and is_hello_retry_request(retry)
    assert retry.extension(ExtensionType.key_share) == KeyShareHelloRetryRequestExtension(NamedGroup.secp256r1)
    check_key_share_selection(hello1, retry)
    assert [t for t, _ in answer] == [22, 20]  # the HRR, then the compatibility ChangeCipherSpec

    # RFC 8446 4.1.2: the same hello, the key_share replaced by one for the group the server named.
    second_share = key_share_group13(NamedGroup.secp256r1).client_share(random_bytes)
    hello2 = _client_hello(hello1.random, 0x1301, groups, [second_share])
    hello2_bytes = hello2.to_bytes()
    answer = peer.send(encode_record(ContentType.handshake, ProtocolVersion.TLS1_0, hello2_bytes))
    _finish(peer, [hello1_bytes, retry_bytes, hello2_bytes], hello2, second_share, 0x1301, answer, after_retry=True)


def test_x25519mlkem768_with_openssl_4_inside_cryptography(server_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The hybrid on a real peer: OpenSSL 4's handshake secrets equal ours from ML-KEM secret || X25519 secret."""
    peer = BundledOpenSSLServer(server_files, tmp_path / "server.keys")
    random_bytes = _seeded(0x11EC)
    share = key_share_group13(NamedGroup.X25519MLKEM768).client_share(random_bytes)
    hello = _client_hello(random_bytes(32), 0x1301, [NamedGroup.X25519MLKEM768], [share])
    hello_bytes = hello.to_bytes()
    answer = peer.send(encode_record(ContentType.handshake, ProtocolVersion.TLS1_0, hello_bytes))
    _finish(peer, [hello_bytes], hello, share, 0x1301, answer)


# -- the checks, and the hybrid OpenSSL 3.0 cannot run ---------------------------------------------------
def test_x25519mlkem768_round_trip_sizes_and_its_two_halves() -> None:
    group = KEY_SHARE_GROUPS13[NamedGroup.X25519MLKEM768]
    assert (group.client_share_length, group.server_share_length) == (1216, 1120)
    random_bytes = _seeded(1)
    client = group.client_share(random_bytes)
    assert client.entry.group == 0x11EC and len(client.public) == 1216
    server_value, server_secret = group.server_share(client.public, random_bytes)
    assert len(server_value) == 1120 and client.shared_secret(server_value) == server_secret
    assert len(server_secret) == 64

    # ML-KEM first: the client's first 1184 bytes are an ML-KEM-768 encapsulation key that
    # `cryptography` encapsulates to on its own, and our client decapsulates that to the first 32 bytes.
    shared, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(client.public[:1184]).encapsulate()
    x_other = x25519.X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    x_other_public = x_other.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    secret = client.shared_secret(ciphertext + x_other_public)
    assert secret[:32] == shared
    # X25519 last: the client's last 32 bytes are its X25519 key, and the secret's last 32 its X25519 output.
    assert secret[32:] == x_other.exchange(x25519.X25519PublicKey.from_public_bytes(client.public[1184:]))

    # A server refuses an encapsulation key with a coefficient >= q (FIPS 203 7.2): illegal_parameter.
    bad = b"\xff" * 1184 + client.public[1184:]
    with pytest.raises(IllegalParameter, match="ML-KEM"):
        group.server_share(bad, random_bytes)


@pytest.mark.parametrize("code", list(KEY_SHARE_GROUPS13), ids=[g.name for g in KEY_SHARE_GROUPS13])
def test_wrong_sizes_are_illegal_parameter(code: NamedGroup) -> None:
    group = KEY_SHARE_GROUPS13[code]
    client = group.client_share(os.urandom)
    with pytest.raises(IllegalParameter):
        group.server_share(client.public + b"\x00", os.urandom)
    with pytest.raises(IllegalParameter):
        client.shared_secret(client.public[:-1] if group.server_share_length == group.client_share_length else b"")


def test_point_and_value_checks() -> None:
    x = KEY_SHARE_GROUPS13[NamedGroup.x25519]
    with pytest.raises(IllegalParameter, match="all zeros"):  # a low-order point (RFC 8446 7.4.2)
        x.server_share(bytes(32), os.urandom)
    hybrid = KEY_SHARE_GROUPS13[NamedGroup.X25519MLKEM768]
    client = hybrid.client_share(_seeded(3))
    with pytest.raises(IllegalParameter, match="all zeros"):  # the hybrid's X25519 half gets the same check
        hybrid.server_share(client.public[:1184] + bytes(32), os.urandom)
    with pytest.raises(IllegalParameter, match="all zeros"):
        client.shared_secret(bytes(1088) + bytes(32))
    p256 = KEY_SHARE_GROUPS13[NamedGroup.secp256r1]
    with pytest.raises(IllegalParameter, match="not on the curve"):
        p256.server_share(b"\x04" + bytes(64), os.urandom)
    with pytest.raises(IllegalParameter, match="uncompressed"):
        p256.server_share(b"\x02" + bytes(64), os.urandom)
    dh = KEY_SHARE_GROUPS13[NamedGroup.ffdhe2048]
    for bad in (1, FFDHE2048_P - 1):
        with pytest.raises(HandshakeFailure):
            dh.server_share(bad.to_bytes(256, "big"), os.urandom)
    with pytest.raises(HandshakeFailure):
        key_share_group13(NamedGroup.x448)


def test_ffdhe_secret_keeps_its_leading_zeros() -> None:
    """RFC 8446 7.4.1: the FFDHE secret is left-padded to the size of p, where TLS 1.2 strips the zeros.

    Seeds 272 and 10272 (found by trying seeds in order) give a secret whose first byte is zero.
    """
    dh = KEY_SHARE_GROUPS13[NamedGroup.ffdhe2048]
    client = dh.client_share(_seeded(272))
    server_value, secret = dh.server_share(client.public, _seeded(10_272))
    assert len(secret) == 256 and secret[0] == 0
    assert client.shared_secret(server_value) == secret
    exponent = client._ecdh._dh_exponent  # the arithmetic by hand: the same number, padded not stripped
    assert secret == pow(int.from_bytes(server_value, "big"), exponent, FFDHE2048_P).to_bytes(256, "big")
