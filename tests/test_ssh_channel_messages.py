"""RFC 4254 messages (80-100) and their type-specific fields, against paramiko's independent encoder.

paramiko's ``paramiko.message.Message`` builds each message the way paramiko's own Transport and Channel
do (field by field, its own uint32/string/boolean code); our decoder must read the same fields and our
encoder must give back the same bytes.  The other way, paramiko's reader reads our bytes.  Hypothesis
round-trips every message and every typed field class; malformed input is a DecodeError, never a crash.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import require_module
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError, EncodeError, UnexpectedMessage
from handshake_lib.ssh import channel_messages as cm
from handshake_lib.ssh.constants import MessageNumber
from handshake_lib.ssh.messages import MESSAGES, Message, decode_message
from handshake_lib.wire import Reader


@pytest.fixture(scope="module")
def paramiko() -> Any:
    return require_module("paramiko", "the independent encoder these tests compare with")


def _pm(paramiko: Any, number: int, *fields: tuple[str, Any]) -> bytes:
    """A payload built by paramiko.Message: ('int', 5), ('string', b'x'), ('boolean', True), ('bytes', raw)."""
    m = paramiko.Message()
    m.add_byte(bytes([number]))
    for kind, value in fields:
        getattr(m, f"add_{kind}")(value)
    return m.asbytes()


def _spans_point_at_the_bytes(message: Message, payload: bytes) -> None:
    assert message.spans and message.spans[0].offset == 0 and message.spans[0].length == len(payload)
    assert all(span.offset >= 0 and span.end <= len(payload) for span in message.spans)


def test_every_number_80_to_100_is_registered_with_its_rfc_name() -> None:
    for number in (80, 81, 82, *range(90, 101)):
        cls = MESSAGES[number]
        assert number == cls.NUMBER and cls().name == "SSH_MSG_" + MessageNumber(number).name
    assert 83 not in MESSAGES and 89 not in MESSAGES and 101 not in MESSAGES


def test_paramiko_built_channel_messages_decode_and_reencode_byte_for_byte(paramiko: Any) -> None:
    """Each message as paramiko's Transport/Channel code writes it (same field order, same types)."""
    cases: list[tuple[bytes, Message]] = [
        (
            _pm(paramiko, 90, ("string", "session"), ("int", 7), ("int", 2097152), ("int", 32768)),
            cm.ChannelOpen("session", 7, 2097152, 32768),
        ),
        (
            _pm(
                paramiko,
                90,
                ("string", "direct-tcpip"),
                ("int", 1),
                ("int", 65536),
                ("int", 32768),
                ("string", "example.org"),
                ("int", 80),
                ("string", "127.0.0.1"),
                ("int", 50000),
            ),
            cm.ChannelOpen(
                "direct-tcpip", 1, 65536, 32768, cm.DirectTcpipOpen("example.org", 80, "127.0.0.1", 50000).encode()
            ),
        ),
        (
            _pm(paramiko, 91, ("int", 7), ("int", 0), ("int", 131072), ("int", 16384)),
            cm.ChannelOpenConfirmation(7, 0, 131072, 16384),
        ),
        (
            _pm(paramiko, 92, ("int", 7), ("int", 4), ("string", "too many"), ("string", "en")),
            cm.ChannelOpenFailure(7, cm.ChannelOpenFailureReason.RESOURCE_SHORTAGE, "too many", "en"),
        ),
        (_pm(paramiko, 93, ("int", 3), ("int", 1048576)), cm.ChannelWindowAdjust(3, 1048576)),
        (_pm(paramiko, 94, ("int", 3), ("string", b"\x00hello\xff")), cm.ChannelData(3, b"\x00hello\xff")),
        (_pm(paramiko, 95, ("int", 3), ("int", 1), ("string", b"oops\n")), cm.ChannelExtendedData(3, 1, b"oops\n")),
        (_pm(paramiko, 96, ("int", 3)), cm.ChannelEOF(3)),
        (_pm(paramiko, 97, ("int", 3)), cm.ChannelClose(3)),
        (
            _pm(paramiko, 98, ("int", 3), ("string", "exec"), ("boolean", True), ("string", "ls -l /tmp")),
            cm.ChannelRequest(3, "exec", True, cm.ExecRequest("ls -l /tmp").encode()),
        ),
        (_pm(paramiko, 99, ("int", 3)), cm.ChannelSuccess(3)),
        (_pm(paramiko, 100, ("int", 3)), cm.ChannelFailure(3)),
        (
            _pm(paramiko, 80, ("string", "tcpip-forward"), ("boolean", True), ("string", ""), ("int", 0)),
            cm.GlobalRequest("tcpip-forward", True, cm.TcpipForwardRequest("", 0).encode()),
        ),
        (
            _pm(paramiko, 80, ("string", "keepalive@openssh.com"), ("boolean", True)),
            cm.GlobalRequest("keepalive@openssh.com", True),
        ),
        (_pm(paramiko, 81, ("int", 40123)), cm.RequestSuccess((40123).to_bytes(4, "big"))),
        (_pm(paramiko, 81), cm.RequestSuccess()),
        (_pm(paramiko, 82), cm.RequestFailure()),
    ]
    for payload, expected in cases:
        decoded = decode_message(payload)
        assert decoded == expected and type(decoded) is type(expected), expected.name
        assert decoded.to_bytes() == payload == expected.to_bytes()
        _spans_point_at_the_bytes(decoded, payload)
    assert decode_message(cases[-3][0]).bound_port == 40123  # type: ignore[attr-defined]
    assert cm.RequestSuccess().bound_port is None


