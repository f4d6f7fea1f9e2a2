"""The TCP connection state machine of RFC 9293 (section 3.3.2, Figure 5), as one table.

Theory of operation
-------------------
A TCP endpoint is always in one of eleven states.  Something happens (the application calls OPEN or
CLOSE, a segment arrives with SYN, ACK, FIN or RST set, a timer expires), the endpoint looks up the
pair (current state, event) in :data:`TRANSITIONS`, sends what the row says and moves to the row's
target state.  A pair that is not in the table is a protocol error (:class:`InvalidTransition`).

One arrow depends on history as well as on the state: a RST in SYN-RECEIVED returns to LISTEN only if
the connection was opened passively; after an active OPEN (a simultaneous open) it means "connection
refused" and the connection closes (Figure 5 note 1, section 3.10.7.4).  Rather than an exception
written in code, the table holds both rows, each with an ``after`` guard (``Event.passive_open`` or
``Event.active_open``), and the connection passes how it was opened to the lookup.  A guarded pair
has one row per kind of OPEN and no unguarded row, so the lookup is still a function.

This module is sans-I/O, in the style of h11: :class:`TCPConnection` takes events and answers with
the :class:`Transition` it made (including what to send); it never touches a socket or a clock.
The simulator (:mod:`handshake_lib.tcp.simulator`) turns arriving segments and timers into events;
the notebooks draw the same table with :func:`diagram_rows` and :data:`DIAGRAM_POSITIONS`.

Rows marked ``in_figure=True`` are exactly the arrows of RFC 9293 Figure 5; the others are written in
the RFC's text rather than its figure (its notes 1-3, section 3.10's event processing, retransmission
and user timeouts) and are what a real implementation needs to survive lost and duplicated segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..errors import HandshakeError

__all__ = [
    "State",
    "Event",
    "Transition",
    "TRANSITIONS",
    "InvalidTransition",
    "TCPConnection",
    "diagram_rows",
    "DIAGRAM_POSITIONS",
    "OPENINGS",
    "transition_for",
]


class State(Enum):
    """Connection states; values are the RFC's spelling (Figure 5 abbreviates some of them)."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


class Event(Enum):
    """What can happen to a connection.  Values are the wording of Figure 5's arrow labels."""

    passive_open = "passive OPEN"
    active_open = "active OPEN"
    send = "SEND"  # data to send while in LISTEN turns the passive open into an active one
    close = "CLOSE"
    rcv_syn = "rcv SYN"
    rcv_syn_ack = "rcv SYN,ACK"
    rcv_ack = "rcv ACK"  # the ACK that acknowledges our SYN or our FIN (which one depends on the state)
    rcv_fin = "rcv FIN"
    rcv_fin_ack = "rcv FIN,ACK of FIN"  # a FIN that also acknowledges our FIN (RFC 9293 Figure 5, note 2)
    rcv_rst = "rcv RST"
    retransmission_timeout = "RTO expires"  # RFC 6298: resend the unacknowledged SYN or SYN,ACK
    user_timeout = "user timeout"  # RFC 9293 section 3.10.8: give up, abort the connection
    timeout_2msl = "Timeout=2MSL"


