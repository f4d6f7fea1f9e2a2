"""Lessons 05 and 06: padding, the countermeasure widget, the key schedule widget, and the live runs with OpenSSL.

The recorded handshakes shipped in the lesson module carry master secrets that OpenSSL computed and
wrote to its key log; the tests recompute them with the library.  The live tests run Python's ``ssl``
(OpenSSL) on loopback and check the pre-master secret and master secret from both ends.
"""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

from handshake_lib.errors import BadRecordMac, PeerAlert, TLSAlert  # noqa: E402
from handshake_lib.lessons import tls_keys  # noqa: E402
from handshake_lib.lessons.tls_keys import (  # noqa: E402
    BENCHMARKS,
    RECORDED_HANDSHAKES,
    RSA_SUITE_NAMES,
    countermeasure_demo,
    derive_keys,
    handshake_in_memory,
    key_block_layout,
    key_block_layout_html,
    key_schedule_explorer,
    live_handshake_outcome,
    live_key_exchange,
    live_tampered_exchange,
    openssl_client_exchange,
    openssl_server,
    p_hash_picture,
    p_hash_steps,
    padded_block,
    pre_master_secret_spans,
    read_padded_block,
    record_live_handshake,
    recorded_handshake,
    session_hash_listing,
    tamper,
)
from handshake_lib.tls import prf as prf_module  # noqa: E402
from handshake_lib.tls import rsa_kx  # noqa: E402
from handshake_lib.tls.stages import Stages  # noqa: E402
from handshake_lib.tls.suites import SUITES  # noqa: E402

IETF_SECRET = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
IETF_SEED = b"test label" + bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
IETF_OUTPUT = bytes.fromhex(
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
    "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
    "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
    "87347b66"
)


@pytest.fixture(scope="module")
def server_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fields(spans) -> list[str]:
    return [span.field for span in spans]


# -- lesson 05: bytes and padding -----------------------------------------------------------------------
def test_pre_master_secret_spans_name_the_version_and_the_random() -> None:
    spans = pre_master_secret_spans(bytes([3, 1]) + bytes(46))
    assert fields(spans) == ["pre_master_secret.client_version", "pre_master_secret.random"]
    assert (spans[0].offset, spans[0].length, spans[1].offset, spans[1].length) == (0, 2, 2, 46)
    assert "TLS1_0" in spans[0].meaning and "0x0301" in spans[0].meaning


def test_padded_block_shows_pkcs1_v1_5_around_the_secret(server_key) -> None:
    pre_master = rsa_kx.make_pre_master_secret(0x0303)
    ciphertext = server_key.public_key().encrypt(pre_master, padding.PKCS1v15())
    block = padded_block(ciphertext, server_key)
    assert len(block) == 256 and block[:2] == b"\x00\x02" and block.endswith(b"\x00" + pre_master)
    check = read_padded_block(block)
    assert check.valid and check.problem == "" and check.is_pre_master_secret
    assert check.message == pre_master
    names = fields(check.spans)
    assert names[:4] == [
        "eme_pkcs1_v1_5.leading_zero",
        "eme_pkcs1_v1_5.block_type",
        "eme_pkcs1_v1_5.padding_string",
        "eme_pkcs1_v1_5.separator",
    ]
    assert "eme_pkcs1_v1_5.message.client_version" in names and "eme_pkcs1_v1_5.message.random" in names
    padding_span = check.spans[2]
    assert padding_span.length == 256 - 3 - 48 and b"\x00" not in block[2 : 2 + padding_span.length]
    # Spans tile the block: the hex view can explain every byte.
    leaves = [span for span in check.spans if not span.is_group]
    assert sum(span.length for span in leaves) == len(block)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (b"\x01\x02" + b"\x11" * 10 + b"\x00" + b"m", "first byte is 0x01"),
        (b"\x00\x01" + b"\xff" * 10 + b"\x00" + b"m", "block type is 0x01"),
        (b"\x00\x02" + b"\x11" * 20, "no 00 byte"),
        (b"\x00\x02" + b"\x11" * 3 + b"\x00" + b"m" * 48, "only 3 padding bytes"),
        (b"\x00", "need 1 bytes"),
        (b"", "need 1 bytes"),
    ],
)
def test_a_broken_block_is_explained_not_raised(block: bytes, problem: str) -> None:
    check = read_padded_block(block)
    assert not check.valid and problem in check.problem, check.problem
    assert check.message == b"" and not check.is_pre_master_secret


