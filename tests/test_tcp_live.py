"""TCP_INFO from a real loopback connection: the kernel's view of the handshake we teach."""

from __future__ import annotations

import socket
import struct
import sys

import pytest

from handshake_lib.net.tcp import LiveObservationUnsupported, observe_loopback, read_tcp_info
from handshake_lib.tcp import State, parse_tcp_info

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux-only")


@linux_only
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_both_ends_are_established_with_plausible_numbers(host: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    observation = observe_loopback(host, payload=b"x" * 100, timeout=5.0)
    for info in (observation.client, observation.server):
        assert info.state is State.ESTABLISHED and info.linux_state == 1
        assert info.rtt_us > 0  # measured from the handshake and the echo
        assert info.rto_us >= 200_000  # Linux's minimum RTO (TCP_RTO_MIN) is 200 ms
        assert 536 <= info.snd_mss <= 65535 and 536 <= info.advmss <= 65535
        assert info.retransmits == 0 and info.total_retrans == 0
        assert "sack" in info.options and "timestamps" in info.options
    # Each side's bytes: the client sent 100 and got 100 back.  Linux has reported tcpi_bytes_received
    # since 4.1 (2015), so on Linux a None means the struct was misread, not an old kernel.
    assert (observation.client.bytes_received, observation.server.bytes_received) == (100, 100)
    assert observation.client_address[0] == observation.server_address[0]
    assert observation.client_address[1] != observation.server_address[1]


@linux_only
def test_listener_state_and_closed_socket() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        assert read_tcp_info(listener).state is State.LISTEN
    with socket.socket() as fresh:
        assert read_tcp_info(fresh).state is State.CLOSED


@pytest.mark.parametrize("platform", ["linux", "darwin"])
@pytest.mark.parametrize("host", ["192.0.2.1", "0.0.0.0", "example.com"])
def test_refuses_non_loopback_hosts(host: str, platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The host is checked before TCP_INFO is looked for, so the refusal is the same ValueError on every
    # platform (not LiveObservationUnsupported on macOS), and comes before any socket is opened.
    monkeypatch.setattr(sys, "platform", platform)
    with pytest.raises(ValueError, match=r"only connects on the loopback interface \(127\.0\.0\.1 or ::1\)") as caught:
        observe_loopback(host)
    assert repr(host) in str(caught.value)


def test_unsupported_platform_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(LiveObservationUnsupported, match="darwin"):
        observe_loopback()


@linux_only
def test_window_scale_follows_the_receive_buffer() -> None:
    # A client with a 4 KiB receive buffer needs no window scaling, so it announces a smaller shift in
    # its SYN than the server does; each side's send shift is the other side's receive shift.  This
    # also pins down the order of the two 4-bit fields in struct tcp_info.
    observation = observe_loopback(client_receive_buffer=4096)
    client, server = observation.client, observation.server
    assert client.rcv_wscale < server.rcv_wscale
    assert client.rcv_wscale == server.snd_wscale and server.rcv_wscale == client.snd_wscale


def test_parse_tcp_info_decodes_bytes_without_a_socket() -> None:
    # The sans-I/O half (handshake_lib.tcp.info) on bytes laid out as Linux's struct tcp_info:
    # ESTABLISHED, timestamps+sack, send shift 9 and receive shift 7, rto 204000 us, mss 32768, rtt 50 us.
    header = bytes([1, 0, 0, 0, 0, 1 | 2, 0x79 if sys.byteorder == "little" else 0x97, 0])
    words = [0] * 24
    words[0], words[2], words[3], words[15] = 204_000, 32768, 32768, 50
    raw = header + struct.pack("=24I", *words)
    info = parse_tcp_info(raw)
    assert info.state is State.ESTABLISHED and info.linux_state == 1
    assert info.options == {"timestamps", "sack"}
    assert (info.snd_wscale, info.rcv_wscale) == (9, 7)
    assert info.rto_us == 204_000 and info.snd_mss == 32768 and info.rtt_us == 50
    assert info.bytes_received is None  # the short (pre-4.1) struct has no byte counters
    with pytest.raises(LiveObservationUnsupported, match="8 bytes"):
        parse_tcp_info(raw[:8])