@dataclass(frozen=True)
class Transition:
    """One row of the table: in ``source``, ``event`` sends ``send`` (if anything) and moves to ``target``."""

    source: State
    event: Event
    target: State
    send: str = ""  # control bits of the segment to send, e.g. "SYN,ACK"; "" = nothing
    action: str = ""  # what else happens, in the RFC's words ("create TCB", "delete TCB")
    in_figure: bool = True  # an arrow of RFC 9293 Figure 5 (False: from the RFC's text)
    note: str = ""
    # The row applies only to a connection opened this way (Event.passive_open or Event.active_open);
    # None: however it was opened.  Only note 1's RST in SYN-RECEIVED needs it.
    after: Event | None = None

    @property
    def event_label(self) -> str:
        """The event as the figure words it: "rcv ACK of SYN" rather than "rcv ACK"."""
        if self.event is Event.rcv_ack:
            return "rcv ACK of SYN" if self.source is State.SYN_RECEIVED else "rcv ACK of FIN"
        return self.event.value

    @property
    def condition(self) -> str:
        """The guard as a diagram writes it, ``"after passive OPEN"``; "" for a row without one."""
        return f"after {self.after.value}" if self.after is not None else ""

    @property
    def label(self) -> str:
        """``"rcv SYN / snd SYN,ACK"``: event (and its guard), then what the endpoint does, if anything."""
        when = f"{self.event_label} ({self.condition})" if self.condition else self.event_label
        does = f"snd {self.send}" if self.send else self.action
        return f"{when} / {does}" if does else when


S, E = State, Event

# The one table.  Order follows the figure from top to bottom, then the rows from the RFC's text.
TRANSITIONS: tuple[Transition, ...] = (
    # Opening (Figure 5, top half).
    Transition(S.CLOSED, E.passive_open, S.LISTEN, action="create TCB"),
    Transition(S.CLOSED, E.active_open, S.SYN_SENT, send="SYN", action="create TCB"),
    Transition(S.LISTEN, E.rcv_syn, S.SYN_RECEIVED, send="SYN,ACK"),
    Transition(S.LISTEN, E.send, S.SYN_SENT, send="SYN"),
    Transition(S.LISTEN, E.close, S.CLOSED, action="delete TCB"),
    Transition(S.SYN_SENT, E.close, S.CLOSED, action="delete TCB"),
    # Simultaneous open: both sides sent SYN; each answers the other's SYN with SYN,ACK (section 3.5).
    Transition(S.SYN_SENT, E.rcv_syn, S.SYN_RECEIVED, send="SYN,ACK"),
    Transition(S.SYN_SENT, E.rcv_syn_ack, S.ESTABLISHED, send="ACK"),
    Transition(S.SYN_RECEIVED, E.rcv_ack, S.ESTABLISHED),
    Transition(
        S.SYN_RECEIVED, E.rcv_rst, S.LISTEN, after=E.passive_open,
        note="note 1: only after a passive OPEN (came from LISTEN); the user need not be told",
    ),
    # Closing (Figure 5, bottom half).
    Transition(S.SYN_RECEIVED, E.close, S.FIN_WAIT_1, send="FIN"),
    Transition(S.ESTABLISHED, E.close, S.FIN_WAIT_1, send="FIN"),
    Transition(S.ESTABLISHED, E.rcv_fin, S.CLOSE_WAIT, send="ACK"),
    Transition(S.FIN_WAIT_1, E.rcv_ack, S.FIN_WAIT_2),
    Transition(S.FIN_WAIT_1, E.rcv_fin, S.CLOSING, send="ACK"),
    Transition(S.CLOSE_WAIT, E.close, S.LAST_ACK, send="FIN"),
    Transition(S.FIN_WAIT_2, E.rcv_fin, S.TIME_WAIT, send="ACK"),
    Transition(S.CLOSING, E.rcv_ack, S.TIME_WAIT),
    Transition(S.LAST_ACK, E.rcv_ack, S.CLOSED),
    Transition(S.TIME_WAIT, E.timeout_2msl, S.CLOSED, action="delete TCB"),
    # From the RFC's text rather than its figure.
    Transition(
        S.FIN_WAIT_1, E.rcv_fin_ack, S.TIME_WAIT, send="ACK", in_figure=False,
        note="note 2: the peer's FIN also acknowledges ours, so FIN-WAIT-2 and CLOSING are skipped",
    ),
    Transition(
        S.SYN_RECEIVED, E.rcv_syn_ack, S.ESTABLISHED, in_figure=False,
        note="simultaneous open (Figure 6): the peer's SYN,ACK acknowledges our SYN",
    ),
    Transition(
        S.SYN_SENT, E.retransmission_timeout, S.SYN_SENT, send="SYN", in_figure=False,
        note="RFC 6298: no SYN,ACK before the timer expired; resend the SYN and double the timeout",
    ),
    Transition(
        S.SYN_RECEIVED, E.retransmission_timeout, S.SYN_RECEIVED, send="SYN,ACK", in_figure=False,
        note="RFC 6298: our SYN,ACK was not acknowledged in time; resend it and double the timeout",
    ),
    Transition(
        S.SYN_RECEIVED, E.rcv_syn, S.SYN_RECEIVED, send="SYN,ACK", in_figure=False,
        note="the peer resent its SYN, so our SYN,ACK was probably lost: resend it (as Linux does)",
    ),
    Transition(
        S.ESTABLISHED, E.rcv_syn_ack, S.ESTABLISHED, send="ACK", in_figure=False,
        note="a retransmitted SYN,ACK: our ACK was lost; acknowledge again (section 3.10.7.4)",
    ),
    Transition(
        S.ESTABLISHED, E.rcv_syn, S.ESTABLISHED, send="ACK", in_figure=False,
        note="a SYN in a synchronized state gets a challenge ACK (section 3.10.7.4, RFC 5961)",
    ),
    Transition(
        S.ESTABLISHED, E.rcv_ack, S.ESTABLISHED, in_figure=False,
        note="an acknowledgement in a synchronized state (data flow) does not change the state",
    ),
    Transition(S.SYN_SENT, E.user_timeout, S.CLOSED, action="delete TCB", in_figure=False,
               note="section 3.10.8: retries exhausted, 'connection aborted due to user timeout'"),
    Transition(S.SYN_RECEIVED, E.user_timeout, S.CLOSED, action="delete TCB", in_figure=False,
               note="section 3.10.8: retries exhausted"),
    Transition(S.SYN_SENT, E.rcv_rst, S.CLOSED, action="delete TCB", in_figure=False,
               note="section 3.10.7.3: 'connection refused'"),
    # Figure 5 draws only the passive half of note 1; section 3.10.7.4 gives the active half.
    Transition(S.SYN_RECEIVED, E.rcv_rst, S.CLOSED, action="delete TCB", in_figure=False, after=E.active_open,
               note="section 3.10.7.4: after an active OPEN (came from SYN-SENT), 'connection refused'"),
    *(
        Transition(state, E.rcv_rst, S.CLOSED, action="delete TCB", in_figure=False,
                   note="section 3.10.7.4: 'connection reset'")
        for state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT)
    ),
)
del S, E

