"""Opening a protected record with annotations (``RecordProtection.explain``), on OpenSSL's recorded records.

The explanation runs the same openers as ``unprotect``; these tests check it against an independent
HMAC (standard library only), against the verdict of ``unprotect``, and check which check it names
for every kind of damage.  Also: the handshake reassembler's two views (``reassemble_handshake``,
``message_pieces``) and the recorded vectors' one format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

import pytest

from handshake_lib import data
from handshake_lib.errors import BadRecordMac, DecodeError
from handshake_lib.tls.captured import ProtectedRecord, RecordedSession
from handshake_lib.tls.constants import ContentType
from handshake_lib.tls.prf import RecordedFinished
from handshake_lib.tls.record import Check, message_pieces, reassemble_handshake, receive_protected_record

SESSIONS = [RecordedSession.from_json(item) for item in data.load_recordings("openssl_records")]
RECORDED = [record for session in SESSIONS for record in session.protected_records()]
BY_NAME = {session.name: session for session in SESSIONS}


def stdlib_record_mac(hash_name, mac_key, sequence_number, content_type, version, fragment) -> bytes:
    """RFC 5246 6.2.3.1 with nothing but the standard library (independent of record.py)."""
    header = struct.pack("!QBHH", sequence_number, content_type, version, len(fragment))
    return hmac.new(mac_key, header + fragment, getattr(hashlib, hash_name)).digest()


def recorded(name: str, seq: int = 1) -> ProtectedRecord:
    return BY_NAME[name].protected_records()[seq]


@pytest.mark.parametrize("protected", RECORDED, ids=lambda r: r.label)
def test_recorded_openssl_records_open_and_their_parts_add_up(protected: ProtectedRecord) -> None:
    opened = protected.open()
    assert opened.accepted and opened.failed is Check.NONE and opened.error is None
    assert opened.plaintext == protected.protection().unprotect(protected.record)  # the judge agrees
    wire_fields = [s.field for s in opened.spans]
    assert wire_fields[:3] == ["record.content_type", "record.version", "record.length"]
    assert sum(s.length for s in opened.spans if not s.is_group) == len(protected.record)
    assert len(opened.mac_input) == 13 and opened.mac_input[:8] == protected.sequence_number.to_bytes(8, "big")
    if protected.params.is_aead:
        assert wire_fields[3:] == ["record.explicit_nonce", "record.ciphertext", "record.gcm_tag"]
        assert opened.mac_received == b"" and opened.decrypted == opened.plaintext
        # GCM's additional data carries the plaintext length.
        assert int.from_bytes(opened.mac_input[11:], "big") == len(opened.plaintext)
    else:
        etm = protected.encrypt_then_mac
        covered = protected.record[5 : -len(opened.mac_received)] if etm else opened.plaintext
        expected = stdlib_record_mac(
            protected.params.mac_algorithm,
            protected.mac_key,
            protected.sequence_number,
            protected.content_type,
            protected.version,
            covered,
        )
        assert opened.mac_received == expected == opened.mac_expected and opened.mac_matches
        assert (
            opened.mac_input + covered
            == struct.pack("!QBHH", protected.sequence_number, protected.content_type, protected.version, len(covered))
            + covered
        )
        # ... and not at another sequence number: the number is never sent, but it is in the MAC.
        other = stdlib_record_mac(
            protected.params.mac_algorithm,
            protected.mac_key,
            protected.sequence_number + 1,
            protected.content_type,
            protected.version,
            covered,
        )
        assert other != expected
        padding_length = opened.padding[-1]
        assert opened.padding == bytes([padding_length]) * (padding_length + 1)
        assert len(opened.decrypted) % 16 == 0
        inner = [s.field for s in opened.decrypted_spans]
        assert inner[0] == "plaintext" and inner[-1] == "padding_length" and ("mac" in inner) == (not etm)
        assert sum(s.length for s in opened.decrypted_spans) == len(opened.decrypted)
    if protected.content_type == ContentType.handshake:
        assert opened.plaintext[:4] == bytes([20, 0, 0, 12])  # a Finished with 12 bytes of verify_data
    else:
        assert opened.plaintext.startswith(b"HTTP/1.1 200 OK") and b"Hello from OpenSSL" in opened.plaintext


@pytest.mark.parametrize(
    ("name", "offset", "check"),
    [
        ("AES128-GCM-SHA256", -1, Check.GCM_TAG),
        ("AES128-GCM-SHA256", 6, Check.GCM_TAG),  # the explicit nonce
        ("AES128-GCM-SHA256", 0, Check.GCM_TAG),  # the content type, in the additional data
        ("AES128-SHA256 encrypt-then-MAC", 30, Check.MAC_BEFORE_DECRYPTION),
        ("AES128-SHA256 encrypt-then-MAC", -1, Check.MAC_BEFORE_DECRYPTION),
        ("AES128-SHA256 MAC-then-encrypt", -1, Check.PADDING),
        ("AES128-SHA256 MAC-then-encrypt", 8, Check.MAC_AFTER_DECRYPTION),  # the IV: flips a plaintext bit
        ("AES128-SHA MAC-then-encrypt", 0, Check.MAC_AFTER_DECRYPTION),  # the type, covered by the MAC
        ("AES128-SHA MAC-then-encrypt", 1, Check.HEADER),  # the version: not TLS any more
        ("AES128-SHA256 encrypt-then-MAC", 4, Check.INCOMPLETE),  # the length grows: the reader waits
    ],
)
def test_a_flipped_bit_is_refused_and_the_check_named(name: str, offset: int, check: Check) -> None:
    protected = recorded(name)
    damaged = bytearray(protected.record)
    damaged[offset % len(damaged)] ^= 1
    opened = protected.open(bytes(damaged))
    assert not opened.accepted and opened.failed is check and check.explanation
    if check is Check.INCOMPLETE:
        assert opened.error is None
        return
    if check is not Check.HEADER:
        assert isinstance(opened.error, BadRecordMac)  # the one error a receiver reports, whatever the check
        with pytest.raises(BadRecordMac):
            protected.protection().unprotect(bytes(damaged))


def test_every_single_bit_flip_gets_the_same_verdict_from_explain_and_unprotect() -> None:
    for name in ("AES128-SHA MAC-then-encrypt", "AES128-SHA256 encrypt-then-MAC", "AES128-GCM-SHA256"):
        protected = recorded(name, 0)
        for offset in range(5, len(protected.record)):
            damaged = bytearray(protected.record)
            damaged[offset] ^= 0x40
            opened = protected.protection().explain(bytes(damaged))
            with pytest.raises(BadRecordMac):
                protected.protection().unprotect(bytes(damaged))
            assert opened.failed in (
                Check.GCM_TAG,
                Check.MAC_BEFORE_DECRYPTION,
                Check.PADDING,
                Check.MAC_AFTER_DECRYPTION,
            ), (name, offset)


def test_an_iv_flip_under_mac_then_encrypt_reaches_the_plaintext_exactly() -> None:
    protected = recorded("AES128-SHA256 MAC-then-encrypt")
    damaged = bytearray(protected.record)
    damaged[5 + 3] ^= 4  # byte 3 of the IV
    opened, original = protected.open(bytes(damaged)), protected.open().plaintext
    changed = [i for i, (a, b) in enumerate(zip(original, opened.plaintext, strict=True)) if a != b]
    assert changed == [3] and original[3] ^ opened.plaintext[3] == 4  # CBC: same bit, same position
    assert not opened.mac_matches and opened.failed is Check.MAC_AFTER_DECRYPTION


def test_a_shorter_length_is_checked_cut_short_and_counted() -> None:
    protected = recorded("AES128-GCM-SHA256")
    damaged = bytearray(protected.record)
    assert protected.record[4] & 4  # the length's bit 2 is set: clearing it claims 4 bytes fewer
    damaged[4] ^= 4
    opened = receive_protected_record(protected.protection(), bytes(damaged))
    assert opened.leftover == 4 and opened.failed is Check.GCM_TAG


def test_explain_does_not_advance_the_sequence_number_and_unprotect_does() -> None:
    protected = recorded("AES128-GCM-SHA256", 0)
    protection = protected.protection()
    assert protection.explain(protected.record).accepted and protection.sequence_number == 0
    protection.unprotect(protected.record)
    assert protection.sequence_number == 1
    later = protection.explain(protected.record)  # the same record one number later: refused
    assert later.failed is Check.GCM_TAG and later.sequence_number == 1


def test_a_header_that_disagrees_with_the_bytes_is_named() -> None:
    protected = recorded("AES128-GCM-SHA256", 0)
    opened = protected.protection().explain(protected.record[:-1])
    assert opened.failed is Check.HEADER and isinstance(opened.error, DecodeError)
    assert opened.field_at(0) == "record.content_type"


# -- the handshake reassembler, two views ------------------------------------------------------------
def test_message_pieces_maps_record_bytes_to_message_bytes() -> None:
    hello = bytes([1, 0, 0, 6]) + b"abcdef"  # a 10-byte "ClientHello"
    done = bytes([14, 0, 0, 0])
    pieces = message_pieces([hello[:3], hello[3:] + done])
    assert [[(p.msg_type, p.start, p.end, p.length) for p in record] for record in pieces] == [
        [(1, 0, 3, 10)],
        [(1, 3, 10, 10), (14, 0, 4, 4)],
    ]
    assert [p.whole for p in pieces[1]] == [False, True]


def test_message_pieces_on_a_stream_that_stops_mid_message() -> None:
    certificate = bytes([11, 0, 1, 0]) + bytes(256)  # 260 bytes, of which only 100 arrived
    pieces = message_pieces([certificate[:60], certificate[60:100]])
    assert [(p.msg_type, p.start, p.end, p.length) for record in pieces for p in record] == [
        (11, 0, 60, 260),
        (11, 60, 100, 260),
    ]
    cut_header = message_pieces([bytes([1, 0])])
    assert cut_header[0][0].msg_type is None and not cut_header[0][0].whole


def test_reassemble_handshake_keeps_each_direction_apart() -> None:
    hello = bytes([1, 0, 0, 2]) + b"hi"
    server_hello = bytes([2, 0, 0, 1]) + b"s"
    fragments = [("c", hello[:5]), ("s", server_hello[:2]), ("c", hello[5:]), ("s", server_hello[2:])]
    assert [(stream, m.raw) for stream, m in reassemble_handshake(fragments)] == [("c", hello), ("s", server_hello)]


# -- the recorded vectors --------------------------------------------------------------------------
def test_recordings_are_in_the_one_format_and_round_trip() -> None:
    for name, kind in (("openssl_records", RecordedSession), ("openssl_finished", RecordedFinished)):
        items = data.load_recordings(name)
        assert items and all(kind.from_json(item).to_json() == item for item in items)
        for item in items:
            for key, value in item.items():
                for one in value if isinstance(value, list) else [value]:
                    if key not in ("name", "suite_name", "hash_name", "encrypt_then_mac"):
                        assert one == one.lower() and bytes.fromhex(one), (name, key)
    assert {s.name for s in SESSIONS} == {
        "AES128-SHA256 MAC-then-encrypt",
        "AES128-SHA MAC-then-encrypt",
        "AES128-SHA256 encrypt-then-MAC",
        "AES128-GCM-SHA256",
    }


def test_the_loader_refuses_another_format(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "future.json").write_text(json.dumps({"format": 2, "made_by": "?", "recordings": []}))
    monkeypatch.setattr(data.resources, "files", lambda package: folder)  # a Path reads like a Traversable
    with pytest.raises(ValueError, match="found 2"):
        data.load_recordings("future")
