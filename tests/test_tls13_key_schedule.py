"""The TLS 1.3 key schedule (handshake_lib.tls.key_schedule13) against the values RFC 8448's text prints.

Section 3 (a full x25519 handshake): every secret, HkdfLabel, key, IV, the client's Finished and the PSK of
the ticket, from the transcript hashes the RFC prints.  Section 4 (the resumption with 0-RTT): the early
secret from that PSK, binder key and binder, the early traffic secrets, keys and the master secret.  The
vectors hold only values read from the RFC's text (tests/data/rfc8448/), no wire messages, so the transcript
rules are proved on a real peer instead: a HelloRetryRequest from Python's ``ssl`` (OpenSSL), whose Finished
messages are ours only when ClientHello1 is replaced by message_hash.  Beside that, OpenSSL:
``s_client -keymatexport`` for the exporter with each suite, and ``s_client -psk`` for an external PSK's
binder ("ext binder").
"""

from __future__ import annotations

import contextlib
import re
import ssl

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from handshake_lib.errors import DecodeError, EncodeError
from handshake_lib.peers.openssl import s_client, s_server
from handshake_lib.tls import key_schedule13 as ks
from handshake_lib.tls.record13 import SUITES13, RecordOpener13
from tests.conftest import require
from tests.rfc8448 import section, split_handshake
from tests.tampering_proxy import TamperingProxy

S3 = section(3)
S4 = section(4)
SHA = "sha256"


def x25519_shared(private: bytes, peer_public: bytes) -> bytes:
    key = x25519.X25519PrivateKey.from_private_bytes(private)
    return key.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))


# -- the primitives --------------------------------------------------------------------------------


def test_hkdf_extract_with_no_salt_is_the_rfc_early_secret():
    assert ks.hkdf_extract(SHA, None, bytes(32)) == S3["early_secret"]
    assert ks.hkdf_extract(SHA, b"", bytes(32)) == S3["early_secret"]
    assert ks.early_secret(SHA) == S3["early_secret"]


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("length", [1, 12, 32, 33, 48, 100, 255 * 32])
def test_hkdf_expand_is_rfc_5869(hash_name, length):
    if length > 255 * ks.hash_length(hash_name):
        pytest.fail("the cases stay within HKDF's limit for both hashes")
    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    reference = HKDFExpand(algorithm, length, b"info").derive(b"k" * ks.hash_length(hash_name))
    assert ks.hkdf_expand(hash_name, b"k" * ks.hash_length(hash_name), b"info", length) == reference


def test_hkdf_expand_refuses_what_hkdf_cannot_make():
    with pytest.raises(ValueError, match="1 to 8160"):
        ks.hkdf_expand(SHA, bytes(32), b"", 255 * 32 + 1)
    with pytest.raises(ValueError, match="sha256 or sha384"):
        ks.hkdf_extract("md5", None, b"")


def test_hkdf_labels_are_the_info_rfc_8448_prints():
    assert ks.hkdf_label_bytes(32, "derived", ks.transcript_hash(SHA, [])) == S3["derived_info"]
    assert ks.hkdf_label_bytes(32, "c hs traffic", S3["hash_ch_sh"]) == S3["c_hs_info"]
    assert ks.hkdf_label_bytes(16, "key") == S3["key_info"]
    assert ks.hkdf_label_bytes(12, "iv") == S3["iv_info"]
    assert ks.hkdf_label_bytes(32, "finished") == S3["finished_info"]
    assert ks.hkdf_label_bytes(32, "resumption", S3["ticket_nonce"]) == S3["resumption_info"]


