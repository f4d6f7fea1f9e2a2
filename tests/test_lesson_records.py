"""Lesson 07's widgets and glue (the record layer they show is tested in test_tls_record_open.py)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.lessons import records as lesson  # noqa: E402
from handshake_lib.tls.connection import TranscriptEntry  # noqa: E402
from handshake_lib.tls.constants import ContentType  # noqa: E402
from handshake_lib.tls.states import INITIAL_STATE, State, replay  # noqa: E402

RECORDED = [r for session in lesson.RECORDED_SESSIONS.values() for r in session.protected_records()]


def recorded(name: str, seq: int = 1):
    return lesson.RECORDED_SESSIONS[name].protected_records()[seq]


# -- tampering ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "offset", "check"),
    [
        ("AES128-GCM-SHA256", -1, "GCM tag"),
        ("AES128-SHA256 encrypt-then-MAC", 30, "MAC (over IV + ciphertext, before decryption)"),
        ("AES128-SHA256 MAC-then-encrypt", -1, "padding (after decryption)"),
        ("AES128-SHA MAC-then-encrypt", 0, "MAC (after decryption)"),
    ],
)
def test_a_flipped_bit_is_refused_and_explained(name: str, offset: int, check: str) -> None:
    protected = recorded(name)
    position = offset % len(protected.record)
    result = lesson.tamper_record(protected, position, 0)
    assert result.rejected and result.error.startswith("BadRecordMac")
    assert result.check == check and result.explanation == result.layers.failed.explanation
    assert result.tampered == protected.record[position] ^ 1 and result.original == protected.record[position]


def test_a_longer_length_leaves_the_reader_waiting_and_bad_input_is_refused() -> None:
    protected = recorded("AES128-SHA256 encrypt-then-MAC")
    result = lesson.tamper_record(protected, 4, 0)
    assert result.check == "record header: length" and "waits" in result.error
    assert f"only {len(protected.record) - 5} follow" in result.explanation
    with pytest.raises(ValueError):
        lesson.tamper_record(protected, len(protected.record), 0)
    with pytest.raises(ValueError):
        lesson.tamper_record(protected, 0, 8)


def test_tamper_lab_controls_drive_the_same_callback() -> None:
    lab = lesson.tamper_lab()
    assert len(lab.records) == len(RECORDED)
    gcm = next(i for i, r in enumerate(lab.records) if r.params.is_aead)
    result = lab.update(record=gcm, offset=-1, bit=7)
    assert result.check == "GCM tag" and "GCM tag" in lab.verdict_text and "record.gcm_tag" in lab.verdict_text
    assert lab.offset_slider.value == len(lab.records[gcm].record) - 1
    flipped = lab.records[gcm].record[-1] ^ 0x80
    assert f"0x{flipped:02x}" in lab.verdict_text and f"{flipped:02x}" in lab.hex_html.value
    mte = next(i for i, r in enumerate(lab.records) if r.construction == "MAC-then-encrypt")
    lab.record_choice.value = mte
    lab.offset_slider.value = 7
    assert lab.result.offset == 7 and lab.result.check == "MAC (after decryption)"
    lab.bit_choice.value = 3
    assert lab.result.bit == 3
    with pytest.raises(ValueError, match="record must be one of"):
        lab.update(record=99)
    with pytest.raises(ValueError, match="offset must be from"):
        lab.update(offset=10_000)
    assert lab.result.bit == 3 and lab.record_choice.value == mte


def test_record_explorer_shows_the_parts_of_the_chosen_record() -> None:
    explorer = lesson.record_explorer()
    mte = next(i for i, r in enumerate(explorer.records) if r.construction == "MAC-then-encrypt")
    opened = explorer.select(mte)
    assert explorer.hexview.data == explorer.records[mte].record
    assert "(match)" in explorer.summary.value and opened.mac_received.hex() in explorer.summary.value
    inner_fields = [s.field for s in explorer.inner_view.spans]
    assert inner_fields[-1] == "padding_length" and "mac" in inner_fields
    # The plaintext's own message is decoded inside the decrypted bytes (here OpenSSL's Finished).
    assert explorer.records[mte].content_type == 22 and any(f.startswith("finished") for f in inner_fields)
    assert "seq_num" in explorer.mac_input_html.value
    explorer.record_list.value = 0
    assert explorer.hexview.data == explorer.records[0].record
    assert explorer.select(500) is None and "no record number" in explorer.summary.value


def test_layout_picture_draws_three_records() -> None:
    figure = lesson.record_layout_picture()
    gids = [p.get_gid() for p in figure.axes[0].patches]
    assert sum(g.startswith("part:0:") for g in gids) == 5 and sum(g.startswith("part:2:") for g in gids) == 4


# -- records are not messages -------------------------------------------------------------------------
def _entry(direction: str, plaintext: bytes) -> TranscriptEntry:
    return TranscriptEntry(direction, ContentType.handshake, b"", plaintext)


def test_records_and_messages_names_the_pieces() -> None:
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
    cut_header = lesson.records_and_messages([_entry("client->server", bytes([1, 0]))])
    assert cut_header[0].cuts_a_message and "cut short" in cut_header[0].describe()


def test_cut_handshake_with_openssl() -> None:
    cut = lesson.cut_handshake(fragment_size=64)
    ours = [p for p in cut.records if p.direction == "client->server"]
    assert max(p.length for p in ours) == 64 and any(p.cuts_a_message for p in ours)
    covered: dict[str, int] = {}
    for piece in ours:
        for name, start, end, total in piece.pieces:
            covered[name] = covered.get(name, 0) + (end - start)
            assert 0 <= start < end <= total
    hello = next(m for e in cut.response.transcript for m in e.messages if type(m).__name__ == "ClientHello")
    assert covered["ClientHello"] == len(hello.to_bytes())
    assert set(covered) == {"ClientHello", "ClientKeyExchange", "Finished"}
    summary = cut.summary()
    assert "ClientKeyExchange bytes 0-63 of 262" in summary and "put our 64-byte pieces back together" in summary
    assert "equals ours" in summary
    whole = lesson.cut_handshake(fragment_size=1 << 14)
    assert "got every message whole" in whole.summary()
    for role in ("client", "server"):
        # One state per record, so more records repeat states; the states passed through are the same.
        def visited(transcript, role=role):
            path = [INITIAL_STATE[role], *replay(role, transcript)]
            return [s for i, s in enumerate(path) if i == 0 or path[i - 1] is not s]

        assert State.CONNECTED in visited(cut.response.transcript)
        assert visited(cut.response.transcript) == visited(whole.response.transcript)
