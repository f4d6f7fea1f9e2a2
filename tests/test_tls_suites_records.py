"""The record side of the ECDHE and DHE suites, checked against OpenSSL's own records.

A Python ``ssl`` client and server (OpenSSL 3, which nobody here wrote) run a real TLS 1.2 handshake in
memory, restricted to one suite, the server holding an RSA or an ECDSA certificate from the course PKI
(and OpenSSL's ffdhe2048 parameters for DHE).  The client's key log gives the master secret; the randoms
come from the ClientHello and ServerHello our decoders read off the captured records.  With those:

* our PRF and ``key_block`` make the key block, and :class:`RecordProtection` opens every protected record
  OpenSSL wrote, in both directions: both Finished messages (whose verify_data our PRF recomputes over
  the transcript, so the SHA-384 PRF is checked too) and all the application data;
* re-sealing each of OpenSSL's records with its own per-record randomness (CBC's IV, GCM's explicit
  nonce; ChaCha20-Poly1305 has none) gives OpenSSL's bytes exactly;
* a record we seal at the next sequence number is read by the OpenSSL object on the other side, and a
  damaged one makes OpenSSL answer with an encrypted alert that we open: bad_record_mac;
* every single-byte change to OpenSSL's records makes our receiver raise BadRecordMac.

The handshake itself (ServerKeyExchange, groups) is not ours here: OpenSSL runs both ends.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import BadRecordMac, DecodeError, ProtocolError
from handshake_lib.pki.builder import CoursePKI
from handshake_lib.tls.constants import (
    OPENSSL_NAMES,
    AlertLevel,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    ProtocolVersion,
)
from handshake_lib.tls.keylog import parse_keylog
from handshake_lib.tls.messages import ClientHello, ServerHello, decode_handshake
from handshake_lib.tls.prf import key_block, verify_data
from handshake_lib.tls.record import (
    Check,
    Record,
    RecordLayer,
    RecordProtection,
    RecordReader,
    chacha20_poly1305_nonce,
    encode_record,
    reassemble_handshake_messages,
    receive_protected_record,
)
from handshake_lib.tls.suites import SUITES, SuiteParams, key_block_layout, openssl_name, suite_params

TLS12 = ProtocolVersion.TLS1_2
APP = ContentType.application_data
SSL_OP_NO_ENCRYPT_THEN_MAC = 1 << 19  # openssl/ssl.h (OpenSSL 3.0); Python's ssl does not name it
ALERT_BAD_RECORD_MAC = 20

# Every suite with an ephemeral key exchange: the new ones and the four ECDHE-GCM suites that existed.
EPHEMERAL = [suite for suite, params in SUITES.items() if params.key_exchange != "RSA"]
# (suite, encrypt_then_mac): OpenSSL negotiates RFC 7366 for CBC by default; switched off, MAC-then-encrypt.
MODES = [(suite, True) for suite in EPHEMERAL] + [(s, False) for s in EPHEMERAL if not suite_params(s).is_aead]
MODE_IDS = [f"{openssl_name(s)}{'' if etm or suite_params(s).is_aead else '-mte'}" for s, etm in MODES]


# -- the suite table -----------------------------------------------------------------------------------------


def test_every_openssl_name_is_openssls_own_with_its_code_point_and_parameters() -> None:
    """``openssl ciphers -V`` lists each name with its code point, Kx, Au, Enc and Mac: all must match ours."""
    openssl = require("openssl")
    listing = subprocess.run(
        [openssl, "ciphers", "-V", "ALL:@SECLEVEL=0"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    line = re.compile(
        r"0x(..),0x(..) - (\S+)\s+\S+\s+Kx=(\S+)\s+Au=(\S+)\s+Enc=(\S+)\s+Mac=(\S+)"
    )
    rows = {m.group(3): m.groups() for m in map(line.search, listing.splitlines()) if m}
    kx = {"RSA": "RSA", "ECDHE": "ECDH", "DHE": "DH"}
    enc = {"AES-CBC": "AES({bits})", "AES-GCM": "AESGCM({bits})", "CHACHA20-POLY1305": "CHACHA20/POLY1305({bits})"}
    mac = {None: "AEAD", "sha1": "SHA1", "sha256": "SHA256", "sha384": "SHA384"}
    for name, suite in OPENSSL_NAMES.items():
        high, low, _, key_exchange, authentication, cipher, mac_name = rows[name]
        params = suite_params(suite)
        assert int(high + low, 16) == suite, name
        assert key_exchange == kx[params.key_exchange] and authentication == params.authentication, name
        assert cipher == enc[params.cipher].format(bits=8 * params.enc_key_length), name
        assert mac_name == mac[params.mac_algorithm], name
    # Every suite the library implements has an OpenSSL name, and the issue's list is all there.
    assert set(SUITES) <= set(OPENSSL_NAMES.values())
    assert len(EPHEMERAL) == 21


@pytest.mark.parametrize(
    ("name", "key_exchange", "authentication", "key_block_length", "mac", "prf_hash", "record_iv"),
    [
        # RFC 7905: a 32-byte key and a 12-byte IV per direction, nothing sent per record, no MAC key.
        ("ECDHE-RSA-CHACHA20-POLY1305", "ECDHE", "RSA", 2 * (32 + 12), None, "sha256", 0),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE", "ECDSA", 2 * (32 + 12), None, "sha256", 0),
        ("DHE-RSA-CHACHA20-POLY1305", "DHE", "RSA", 2 * (32 + 12), None, "sha256", 0),
        # RFC 4492 suites in TLS 1.2: HMAC-SHA1, the default SHA-256 PRF.
        ("ECDHE-RSA-AES128-SHA", "ECDHE", "RSA", 2 * (20 + 16 + 16), "sha1", "sha256", 16),
        ("ECDHE-ECDSA-AES256-SHA", "ECDHE", "ECDSA", 2 * (20 + 32 + 16), "sha1", "sha256", 16),
        # RFC 5289: *_SHA256 -> HMAC-SHA256 and the SHA-256 PRF; *_SHA384 -> HMAC-SHA384 and the SHA-384 PRF.
        ("ECDHE-ECDSA-AES128-SHA256", "ECDHE", "ECDSA", 2 * (32 + 16 + 16), "sha256", "sha256", 16),
        ("ECDHE-RSA-AES256-SHA384", "ECDHE", "RSA", 2 * (48 + 32 + 16), "sha384", "sha384", 16),
        ("ECDHE-ECDSA-AES256-SHA384", "ECDHE", "ECDSA", 2 * (48 + 32 + 16), "sha384", "sha384", 16),
        ("DHE-RSA-AES256-SHA256", "DHE", "RSA", 2 * (32 + 32 + 16), "sha256", "sha256", 16),
        ("DHE-RSA-AES256-GCM-SHA384", "DHE", "RSA", 2 * (32 + 4), None, "sha384", 8),
        ("AES128-GCM-SHA256", "RSA", "RSA", 2 * (16 + 4), None, "sha256", 8),
    ],
)
def test_suite_parameters(
    name: str, key_exchange: str, authentication: str, key_block_length: int, mac: str | None, prf_hash: str,
    record_iv: int,
) -> None:
    params = suite_params(OPENSSL_NAMES[name])
    assert (params.key_exchange, params.authentication) == (key_exchange, authentication)
    assert params.key_block_length == key_block_length == sum(length for _, _, length in key_block_layout(params))
    assert (params.mac_algorithm, params.mac_length, params.prf_hash) == (mac, {None: 0, "sha1": 20,
                                                                               "sha256": 32, "sha384": 48}[mac],
                                                                         prf_hash)
    assert params.record_iv_length == record_iv
    assert params.forward_secret is (key_exchange != "RSA")
    assert params.is_aead is (mac is None)


def test_tls12_only_follows_the_mac_and_the_cipher() -> None:
    assert not suite_params(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA).tls12_only  # RFC 4492: TLS 1.0
    assert not suite_params(CipherSuite.TLS_DHE_RSA_WITH_AES_256_CBC_SHA).tls12_only
    assert suite_params(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384).tls12_only
    assert suite_params(CipherSuite.TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256).tls12_only


def test_a_mistyped_suite_row_is_refused() -> None:
    base = suite_params(CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384)
    for changes in ({"key_exchange": "ECDH"}, {"authentication": "DSA"}, {"cipher": "AES-CCM"}, {"mac_key_length": 32}):
        with pytest.raises(ValueError):
            SuiteParams(**{**base.__dict__, **changes})


def test_chacha20_nonce_is_the_iv_xor_the_padded_sequence_number() -> None:
    """RFC 7905 section 2, written out by hand: only the last 8 bytes of the IV change."""
    iv = bytes(range(0xA0, 0xAC))
    assert chacha20_poly1305_nonce(iv, 0) == iv
    assert chacha20_poly1305_nonce(iv, 1) == iv[:11] + bytes([iv[11] ^ 1])
    seq = 0x0102030405060708
    expected = iv[:4] + bytes(a ^ b for a, b in zip(iv[4:], seq.to_bytes(8, "big"), strict=True))
    assert chacha20_poly1305_nonce(iv, seq) == expected


# -- OpenSSL talking to itself, in memory ----------------------------------------------------------------------


@dataclass(frozen=True)
class Identities:
    ca: Path
    rsa: tuple[Path, Path]
    ecdsa: tuple[Path, Path]
    dh_params: Path


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Identities:
    """The course CA, an RSA and an ECDSA server certificate, and OpenSSL's RFC 7919 ffdhe2048 parameters."""
    openssl = require("openssl")
    directory = tmp_path_factory.mktemp("suite_identities")
    pki = CoursePKI.create()
    rsa_files = pki.write_issued(pki.issue_server(key_type="rsa2048"), directory, "rsa")
    ecdsa_files = pki.write_issued(pki.issue_server(key_type="ecdsa-p256"), directory, "ecdsa")
    dh_params = directory / "ffdhe2048.pem"
    # Python's ssl does not switch on OpenSSL 3's automatic DH parameters, so a DHE server needs a group.
    subprocess.run(
        [openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out", str(dh_params)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Identities(pki.write_ca(directory), rsa_files, ecdsa_files, dh_params)


class OpenSSLPair:
    """An ``ssl`` client and server over memory BIOs; every byte each one writes is kept, in order."""

    def __init__(self, params: SuiteParams, identities: Identities, keylog: Path, *, encrypt_then_mac: bool) -> None:
        name = openssl_name(params.suite)
        options = 0 if encrypt_then_mac else SSL_OP_NO_ENCRYPT_THEN_MAC
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.maximum_version = ssl.TLSVersion.TLSv1_2
        server_context.load_cert_chain(*(identities.ecdsa if params.authentication == "ECDSA" else identities.rsa))
        if params.key_exchange == "DHE":
            server_context.load_dh_params(identities.dh_params)
        server_context.set_ciphers(name)
        server_context.options |= options | ssl.OP_NO_TICKET
        client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_context.maximum_version = ssl.TLSVersion.TLSv1_2
        client_context.load_verify_locations(identities.ca)
        client_context.set_ciphers(name)
        client_context.options |= options
        client_context.keylog_filename = str(keylog)
        self.keylog = keylog
        self.client_in, self.client_out, self.server_in, self.server_out = (ssl.MemoryBIO() for _ in range(4))
        self.client = client_context.wrap_bio(self.client_in, self.client_out, server_hostname="localhost")
        self.server = server_context.wrap_bio(self.server_in, self.server_out, server_side=True)
        self.c2s = bytearray()
        self.s2c = bytearray()
        for _ in range(10):  # a TLS 1.2 handshake is four flights; ten rounds without finishing is a bug
            for endpoint in (self.client, self.server):
                with contextlib.suppress(ssl.SSLWantReadError):
                    endpoint.do_handshake()
            if not self.pump():
                break
        cipher = self.client.cipher()
        # cipher()[1] is the oldest version the suite exists in; version() is what was negotiated.
        assert cipher is not None and cipher[0] == name and self.client.version() == "TLSv1.2"

    def pump(self) -> bool:
        to_server, to_client = self.client_out.read(), self.server_out.read()
        self.c2s += to_server
        self.s2c += to_client
        self.server_in.write(to_server)
        self.client_in.write(to_client)
        return bool(to_server or to_client)

    @staticmethod
    def read_all(endpoint: ssl.SSLObject) -> bytes:
        data = b""
        with contextlib.suppress(ssl.SSLWantReadError):
            while chunk := endpoint.read(1 << 16):
                data += chunk
        return data


def split(stream: bytes) -> tuple[list[Record], list[Record]]:
    """The records before a direction's ChangeCipherSpec (plaintext) and after it (protected)."""
    reader = RecordReader(protected=True)
    records = reader.feed(bytes(stream))
    assert reader.buffered == 0
    index = next(i for i, r in enumerate(records) if r.content_type == ContentType.change_cipher_spec)
    return records[:index], records[index + 1 :]


@dataclass
class Session:
    """One OpenSSL-to-OpenSSL session under one suite, with the keys our own code derived for it."""

    params: SuiteParams
    pair: OpenSSLPair
    encrypt_then_mac: bool
    master: bytes
    client_random: bytes
    server_random: bytes
    transcript: bytes  # every plaintext handshake message, ClientHello .. ClientKeyExchange
    client_protected: list[Record]
    server_protected: list[Record]
    request: bytes
    response: bytes

    def reader(self, direction: str, sequence_number: int = 0) -> RecordProtection:
        keys = key_block(self.master, self.server_random, self.client_random, self.params)
        build = RecordProtection.client_write if direction == "c2s" else RecordProtection.server_write
        return build(keys, self.params, sequence_number=sequence_number, encrypt_then_mac=self.encrypt_then_mac)


REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
# More than one record's worth (2^14), so OpenSSL writes a full record and a short one.
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + bytes(range(256)) * 78 + b"tail"


def run_session(suite: CipherSuite, etm: bool, identities: Identities, tmp_path: Path) -> Session:
    params = suite_params(suite)
    pair = OpenSSLPair(params, identities, tmp_path / "keys.log", encrypt_then_mac=etm)
    pair.client.write(REQUEST)
    pair.pump()
    assert pair.read_all(pair.server) == REQUEST
    pair.server.write(RESPONSE)
    pair.pump()
    assert pair.read_all(pair.client) == RESPONSE

    client_plain, client_protected = split(pair.c2s)
    server_plain, server_protected = split(pair.s2c)
    # The randoms, as our decoders read them off OpenSSL's records.
    client_messages = reassemble_handshake_messages([r.fragment for r in client_plain])
    server_messages = reassemble_handshake_messages([r.fragment for r in server_plain])
    client_hello, _ = decode_handshake(client_messages[0].raw)
    server_hello, _ = decode_handshake(server_messages[0].raw)
    assert isinstance(client_hello, ClientHello) and isinstance(server_hello, ServerHello)
    assert server_hello.cipher_suite == suite
    negotiated_etm = server_hello.extension(ExtensionType.encrypt_then_mac) is not None
    assert negotiated_etm is (etm and not params.is_aead)
    kinds = [m.msg_type for m in server_messages]
    expected_kinds = [HandshakeType.server_hello, HandshakeType.certificate, HandshakeType.server_key_exchange]
    assert kinds == [*expected_kinds, HandshakeType.server_hello_done]  # ephemeral: a ServerKeyExchange
    master = parse_keylog(pair.keylog.read_text()).master_secret(client_hello.random)
    assert master is not None
    transcript = b"".join(m.raw for m in (client_messages[0], *server_messages, *client_messages[1:]))
    return Session(
        params, pair, negotiated_etm, master, client_hello.random, server_hello.random, transcript,
        client_protected, server_protected, REQUEST, RESPONSE,
    )


class Sessions:
    """One session per (suite, construction), made on first use: several tests read the same records."""

    def __init__(self, identities: Identities, factory: pytest.TempPathFactory) -> None:
        self.identities, self.factory = identities, factory
        self.cache: dict[tuple[CipherSuite, bool], Session] = {}

    def __getitem__(self, key: tuple[CipherSuite, bool]) -> Session:
        if key not in self.cache:
            self.cache[key] = run_session(*key, self.identities, self.factory.mktemp("session"))
        return self.cache[key]


@pytest.fixture(scope="module")
def sessions(identities: Identities, tmp_path_factory: pytest.TempPathFactory) -> Sessions:
    return Sessions(identities, tmp_path_factory)


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
def test_we_open_every_record_openssl_wrote_in_both_directions(
    suite: CipherSuite, etm: bool, sessions: Sessions
) -> None:
    session = sessions[(suite, etm)]
    params = session.params
    # The client's Finished, then the request.
    client_reads = session.reader("c2s")
    client_finished = client_reads.unprotect(session.client_protected[0])
    expected = verify_data(session.master, "client finished", session.transcript, params.prf_hash)
    assert client_finished == bytes([HandshakeType.finished, 0, 0, 12]) + expected
    assert b"".join(client_reads.unprotect(r) for r in session.client_protected[1:]) == session.request
    # The server's Finished (over the transcript and the client's Finished), then the page.
    server_reads = session.reader("s2c")
    server_finished = server_reads.unprotect(session.server_protected[0])
    expected = verify_data(session.master, "server finished", session.transcript + client_finished, params.prf_hash)
    assert server_finished == bytes([HandshakeType.finished, 0, 0, 12]) + expected
    pieces = [server_reads.unprotect(r) for r in session.server_protected[1:]]
    assert b"".join(pieces) == session.response and len(pieces) == 2 and len(pieces[0]) == 1 << 14
    # The same stream through the record layer a connection runs, fed in awkward 7-byte pieces.
    layer = RecordLayer()
    layer.pending_read = session.reader("s2c")
    received = []
    stream = bytes(session.pair.s2c)
    for start in range(0, len(stream), 7):
        layer.extend(stream[start : start + 7])
        while (record := layer.next_record()) is not None:
            received.append(layer.unprotect(record))
            if record.content_type == ContentType.change_cipher_spec:
                layer.activate_pending_read()
    assert [r.data for r in received if r.encrypted] == [server_finished, *pieces]
    # Each record is as long as the suite's layout says.
    for record, plaintext in zip(session.server_protected[1:], pieces, strict=True):
        if params.is_aead:
            assert len(record.fragment) == params.record_iv_length + len(plaintext) + params.tag_length
        else:
            inner = len(plaintext) + (0 if session.encrypt_then_mac else params.mac_length)
            extra = params.mac_length if session.encrypt_then_mac else 0
            assert len(record.fragment) == 16 + (inner // 16 + 1) * 16 + extra


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
def test_our_seal_reproduces_openssls_records_byte_for_byte(suite: CipherSuite, etm: bool, sessions: Sessions) -> None:
    """Given OpenSSL's per-record randomness (none at all for ChaCha20-Poly1305), our records are its records."""
    session = sessions[(suite, etm)]
    params = session.params
    plaintexts = [session.response[: 1 << 14], session.response[1 << 14 :]]
    for seq, (record, plaintext) in enumerate(zip(session.server_protected[1:], plaintexts, strict=True), start=1):
        sent = record.fragment[: params.record_iv_length]
        writer = session.reader("s2c", seq)
        writer.random_bytes = lambda n, sent=sent: sent[:n]  # CBC: OpenSSL's IV
        writer.explicit_nonce = lambda _seq, sent=sent: sent  # GCM: OpenSSL's explicit nonce
        assert writer.protect(APP, TLS12, plaintext) == record.encode()


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
def test_openssl_reads_our_records_and_refuses_a_damaged_one(suite: CipherSuite, etm: bool, sessions: Sessions) -> None:
    session = sessions[(suite, etm)]
    pair = session.pair  # the only test that uses the live objects: it ends the client with an alert
    # Ours, as the client's next record: OpenSSL's server reads it.
    ours = session.reader("c2s", len(session.client_protected)).protect(APP, TLS12, b"sealed by handshake_lib" * 700)
    pair.server_in.write(ours)
    assert pair.read_all(pair.server) == b"sealed by handshake_lib" * 700
    # Ours, as the server's next record: OpenSSL's client reads it.
    server_seq = len(session.server_protected)
    pair.client_in.write(session.reader("s2c", server_seq).protect(APP, TLS12, b"and this one too"))
    assert pair.read_all(pair.client) == b"and this one too"
    # A damaged one (a bit of the tag or MAC): OpenSSL's client refuses it and says why, encrypted.
    damaged = bytearray(session.reader("s2c", server_seq + 1).protect(APP, TLS12, b"damaged"))
    damaged[-1] ^= 1
    pair.client_in.write(bytes(damaged))
    with pytest.raises(ssl.SSLError, match="BAD_RECORD_MAC|DECRYPTION_FAILED"):
        pair.read_all(pair.client)
    # The client wrote Finished and the request (seq 0 and 1): its alert is its record number 2.
    alert = session.reader("c2s", len(session.client_protected)).unprotect(pair.client_out.read())
    assert alert == bytes([AlertLevel.fatal, ALERT_BAD_RECORD_MAC])


@pytest.mark.parametrize(("suite", "etm"), MODES, ids=MODE_IDS)
def test_every_byte_of_openssls_record_is_covered(suite: CipherSuite, etm: bool, sessions: Sessions) -> None:
    """Flip any bit of OpenSSL's request record outside the length field: BadRecordMac, nothing else."""
    session = sessions[(suite, etm)]
    record = session.client_protected[1].encode()
    for position in range(len(record)):
        for flip in (0x01, 0x80):
            damaged = bytearray(record)
            damaged[position] ^= flip
            reader = session.reader("c2s", 1)
            expected = DecodeError if position in (3, 4) else BadRecordMac  # the length no longer fits the bytes
            with pytest.raises(expected):
                reader.unprotect(bytes(damaged))
            assert reader.sequence_number == 1
            if position in (3, 4):
                # Read from a stream as a connection reads it, a changed length either makes the reader wait
                # for bytes that never come, is over the limit, or cuts a record whose tag or MAC then fails.
                opened = receive_protected_record(reader, bytes(damaged))
                assert opened.failed in (Check.INCOMPLETE, Check.HEADER) or isinstance(opened.error, BadRecordMac)
    # Replayed at the wrong sequence number, or read as another direction's: refused too.
    with pytest.raises(BadRecordMac):
        session.reader("c2s", 2).unprotect(record)
    with pytest.raises(BadRecordMac):
        session.reader("s2c", 1).unprotect(record)


@pytest.mark.parametrize(
    ("suite", "etm"),
    [
        (CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, True),
        (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, True),
        (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384, True),
        (CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384, False),
    ],
    ids=["chacha20", "gcm", "cbc-sha384-etm", "cbc-sha384-mte"],
)
def test_explain_annotates_each_layout(suite: CipherSuite, etm: bool, sessions: Sessions) -> None:
    session = sessions[(suite, etm)]
    params = session.params
    record = session.client_protected[1]
    opened = session.reader("c2s", 1).explain(record)
    assert opened.accepted and opened.plaintext == session.request
    assert opened.mac_input[:8] == (1).to_bytes(8, "big")  # the sequence number is in, though never sent
    top = [s for s in opened.spans if s.offset >= 5 and s.depth == 1]  # the fragment's parts, after the header
    assert sum(s.length for s in top) == len(record.fragment)  # the fragment's parts tile it
    fields = [s.field for s in top]
    if params.cipher == "CHACHA20-POLY1305":
        assert opened.construction == "AEAD (ChaCha20-Poly1305)"
        assert fields == ["record.ciphertext", "record.poly1305_tag"]  # no nonce in the record
        keys = key_block(session.master, session.server_random, session.client_random, params)
        assert chacha20_poly1305_nonce(keys.client_write_iv, 1).hex() in top[0].meaning
    elif params.cipher == "AES-GCM":
        assert fields == ["record.explicit_nonce", "record.ciphertext", "record.gcm_tag"]
        assert [s.length for s in top][0::2] == [8, 16]
    elif session.encrypt_then_mac:
        assert fields == ["record.iv", "record.ciphertext", "record.mac"] and top[2].length == 48
        assert opened.mac_matches and len(opened.mac_received) == 48
    else:
        assert fields == ["record.iv", "record.ciphertext"]
        mac = next(s for s in opened.decrypted_spans if s.field == "mac")
        assert mac.length == 48 and opened.mac_matches
    # The damaged record is explained with the check that caught it.
    damaged = bytearray(record.encode())
    damaged[-1] ^= 1
    refused = session.reader("c2s", 1).explain(bytes(damaged))
    assert not refused.accepted and isinstance(refused.error, BadRecordMac)
    expected_check = {
        "CHACHA20-POLY1305": Check.POLY1305_TAG,
        "AES-GCM": Check.GCM_TAG,
    }.get(params.cipher, Check.MAC_BEFORE_DECRYPTION if session.encrypt_then_mac else Check.PADDING)
    assert refused.failed is expected_check and expected_check.explanation


# -- ChaCha20-Poly1305 against hostile bytes -----------------------------------------------------------------

CHACHA = suite_params(CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
CHACHA_KEYS = key_block(bytes(range(48)), bytes(32), bytes(range(32)), CHACHA)


@given(
    content_type=st.integers(0, 255),
    version=st.integers(0, 0xFFFF),
    fragment=st.one_of(st.binary(max_size=300), st.binary(min_size=(1 << 14) + 2040, max_size=(1 << 14) + 2100)),
    sequence_number=st.integers(0, (1 << 64) - 1),
)
@settings(max_examples=200, deadline=None)
def test_random_bytes_under_chacha_give_typed_errors_only(
    content_type: int, version: int, fragment: bytes, sequence_number: int
) -> None:
    protection = RecordProtection.server_write(CHACHA_KEYS, CHACHA, sequence_number=sequence_number)
    data = encode_record(content_type, version, fragment)
    with pytest.raises(ProtocolError) as caught:
        protection.unprotect(data)
    if len(fragment) <= (1 << 14) + 2048:
        assert isinstance(caught.value, BadRecordMac)
    assert protection.sequence_number == sequence_number
    opened = receive_protected_record(protection, data)  # as a connection reads it: never raises
    assert not opened.accepted and opened.failed in (Check.HEADER, Check.LENGTH, Check.POLY1305_TAG)


def test_chacha_records_are_short_and_never_carry_a_nonce() -> None:
    writer = RecordProtection.client_write(CHACHA_KEYS, CHACHA)
    reader = RecordProtection.client_write(CHACHA_KEYS, CHACHA)
    first, second = writer.protect(APP, TLS12, b"same"), writer.protect(APP, TLS12, b"same")
    assert len(first) == 5 + 4 + 16 and first != second  # the nonce moved with the sequence number
    assert reader.unprotect(first) == reader.unprotect(second) == b"same"
    with pytest.raises(BadRecordMac):
        RecordProtection.client_write(CHACHA_KEYS, CHACHA).unprotect(encode_record(APP, TLS12, bytes(15)))
