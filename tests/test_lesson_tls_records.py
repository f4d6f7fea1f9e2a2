"""Lessons 07 and 08: records opened with OpenSSL's keys, tampering, Finished, and the live handshake drawn.

Everything is judged by bytes nobody here wrote: records OpenSSL sent (recorded once, and live), the master
secrets from OpenSSL's own key log, and OpenSSL's alerts when we damage what we send.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import struct

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.errors import BadRecordMac, PeerAlert, TLSAlert  # noqa: E402
from handshake_lib.lessons import tls_records as lesson
from handshake_lib.tls import Stages, tls_get  # noqa: E402
from handshake_lib.tls import prf as prf_module  # noqa: E402
from handshake_lib.tls.connection import TranscriptEntry  # noqa: E402
from handshake_lib.tls.constants import ContentType  # noqa: E402
from handshake_lib.tls.suites import parse_suite_name, suite_params  # noqa: E402


def stdlib_record_mac(hash_name, mac_key, sequence_number, content_type, version, fragment) -> bytes:
    """RFC 5246 6.2.3.1 with nothing but the standard library (independent of the library's record.py)."""
    header = struct.pack("!QBHH", sequence_number, content_type, version, len(fragment))
    return hmac.new(mac_key, header + fragment, getattr(hashlib, hash_name)).digest()


RECORDED = [r for session in lesson.RECORDED_SESSIONS.values() for r in session.protected_records()]


@pytest.fixture(scope="module")
def live() -> dict[str, lesson.LiveSession]:
    return lesson.capture_sessions()


# -- recorded records ---------------------------------------------------------------------------------
@pytest.mark.parametrize("protected", RECORDED, ids=lambda r: r.label)
def test_recorded_openssl_records_open_and_their_parts_add_up(protected: lesson.ProtectedRecord) -> None:
    layers = lesson.record_layers(protected)
    assert layers.problems == []
    assert layers.plaintext == protected.protection().unprotect(protected.record)  # the library agrees
    wire_fields = [s.field for s in layers.spans]
    assert wire_fields[:3] == ["record.content_type", "record.version", "record.length"]
    assert sum(s.length for s in layers.spans if not s.is_group) == len(protected.record)
    if protected.params.is_aead:
        assert wire_fields[3:] == ["record.explicit_nonce", "record.ciphertext", "record.gcm_tag"]
        assert layers.mac_in_record == b""
    else:
        # The MAC OpenSSL put in its record equals HMAC computed independently, at this sequence number.
        covered = (
            layers.plaintext if not protected.encrypt_then_mac else protected.record[5 : -len(layers.mac_in_record)]
        )
        expected = stdlib_record_mac(
            protected.params.mac_algorithm,
            protected.mac_key,
            protected.sequence_number,
            protected.content_type,
            protected.version,
            covered,
        )
        assert layers.mac_in_record == expected == layers.mac_expected
        assert len(layers.mac_in_record) == protected.params.mac_length
        # ... and not at another sequence number: the number is never sent, but it is in the MAC.
        assert (
            stdlib_record_mac(
                protected.params.mac_algorithm,
                protected.mac_key,
                protected.sequence_number + 1,
                protected.content_type,
                protected.version,
                covered,
            )
            != expected
        )
        padding_length = layers.padding[-1]
        assert layers.padding == bytes([padding_length]) * (padding_length + 1)
        assert len(layers.inner) % 16 == 0
    if protected.content_type == ContentType.handshake:
        assert layers.plaintext[:4] == bytes([20, 0, 0, 12])  # a Finished with 12 bytes of verify_data
    else:
        assert layers.plaintext.startswith(b"HTTP/1.1 200 OK") and b"Hello from OpenSSL" in layers.plaintext


@pytest.mark.parametrize("suite", sorted(lesson.RECORDED_FINISHED))
def test_recorded_finished_messages_match_the_prf(suite: str) -> None:
    recorded = lesson.RECORDED_FINISHED[suite]
    params = suite_params(parse_suite_name(suite))
    assert recorded.hash_name == params.prf_hash

    def verify(label: str, messages: bytes) -> bytes:
        return prf_module.verify_data(recorded.master_secret, label, messages, params.prf_hash)

    assert verify("client finished", recorded.handshake_messages) == recorded.client_verify_data
    # The server's hash includes the client's Finished.
    both = recorded.handshake_messages + recorded.client_finished
    assert verify("server finished", both) == recorded.server_verify_data
    assert verify("server finished", recorded.handshake_messages) != recorded.server_verify_data


# -- tampering ----------------------------------------------------------------------------------------
def recorded(name: str, seq: int = 1) -> lesson.ProtectedRecord:
    return lesson.RECORDED_SESSIONS[name].protected_records()[seq]


@pytest.mark.parametrize(
    ("name", "offset", "check"),
    [
        ("AES128-GCM-SHA256", -1, "GCM tag"),
        ("AES128-GCM-SHA256", 6, "GCM tag"),  # the explicit nonce
        ("AES128-GCM-SHA256", 0, "GCM tag"),  # the content type, in the additional data
        ("AES128-SHA256 encrypt-then-MAC", 30, "MAC (over IV + ciphertext, before decryption)"),
        ("AES128-SHA256 encrypt-then-MAC", -1, "MAC (over IV + ciphertext, before decryption)"),
        ("AES128-SHA256 MAC-then-encrypt", -1, "padding (after decryption)"),
        ("AES128-SHA256 MAC-then-encrypt", 8, "MAC (after decryption)"),  # the IV: flips a plaintext bit
        ("AES128-SHA MAC-then-encrypt", 0, "MAC (after decryption)"),
    ],
)
def test_a_flipped_bit_is_refused_and_the_check_named(name: str, offset: int, check: str) -> None:
    protected = recorded(name)
    position = offset % len(protected.record)
    result = lesson.tamper_record(protected, position, 0)
    assert result.rejected and result.error.startswith("BadRecordMac")
    assert result.check == check
    assert result.tampered == protected.record[position] ^ 1
    tampered = bytearray(protected.record)
    tampered[position] ^= 1
    with pytest.raises(BadRecordMac):
        protected.protection().unprotect(bytes(tampered))


def test_an_iv_flip_under_mac_then_encrypt_reaches_the_plaintext_exactly() -> None:
    protected = recorded("AES128-SHA256 MAC-then-encrypt")
    result = lesson.tamper_record(protected, 5 + 3, 2)  # byte 3 of the IV
    original = lesson.record_layers(protected).plaintext
    assert result.layers.plaintext is not None
    changed = [i for i, (a, b) in enumerate(zip(original, result.layers.plaintext, strict=True)) if a != b]
    assert changed == [3] and original[3] ^ result.layers.plaintext[3] == 4  # CBC: same bit, same position
    assert not result.layers.mac_matches


def test_a_longer_length_leaves_the_reader_waiting_and_bad_input_is_refused() -> None:
    protected = recorded("AES128-SHA256 encrypt-then-MAC")
    result = lesson.tamper_record(protected, 4, 0)
    assert result.check == "record header: length" and "waits" in result.error
    with pytest.raises(ValueError):
        lesson.tamper_record(protected, len(protected.record), 0)
    with pytest.raises(ValueError):
        lesson.tamper_record(protected, 0, 8)


def test_tamper_lab_controls_drive_the_same_callback() -> None:
    lab = lesson.tamper_lab()
    assert len(lab.records) == len(RECORDED)
    gcm = next(i for i, r in enumerate(lab.records) if r.params.is_aead)
    result = lab.update(record=gcm, offset=-1, bit=7)
    assert result.check == "GCM tag" and "GCM tag" in lab.verdict_text
    assert lab.offset_slider.value == len(lab.records[gcm].record) - 1
    flipped = lab.records[gcm].record[-1] ^ 0x80
    assert f"0x{flipped:02x}" in lab.verdict_text and f"{flipped:02x}" in lab.hex_html.value
    mte = next(i for i, r in enumerate(lab.records) if r.construction == "MAC-then-encrypt")
    lab.record_choice.value = mte
    lab.offset_slider.value = 7
    assert lab.result.offset == 7 and lab.result.check == "MAC (after decryption)"
    lab.bit_choice.value = 3
    assert lab.result.bit == 3
    assert lab.update(record=99) is None and "no record number 99" in lab.verdict_text
    assert lab.update(offset=10_000) is None and "Choose a byte" in lab.verdict_text


def test_record_explorer_shows_the_parts_of_the_chosen_record() -> None:
    explorer = lesson.record_explorer()
    mte = next(i for i, r in enumerate(explorer.records) if r.construction == "MAC-then-encrypt")
    layers = explorer.select(mte)
    assert explorer.hexview.data == explorer.records[mte].record
    assert "match" in explorer.summary.value and layers.mac_in_record.hex() in explorer.summary.value
    inner_fields = [s.field for s in explorer.inner_view.spans]
    assert inner_fields[-1] == "padding_length" and "mac" in inner_fields
    assert "seq_num" in explorer.mac_input_html.value
    explorer.record_list.value = 0
    assert explorer.hexview.data == explorer.records[0].record
    assert explorer.select(500) is None and "no record number" in explorer.summary.value


def test_layout_picture_draws_three_records() -> None:
    figure = lesson.record_layout_picture()
    gids = [p.get_gid() for p in figure.axes[0].patches]
    assert sum(g.startswith("part:0:") for g in gids) == 5 and sum(g.startswith("part:2:") for g in gids) == 4


# -- live, with OpenSSL ---------------------------------------------------------------------------------
def test_live_records_open_with_the_keys_from_openssls_key_log(live) -> None:
    assert set(live) == {
        "AES128-SHA256 encrypt-then-MAC",
        "AES128-SHA256 MAC-then-encrypt",
        "AES128-GCM-SHA256 AEAD (AES-GCM)",
    }
    for session in live.values():
        assert session.openssl_cipher == session.suite_name and session.openssl_error == ""
        records = session.protected_records()
        # Finished, request, close_notify from us; Finished and the page from OpenSSL.
        assert [r.sequence_number for r in records if r.direction == lesson.SERVER_TO_CLIENT] == [0, 1]
        encrypted = [e for e in session.transcript if e.encrypted]
        for protected, entry in zip(records, encrypted, strict=True):
            layers = lesson.record_layers(protected)
            assert layers.problems == [] and layers.plaintext == entry.plaintext, protected.label
            if not protected.params.is_aead:
                assert layers.mac_matches


def test_live_finished_recomputed_from_openssls_master_secret(live) -> None:
    check = lesson.finished_inputs(live["AES128-GCM-SHA256 AEAD (AES-GCM)"])
    assert check.both_match
    assert [n.split()[1] for n in check.client_inputs] == [
        "ClientHello",
        "ServerHello",
        "Certificate",
        "ServerHelloDone",
        "ClientKeyExchange",
    ]
    assert [n.split()[1] for n in check.server_inputs][-1] == "Finished"
    assert check.server_inputs[-1].startswith("client->server")
    assert "(same)" in check.summary() and "DIFFERENT" not in check.summary()


def test_a_session_ticket_is_in_the_servers_finished_hash() -> None:
    session = lesson.capture_session("AES128-GCM-SHA256", session_ticket=True)
    check = lesson.finished_inputs(session)
    assert check.both_match
    names = [n.split()[1] for n in check.server_inputs]
    assert names[-2:] == ["Finished", "NewSessionTicket"] and "NewSessionTicket" not in str(check.client_inputs)


def test_downgrade_changes_what_the_server_expects(live) -> None:
    text = lesson.downgrade_check(live["AES128-SHA256 encrypt-then-MAC"])
    assert "different: the server answers decrypt_error" in text
    assert "TLS_RSA_WITH_AES_256_GCM_SHA384" in text.splitlines()[0]


def test_sequence_diagram_has_one_arrow_per_flight_in_client_time(live) -> None:
    response = live["AES128-SHA256 MAC-then-encrypt"].response
    arrows = lesson.handshake_arrows(response.transcript, response.timings)
    assert [a.sender for a in arrows] == ["client", "server", "client", "server", "client", "server", "client"]
    assert arrows[1].label == "ServerHello, Certificate, ServerHelloDone"
    assert arrows[2].label == "ClientKeyExchange, ChangeCipherSpec, {Finished}"
    assert arrows[-1].label == "{Alert close_notify}"
    stamps = {index: time for time, _, index in response.timings}
    assert arrows[0].sent_at == stamps[0] and arrows[1].received_at == stamps[1]
    assert all(a.sent_at <= a.received_at for a in arrows)
    figure = lesson.handshake_sequence(response)
    gids = [p.get_gid() or "" for p in figure.axes[0].patches]
    assert sum(g.startswith("transmission:") for g in gids) == len(arrows)
    with pytest.raises(ValueError):
        lesson.handshake_arrows(response.transcript, [])


def test_state_paths_follow_the_tables(live) -> None:
    transcript = live["AES128-GCM-SHA256 AEAD (AES-GCM)"].transcript
    client = lesson.state_path("client", transcript)
    server = lesson.state_path("server", transcript)
    assert len(client) == len(server) == len(transcript)
    finished_from_openssl = next(
        i for i, e in enumerate(transcript) if e.encrypted and e.direction == lesson.SERVER_TO_CLIENT
    )
    assert (
        client[finished_from_openssl].value == "CONNECTED"
        and client[finished_from_openssl - 1].value == "WAIT_FINISHED"
    )
    assert server[0].value == "WAIT_CLIENT_KEY_EXCHANGE" and client[-1].value == "CLOSED"
    figure = lesson.state_machine_picture("server", transcript)
    boxes = {p.get_gid(): p for p in figure.axes[0].patches if (p.get_gid() or "").startswith("state:")}
    assert set(boxes) == {f"state:{s}" for row in lesson.diagram_rows("server") for s in (row[0], row[2])}


def test_page_view_sandboxes_and_escapes(live) -> None:
    response = live["AES128-GCM-SHA256 AEAD (AES-GCM)"].response
    view = lesson.page_view(response)
    assert 'sandbox=""' in view.value and "Hello from OpenSSL" in view.value
    hostile = dataclasses.replace(response, body=b'<script>alert(1)</script><img src=x onerror="x()">')
    value = lesson.page_view(hostile).value
    assert "<script>" not in value and "<img" not in value and "&lt;script&gt;" in value


def test_stepper_walks_the_records(live) -> None:
    response = live["AES128-SHA256 encrypt-then-MAC"].response
    stepper = lesson.handshake_stepper(response)
    assert stepper.index == 0 and stepper.previous_button.disabled
    assert stepper.hexview.data == response.transcript[0].record and stepper.plain_view is None
    for _ in range(6):
        stepper.next()
    entry = response.transcript[6]
    assert entry.encrypted and stepper.hexview.data == entry.record
    assert stepper.plain_view.data[5:] == entry.plaintext  # the decrypted Finished
    assert "finished" in " ".join(s.field for s in stepper.plain_view.spans)
    assert "client WAIT_CHANGE_CIPHER_SPEC, server CONNECTED" in stepper.status_text
    stepper.show(len(response.transcript) - 1)
    assert stepper.next_button.disabled and stepper.next() == len(response.transcript) - 1
    assert stepper.show(99) == len(response.transcript) - 1 and "no record number 99" in stepper.position.value
    stepper.previous_button.click()
    assert stepper.index == len(response.transcript) - 2


@pytest.mark.parametrize(
    ("suite", "etm", "offset"),
    [("AES128-GCM-SHA256", True, -1), ("AES128-SHA256", False, 8), ("AES128-SHA256", True, -1)],
)
def test_openssl_answers_a_tampered_record_with_bad_record_mac(suite, etm, offset) -> None:
    outcome = lesson.tamper_against_openssl(suite, offset=offset, bit=0, encrypt_then_mac=etm)
    assert "bad_record_mac (20)" in outcome.alert
    assert "BAD_RECORD_MAC" in outcome.openssl_error.upper().replace(" ", "_")
    with pytest.raises(ValueError):
        lesson.tamper_against_openssl(suite, offset=2)


def test_a_learners_finished_completes_a_handshake_and_a_wrong_one_gets_decrypt_error() -> None:
    def learners(master_secret, label, handshake_messages, hash_name="sha256"):
        digest = hashlib.new(hash_name, handshake_messages).digest()
        return prf_module.prf(master_secret, label, digest, 12, hash_name)

    def hashes_a_record_header_too(master_secret, label, handshake_messages, hash_name="sha256"):
        record_header = bytes([22, 3, 3]) + len(handshake_messages).to_bytes(2, "big")
        return learners(master_secret, label, record_header + handshake_messages, hash_name)

    for suite in ("AES128-GCM-SHA256", "AES256-GCM-SHA384"):
        with lesson.openssl_server(suite) as peer:
            response = tls_get(peer.url, cafile=peer.cafile, stages=Stages(verify_data=learners))
            assert response.status == 200 and b"Hello from OpenSSL" in response.body
            with pytest.raises(PeerAlert) as caught:
                tls_get(peer.url, cafile=peer.cafile, stages=Stages(verify_data=hashes_a_record_header_too))
            assert caught.value.description == TLSAlert.decrypt_error
        # Read after the with block: the server thread has finished recording what OpenSSL said.
        assert "DIGEST_CHECK_FAILED" in peer.last_error.upper().replace(" ", "_")


def test_finished_stage_hands_the_learner_the_messages_not_the_hash() -> None:
    seen = []

    def learners(master_secret, label, handshake_messages, hash_name="sha256"):
        seen.append((label, handshake_messages, hash_name))
        return prf_module.prf(master_secret, label, hashlib.new(hash_name, handshake_messages).digest(), 12, hash_name)

    with lesson.openssl_server("AES256-GCM-SHA384") as peer:
        response = tls_get(peer.url, cafile=peer.cafile, stages=Stages(verify_data=learners))
    messages = b"".join(raw for _, raw in lesson.handshake_messages(response.transcript))
    assert [label for label, _, _ in seen] == ["client finished", "server finished"]
    assert all(hash_name == "sha384" for _, _, hash_name in seen)
    client_messages, server_messages = seen[0][1], seen[1][1]
    assert messages.startswith(server_messages) and server_messages.startswith(client_messages)
    assert server_messages[len(client_messages) :][0] == 20  # the client's Finished, then nothing else


def test_benchmarks_run_once() -> None:
    assert set(lesson.BENCHMARKS) >= {"record_explorer.select", "tamper_lab.update(offset)", "handshake_stepper.show"}
    for setup in lesson.BENCHMARKS.values():
        setup()()


# -- records are not messages (lesson 07) -------------------------------------------------------------
def _entry(direction: str, plaintext: bytes) -> TranscriptEntry:
    return TranscriptEntry(direction, ContentType.handshake, b"", plaintext)


def test_records_and_messages_maps_record_bytes_to_message_bytes() -> None:
    hello = bytes([1, 0, 0, 6]) + b"abcdef"  # a 10-byte "ClientHello"
    done = bytes([14, 0, 0, 0])  # ServerHelloDone, 4 bytes
    server_hello = bytes([2, 0, 0, 2]) + b"xy"
    transcript = [
        _entry("client->server", hello[:3]),  # not even the whole header
        _entry("client->server", hello[3:]),
        _entry("server->client", server_hello + done),  # two messages in one record
    ]
    pieces = lesson.records_and_messages(transcript)
    assert [p.describe() for p in pieces] == [
        "ClientHello bytes 0-2 of 10",
        "ClientHello bytes 3-9 of 10",
        "ServerHello, ServerHelloDone",
    ]
    assert [p.cuts_a_message for p in pieces] == [True, True, False]
    assert [p.index for p in pieces] == [0, 1, 2] and [p.length for p in pieces] == [3, 7, 10]


def test_records_and_messages_on_a_transcript_that_stops_mid_message() -> None:
    certificate = bytes([11, 0, 1, 0]) + bytes(256)  # 260 bytes, of which only 100 arrived
    arrived = [_entry("server->client", certificate[:60]), _entry("server->client", certificate[60:100])]
    pieces = lesson.records_and_messages(arrived)
    assert [p.describe() for p in pieces] == ["Certificate bytes 0-59 of 260", "Certificate bytes 60-99 of 260"]
    cut_header = lesson.records_and_messages([_entry("client->server", bytes([1, 0]))])
    assert cut_header[0].cuts_a_message and "cut short" in cut_header[0].describe()


def test_cut_handshake_with_openssl() -> None:
    cut = lesson.cut_handshake(fragment_size=64)
    ours = [p for p in cut.records if p.direction == "client->server"]
    assert max(p.length for p in ours) == 64 and any(p.cuts_a_message for p in ours)
    # Every byte of every message we sent is accounted for exactly once.
    covered: dict[str, int] = {}
    for piece in ours:
        for name, start, end, total in piece.pieces:
            covered[name] = covered.get(name, 0) + (end - start)
            assert 0 <= start < end <= total
    hello = next(m for e in cut.response.transcript for m in e.messages if type(m).__name__ == "ClientHello")
    assert covered["ClientHello"] == len(hello.to_bytes())
    assert set(covered) == {"ClientHello", "ClientKeyExchange", "Finished"}
    assert cut.openssl_master_secret == cut.response.handshake.master_secret
    summary = cut.summary()
    assert "ClientKeyExchange bytes 0-63 of 262" in summary and "put our 64-byte pieces back together" in summary
    assert "equals ours" in summary
    # Each message we sent is listed once, in the record that completed it, so walks over the transcript
    # (the state path, the session hash of lesson 06) see the handshake as it was.
    sent = [m for e in cut.response.transcript if e.direction == "client->server" for m in e.messages]
    assert [type(m).__name__ for m in sent if type(m).__name__ != "ApplicationData"] == [
        "ClientHello", "ClientKeyExchange", "ChangeCipherSpec", "Finished", "Alert",  # close_notify
    ]
    whole = lesson.cut_handshake(fragment_size=1 << 14)
    for role, first in (("client", lesson.State.IDLE), ("server", lesson.State.WAIT_CLIENT_HELLO)):
        # One state per record, so more records repeat states; the states passed through are the same.
        def visited(transcript, role=role, first=first):
            return [state for state, _ in itertools.groupby([first, *lesson.state_path(role, transcript)])]

        path = visited(cut.response.transcript)
        assert lesson.State.CONNECTED in path and path == visited(whole.response.transcript)
    assert "got every message whole" in whole.summary()
    # Lesson 06's session hash lists each message once over the cut transcript (with EMS agreed, the equal
    # master secrets above mean OpenSSL hashed the same bytes).
    from handshake_lib.lessons.tls_keys import session_hash_listing

    listing = session_hash_listing(cut.response.transcript)
    assert [line.split()[0] for line in listing] == [
        "client_hello", "server_hello", "certificate", "server_hello_done", "client_key_exchange", "session_hash",
    ]