# The two ways a connection can be opened, as the ``after`` guards and ``TCPConnection.opened_by`` name them.
OPENINGS: tuple[Event, Event] = (Event.passive_open, Event.active_open)

# Keyed by (state, event, guard).  A pair is either unguarded (one row, guard None) or guarded once for
# each kind of OPEN, never both, so that a lookup can never match two rows or fall between them.
_TABLE: dict[tuple[State, Event, Event | None], Transition] = {}
_GUARDS: dict[tuple[State, Event], set[Event | None]] = {}
for _row in TRANSITIONS:
    if (_row.source, _row.event, _row.after) in _TABLE:  # pragma: no cover - guards edits to the table
        raise AssertionError(f"duplicate transition {_row.source} {_row.event} {_row.after}")
    _TABLE[(_row.source, _row.event, _row.after)] = _row
    _GUARDS.setdefault((_row.source, _row.event), set()).add(_row.after)
for _pair, _guards in _GUARDS.items():
    if _guards != {None} and _guards != set(OPENINGS):  # pragma: no cover - guards edits to the table
        raise AssertionError(f"{_pair}: guarded rows must be one per kind of OPEN {OPENINGS}, got {_guards}")
del _row, _pair, _guards, _GUARDS


class InvalidTransition(HandshakeError):
    """An event that the state table does not allow in the current state."""

    def __init__(self, state: State, event: Event) -> None:
        allowed = ", ".join(dict.fromkeys(row.event.value for row in TRANSITIONS if row.source is state)) or "nothing"
        super().__init__(f"{event.value!r} is not allowed in {state.value} (allowed: {allowed})")
        self.state = state
        self.event = event