def test_hkdf_label_spans_name_each_field():
    data, spans = ks.hkdf_label_spans(32, "c hs traffic", S3["hash_ch_sh"])
    assert data == S3["c_hs_info"]
    by_field = {span.field: span for span in spans}
    assert (by_field["hkdf_label.length"].offset, by_field["hkdf_label.length"].length) == (0, 2)
    assert by_field["hkdf_label.label"].offset == 3 and by_field["hkdf_label.label"].length == len(
        b"tls13 c hs traffic"
    )
    assert "'tls13 c hs traffic'" in by_field["hkdf_label.label"].meaning
    assert by_field["hkdf_label.context"].length == 32
    assert ks.HkdfLabel.decode(data) == ks.HkdfLabel(32, b"c hs traffic", S3["hash_ch_sh"])


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x20\x05tls13",  # label too short (and cut)
        b"\x00\x20\x08tls12 ab\x00",  # the wrong prefix
        b"\x00\x20\x09tls13 key\x05ab",  # a context longer than the bytes left
        b"\x00\x20\x09tls13 key\x00\x00",  # a byte after the end
    ],
)
def test_a_malformed_hkdf_label_is_a_decode_error(bad):
    with pytest.raises(DecodeError):
        ks.HkdfLabel.decode(bad)


def test_an_hkdf_label_that_cannot_be_encoded_is_refused():
    with pytest.raises(EncodeError):
        ks.hkdf_label_bytes(32, "x" * 250)
    with pytest.raises(EncodeError):
        ks.hkdf_label_bytes(32, "key", bytes(256))
    with pytest.raises(EncodeError):
        ks.hkdf_label_bytes(1 << 16, "key")


def test_derive_secret_takes_messages_or_their_hash_not_both():
    by_hash = ks.derive_secret(SHA, S3["handshake_secret"], "c hs traffic", transcript=S3["hash_ch_sh"])
    assert by_hash == S3["client_handshake_traffic_secret"]
    messages = [b"\x01\x00\x00\x02hi", b"\x02\x00\x00\x00"]  # two (made-up) handshake messages
    by_messages = ks.derive_secret(SHA, S3["handshake_secret"], "c hs traffic", messages)
    assert by_messages == ks.derive_secret(
        SHA, S3["handshake_secret"], "c hs traffic", transcript=ks.transcript_hash(SHA, messages)
    )
    with pytest.raises(ValueError, match="not both"):
        ks.derive_secret(SHA, S3["handshake_secret"], "c hs traffic", messages, transcript=S3["hash_ch_sh"])
    with pytest.raises(ValueError, match="32 bytes"):
        ks.derive_secret(SHA, S3["handshake_secret"], "c hs traffic", transcript=b"short")


# -- RFC 8448 section 3, rung by rung ------------------------------------------------------------------


def test_section_3_handshake_secrets():
    shared = x25519_shared(S3["client_private_key"], S3["server_public_key"])
    assert shared == x25519_shared(S3["server_private_key"], S3["client_public_key"]) == S3["ecdhe_shared_secret"]
    early = ks.early_secret(SHA)
    assert ks.derive_secret(SHA, early, "derived") == S3["derived_for_handshake"]
    handshake = ks.handshake_secret(SHA, early, shared)
    assert handshake == S3["handshake_secret"]
    hello_hash = S3["hash_ch_sh"]
    assert ks.client_handshake_traffic_secret(SHA, handshake, hello_hash) == S3["client_handshake_traffic_secret"]
    assert ks.server_handshake_traffic_secret(SHA, handshake, hello_hash) == S3["server_handshake_traffic_secret"]
    assert ks.derive_secret(SHA, handshake, "derived") == S3["derived_for_master"]
    assert ks.master_secret(SHA, handshake) == S3["master_secret"]


def test_section_3_traffic_keys_and_ivs():
    pairs = [
        ("server_handshake_traffic_secret", "server_handshake"),
        ("client_handshake_traffic_secret", "client_handshake"),
        ("server_application_traffic_secret_0", "server_application"),
        ("client_application_traffic_secret_0", "client_application"),
    ]
    for secret, keys in pairs:
        derived = ks.traffic_keys(SHA, S3[secret], 16, 12)
        assert (derived.key, derived.iv) == (S3[f"{keys}_key"], S3[f"{keys}_iv"]), secret