def test_a_valid_block_with_a_short_message_is_not_a_pre_master_secret() -> None:
    check = read_padded_block(b"\x00\x02" + b"\x11" * 8 + b"\x00" + b"hello")
    assert check.valid and check.message == b"hello" and not check.is_pre_master_secret
    assert fields(check.spans)[-1] == "eme_pkcs1_v1_5.message"


def test_padded_block_is_textbook_rsa_decryption(server_key) -> None:
    numbers = server_key.private_numbers()
    modulus = numbers.public_numbers.n
    for ciphertext in (bytes(range(256)), b"\xff" * 256, (modulus - 1).to_bytes(256, "big")):
        expected = pow(int.from_bytes(ciphertext, "big") % modulus, numbers.d, modulus).to_bytes(256, "big")
        assert padded_block(ciphertext, server_key) == expected


def test_padded_block_refuses_a_ciphertext_of_the_wrong_size(server_key) -> None:
    with pytest.raises(ValueError, match="256 bytes"):
        padded_block(bytes(255), server_key)


def test_tamper_flips_exactly_the_chosen_bits() -> None:
    original = bytes(range(16))
    changed = tamper(original, 5, 0x81)
    assert [i for i in range(16) if original[i] != changed[i]] == [5]
    assert changed[5] == 5 ^ 0x81 and tamper(original, 5, 0) == original
    with pytest.raises(ValueError):
        tamper(original, 16, 1)
    with pytest.raises(ValueError):
        tamper(original, 0, 256)


def test_client_key_exchange_view_annotates_the_handshake_message(server_key) -> None:
    ciphertext = rsa_kx.encrypt_pre_master_secret(bytes(48), server_key.public_key())
    view = tls_keys.client_key_exchange_view(ciphertext)
    assert view.data[:1] == b"\x10" and view.data[1:4] == (258).to_bytes(3, "big")
    assert view.data[4:6] == (256).to_bytes(2, "big") and view.data[6:] == ciphertext
    assert any("encrypted_pre_master_secret" in span.field for span in view.spans)


# -- lesson 05: the countermeasure, in memory -------------------------------------------------------------
def test_an_untouched_handshake_in_memory_completes() -> None:
    result = handshake_in_memory()
    assert result.completed and result.client_error is None and result.server_error is None
    assert result.server_pre_master_secret == result.client_pre_master_secret


def test_a_tampered_ciphertext_fails_only_at_finished_with_bad_record_mac() -> None:
    def corrupting(pre_master, public_key):
        return tamper(rsa_kx.encrypt_pre_master_secret(pre_master, public_key), 100, 0x40)

    result = handshake_in_memory(encrypt_pre_master_secret=corrupting)
    assert not result.completed
    assert isinstance(result.server_error, BadRecordMac)
    assert isinstance(result.client_error, PeerAlert) and result.client_error.description == TLSAlert.bad_record_mac
    # The server carried on with its own random secret, keeping the version the client offered.
    assert result.server_pre_master_secret != result.client_pre_master_secret
    assert result.server_pre_master_secret[:2] == b"\x03\x03" and len(result.server_pre_master_secret) == 48
    # Between ClientKeyExchange and its alert the server sent nothing: no early, distinguishable answer.
    summaries = [entry.summary() for entry in result.server.transcript]
    after_cke = summaries[summaries.index("client->server handshake: ClientKeyExchange") + 1 :]
    assert [s for s in after_cke if s.startswith("server->client")] == ["server->client alert: Alert"]
    assert result.steps()[-4].endswith("does not decrypt with the server's keys")


