"""The connection protocol core (ssh/channels.py): paramiko's real Channel code on the other end, and a pair.

The peer nobody here wrote is paramiko's ``Channel`` (the class paramiko's client and server use for every
channel), run against our server core through a stand-in for its Transport that only carries messages:
paramiko builds each message with its own code (exec_command, send, its WINDOW_ADJUSTs from recv, its
CLOSE answer) and reads ours with its own handlers (_feed, _handle_request, _window_adjust...), so the
fields, the window arithmetic and the close handshake are checked against an independent implementation.
A client core and a server core wired together (every message through bytes and decode_message) then
cover what paramiko's Channel cannot drive alone: several channels, the stall and resume of a 5 MiB
transfer, floods, the reply FIFOs, and every typed error.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import require_module

from handshake_lib.errors import (
    ChannelError,
    ChannelStateError,
    DecodeError,
    SendBufferFull,
    UnexpectedMessage,
    WindowExceeded,
)
from handshake_lib.ssh import channel_messages as cm
from handshake_lib.ssh.channels import (
    CHANNEL_TABLE,
    DEFAULT_WINDOW,
    ChannelClosed,
    ChannelData,
    ChannelEOF,
    ChannelInput,
    ChannelOpened,
    ChannelOpenRefused,
    ChannelOpenRequested,
    ChannelRequestAnswered,
    ChannelRequestReceived,
    ChannelState,
    ConnectionProtocol,
    ExitSignal,
    ExitStatus,
    GlobalRequestAnswered,
    GlobalRequestReceived,
    WindowAdjusted,
    transition_for,
)
from handshake_lib.ssh.messages import Ignore, Message, decode_message

MiB = 1024 * 1024


class Wire:
    """Two cores joined through bytes: every message is encoded, decoded again, and recorded."""

    def __init__(self, client: ConnectionProtocol, server: ConnectionProtocol) -> None:
        self.client, self.server = client, server
        self.log: list[tuple[str, Message]] = []  # (sender, message), in order

    def pump(self, rounds: int = 1000) -> tuple[list[object], list[object]]:
        """Carry messages both ways until both are quiet; the events (client's, server's)."""
        events: dict[str, list[object]] = {"client": [], "server": []}
        for _ in range(rounds):
            moved = False
            for sender, source, target in (("client", self.client, self.server), ("server", self.server, self.client)):
                for message in source.messages_to_send():
                    moved = True
                    self.log.append((sender, message))
                    receiver = "server" if sender == "client" else "client"
                    events[receiver] += target.receive(decode_message(message.to_bytes()))
            if not moved:
                return events["client"], events["server"]
        raise AssertionError("the two cores never went quiet")

    def sent(self, sender: str) -> list[str]:
        return [type(m).__name__ for s, m in self.log if s == sender]


def _open_session(wire: Wire) -> tuple[int, int]:
    """A session channel opened by the client and accepted by the server: (client's number, server's)."""
    ours = wire.client.open_session()
    _, server_events = wire.pump()
    [requested] = server_events
    assert isinstance(requested, ChannelOpenRequested) and requested.kind == "session"
    wire.server.accept(requested.channel)
    client_events, _ = wire.pump()
    assert client_events == [ChannelOpened(ours, requested.channel, DEFAULT_WINDOW, 32768)]
    return ours, requested.channel


def _data(events: list[object], channel: int, stderr: bool = False) -> bytes:
    return b"".join(
        e.data for e in events if isinstance(e, ChannelData) and e.channel == channel and e.stderr == stderr
    )


# -- paramiko's Channel on the other end --------------------------------------------------------------------
class _ParamikoTransportStandIn:
    """What paramiko.Channel asks of its Transport, and no more: it carries the messages the channel sends."""

    def __init__(self, paramiko: Any) -> None:
        self._paramiko = paramiko
        self.sent: list[bytes] = []
        self.channel: Any = None

    def get_log_channel(self) -> str:
        return "paramiko.transport"

    def _sanitize_packet_size(self, size: int) -> int:
        return self._paramiko.Transport._sanitize_packet_size(self, size)

    @property
    def default_max_packet_size(self) -> int:
        return 32768

    def _send_user_message(self, message: Any) -> None:
        self.sent.append(message.asbytes())
        channel = self.channel
        if channel is not None and not channel.event.is_set():
            # the request "succeeded" as far as paramiko's waiting thread knows: our core answers for real,
            # and the test checks that answer separately
            channel.event_ready = True
            channel.event.set()

    def _unlink_channel(self, chanid: int) -> None:
        pass

    def get_exception(self) -> None:
        return None

    server_object = None  # paramiko's channel asks it about server-side requests; a client has none


def _to_paramiko(paramiko: Any, channel: Any, message: Message) -> None:
    """Hand one of our messages to paramiko's channel, through the handler its Transport would call."""
    m = paramiko.Message(message.to_bytes()[1:])
    handler = {
        cm.ChannelData: channel._feed,
        cm.ChannelExtendedData: channel._feed_extended,
        cm.ChannelWindowAdjust: channel._window_adjust,
        cm.ChannelRequest: channel._handle_request,
        cm.ChannelEOF: channel._handle_eof,
        cm.ChannelClose: channel._handle_close,
        cm.ChannelSuccess: channel._request_success,
    }[type(message)]
    m.get_int()  # the recipient channel: paramiko's Transport reads it to find the channel
    handler(m)