def test_section_3_finished_and_application_secrets():
    # The server's verify_data is HMAC over a transcript hash the RFC does not print, so only its key is
    # checked here; OpenSSL's real Finished messages are checked in the HelloRetryRequest test below.
    assert ks.finished_key(SHA, S3["server_handshake_traffic_secret"]) == S3["server_finished_key"]
    server_finished_hash = S3["hash_ch_sf"]
    master = S3["master_secret"]
    assert (
        ks.client_application_traffic_secret_0(SHA, master, server_finished_hash)
        == S3["client_application_traffic_secret_0"]
    )
    assert (
        ks.server_application_traffic_secret_0(SHA, master, server_finished_hash)
        == S3["server_application_traffic_secret_0"]
    )
    assert ks.exporter_master_secret(SHA, master, server_finished_hash) == S3["exporter_master_secret"]
    client_verify = ks.finished_verify_data(SHA, S3["client_handshake_traffic_secret"], server_finished_hash)
    assert client_verify == S3["client_finished_verify_data"]
    assert ks.resumption_master_secret(SHA, master, S3["hash_ch_cf"]) == S3["resumption_master_secret"]


def test_section_3_ticket_gives_the_psk_section_4_resumes_with():
    psk = ks.resumption_psk(SHA, S3["resumption_master_secret"], S3["ticket_nonce"])
    assert psk == S3["resumption_psk"] == S4["psk"]


def test_key_schedule13_walks_section_3_and_keeps_every_step():
    schedule = ks.KeySchedule13(SHA)
    client, server = schedule.handshake(S3["ecdhe_shared_secret"], S3["hash_ch_sh"])
    assert (client, server) == (S3["client_handshake_traffic_secret"], S3["server_handshake_traffic_secret"])
    client_ap, server_ap, exporter_secret = schedule.application(S3["hash_ch_sf"])
    assert (client_ap, server_ap, exporter_secret) == (
        S3["client_application_traffic_secret_0"],
        S3["server_application_traffic_secret_0"],
        S3["exporter_master_secret"],
    )
    assert schedule.resumption(S3["hash_ch_cf"]) == S3["resumption_master_secret"]
    for name in ("early_secret", "derived_for_handshake", "handshake_secret", "derived_for_master", "master_secret"):
        assert schedule.value(name) == S3[name], name
    assert [step.operation for step in schedule.steps if step.name.endswith("_secret") and "traffic" not in step.name][
        :3
    ] == ["HKDF-Extract", "HKDF-Extract", "HKDF-Extract"]
    with pytest.raises(KeyError):
        schedule.value("binder_key")


def test_key_schedule13_insists_on_the_order():
    schedule = ks.KeySchedule13("sha384")
    with pytest.raises(ValueError, match="handshake"):
        schedule.application(bytes(48))
    with pytest.raises(ValueError, match="application"):
        schedule.resumption(bytes(48))


# -- RFC 8448 section 4: resumption, binder, 0-RTT ---------------------------------------------------------


def test_section_4_early_secret_binder_key_and_binder():
    early = ks.early_secret(SHA, S4["psk"])
    assert early == S4["early_secret"]
    assert ks.binder_key(SHA, early) == S4["binder_key"]
    assert ks.binder_key(SHA, early, external=True) != S4["binder_key"]  # "ext binder" is another label
    # binder_hash is the RFC's hash of the ClientHello up to (not including) the binders list.
    assert ks.finished_key(SHA, S4["binder_key"]) == S4["binder_finished_key"]
    binder = ks.psk_binder(SHA, S4["binder_key"], S4["binder_hash"])
    assert binder == S4["binder"]
    schedule = ks.KeySchedule13(SHA, psk=S4["psk"])
    assert schedule.psk_binder(S4["binder_hash"]) == S4["binder"]


