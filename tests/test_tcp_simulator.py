"""The handshake simulator: timing, loss, retransmission with backoff, simultaneous open, determinism."""

from __future__ import annotations

import random

import pytest

from handshake_lib.tcp import MSS, Flags, Outcome, State, TCPSegment, simulate_handshake, verify_checksum


def states_of(result, endpoint: str) -> list[State]:
    return [state for _, name, state in result.timeline if name == endpoint]


def test_no_loss_timing_and_numbers() -> None:
    delay = 0.04
    result = simulate_handshake(seed=7, one_way_delay=delay)
    assert result.succeeded and result.outcome is Outcome.ESTABLISHED
    syn, syn_ack, ack = result.transmissions
    assert [t.label.split()[0] for t in result.transmissions] == ["SYN", "SYN,ACK", "ACK"]
    assert (syn.sender, syn.receiver, syn_ack.sender) == ("client", "server", "server")
    assert syn.segment.seq == result.client_isn and syn_ack.segment.seq == result.server_isn
    assert syn_ack.segment.ack == (result.client_isn + 1) % 2**32
    assert ack.segment.seq == (result.client_isn + 1) % 2**32 and ack.segment.ack == (result.server_isn + 1) % 2**32
    assert syn.label == f"SYN seq={result.client_isn}"
    # The client is established after one RTT (it has the SYN,ACK), the server after 1.5 RTT (the ACK).
    assert result.established_at["client"] == pytest.approx(result.rtt)
    assert result.established_at["server"] == pytest.approx(1.5 * result.rtt)
    assert [t.received_at for t in result.transmissions] == pytest.approx([delay, 2 * delay, 3 * delay])
    assert states_of(result, "client") == [State.CLOSED, State.SYN_SENT, State.ESTABLISHED]
    assert states_of(result, "server") == [State.CLOSED, State.LISTEN, State.SYN_RECEIVED, State.ESTABLISHED]
    assert not result.retransmissions() and not result.ignored


def test_segments_are_real_and_encodable() -> None:
    result = simulate_handshake(seed=3, mss=1400)
    syn = result.transmissions[0].segment
    assert syn.flags == Flags.SYN and syn.option(MSS) == MSS(1400)
    encoded = syn.encode("192.0.2.1", "192.0.2.2")
    assert verify_checksum("192.0.2.1", "192.0.2.2", encoded)
    assert TCPSegment.decode(encoded).seq == result.client_isn


def test_lost_first_syn_is_retransmitted_after_one_second() -> None:
    result = simulate_handshake(seed=1, one_way_delay=0.05, drop={0})
    first, second = result.transmissions[:2]
    assert first.lost and first.received_at is None
    assert second.retransmission and second.sent_at == pytest.approx(1.0)
    assert second.segment.seq == first.segment.seq and second.label.endswith("(retransmission)")
    assert result.established_at["client"] == pytest.approx(1.0 + result.rtt)
    assert result.succeeded


def test_backoff_doubles_and_retries_run_out() -> None:
    result = simulate_handshake(seed=5, loss_rate=1.0, max_retries=4)
    sent = [t.sent_at for t in result.transmissions]
    assert sent == pytest.approx([0, 1, 3, 7, 15])  # gaps 1, 2, 4, 8 (RFC 6298 5.5)
    assert all(t.lost for t in result.transmissions)
    assert result.outcome is Outcome.CLIENT_GAVE_UP and not result.succeeded
    assert result.final_state("client") is State.CLOSED
    assert result.timeline[-1] == (pytest.approx(31.0), "client", State.CLOSED)  # after the last 16 s wait
    assert result.established_at == {"client": None, "server": None}


def test_max_rto_caps_the_backoff() -> None:
    result = simulate_handshake(seed=5, drop=range(5), max_rto=3.0, max_retries=6)
    gaps = [b.sent_at - a.sent_at for a, b in zip(result.transmissions, result.transmissions[1:4], strict=False)]
    assert gaps == pytest.approx([1, 2, 3])


def test_lost_syn_ack_is_resent_and_the_duplicate_syn_answered() -> None:
    result = simulate_handshake(seed=2, one_way_delay=0.1, drop={1}, max_retries=3)
    labels = [(t.sender, t.label.split()[0], t.sent_at) for t in result.transmissions]
    assert labels[1] == ("server", "SYN,ACK", pytest.approx(0.1))
    server_resends = [t for t in result.retransmissions("server")]
    client_resends = [t for t in result.retransmissions("client")]
    assert client_resends[0].sent_at == pytest.approx(1.0)  # client's SYN timer
    assert server_resends and server_resends[0].sent_at == pytest.approx(1.1)  # server's SYN,ACK timer
    assert result.succeeded


def test_lost_final_ack_leaves_the_server_waiting_until_its_resend() -> None:
    result = simulate_handshake(seed=4, one_way_delay=0.05, drop={2})
    assert result.established_at["client"] == pytest.approx(0.1)
    # The server resends its SYN,ACK at 0.05 + 1 s; the client, ESTABLISHED, acknowledges it again.
    assert result.established_at["server"] == pytest.approx(1.05 + 0.1)
    assert result.succeeded


def test_server_gives_up_when_its_syn_ack_is_never_acknowledged() -> None:
    # Everything from the server is lost: the client gives up on its SYN, and the server on its SYN,ACK.
    drops = set(range(1, 100))
    result = simulate_handshake(seed=1, drop=drops, max_retries=2)
    assert result.outcome is Outcome.BOTH_GAVE_UP
    assert result.final_state("server") is State.CLOSED


def test_simultaneous_open_goes_through_syn_received() -> None:
    result = simulate_handshake(seed=9, simultaneous_open=True, one_way_delay=0.02)
    assert result.succeeded
    for endpoint in ("client", "server"):
        assert states_of(result, endpoint) == [State.CLOSED, State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED]
        assert result.established_at[endpoint] == pytest.approx(0.04)
    flags = sorted(t.segment.flags for t in result.transmissions)
    assert flags == [Flags.SYN, Flags.SYN, Flags.SYN | Flags.ACK, Flags.SYN | Flags.ACK]


def test_same_seed_same_run_and_different_seeds_differ() -> None:
    def run(seed: int):
        result = simulate_handshake(seed=seed, loss_rate=0.4, max_retries=8)
        return result.isn, [(t.label, t.sent_at, t.received_at) for t in result.transmissions], result.timeline

    assert run(11) == run(11)
    assert run(11) != run(12)
    assert simulate_handshake(rng=random.Random(11), loss_rate=0.4).isn == simulate_handshake(seed=11).isn


def test_explicit_isns_for_teaching() -> None:
    result = simulate_handshake(client_isn=1000, server_isn=5000)
    assert [t.label for t in result.transmissions] == ["SYN seq=1000", "SYN,ACK seq=5000 ack=1001",
                                                       "ACK seq=1001 ack=5001"]


def test_isn_wraps_around() -> None:
    result = simulate_handshake(client_isn=2**32 - 1, server_isn=0)
    assert result.transmissions[1].segment.ack == 0
    assert result.succeeded


@pytest.mark.parametrize("kwargs", [{"one_way_delay": -1}, {"loss_rate": 1.5}, {"initial_rto": 0},
                                    {"max_retries": -1}])
def test_bad_parameters(kwargs) -> None:
    with pytest.raises(ValueError):
        simulate_handshake(**kwargs)