def test_paramiko_channel_runs_a_command_against_our_server(paramiko: Any) -> None:
    """paramiko's Channel opens, execs, reads 200 KiB of output through a 64 KiB window (its own
    WINDOW_ADJUSTs release our queued data), stderr, exit status, EOF, and answers our CLOSE."""
    transport = _ParamikoTransportStandIn(paramiko)
    channel = paramiko.Channel(5)
    channel._set_transport(transport)
    channel._set_window(65536, 32768)  # paramiko's receive side: a small window, so it must adjust
    transport.channel = channel
    server = ConnectionProtocol("server")

    # CHANNEL_OPEN as paramiko's Transport.open_channel writes it
    open_ = paramiko.Message()
    open_.add_byte(bytes([90]))
    for kind, value in (("string", "session"), ("int", 5), ("int", 65536), ("int", 32768)):
        getattr(open_, f"add_{kind}")(value)
    [requested] = server.receive(decode_message(open_.asbytes()))
    assert requested == ChannelOpenRequested(0, "session", cm.SessionOpen(), 65536, 32768)
    server.accept(0)
    [confirmation] = server.messages_to_send()
    # what Transport._parse_channel_open_success reads, in its order
    m = paramiko.Message(confirmation.to_bytes()[1:])
    chanid, server_chanid, window, max_packet = (m.get_int() for _ in range(4))
    assert (chanid, server_chanid, window, max_packet) == (5, 0, DEFAULT_WINDOW, 32768)
    channel._set_remote_channel(server_chanid, window, max_packet)
    channel.active = True

    channel.exec_command("seq 1 100000")
    [exec_request] = [decode_message(b) for b in transport.sent]
    transport.sent.clear()
    [received] = server.receive(exec_request)
    assert received == ChannelRequestReceived(0, "exec", cm.ExecRequest("seq 1 100000"), True)
    server.reply(0, True)
    output = bytes(range(256)) * 800  # 204,800 bytes: more than paramiko's 64 KiB window
    server.send_data(0, output)
    server.send_data(0, b"warning\n", stderr=True)
    server.send_exit_status(0, 7)
    server.send_eof(0)
    server.close(0)

    got = b""
    stalled = adjusts = 0
    for _ in range(100):
        outgoing = server.messages_to_send()
        # the window never lets us send more than paramiko granted, nor a packet over its maximum
        assert all(len(o.data) <= 32768 for o in outgoing if isinstance(o, cm.ChannelData))
        for message in outgoing:
            _to_paramiko(paramiko, channel, message)
        while channel.recv_ready():
            got += channel.recv(1 << 20)  # paramiko's recv sends WINDOW_ADJUST once 1/10 of its window is read
        stalled += server.channels and server.channel_info(0)["buffered"] > 0
        for raw in transport.sent:
            adjusts += raw[0] == 93
            server.receive(decode_message(raw))
        transport.sent.clear()
        if not server.channels:
            break
    assert got == output
    assert stalled >= 2 and adjusts >= 2  # our data waited for paramiko's window, its adjusts released it
    assert channel.recv_stderr(100) == b"warning\n"
    assert channel.recv_exit_status() == 7 and channel.eof_received
    assert channel.closed and not server.channels  # paramiko answered our CLOSE: the number is free