def test_section_4_early_handshake_and_master_secrets_from_the_psk():
    schedule = ks.KeySchedule13(SHA, psk=S4["psk"])
    client_early, early_exporter = schedule.early(S4["client_hello_hash"])
    assert (client_early, early_exporter) == (S4["client_early_traffic_secret"], S4["early_exporter_master_secret"])
    keys = ks.traffic_keys(SHA, client_early, 16)
    assert (keys.key, keys.iv) == (S4["client_early_key"], S4["client_early_iv"])
    # psk_dhe_ke: the x25519 secret goes in on top of the PSK's early secret.
    shared = x25519_shared(S4["server_private_key"], S4["client_public_key"])
    handshake = ks.handshake_secret(SHA, S4["early_secret"], shared)
    master = ks.master_secret(SHA, handshake)
    assert master == S4["master_secret"]
    assert ks.finished_key(SHA, S4["client_handshake_traffic_secret"]) == S4["client_finished_key"]
    keys = ks.traffic_keys(SHA, S4["client_application_traffic_secret_0"], 16)
    assert (keys.key, keys.iv) == (S4["client_application_key"], S4["client_application_iv"])
    assert ks.resumption_master_secret(SHA, master, S4["hash_ch_cf"]) == S4["resumption_master_secret"]


# -- HelloRetryRequest and message_hash, on a real OpenSSL ----------------------------------------------------

# RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello whose random is SHA-256("HelloRetryRequest").
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def _records(data: bytes) -> list[bytes]:
    records = []
    while data:
        length = 5 + int.from_bytes(data[3:5], "big")
        records.append(data[:length])
        data = data[length:]
    return records


def _handshake_messages(data: bytes) -> list[bytes]:
    """The plaintext handshake messages in ``data``'s records (dummy ChangeCipherSpecs and the rest left out)."""
    return split_handshake(b"".join(record[5:] for record in _records(data) if record[0] == 22))


@pytest.fixture(scope="module")
def openssl_hello_retry(server_files, tmp_path_factory):
    """One handshake over memory BIOs in which OpenSSL's server (P-256 only) asks the client (x25519 first)
    for another key share: CH1, HRR, CH2, SH, the server's handshake messages opened, the client's Finished
    opened, the suite, and the secrets both ends logged."""
    folder = tmp_path_factory.mktemp("hrr")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_files.cert_path, server_files.key_path)
    server_context.minimum_version = ssl.TLSVersion.TLSv1_3
    server_context.set_ecdh_curve("prime256v1")  # the only group it takes; the client's first share is x25519
    server_context.keylog_filename = str(folder / "server.keys")
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_verify_locations(server_files.ca_path)
    client_context.minimum_version = ssl.TLSVersion.TLSv1_3
    client_context.keylog_filename = str(folder / "client.keys")
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_context.wrap_bio(s_in, s_out, server_side=True)

    def flight(endpoint: ssl.SSLObject, source: ssl.MemoryBIO, destination: ssl.MemoryBIO) -> bytes:
        with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the other side's next flight
            endpoint.do_handshake()
        data = source.read()
        destination.write(data)
        return data

    [client_hello1] = _handshake_messages(flight(client, c_out, s_in))
    [hello_retry_request] = _handshake_messages(flight(server, s_out, c_in))
    [client_hello2] = _handshake_messages(flight(client, c_out, s_in))
    server_flight = flight(server, s_out, c_in)
    client_flight = flight(client, c_out, s_in)
    flight(server, s_out, c_in)
    assert client.version() == server.version() == "TLSv1.3"

    keys = {}
    for name in ("client.keys", "server.keys"):
        logged = {}
        for line in (folder / name).read_text().splitlines():
            if not line.startswith("#"):  # Python heads the file with a comment
                label, _client_random, secret = line.split()
                logged[label] = bytes.fromhex(secret)
        keys[name] = logged
    assert keys["client.keys"] == keys["server.keys"]
    keys = keys["client.keys"]

    records = _records(server_flight)
    [server_hello] = split_handshake(records[0][5:])
    suite = SUITES13[int.from_bytes(server_hello[4 + 2 + 32 + 1 + server_hello[38] :][:2], "big")]
    opener = RecordOpener13.from_secret(suite, keys["SERVER_HANDSHAKE_TRAFFIC_SECRET"])
    encrypted = split_handshake(b"".join(opener.open(r).content for r in records if r[0] == 23))
    [client_finished] = [
        RecordOpener13.from_secret(suite, keys["CLIENT_HANDSHAKE_TRAFFIC_SECRET"]).open(r).content
        for r in _records(client_flight)
        if r[0] == 23
    ]
    return client_hello1, hello_retry_request, client_hello2, server_hello, encrypted, client_finished, suite, keys