def test_countermeasure_widget_reacts_to_byte_and_mask() -> None:
    demo = countermeasure_demo(byte_index=10, mask=0x01)
    assert "sent: byte 10 XOR 0x01" in demo.summary_text
    assert "!= the client's" in demo.summary_text and "alert the server sends: bad_record_mac (20)" in demo.summary_text
    assert "failed at the client's Finished" in demo.summary_text
    assert not demo.check.valid and demo.check.problem in demo.summary_text
    assert demo.block_box.children and demo.block_box.children[0].data == demo.check.block

    result = demo.update(mask=0)
    assert result is not None and result.completed
    assert "sent: untouched ciphertext" in demo.summary_text and "= the client's" in demo.summary_text
    assert "padding check (hidden inside the server): valid" in demo.summary_text
    assert "handshake: completed" in demo.summary_text and "alert" not in demo.summary_text

    demo.update(byte_index=255, mask=0xFF)
    assert demo.byte_slider.value == 255 and demo.mask_box.value == 0xFF
    assert "sent: byte 255 XOR 0xff" in demo.summary_text
    assert "<b>records, as the server saw them</b>" in demo.steps.value


@pytest.mark.parametrize(
    ("settings", "message"), [({"byte_index": 256}, "between 0 and 255"), ({"mask": 300}, "0 and 255")]
)
def test_countermeasure_widget_answers_bad_input_with_a_message(settings, message) -> None:
    demo = countermeasure_demo()
    before = demo.byte_slider.value
    assert demo.update(**settings) is None
    assert message in demo.summary_text and demo.byte_slider.value == before


# -- lesson 06: P_hash, the key block, the recorded handshakes ----------------------------------------------
def test_p_hash_steps_reproduce_the_ietf_vector() -> None:
    steps = p_hash_steps(IETF_SECRET, IETF_SEED, 100)
    assert [step.used for step in steps] == [32, 32, 32, 4]
    assert b"".join(step.block[: step.used] for step in steps) == IETF_OUTPUT
    # A(i) is chained from A(i-1) alone; every block mixes A(i) with the seed.
    assert steps[0].a == prf_module.hmac_digest("sha256", IETF_SECRET, IETF_SEED)
    assert steps[1].a == prf_module.hmac_digest("sha256", IETF_SECRET, steps[0].a)
    assert steps[1].block == prf_module.hmac_digest("sha256", IETF_SECRET, steps[1].a + IETF_SEED)


@pytest.mark.parametrize(("hash_name", "length"), list(itertools.product(["sha256", "sha384"], [0, 1, 47, 48, 104])))
def test_p_hash_steps_agree_with_the_library(hash_name: str, length: int) -> None:
    steps = p_hash_steps(b"secret", b"seed", length, hash_name)
    assert b"".join(step.block[: step.used] for step in steps) == prf_module.p_hash(
        b"secret", b"seed", length, hash_name
    )
    with pytest.raises(ValueError):
        p_hash_steps(b"secret", b"seed", -1)


def test_p_hash_picture_draws_one_column_per_round() -> None:
    texts = [text.get_text() for text in p_hash_picture(100).axes[0].texts]
    assert "A(0) = seed" in texts and "A(4) + seed)" in " ".join(texts)
    assert [t for t in texts if t.startswith("block ")] == [
        "block 1\n32 bytes",
        "block 2\n32 bytes",
        "block 3\n32 bytes",
        "block 4\n4 of 32 bytes",
    ]
    assert len([t for t in p_hash_picture(48, "sha384").axes[0].texts if t.get_text().startswith("block ")]) == 1