def _paramiko_request(paramiko: Any, kind: str, *fields: tuple[str, Any], want_reply: bool = True) -> bytes:
    return _pm(paramiko, 98, ("int", 0), ("string", kind), ("boolean", want_reply), *fields)


def test_paramiko_built_request_fields_decode_to_typed_fields_with_spans(paramiko: Any) -> None:
    """The fields as paramiko's Channel methods add them (get_pty, exec_command, send_exit_status, ...)."""
    cases: list[tuple[bytes, cm.TypedFields]] = [
        (_paramiko_request(paramiko, "exec", ("string", "uname -a")), cm.ExecRequest("uname -a")),
        (
            _paramiko_request(paramiko, "env", ("string", "LANG"), ("string", "C.UTF-8"), want_reply=False),
            cm.EnvRequest("LANG", "C.UTF-8"),
        ),
        (_paramiko_request(paramiko, "shell"), cm.ShellRequest()),
        (_paramiko_request(paramiko, "subsystem", ("string", "sftp")), cm.SubsystemRequest("sftp")),
        (
            _paramiko_request(
                paramiko,
                "pty-req",
                ("string", "vt100"),
                ("int", 80),
                ("int", 24),
                ("int", 640),
                ("int", 480),
                ("string", b"\x00"),
            ),
            cm.PtyRequest("vt100", 80, 24, 640, 480, b"\x00"),
        ),
        (
            _paramiko_request(
                paramiko, "window-change", ("int", 120), ("int", 40), ("int", 0), ("int", 0), want_reply=False
            ),
            cm.WindowChangeRequest(120, 40, 0, 0),
        ),
        (_paramiko_request(paramiko, "signal", ("string", "INT"), want_reply=False), cm.SignalRequest("INT")),
        (_paramiko_request(paramiko, "exit-status", ("int", 42), want_reply=False), cm.ExitStatusRequest(42)),
        (
            _paramiko_request(
                paramiko,
                "exit-signal",
                ("string", "KILL"),
                ("boolean", True),
                ("string", "killed"),
                ("string", ""),
                want_reply=False,
            ),
            cm.ExitSignalRequest("KILL", True, "killed", ""),
        ),
    ]
    for payload, expected in cases:
        message = decode_message(payload)
        assert isinstance(message, cm.ChannelRequest) and message.request_type == expected.KIND
        fields = cm.request_fields(message)
        assert fields == expected and type(fields) is type(expected)
        assert fields.encode() == message.type_data  # our encoder: the same bytes paramiko wrote
        # the typed spans point into the payload, at the bytes they name
        for span in fields.spans:
            assert span.offset > 0 and span.end <= len(payload)
        if expected.WIRE:
            first = next(s for s in fields.spans if not s.is_group)
            assert first.offset == len(payload) - len(message.type_data)