def test_openssl_sent_a_hello_retry_request(openssl_hello_retry):
    client_hello1, hello_retry_request, client_hello2, server_hello, encrypted, _, _, _ = openssl_hello_retry
    assert [m[0] for m in (client_hello1, hello_retry_request, client_hello2, server_hello)] == [1, 2, 1, 2]
    assert hello_retry_request[6:38] == HRR_RANDOM and server_hello[6:38] != HRR_RANDOM
    assert [m[0] for m in encrypted] == [8, 11, 15, 20]  # EncryptedExtensions, Certificate, CertificateVerify, Finished


def test_message_hash_replaces_the_first_client_hello(openssl_hello_retry):
    client_hello1, *_, suite, _ = openssl_hello_retry
    synthetic = ks.message_hash(suite.hash_name, client_hello1)
    length = ks.hash_length(suite.hash_name)
    assert synthetic == b"\xfe\x00\x00" + bytes([length]) + ks.transcript_hash(suite.hash_name, [client_hello1])


def test_transcript_after_hello_retry_request_gives_openssl_finished_messages(openssl_hello_retry):
    client_hello1, hello_retry_request, client_hello2, server_hello, encrypted, client_finished, suite, keys = (
        openssl_hello_retry
    )
    hash_name = suite.hash_name
    later = [hello_retry_request, client_hello2, server_hello, *encrypted[:3]]
    server_verify = ks.finished_verify_data(
        hash_name,
        keys["SERVER_HANDSHAKE_TRAFFIC_SECRET"],
        ks.transcript_hash_after_hrr(hash_name, client_hello1, later),
    )
    assert encrypted[3][4:] == server_verify
    later.append(encrypted[3])
    client_verify = ks.finished_verify_data(
        hash_name,
        keys["CLIENT_HANDSHAKE_TRAFFIC_SECRET"],
        ks.transcript_hash_after_hrr(hash_name, client_hello1, later),
    )
    assert client_finished == b"\x14" + len(client_verify).to_bytes(3, "big") + client_verify


def test_without_message_hash_openssl_finished_does_not_match(openssl_hello_retry):
    client_hello1, hello_retry_request, client_hello2, server_hello, encrypted, _, suite, keys = openssl_hello_retry
    plain = ks.transcript_hash(
        suite.hash_name, [client_hello1, hello_retry_request, client_hello2, server_hello, *encrypted[:3]]
    )
    assert encrypted[3][4:] != ks.finished_verify_data(suite.hash_name, keys["SERVER_HANDSHAKE_TRAFFIC_SECRET"], plain)


# -- the rest of section 7 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
def test_key_update_uses_the_traffic_upd_label(hash_name):
    size = ks.hash_length(hash_name)
    secret = bytes(range(size))
    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    info = size.to_bytes(2, "big") + bytes([len(b"tls13 traffic upd")]) + b"tls13 traffic upd" + b"\x00"
    assert ks.next_application_secret(hash_name, secret) == HKDFExpand(algorithm, size, info).derive(secret)
    assert ks.next_application_secret(hash_name, ks.next_application_secret(hash_name, secret)) != secret