@pytest.mark.parametrize("suite", [s for s, p in SUITES.items() if p.key_exchange == "RSA"], ids=lambda s: s.name)
def test_key_block_layout_tiles_the_key_block(suite) -> None:
    params = SUITES[suite]
    layout = key_block_layout(params)
    assert [name for name, _, _ in layout] == [
        "client_write_MAC_key",
        "server_write_MAC_key",
        "client_write_key",
        "server_write_key",
        "client_write_IV",
        "server_write_IV",
    ]
    offset = 0
    for _, start, length in layout:
        assert start == offset
        offset += length
    assert offset == params.key_block_length
    html = key_block_layout_html(params)
    if params.is_aead:
        assert "GCM&#x27;s authentication tag" in html or "GCM's authentication tag" in html
        assert "client_write_IV (4)" in html
    else:
        assert f"client_write_MAC_key ({params.mac_key_length})" in html and "client_write_IV (16)" in html


def test_every_recorded_handshake_gives_openssls_master_secret() -> None:
    assert set(RECORDED_HANDSHAKES) == {(name, ems) for name in RSA_SUITE_NAMES for ems in (True, False)}
    for (name, ems), recording in RECORDED_HANDSHAKES.items():
        derived = derive_keys(recording)
        assert derived.matches_openssl, f"{name} ems={ems}"
        assert len(derived.key_block) == recording.params.key_block_length
        assert (
            derived.keys.client_write_key
            == derived.key_block[
                2 * recording.params.mac_key_length : 2 * recording.params.mac_key_length
                + recording.params.enc_key_length
            ]
        )
        assert recording.pre_master_secret[:2] == b"\x03\x03"
        assert len(recording.session_hash) == (48 if recording.params.prf_hash == "sha384" else 32)


def test_a_wrong_prf_does_not_match_openssl() -> None:
    def forgot_the_seed(secret, label, seed, length, hash_name):
        return prf_module.p_hash(secret, label, length, hash_name)

    assert not derive_keys(recorded_handshake(), stages=Stages(prf=forgot_the_seed)).matches_openssl
    # Exercise 06's signature (hash_name defaulting to SHA-256) is the stage's, with no adapter.
    assert derive_keys(recorded_handshake(), stages=Stages(prf=prf_module.prf)).matches_openssl


def test_recorded_handshake_text_round_trips_and_rejects_unknown_suites() -> None:
    recording = recorded_handshake("AES256-GCM-SHA384", extended_master_secret=False)
    assert type(recording).from_text(recording.text()) == recording
    with pytest.raises(ValueError, match="choose one of"):
        recorded_handshake("RC4-MD5")


def test_key_schedule_widget_recomputes_for_each_suite_and_mode() -> None:
    explorer = key_schedule_explorer()
    for name, ems in itertools.product(RSA_SUITE_NAMES, (True, False)):
        derived = explorer.update(cipher=name, extended_master_secret=ems)
        recording = recorded_handshake(name, ems)
        assert derived is not None and derived.matches_openssl
        assert explorer.suite_menu.value == name and explorer.ems_box.value is ems
        assert f"OpenSSL's key log line {recording.openssl_master_secret.hex()}  -> the same" in explorer.summary_text
        assert ('"extended master secret", session_hash' in explorer.summary_text) is ems
        assert ('"master secret", client_random + server_random' in explorer.summary_text) is not ems
        hash_name = recording.params.prf_hash.upper()
        assert f"PRF_{hash_name}(master_secret" in explorer.summary_text
        assert f"key block of {recording.params.key_block_length} bytes" in explorer.layout_html.value
        assert derived.keys.server_write_key.hex() in explorer.layout_html.value


def test_key_schedule_widget_answers_an_unknown_suite_with_a_message() -> None:
    explorer = key_schedule_explorer(cipher="AES128-SHA")
    assert explorer.update(cipher="RC4-MD5") is None
    assert "Unknown suite 'RC4-MD5'" in explorer.summary_text and explorer.suite_menu.value == "AES128-SHA"


def test_benchmarks_are_callables_that_run() -> None:
    assert set(BENCHMARKS) >= {"countermeasure_demo.update(byte_index)", "key_schedule_explorer.update(cipher, ems)"}
    for setup in BENCHMARKS.values():
        callback = setup()
        callback()
        callback()