def test_paramiko_built_open_and_global_fields(paramiko: Any) -> None:
    forwarded = _pm(
        paramiko,
        90,
        ("string", "forwarded-tcpip"),
        ("int", 9),
        ("int", 65536),
        ("int", 32768),
        ("string", "0.0.0.0"),
        ("int", 2222),
        ("string", "192.0.2.7"),
        ("int", 41000),
    )
    message = decode_message(forwarded)
    assert isinstance(message, cm.ChannelOpen)
    fields = cm.open_fields(message)
    assert fields == cm.ForwardedTcpipOpen("0.0.0.0", 2222, "192.0.2.7", 41000)
    port = next(s for s in fields.spans if s.field.endswith("connected_port"))
    assert forwarded[port.offset : port.end] == (2222).to_bytes(4, "big")
    cancel = decode_message(
        _pm(paramiko, 80, ("string", "cancel-tcpip-forward"), ("boolean", True), ("string", "localhost"), ("int", 8080))
    )
    assert cm.global_fields(cancel) == cm.CancelTcpipForwardRequest("localhost", 8080)  # type: ignore[arg-type]
    keepalive = decode_message(_pm(paramiko, 80, ("string", "keepalive@openssh.com"), ("boolean", True)))
    assert cm.global_fields(keepalive) == cm.KeepaliveRequest()  # type: ignore[arg-type]
    assert cm.open_fields(cm.ChannelOpen("x11", 0, 1, 1, b"\x00")) is None  # a type we do not decode: None
    assert cm.request_fields(cm.ChannelRequest(0, "xon-xoff", False, b"\x01")) is None
    assert cm.global_fields(cm.GlobalRequest("no-more-sessions@openssh.com")) is None


def test_paramiko_reads_our_messages(paramiko: Any) -> None:
    """paramiko's reader, in the order its Transport reads each message, gets our fields back."""
    m = paramiko.Message(cm.ChannelOpenConfirmation(5, 2, 1234567, 32768).to_bytes())
    assert m.get_byte() == b"\x5b" and [m.get_int() for _ in range(4)] == [5, 2, 1234567, 32768]
    m = paramiko.Message(cm.ChannelOpenFailure(5, cm.ChannelOpenFailureReason.CONNECT_FAILED, "refused").to_bytes())
    m.get_byte()
    assert (m.get_int(), m.get_int(), m.get_text(), m.get_text()) == (5, 2, "refused", "")
    m = paramiko.Message(
        cm.ChannelRequest(1, "exit-signal", False, cm.ExitSignalRequest("TERM", False, "bye").encode()).to_bytes()
    )
    m.get_byte()
    assert (m.get_int(), m.get_text(), m.get_boolean()) == (1, "exit-signal", False)
    assert (m.get_text(), m.get_boolean(), m.get_text(), m.get_text()) == ("TERM", False, "bye", "")
    m = paramiko.Message(cm.ChannelExtendedData(1, 1, b"err").to_bytes())
    m.get_byte()
    assert (m.get_int(), m.get_int(), m.get_binary()) == (1, 1, b"err")
    m = paramiko.Message(
        cm.ChannelOpen("direct-tcpip", 3, 10, 20, cm.DirectTcpipOpen("h", 1, "o", 2).encode()).to_bytes()
    )
    m.get_byte()
    assert (m.get_text(), m.get_int(), m.get_int(), m.get_int()) == ("direct-tcpip", 3, 10, 20)
    assert (m.get_text(), m.get_int(), m.get_text(), m.get_int()) == ("h", 1, "o", 2)
    assert m.get_remainder() == b""


def test_open_failure_reasons() -> None:
    assert [r.value for r in cm.ChannelOpenFailureReason] == [1, 2, 3, 4]
    unknown = decode_message(cm.ChannelOpenFailure(1, 77, "private").to_bytes())
    assert unknown.reason == 77 and not isinstance(unknown.reason, cm.ChannelOpenFailureReason)  # type: ignore[attr-defined]
    known = decode_message(cm.ChannelOpenFailure(1, 3).to_bytes())
    assert known.reason is cm.ChannelOpenFailureReason.UNKNOWN_CHANNEL_TYPE  # type: ignore[attr-defined]
    assert any("SSH_OPEN_UNKNOWN_CHANNEL_TYPE" in s.meaning for s in known.spans)