def test_exporter_is_two_expansions_of_the_exporter_master_secret():
    secret = S3["exporter_master_secret"]
    inner = ks.derive_secret(SHA, secret, "EXPERIMENTAL label")
    expected = ks.hkdf_expand_label(SHA, inner, "exporter", ks.transcript_hash(SHA, [b"context"]), 20)
    assert ks.exporter(SHA, secret, "EXPERIMENTAL label", b"context", 20) == expected
    # No context and an empty one are the same thing in TLS 1.3 (unlike 1.2's RFC 5705 exporter).
    assert ks.exporter(SHA, secret, "x", b"", 16) == ks.hkdf_expand_label(
        SHA, ks.derive_secret(SHA, secret, "x"), "exporter", ks.transcript_hash(SHA, []), 16
    )


# -- the exporter and KeyUpdate-free secrets against OpenSSL's s_client and s_server ---------------------------


@pytest.mark.parametrize(
    "suite",
    ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256"],
)
def test_exporter_matches_openssl_keymatexport(server_files, tmp_path, suite):
    require("openssl", "s_client -keymatexport is the second opinion on the TLS 1.3 exporter")
    label, keylog = "EXPERIMENTAL handshakes", tmp_path / "client.keys"
    hash_name = "sha384" if suite.endswith("SHA384") else "sha256"
    with s_server(server_files, "-tls1_3", "-ciphersuites", suite, "-www") as server:
        options = ["-tls1_3", "-ciphersuites", suite, "-CAfile", str(server_files.ca_path), "-keylogfile", str(keylog)]
        options += ["-keymatexport", label, "-keymatexportlen", "42"]
        with s_client(server.port, *options) as client:
            printed = client.read_output(re.compile(rb"Keying material: ([0-9A-Fa-f]+)\s"), wait=20)
    match = re.search(rb"Keying material: ([0-9A-Fa-f]+)\s", printed)
    assert match, printed.decode(errors="replace")
    assert f"Cipher is {suite}".encode() in printed
    secrets = {}
    for line in keylog.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.split()
            secrets[name] = bytes.fromhex(value)
    assert set(secrets) >= {"EXPORTER_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_HANDSHAKE_TRAFFIC_SECRET"}
    # s_client passes no context, which TLS 1.3 treats as an empty one (RFC 8446 section 7.5).
    ours = ks.exporter(hash_name, secrets["EXPORTER_SECRET"], label, b"", 42)
    assert ours == bytes.fromhex(match.group(1).decode())


def test_external_psk_binder_matches_openssl_s_client(server_files):
    require("openssl", "s_client -psk offers an external PSK with its binder")
    psk = bytes(range(32))
    # The PSK is for SHA-256 suites; OpenSSL's client would otherwise put AES-256-GCM-SHA384 first.
    psk_options = ["-psk", psk.hex(), "-psk_identity", "learner", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]
    with (
        s_server(server_files, "-tls1_3", *psk_options, "-www") as server,
        TamperingProxy(server.port, should_flip=lambda record, earlier: False) as proxy,  # it only records
        s_client(proxy.port, "-tls1_3", *psk_options, "-noservername") as client,
    ):
        printed = client.read_output(re.compile(rb"Verify return code"), wait=20)
        assert b"Cipher is TLS_AES_128_GCM_SHA256" in printed
        assert b"no peer certificate available" in printed  # the PSK was accepted: no certificate sent
        assert client.process.stdin is not None
        client.process.stdin.close()
        client.process.wait(20)
    record = bytes(proxy.to_server)
    client_hello = record[5 : 5 + int.from_bytes(record[3:5], "big")]
    assert client_hello[0] == 1 and b"learner" in client_hello
    # pre_shared_key is the last extension; its binders list (2 + 1 + 32 bytes) ends the ClientHello.
    truncated, binders = client_hello[:-35], client_hello[-35:]
    assert binders[:3] == b"\x00\x21\x20"
    binder = ks.binder_key(SHA, ks.early_secret(SHA, psk), external=True)
    assert ks.psk_binder(SHA, binder, ks.transcript_hash(SHA, [truncated])) == binders[3:]
    resumption_binder = ks.binder_key(SHA, ks.early_secret(SHA, psk))  # "res binder" would not do
    assert ks.psk_binder(SHA, resumption_binder, ks.transcript_hash(SHA, [truncated])) != binders[3:]