# -- live, with OpenSSL on loopback ---------------------------------------------------------------------
def test_live_both_sides_hold_the_same_pre_master_secret() -> None:
    with openssl_server("AES128-GCM-SHA256") as peer:
        live = live_key_exchange(peer)
    assert live.response.status == 200 and b"Hello from OpenSSL" in live.response.body
    assert live.decrypted_with_server_key == live.pre_master_secret
    assert live.pre_master_secret[:2] == b"\x03\x03"
    assert live.response.handshake.extended_master_secret
    assert live.openssl_master_secret == live.master_secret_from_pre_master == live.response.handshake.master_secret
    listing = session_hash_listing(live.response.transcript)
    assert [line.split()[0] for line in listing] == [
        "client_hello",
        "server_hello",
        "certificate",
        "server_hello_done",
        "client_key_exchange",
        "session_hash",
    ]


@pytest.mark.parametrize(("cipher", "ems"), [("AES256-GCM-SHA384", True), ("AES128-SHA", False)])
def test_a_fresh_recording_matches_openssl(cipher: str, ems: bool) -> None:
    with openssl_server(cipher) as peer:
        recording = record_live_handshake(peer, extended_master_secret=ems)
    assert recording.extended_master_secret is ems
    assert derive_keys(recording).matches_openssl


def test_openssl_answers_a_tampered_client_key_exchange_at_finished() -> None:
    with openssl_server() as peer:
        outcome = live_tampered_exchange(peer, byte_index=40, mask=0x01)
    assert not outcome.completed and outcome.alert == "bad_record_mac"
    assert "BAD_RECORD_MAC" in outcome.openssl_error.upper()
    # OpenSSL said nothing after ClientKeyExchange until our Finished arrived.
    assert outcome.records[-4:] == [
        "client->server handshake: ClientKeyExchange",
        "client->server change_cipher_spec: ChangeCipherSpec",
        "client->server handshake (encrypted): Finished",
        "server->client alert: Alert",
    ]


def test_openssl_treats_wrong_version_bytes_like_a_bad_ciphertext() -> None:
    def rolled_back(pre_master, public_key):
        return rsa_kx.encrypt_pre_master_secret(b"\x03\x01" + pre_master[2:], public_key)

    with openssl_server() as peer:
        outcome = live_handshake_outcome(peer, stages=Stages(encrypt_pre_master_secret=rolled_back))
    assert outcome.alert == "bad_record_mac" and "BAD_RECORD_MAC" in outcome.openssl_error.upper()
    assert outcome.records[-2:] == ["client->server handshake (encrypted): Finished", "server->client alert: Alert"]


def test_a_correct_stage_completes_through_live_handshake_outcome() -> None:
    with openssl_server("AES128-SHA256") as peer:
        outcome = live_handshake_outcome(peer)
    assert outcome.completed and outcome.alert == "" and outcome.openssl_error == ""


def test_openssl_as_client_logs_the_pre_master_secret_our_server_decrypted() -> None:
    rsa_line, decrypted = openssl_client_exchange()
    label, ciphertext_prefix, secret = rsa_line.split()
    assert label == "RSA" and len(bytes.fromhex(ciphertext_prefix)) == 8
    assert bytes.fromhex(secret) == decrypted and decrypted[:2] == b"\x03\x03"


def test_openssl_server_refuses_a_suite_without_rsa_key_exchange() -> None:
    with pytest.raises(ValueError, match="RSA key exchange"), openssl_server("ECDHE-RSA-AES128-GCM-SHA256"):
        pass


def test_a_prf_wrong_only_for_finished_gets_decrypt_error_from_openssl() -> None:
    """The keys agree, so the Finished record decrypts; its verify_data does not match (exercise 06's key points)."""

    def finished_wrong(secret, label, seed, length, hash_name):
        output = prf_module.prf(secret, label, seed, length, hash_name)
        return bytes(length) if label == b"client finished" else output

    with openssl_server() as peer:
        outcome = live_handshake_outcome(peer, stages=Stages(prf=finished_wrong))
    assert outcome.alert == "decrypt_error" and "DIGEST_CHECK_FAILED" in outcome.openssl_error.upper()