def test_paramiko_channel_stalls_on_our_window_and_resumes_on_consume(paramiko: Any) -> None:
    """paramiko's send() obeys the window we grant (auto_window=False): it stops, then goes on when we consume."""
    transport = _ParamikoTransportStandIn(paramiko)
    channel = paramiko.Channel(1)
    channel._set_transport(transport)
    server = ConnectionProtocol("server", window=65536, max_packet=16384, auto_window=False)
    [requested] = server.receive(cm.ChannelOpen("session", 1, 2 * MiB, 32768))
    server.accept(requested.channel)
    m = paramiko.Message(server.messages_to_send()[0].to_bytes()[1:])
    _, server_chanid, window, max_packet = (m.get_int() for _ in range(4))
    channel._set_remote_channel(server_chanid, window, max_packet)
    channel.active = True
    channel.settimeout(0.0)  # non-blocking: a shut window raises instead of waiting

    payload = b"u" * 200_000
    sent = 0
    received: list[object] = []
    for _ in range(200):
        try:
            sent += channel.send(payload[sent:])
        except TimeoutError:  # paramiko's "the window is shut"
            for raw in transport.sent:
                received += server.receive(decode_message(raw))
            transport.sent.clear()
            assert server.channel_info(requested.channel)["window"] == 0  # paramiko filled it exactly
            server.consume(requested.channel, 65536)
            for message in server.messages_to_send():
                assert isinstance(message, cm.ChannelWindowAdjust)
                _to_paramiko(paramiko, channel, message)
        if sent == len(payload):
            break
    for raw in transport.sent:
        received += server.receive(decode_message(raw))
    assert _data(received, requested.channel) == payload


@pytest.fixture(scope="module")
def paramiko() -> Any:
    return require_module("paramiko", "the independent channel implementation")


# -- a client core and a server core ------------------------------------------------------------------------
def test_exec_output_exit_status_eof_close_in_rfc_order() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    wire.client.env(ours, "LANG", "C")
    wire.client.exec(ours, "echo hello")
    _, server_events = wire.pump()
    assert server_events == [
        ChannelRequestReceived(theirs, "env", cm.EnvRequest("LANG", "C"), False),
        ChannelRequestReceived(theirs, "exec", cm.ExecRequest("echo hello"), True),
    ]
    wire.server.reply(theirs, True)
    wire.server.send_data(theirs, b"hello\n")
    wire.server.send_data(theirs, b"a warning\n", stderr=True)
    wire.server.send_exit_status(theirs, 0)
    wire.server.send_eof(theirs)
    wire.server.close(theirs)
    client_events, server_events = wire.pump()
    assert client_events == [
        ChannelRequestAnswered(ours, "exec", True),
        ChannelData(ours, b"hello\n"),
        ChannelData(ours, b"a warning\n", stderr=True),
        ExitStatus(ours, 0),
        ChannelEOF(ours),
        ChannelClosed(ours),
    ]
    assert server_events == [ChannelClosed(theirs)]
    assert wire.sent("server")[-6:] == [
        "ChannelSuccess", "ChannelData", "ChannelExtendedData", "ChannelRequest", "ChannelEOF", "ChannelClose",
    ]  # fmt: skip
    assert wire.sent("client")[-1] == "ChannelClose" and wire.sent("client").count("ChannelClose") == 1
    assert wire.client.channels == {} and wire.server.channels == {}


