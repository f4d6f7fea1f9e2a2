"""A deterministic simulation of the three-way handshake, with delay, loss and retransmission.

Theory of operation
-------------------
Two endpoints, ``"client"`` and ``"server"``, each hold a :class:`~handshake_lib.tcp.states.TCPConnection`
(the RFC 9293 state table) and exchange real :class:`~handshake_lib.tcp.segment.TCPSegment` objects
through a virtual network.  Time is virtual: a priority queue of events (a segment arrives, a timer
fires) ordered by time, processed one by one.  Nothing sleeps and nothing reads a clock, so a run
takes microseconds and the same seed always gives the same run.

* Every segment put on the network is a numbered *transmission* (0 = the first one sent).  It arrives
  ``one_way_delay`` seconds later, unless it is lost: either its number is in ``drop`` (``drop={0}``
  loses the first SYN, which is how a lesson shows a retransmission) or a seeded coin with
  probability ``loss_rate`` says so.
* A SYN (or SYN,ACK) starts a retransmission timer of ``initial_rto`` = 1 second (RFC 6298 section
  2.1).  When it expires before the answer arrives the segment is sent again and the timeout doubles
  (RFC 6298 section 5.5, "back off the timer"), up to ``max_rto``.  After ``max_retries`` resends the
  endpoint gives up (RFC 9293 section 3.10.8, user timeout) and the outcome says which side did.
* Initial sequence numbers are random 32-bit numbers from a seeded ``random.Random`` (RFC 9293
  section 3.4.1 wants them unpredictable; a seed makes a lesson reproducible), or given explicitly.
* With ``simultaneous_open=True`` both endpoints perform an active OPEN at time 0: each receives the
  other's SYN in SYN-SENT, goes to SYN-RECEIVED and answers SYN,ACK (RFC 9293 Figure 6).

Every arriving segment becomes an :class:`~handshake_lib.tcp.states.Event` and goes through the state
table; what the table says to send is what the endpoint sends.  A segment the table does not allow in
the current state is recorded in ``ignored`` and dropped, as a real stack would discard it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from ..errors import EncodeError
from .segment import MSS, Flags, TCPSegment
from .states import Event, InvalidTransition, State, TCPConnection

__all__ = ["Transmission", "HandshakeResult", "Outcome", "simulate_handshake", "ENDPOINTS"]

ENDPOINTS = ("client", "server")
_SEQUENCE_SPACE = 1 << 32


@dataclass
class Transmission:
    """One segment put on the network (the viz helper draws these as arrows)."""

    sender: str  # "client" or "server"
    receiver: str
    label: str  # e.g. "SYN seq=1000"
    sent_at: float
    received_at: float | None  # None: the network lost it
    segment: TCPSegment
    index: int = 0  # 0 for the first transmission of the run
    retransmission: bool = False

    @property
    def lost(self) -> bool:
        return self.received_at is None


class Outcome(Enum):
    ESTABLISHED = "both endpoints reached ESTABLISHED"
    CLIENT_GAVE_UP = "the client gave up: its SYN was never answered (retries exhausted)"
    SERVER_GAVE_UP = "the server gave up: its SYN,ACK was never acknowledged (retries exhausted)"
    BOTH_GAVE_UP = "both endpoints gave up (retries exhausted)"
    INCOMPLETE = "the simulation stopped before the handshake completed"


@dataclass
class HandshakeResult:
    transmissions: list[Transmission]
    timeline: list[tuple[float, str, State]]  # (time, endpoint, state entered); both start at time 0
    established_at: dict[str, float | None]
    isn: dict[str, int]
    outcome: Outcome
    one_way_delay: float
    ignored: list[tuple[float, str, str]] = field(default_factory=list)  # (time, endpoint, why)

    @property
    def client_isn(self) -> int:
        return self.isn["client"]

    @property
    def server_isn(self) -> int:
        return self.isn["server"]

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.ESTABLISHED

    @property
    def rtt(self) -> float:
        return 2 * self.one_way_delay

    def final_state(self, endpoint: str) -> State:
        return [state for _, name, state in self.timeline if name == endpoint][-1]

    def retransmissions(self, sender: str | None = None) -> list[Transmission]:
        return [t for t in self.transmissions if t.retransmission and (sender is None or t.sender == sender)]


@dataclass
class _Endpoint:
    name: str
    peer: str
    port: int
    isn: int
    connection: TCPConnection = field(default_factory=TCPConnection)
    peer_isn: int | None = None
    rto: float = 1.0
    retries: int = 0
    timer_generation: int = 0  # a timer fires only if no newer timer (or cancellation) replaced it
    timer_armed: bool = False


def simulate_handshake(
    *,
    seed: int | None = 0,
    rng: random.Random | None = None,
    one_way_delay: float = 0.05,
    drop: Iterable[int] = (),
    loss_rate: float = 0.0,
    initial_rto: float = 1.0,
    max_rto: float = 60.0,
    max_retries: int = 6,
    simultaneous_open: bool = False,
    client_isn: int | None = None,
    server_isn: int | None = None,
    client_port: int = 50000,
    server_port: int = 80,
    mss: int = 1460,
    max_time: float = 3600.0,
) -> HandshakeResult:
    """Run one handshake and return everything that happened.

    ``drop`` holds transmission indices to lose; ``loss_rate`` loses others at random (seeded).
    ``max_retries`` is how many times a SYN or SYN,ACK is resent before giving up (Linux's
    ``tcp_syn_retries`` defaults to 6).
    """
    if one_way_delay < 0 or initial_rto <= 0 or max_rto < initial_rto or max_retries < 0:
        raise ValueError("delay must be >= 0, 0 < initial_rto <= max_rto, max_retries >= 0")
    if not 0.0 <= loss_rate <= 1.0:
        raise ValueError(f"loss_rate {loss_rate} is not a probability")
    for isn in (client_isn, server_isn):
        if isn is not None and not 0 <= isn < _SEQUENCE_SPACE:
            raise EncodeError(f"ISN {isn} is not a 32-bit sequence number")
    rng = rng if rng is not None else random.Random(seed)
    # Draw both ISNs first and always, so that fixing one does not change the other or the losses.
    drawn = (rng.getrandbits(32), rng.getrandbits(32))
    endpoints = {
        "client": _Endpoint("client", "server", client_port, drawn[0] if client_isn is None else client_isn),
        "server": _Endpoint("server", "client", server_port, drawn[1] if server_isn is None else server_isn),
    }
    drop_indices = set(drop)
    transmissions: list[Transmission] = []
    timeline: list[tuple[float, str, State]] = [(0.0, name, State.CLOSED) for name in ENDPOINTS]
    ignored: list[tuple[float, str, str]] = []
    gave_up: set[str] = set()
    queue: list[tuple[float, int, str, str, object]] = []
    order = 0  # tie-breaker: events at the same time run in the order they were scheduled

    def schedule(time: float, kind: str, endpoint: str, payload: object) -> None:
        nonlocal order
        heapq.heappush(queue, (time, order, kind, endpoint, payload))
        order += 1

    def apply(now: float, endpoint: _Endpoint, event: Event) -> str:
        before = endpoint.connection.state
        row = endpoint.connection.handle(event)
        if row.target is not before:
            timeline.append((now, endpoint.name, row.target))
        return row.send

    def arm_timer(now: float, endpoint: _Endpoint) -> None:
        endpoint.timer_generation += 1
        endpoint.timer_armed = True
        schedule(now + endpoint.rto, "timer", endpoint.name, endpoint.timer_generation)

    def cancel_timer(endpoint: _Endpoint) -> None:
        endpoint.timer_generation += 1
        endpoint.timer_armed = False

    def transmit(now: float, endpoint: _Endpoint, send: str, *, retransmission: bool = False) -> None:
        flags = Flags(0)
        for name in send.split(","):
            flags |= Flags[name]
        seq = endpoint.isn if Flags.SYN in flags else (endpoint.isn + 1) % _SEQUENCE_SPACE
        ack = 0 if Flags.ACK not in flags or endpoint.peer_isn is None else (endpoint.peer_isn + 1) % _SEQUENCE_SPACE
        peer = endpoints[endpoint.peer]
        segment = TCPSegment(
            src_port=endpoint.port,
            dst_port=peer.port,
            seq=seq,
            ack=ack,
            flags=flags,
            window=65535,
            options=[MSS(mss)] if Flags.SYN in flags else [],
        )
        index = len(transmissions)
        lost = index in drop_indices or (loss_rate > 0 and rng.random() < loss_rate)
        arrival = None if lost else now + one_way_delay
        label = segment.summary() + (" (retransmission)" if retransmission else "")
        transmissions.append(
            Transmission(endpoint.name, peer.name, label, now, arrival, segment, index, retransmission)
        )
        if arrival is not None:
            schedule(arrival, "arrive", peer.name, segment)

    def open_actively(now: float, endpoint: _Endpoint) -> None:
        transmit(now, endpoint, apply(now, endpoint, Event.active_open))
        endpoint.rto, endpoint.retries = initial_rto, 0
        arm_timer(now, endpoint)

    # Time 0: the server listens (or, for a simultaneous open, both ends connect).
    for endpoint in endpoints.values():
        endpoint.rto = initial_rto
    if simultaneous_open:
        open_actively(0.0, endpoints["client"])
        open_actively(0.0, endpoints["server"])
    else:
        apply(0.0, endpoints["server"], Event.passive_open)
        open_actively(0.0, endpoints["client"])

    while queue:
        now, _, kind, name, payload = heapq.heappop(queue)
        if now > max_time:
            break
        endpoint = endpoints[name]
        if kind == "timer":
            if payload != endpoint.timer_generation or not endpoint.timer_armed:
                continue  # cancelled or replaced
            if endpoint.retries >= max_retries:
                apply(now, endpoint, Event.user_timeout)
                cancel_timer(endpoint)
                gave_up.add(name)
                continue
            endpoint.retries += 1
            endpoint.rto = min(endpoint.rto * 2, max_rto)
            send = apply(now, endpoint, Event.retransmission_timeout)
            transmit(now, endpoint, send, retransmission=True)
            arm_timer(now, endpoint)
            continue

        assert isinstance(payload, TCPSegment)
        segment = payload
        event = _event_for(segment, endpoint)
        if event is None:
            ignored.append((now, name, f"{segment.summary()}: does not acknowledge our ISN"))
            continue
        state_before = endpoint.connection.state
        try:
            send = apply(now, endpoint, event)
        except InvalidTransition as error:
            ignored.append((now, name, f"{segment.summary()}: {error}"))
            continue
        if Flags.SYN in segment.flags:
            endpoint.peer_isn = segment.seq
        new_state = endpoint.connection.state
        if new_state is State.ESTABLISHED:
            cancel_timer(endpoint)
        if send:
            resend = new_state is state_before and Flags.SYN in Flags[send.split(",")[0]]
            transmit(now, endpoint, send, retransmission=resend)
            if new_state is State.SYN_RECEIVED and state_before is not State.SYN_RECEIVED:
                # Our SYN,ACK now needs acknowledging.  After a simultaneous open our SYN was sent
                # already and its timer keeps running: restart it with the initial timeout.
                endpoint.rto, endpoint.retries = initial_rto, 0
                arm_timer(now, endpoint)

    established_at: dict[str, float | None] = dict.fromkeys(ENDPOINTS)
    for time, name, state in timeline:
        if state is State.ESTABLISHED and established_at[name] is None:
            established_at[name] = time
    if all(established_at[name] is not None for name in ENDPOINTS):
        outcome = Outcome.ESTABLISHED
    elif gave_up == {"client", "server"}:
        outcome = Outcome.BOTH_GAVE_UP
    elif "client" in gave_up:
        outcome = Outcome.CLIENT_GAVE_UP
    elif "server" in gave_up:
        outcome = Outcome.SERVER_GAVE_UP
    else:
        outcome = Outcome.INCOMPLETE
    return HandshakeResult(
        transmissions=transmissions,
        timeline=timeline,
        established_at=established_at,
        isn={name: endpoints[name].isn for name in ENDPOINTS},
        outcome=outcome,
        one_way_delay=one_way_delay,
        ignored=ignored,
    )


def _event_for(segment: TCPSegment, endpoint: _Endpoint) -> Event | None:
    """Which table event an arriving handshake segment is; None if its ACK is not for our SYN."""
    flags = segment.flags
    if Flags.RST in flags:
        return Event.rcv_rst
    if Flags.ACK in flags and segment.ack != (endpoint.isn + 1) % _SEQUENCE_SPACE:
        return None  # RFC 9293 3.10.7.3: an unacceptable ACK (a real stack answers with RST)
    if Flags.SYN in flags:
        return Event.rcv_syn_ack if Flags.ACK in flags else Event.rcv_syn
    if Flags.FIN in flags:
        return Event.rcv_fin
    return Event.rcv_ack