def transition_for(state: State, event: Event, opened_by: Event | None = None) -> Transition:
    """The row for (state, event), or :class:`InvalidTransition`.

    ``opened_by`` (``Event.passive_open`` or ``Event.active_open``) is how the connection was opened; it
    is needed only for a guarded pair (a RST in SYN-RECEIVED), and a ValueError says so when it is missing.
    """
    row = _TABLE.get((state, event, None))
    if row is not None:
        return row
    if opened_by is not None:
        row = _TABLE.get((state, event, opened_by))
        if row is not None:
            return row
    elif (state, event, Event.passive_open) in _TABLE:
        raise ValueError(f"{event.value!r} in {state.value} depends on how the connection was opened: pass opened_by")
    raise InvalidTransition(state, event)


@dataclass
class TCPConnection:
    """One endpoint's connection state, driven by events (sans-I/O).

    >>> connection = TCPConnection()
    >>> connection.handle(Event.active_open).send
    'SYN'
    >>> connection.handle(Event.rcv_syn_ack).target
    <State.ESTABLISHED: 'ESTABLISHED'>
    """

    state: State = State.CLOSED
    history: list[Transition] = field(default_factory=list)
    # How the connection was opened, for the table's guarded rows (note 1).  A connection created
    # directly in a later state counts as actively opened unless it is told otherwise.
    opened_by: Event = Event.active_open

    def handle(self, event: Event) -> Transition:
        """Apply ``event``: the table's row for it, or :class:`InvalidTransition` (state unchanged)."""
        row = transition_for(self.state, event, self.opened_by)
        if event is Event.passive_open:
            self.opened_by = Event.passive_open
        elif event in (Event.active_open, Event.send):
            # SEND in LISTEN sends a SYN: from then on the connection is an active one (section 3.10.2).
            self.opened_by = Event.active_open
        self.history.append(row)
        self.state = row.target
        return row

    def allowed_events(self) -> list[Event]:
        """The events the table accepts now, in table order (a guarded event counts once)."""
        return list(
            dict.fromkeys(
                row.event for row in TRANSITIONS if row.source is self.state and row.after in (None, self.opened_by)
            )
        )


def diagram_rows(*, complete: bool = False) -> list[tuple[str, str, str]]:
    """(source, label, target) rows for a state diagram: Figure 5's arrows, or every row if ``complete``.

    Rows whose source and target are the same state (retransmissions, duplicates) are left out even
    when ``complete``: they do not draw as arrows.
    """
    return [
        (row.source.value, row.label, row.target.value)
        for row in TRANSITIONS
        if (row.in_figure or complete) and row.source is not row.target
    ]


# Where each state sits in RFC 9293 Figure 5, in a unit square with y pointing up: opening at the
# top, ESTABLISHED in the middle, the active close down the left, the passive close down the right.
DIAGRAM_POSITIONS: dict[str, tuple[float, float]] = {
    State.CLOSED.value: (0.5, 1.0),
    State.LISTEN.value: (0.5, 0.84),
    State.SYN_RECEIVED.value: (0.1, 0.67),
    State.SYN_SENT.value: (0.9, 0.67),
    State.ESTABLISHED.value: (0.5, 0.5),
    State.FIN_WAIT_1.value: (0.1, 0.33),
    State.CLOSE_WAIT.value: (0.9, 0.33),
    State.FIN_WAIT_2.value: (0.1, 0.12),
    State.CLOSING.value: (0.5, 0.2),
    State.LAST_ACK.value: (0.9, 0.12),
    State.TIME_WAIT.value: (0.5, 0.0),
}