def test_numbers_are_reused_only_after_both_closes() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    first, theirs = _open_session(wire)
    wire.client.close(first)
    assert wire.client.channels == {first: ChannelState.CLOSE_SENT}
    assert wire.client.open_session() == first + 1  # our CLOSE is out, the peer's is not in: still taken
    wire.pump()  # the server answers the CLOSE (and sees the second open)
    assert first not in wire.client.channels
    assert wire.client.open_session() == first  # both CLOSEs crossed: free again


def test_simultaneous_closes_are_each_answered_once() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    wire.client.close(ours)
    wire.server.close(theirs)
    client_events, server_events = wire.pump()
    assert client_events == [ChannelClosed(ours)] and server_events == [ChannelClosed(theirs)]
    assert wire.sent("client").count("ChannelClose") == wire.sent("server").count("ChannelClose") == 1


def test_two_channels_interleaved() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    (a, sa), (b, sb) = _open_session(wire), _open_session(wire)
    assert a != b and sa != sb
    wire.client.exec(a, "cat one")
    wire.client.exec(b, "cat two")
    wire.pump()
    for channel in (sa, sb):
        wire.server.reply(channel, True)
    for i in range(5):
        wire.server.send_data(sa, b"A%d " % i)
        wire.server.send_data(sb, b"B%d " % i)
    wire.server.send_exit_status(sb, 2)
    wire.server.close(sb)
    wire.server.send_exit_status(sa, 1)
    wire.server.close(sa)
    client_events, _ = wire.pump()
    assert _data(client_events, a) == b"A0 A1 A2 A3 A4 " and _data(client_events, b) == b"B0 B1 B2 B3 B4 "
    channels = [e.channel for e in client_events if isinstance(e, ChannelData)]
    assert channels == [a, b] * 5  # interleaved on the wire, separated by channel number
    assert [e for e in client_events if isinstance(e, ExitStatus)] == [ExitStatus(b, 2), ExitStatus(a, 1)]
    assert wire.client.channels == {} and wire.server.channels == {}