@pytest.mark.parametrize(
    "payload",
    [
        bytes([94, 0, 0, 0]),  # a truncated recipient channel
        bytes([94, 0, 0, 0, 1, 0, 0, 0, 9, 1]),  # data shorter than its length
        bytes([96, 0, 0, 0, 1, 0]),  # a byte after CHANNEL_EOF's only field
        bytes([90, 0, 0, 0, 2, 0xFF, 0xFE]) + bytes(12),  # a channel type that is not UTF-8
        bytes([99]),
        bytes([80, 0, 0, 0, 1, 0x61]),  # the want_reply byte missing
    ],
)
def test_malformed_messages_are_decode_errors(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(payload)


def test_malformed_typed_fields_are_decode_errors() -> None:
    exec_bytes = cm.ExecRequest("ls").encode()
    with pytest.raises(DecodeError, match="unexpected bytes"):
        cm.decode_request_fields("exec", exec_bytes + b"\x00")
    with pytest.raises(DecodeError):
        cm.decode_request_fields("exit-status", b"\x00\x00\x01")
    with pytest.raises(DecodeError, match="UTF-8"):
        cm.decode_request_fields("env", b"\x00\x00\x00\x01\xff\x00\x00\x00\x00")
    with pytest.raises(DecodeError, match="no decoder"):
        cm.decode_open_fields("x11", b"")
    with pytest.raises(DecodeError):
        cm.request_fields(cm.ChannelRequest(0, "pty-req", True, b"\x00\x00\x00\x05vt1"))
    with pytest.raises(UnexpectedMessage):
        cm.ChannelData.decode(Reader(cm.ChannelEOF(1).to_bytes()))
    with pytest.raises(EncodeError):
        cm.ExitStatusRequest(2**32).encode()


_u32 = st.integers(0, 2**32 - 1)
_text = st.text(max_size=20)
_bytes = st.binary(max_size=64)
MESSAGES_STRATEGY = st.one_of(
    st.builds(cm.GlobalRequest, _text, st.booleans(), _bytes),
    st.builds(cm.RequestSuccess, _bytes),
    st.builds(cm.RequestFailure),
    st.builds(cm.ChannelOpen, _text, _u32, _u32, _u32, _bytes),
    st.builds(cm.ChannelOpenConfirmation, _u32, _u32, _u32, _u32, _bytes),
    st.builds(cm.ChannelOpenFailure, _u32, _u32, _text, _text),
    st.builds(cm.ChannelWindowAdjust, _u32, _u32),
    st.builds(cm.ChannelData, _u32, _bytes),
    st.builds(cm.ChannelExtendedData, _u32, _u32, _bytes),
    st.builds(cm.ChannelEOF, _u32),
    st.builds(cm.ChannelClose, _u32),
    st.builds(cm.ChannelRequest, _u32, _text, st.booleans(), _bytes),
    st.builds(cm.ChannelSuccess, _u32),
    st.builds(cm.ChannelFailure, _u32),
)
FIELDS_STRATEGY = st.one_of(
    st.builds(cm.SessionOpen),
    st.builds(cm.DirectTcpipOpen, _text, _u32, _text, _u32),
    st.builds(cm.ForwardedTcpipOpen, _text, _u32, _text, _u32),
    st.builds(cm.PtyRequest, _text, _u32, _u32, _u32, _u32, _bytes),
    st.builds(cm.EnvRequest, _text, _text),
    st.builds(cm.ShellRequest),
    st.builds(cm.ExecRequest, _text),
    st.builds(cm.SubsystemRequest, _text),
    st.builds(cm.WindowChangeRequest, _u32, _u32, _u32, _u32),
    st.builds(cm.SignalRequest, _text),
    st.builds(cm.ExitStatusRequest, _u32),
    st.builds(cm.ExitSignalRequest, _text, st.booleans(), _text, _text),
    st.builds(cm.TcpipForwardRequest, _text, _u32),
    st.builds(cm.CancelTcpipForwardRequest, _text, _u32),
    st.builds(cm.KeepaliveRequest),
)


@settings(max_examples=300, deadline=None)
@given(MESSAGES_STRATEGY)
def test_every_channel_message_round_trips(message: Message) -> None:
    payload = message.to_bytes()
    decoded = decode_message(payload)
    assert decoded == message and type(decoded) is type(message) and decoded.to_bytes() == payload
    _spans_point_at_the_bytes(decoded, payload)


@settings(max_examples=300, deadline=None)
@given(FIELDS_STRATEGY)
def test_every_typed_field_class_round_trips(fields: cm.TypedFields) -> None:
    data = fields.encode()
    table = {**cm.OPEN_TYPES, **cm.CHANNEL_REQUEST_TYPES, **cm.GLOBAL_REQUEST_TYPES}
    decoded = table[fields.KIND].decode(data, base_offset=10)
    assert decoded == fields and decoded.encode() == data
    assert decoded.spans[0].is_group and decoded.spans[0].offset == 10 and decoded.spans[0].length == len(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(80, 100), st.binary(max_size=40))
def test_arbitrary_bodies_decode_or_raise_decode_error(number: int, body: bytes) -> None:
    try:
        message = decode_message(bytes([number]) + body)
    except DecodeError:
        return
    assert message.to_bytes()[:1] == bytes([number])