def test_a_5_mib_transfer_stalls_at_the_window_and_resumes_on_window_adjust() -> None:
    wire = Wire(ConnectionProtocol("client", auto_window=False), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    payload = bytes(range(251)) * (5 * MiB // 251 + 1)
    payload = payload[: 5 * MiB]
    wire.server.send_data(theirs, payload)
    assert wire.server.channel_info(theirs)["buffered"] == 3 * MiB  # the window was 2 MiB
    client_events, _ = wire.pump()
    assert len(_data(client_events, ours)) == DEFAULT_WINDOW  # exactly the window, then nothing: stalled
    assert wire.client.channel_info(ours)["window"] == 0
    assert wire.pump() == ([], [])  # still stalled: nobody consumed
    got = _data(client_events, ours)
    adjusts = 0
    while len(got) < len(payload):
        wire.client.consume(ours, wire.client.channel_info(ours)["unconsumed"])
        client_events, server_events = wire.pump()
        assert any(isinstance(e, WindowAdjusted) for e in server_events)
        adjusts += 1
        got += _data(client_events, ours)
    assert got == payload and adjusts == 2  # 2 MiB at first, then 2 MiB per adjust: 2 + 2 + 1
    sizes = [len(m.data) for s, m in wire.log if isinstance(m, cm.ChannelData)]
    assert max(sizes) == 32768 and sum(sizes) == 5 * MiB  # cut at the peer's maximum packet
    # each piece is bytes of its own (the outbox slices a memoryview, so as not to copy the rest each time)
    assert all(type(m.data) is bytes for _, m in wire.log if isinstance(m, cm.ChannelData))


def test_auto_window_reopens_at_half() -> None:
    wire = Wire(ConnectionProtocol("client", window=65536), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    wire.server.send_data(theirs, b"x" * 40000)
    client_events, server_events = wire.pump()
    assert len(_data(client_events, ours)) == 40000
    # the first 32,768-byte packet used half the window: given back at once; the other 7,232 wait
    assert server_events == [WindowAdjusted(theirs, 32768, 65536 - 40000 + 32768)]


def test_send_buffer_is_bounded_and_nothing_is_queued_past_it() -> None:
    wire = Wire(ConnectionProtocol("client", window=1000), ConnectionProtocol("server", max_buffered=5000))
    ours, theirs = _open_session(wire)
    wire.server.send_data(theirs, b"a" * 6000)  # 1000 leave, 5000 wait: exactly the bound
    with pytest.raises(SendBufferFull):
        wire.server.send_data(theirs, b"b")
    assert wire.server.channel_info(theirs)["buffered"] == 5000
    with pytest.raises(ChannelStateError):  # SendBufferFull is our own mistake, not the peer's
        wire.server.send_data(theirs, b"b" * 10)


def _opened_client() -> tuple[ConnectionProtocol, int]:
    client = ConnectionProtocol("client", window=1000, max_packet=500, auto_window=False)
    ours = client.open_session()
    client.messages_to_send()
    client.receive(cm.ChannelOpenConfirmation(ours, 9, 1 << 20, 32768))
    return client, ours


def test_data_beyond_our_window_is_window_exceeded() -> None:
    client, ours = _opened_client()
    client.receive(cm.ChannelData(ours, b"x" * 500))
    client.receive(cm.ChannelData(ours, b"x" * 400))
    with pytest.raises(WindowExceeded, match="window left is 100"):
        client.receive(cm.ChannelData(ours, b"x" * 101))


def test_a_packet_over_our_maximum_is_window_exceeded() -> None:
    client, ours = _opened_client()
    with pytest.raises(WindowExceeded, match="maximum is 500"):
        client.receive(cm.ChannelExtendedData(ours, 1, b"x" * 501))


def test_window_adjust_past_2_32_is_window_exceeded() -> None:
    client, ours = _opened_client()
    with pytest.raises(WindowExceeded, match="2\\^32"):
        client.receive(cm.ChannelWindowAdjust(ours, 2**32 - 1))


def test_data_after_eof_or_on_an_unknown_channel_is_channel_error() -> None:
    client, ours = _opened_client()
    client.receive(cm.ChannelEOF(ours))
    with pytest.raises(ChannelError, match="after the peer's EOF"):
        client.receive(cm.ChannelData(ours, b"late"))
    client, ours = _opened_client()
    with pytest.raises(ChannelError, match="not open"):
        client.receive(cm.ChannelData(ours + 1, b"?"))
    with pytest.raises(ChannelError, match="no request"):
        client.receive(cm.ChannelSuccess(ours))
    with pytest.raises(ChannelError, match="no global request"):
        client.receive(cm.RequestFailure())


def test_data_on_a_closed_channel_is_channel_error() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    wire.server.close(theirs)
    wire.pump()
    with pytest.raises(ChannelError, match="not open"):
        wire.client.receive(cm.ChannelData(ours, b"after the close"))


def test_a_message_with_no_row_is_unexpected() -> None:
    client = ConnectionProtocol("client")
    ours = client.open_session()
    with pytest.raises(UnexpectedMessage, match="CHANNEL_DATA is not allowed on a channel in state OPENING"):
        client.receive(cm.ChannelData(ours, b"too early"))
    with pytest.raises(UnexpectedMessage):
        client.receive(Ignore())


def test_65_opens_the_last_refused_with_resource_shortage_and_the_connection_lives() -> None:
    wire = Wire(ConnectionProtocol("client", max_channels=100), ConnectionProtocol("server"))
    numbers = [wire.client.open_session() for _ in range(65)]
    client_events, server_events = wire.pump()
    assert len(server_events) == 64 and all(isinstance(e, ChannelOpenRequested) for e in server_events)
    assert client_events == [
        ChannelOpenRefused(numbers[-1], cm.ChannelOpenFailureReason.RESOURCE_SHORTAGE, "64 channels open already")
    ]
    for event in server_events:
        wire.server.accept(event.channel)  # type: ignore[attr-defined]
    client_events, _ = wire.pump()
    assert len(client_events) == 64
    wire.client.close(numbers[0])
    wire.pump()
    again = wire.client.open_session()  # a slot is free: served again
    _, server_events = wire.pump()
    assert again == numbers[0] and isinstance(server_events[0], ChannelOpenRequested)
    one = ConnectionProtocol("client", max_channels=1)
    one.open_session()
    with pytest.raises(ChannelStateError, match="max_channels"):
        one.open_session()


def test_channel_types_each_role_refuses() -> None:
    client = ConnectionProtocol("client")
    assert client.receive(cm.ChannelOpen("session", 3, 100, 100)) == []
    [refusal] = client.messages_to_send()
    assert refusal == cm.ChannelOpenFailure(
        3, cm.ChannelOpenFailureReason.ADMINISTRATIVELY_PROHIBITED, refusal.description
    )
    server = ConnectionProtocol("server")
    server.receive(cm.ChannelOpen("x11", 4, 100, 100, b"\x00\x00\x00\x00"))
    [refusal] = server.messages_to_send()
    assert refusal.reason is cm.ChannelOpenFailureReason.UNKNOWN_CHANNEL_TYPE and refusal.recipient_channel == 4
    with pytest.raises(DecodeError):  # a type we know, with malformed fields
        server.receive(cm.ChannelOpen("direct-tcpip", 5, 100, 100, b"\x00\x00"))
    with pytest.raises(ChannelError, match="maximum packet size of 0"):
        server.receive(cm.ChannelOpen("session", 6, 100, 0))
    [requested] = server.receive(
        cm.ChannelOpen("direct-tcpip", 7, 100, 100, cm.DirectTcpipOpen("h", 80, "o", 9).encode())
    )
    assert requested.fields == cm.DirectTcpipOpen("h", 80, "o", 9)


def test_replies_leave_in_request_order() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    wire.client.request(ours, "x-first@example.org", b"", want_reply=True)
    wire.client.request(ours, "exit-status", cm.ExitStatusRequest(3).encode(), want_reply=True)  # odd, legal
    wire.client.request(ours, "x-third@example.org", b"", want_reply=True)
    _, server_events = wire.pump()
    assert [type(e) for e in server_events] == [ChannelRequestReceived, ExitStatus, ChannelRequestReceived]
    client_events, _ = wire.pump()
    assert client_events == []  # exit-status is answered by the core, but only after the first request
    wire.server.reply(theirs, False)
    client_events, _ = wire.pump()
    assert client_events == [
        ChannelRequestAnswered(ours, "x-first@example.org", False),
        ChannelRequestAnswered(ours, "exit-status", True),
    ]
    wire.server.reply(theirs, True)
    client_events, _ = wire.pump()
    assert client_events == [ChannelRequestAnswered(ours, "x-third@example.org", True)]
    assert wire.sent("server")[-3:] == ["ChannelFailure", "ChannelSuccess", "ChannelSuccess"]
    with pytest.raises(ChannelStateError, match="no request"):
        wire.server.reply(theirs, True)


def test_global_requests_and_their_answers_in_order() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    wire.client.tcpip_forward("", 0)
    wire.client.global_request("keepalive@openssh.com")
    wire.client.global_request("no-more-sessions@openssh.com", want_reply=False)
    _, server_events = wire.pump()
    assert server_events == [
        GlobalRequestReceived(
            "tcpip-forward", cm.TcpipForwardRequest("", 0), True, cm.TcpipForwardRequest("", 0).encode()
        ),
        GlobalRequestReceived("keepalive@openssh.com", cm.KeepaliveRequest(), True),
        GlobalRequestReceived("no-more-sessions@openssh.com", None, False),
    ]
    wire.server.reply_global(True, (40001).to_bytes(4, "big"))
    wire.server.reply_global(False)
    client_events, _ = wire.pump()
    assert client_events == [
        GlobalRequestAnswered("tcpip-forward", True, (40001).to_bytes(4, "big")),
        GlobalRequestAnswered("keepalive@openssh.com", False),
    ]
    with pytest.raises(ChannelStateError):
        wire.server.reply_global(True)


def test_exit_signal_and_queued_requests_before_confirmation() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    ours = wire.client.open_session()
    wire.client.exec(ours, "sleep 100")  # queued until the server confirms
    wire.client.send_data(ours, b"stdin")
    _, server_events = wire.pump()
    [requested] = server_events
    wire.server.accept(requested.channel)  # type: ignore[attr-defined]
    _, server_events = wire.pump()
    assert [type(e) for e in server_events] == [ChannelRequestReceived, ChannelData]
    wire.server.reply(requested.channel, True)  # type: ignore[attr-defined]
    wire.server.send_exit_signal(requested.channel, "KILL", True, "killed")  # type: ignore[attr-defined]
    client_events, _ = wire.pump()
    assert client_events[-1] == ExitSignal(ours, "KILL", True, "killed")


def test_our_own_misuse_is_channel_state_error_and_sends_nothing() -> None:
    wire = Wire(ConnectionProtocol("client"), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    wire.client.send_eof(ours)
    wire.pump()
    for misuse in (
        lambda: wire.client.send_data(ours, b"after our EOF"),
        lambda: wire.client.send_eof(ours),
        lambda: wire.client.accept(ours),
        lambda: wire.client.consume(ours, 1),
        lambda: wire.client.send_data(99, b"?"),
    ):
        with pytest.raises(ChannelStateError):
            misuse()
        assert wire.client.messages_to_send() == []
    wire.client.close(ours)
    with pytest.raises(ChannelStateError, match="close\\(\\) is not allowed"):
        wire.client.close(ours)


def test_a_peer_close_drops_what_we_had_queued() -> None:
    wire = Wire(ConnectionProtocol("client", window=1000), ConnectionProtocol("server"))
    ours, theirs = _open_session(wire)
    wire.server.send_data(theirs, b"z" * 3000)  # 2000 wait for a window that will never open
    wire.server.send_eof(theirs)
    wire.client.messages_to_send()  # nothing; the client just closes
    wire.client.close(ours)
    _, server_events = wire.pump()
    assert ChannelClosed(theirs, dropped=2000) in server_events
    assert "ChannelEOF" not in wire.sent("server")  # it was behind the data: dropped with it


def test_the_table() -> None:
    pairs = [(row.source, row.received) for row in CHANNEL_TABLE]
    assert len(pairs) == len(set(pairs))
    reached = {ChannelState.NONE} | {row.target for row in CHANNEL_TABLE}
    assert reached == set(ChannelState)
    # every peer message that names a channel has a row in OPEN
    for received in ChannelInput:
        if not received.is_call and received not in (ChannelInput.CHANNEL_OPEN,):
            if received in (ChannelInput.CHANNEL_OPEN_CONFIRMATION, ChannelInput.CHANNEL_OPEN_FAILURE):
                assert transition_for(ChannelState.OPENING, received)
            else:
                assert transition_for(ChannelState.OPEN, received).target in (ChannelState.OPEN, ChannelState.CLOSED)
    with pytest.raises(UnexpectedMessage):
        transition_for(ChannelState.OPEN, ChannelInput.CHANNEL_OPEN_CONFIRMATION)
    with pytest.raises(ChannelStateError):
        transition_for(ChannelState.CLOSE_SENT, ChannelInput.send_data)
