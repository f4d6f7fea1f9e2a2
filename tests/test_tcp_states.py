"""The RFC 9293 state table and the sans-I/O connection that enforces it."""

from __future__ import annotations

import pytest

from handshake_lib.errors import HandshakeError
from handshake_lib.tcp import (
    DIAGRAM_POSITIONS,
    TRANSITIONS,
    Event,
    InvalidTransition,
    State,
    TCPConnection,
    diagram_rows,
    transition_for,
)
from handshake_lib.tcp.states import OPENINGS

# RFC 9293 Figure 5, arrow by arrow, transcribed from the figure (not from our table).
FIGURE_5 = {
    ("CLOSED", "passive OPEN", "LISTEN"),
    ("CLOSED", "active OPEN", "SYN-SENT"),
    ("LISTEN", "rcv SYN", "SYN-RECEIVED"),
    ("LISTEN", "SEND", "SYN-SENT"),
    ("LISTEN", "CLOSE", "CLOSED"),
    ("SYN-SENT", "CLOSE", "CLOSED"),
    ("SYN-SENT", "rcv SYN", "SYN-RECEIVED"),
    ("SYN-SENT", "rcv SYN,ACK", "ESTABLISHED"),
    ("SYN-RECEIVED", "rcv ACK of SYN", "ESTABLISHED"),
    # The figure writes "rcv RST (note 1)"; note 1: "conditional on having reached SYN-RECEIVED after a
    # passive OPEN".  Our label spells the condition out instead of pointing to a note.
    ("SYN-RECEIVED", "rcv RST (after passive OPEN)", "LISTEN"),
    ("SYN-RECEIVED", "CLOSE", "FIN-WAIT-1"),
    ("ESTABLISHED", "CLOSE", "FIN-WAIT-1"),
    ("ESTABLISHED", "rcv FIN", "CLOSE-WAIT"),
    ("FIN-WAIT-1", "rcv ACK of FIN", "FIN-WAIT-2"),
    ("FIN-WAIT-1", "rcv FIN", "CLOSING"),
    ("CLOSE-WAIT", "CLOSE", "LAST-ACK"),
    ("FIN-WAIT-2", "rcv FIN", "TIME-WAIT"),
    ("CLOSING", "rcv ACK of FIN", "TIME-WAIT"),
    ("LAST-ACK", "rcv ACK of FIN", "CLOSED"),
    ("TIME-WAIT", "Timeout=2MSL", "CLOSED"),
}


def test_figure_rows_are_exactly_rfc_9293_figure_5() -> None:
    rows = diagram_rows()
    assert {(source, label.split(" / ")[0], target) for source, label, target in rows} == FIGURE_5
    assert len(rows) == len(FIGURE_5)
    labels = {(source, target): label for source, label, target in rows}
    assert labels[("LISTEN", "SYN-RECEIVED")] == "rcv SYN / snd SYN,ACK"
    assert labels[("SYN-SENT", "ESTABLISHED")] == "rcv SYN,ACK / snd ACK"
    assert labels[("CLOSED", "SYN-SENT")] == "active OPEN / snd SYN"
    assert labels[("SYN-RECEIVED", "ESTABLISHED")] == "rcv ACK of SYN"


def test_complete_diagram_adds_the_text_only_rows_and_positions_cover_every_state() -> None:
    complete = diagram_rows(complete=True)
    assert set(diagram_rows()) < set(complete)
    assert ("FIN-WAIT-1", "rcv FIN,ACK of FIN / snd ACK", "FIN-WAIT-2") not in complete
    assert ("FIN-WAIT-1", "rcv FIN,ACK of FIN / snd ACK", "TIME-WAIT") in complete
    assert all(source != target for source, _, target in complete)
    assert set(DIAGRAM_POSITIONS) == {state.value for state in State}
    assert len(set(DIAGRAM_POSITIONS.values())) == len(State)


def test_three_way_handshake_both_sides() -> None:
    client, server = TCPConnection(), TCPConnection()
    assert server.handle(Event.passive_open).target is State.LISTEN
    opened = client.handle(Event.active_open)
    assert (opened.target, opened.send) == (State.SYN_SENT, "SYN")
    answered = server.handle(Event.rcv_syn)
    assert (answered.target, answered.send) == (State.SYN_RECEIVED, "SYN,ACK")
    completed = client.handle(Event.rcv_syn_ack)
    assert (completed.target, completed.send) == (State.ESTABLISHED, "ACK")
    accepted = server.handle(Event.rcv_ack)
    assert (accepted.target, accepted.send) == (State.ESTABLISHED, "")
    assert [row.target for row in client.history] == [State.SYN_SENT, State.ESTABLISHED]


def test_active_and_passive_close() -> None:
    closer, other = TCPConnection(State.ESTABLISHED), TCPConnection(State.ESTABLISHED)
    steps = [
        (closer, Event.close, State.FIN_WAIT_1, "FIN"),
        (other, Event.rcv_fin, State.CLOSE_WAIT, "ACK"),
        (closer, Event.rcv_ack, State.FIN_WAIT_2, ""),
        (other, Event.close, State.LAST_ACK, "FIN"),
        (closer, Event.rcv_fin, State.TIME_WAIT, "ACK"),
        (other, Event.rcv_ack, State.CLOSED, ""),
        (closer, Event.timeout_2msl, State.CLOSED, ""),
    ]
    for connection, event, target, send in steps:
        row = connection.handle(event)
        assert (connection.state, row.send) == (target, send)


def test_simultaneous_close_goes_through_closing() -> None:
    connection = TCPConnection(State.ESTABLISHED)
    for event, target in ((Event.close, State.FIN_WAIT_1), (Event.rcv_fin, State.CLOSING),
                          (Event.rcv_ack, State.TIME_WAIT)):
        connection.handle(event)
        assert connection.state is target
    shortcut = TCPConnection(State.FIN_WAIT_1)
    assert shortcut.handle(Event.rcv_fin_ack).target is State.TIME_WAIT  # note 2


def is_a_table_row(row: object) -> bool:
    return any(row is table_row for table_row in TRANSITIONS)


def test_rst_in_syn_received_after_a_passive_open_returns_to_listen() -> None:
    """RFC 9293 section 3.10.7.4: came from LISTEN, so go back to LISTEN (and the user is not told)."""
    connection = TCPConnection()
    connection.handle(Event.passive_open)
    connection.handle(Event.rcv_syn)
    reset = connection.handle(Event.rcv_rst)
    assert connection.state is State.LISTEN
    assert is_a_table_row(reset) and reset.in_figure  # the arrow of Figure 5, straight from the table
    assert (reset.after, reset.action) == (Event.passive_open, "")
    # Back in LISTEN the connection is still a passive one: the next SYN and RST do the same again.
    connection.handle(Event.rcv_syn)
    assert connection.handle(Event.rcv_rst).target is State.LISTEN
    assert [row.target for row in connection.history] == [
        State.LISTEN, State.SYN_RECEIVED, State.LISTEN, State.SYN_RECEIVED, State.LISTEN,
    ]


@pytest.mark.parametrize("opening", [[Event.active_open], [Event.passive_open, Event.send]])
def test_rst_in_syn_received_after_an_active_open_closes(opening: list[Event]) -> None:
    """Came from SYN-SENT (simultaneous open): 'connection refused', CLOSED and the TCB deleted.

    SEND in LISTEN sends a SYN, so a passive OPEN followed by SEND counts as an active OPEN too.
    """
    connection = TCPConnection()
    for event in opening:
        connection.handle(event)
    assert connection.state is State.SYN_SENT
    connection.handle(Event.rcv_syn)  # the peer's SYN crossed ours
    reset = connection.handle(Event.rcv_rst)
    assert connection.state is State.CLOSED
    assert is_a_table_row(reset) and not reset.in_figure  # section 3.10.7.4's text, not Figure 5's arrow
    assert (reset.after, reset.action) == (Event.active_open, "delete TCB")
    assert "connection refused" in reset.note


def test_the_guarded_rst_rows_are_looked_up_by_how_the_connection_was_opened() -> None:
    to_listen = transition_for(State.SYN_RECEIVED, Event.rcv_rst, Event.passive_open)
    to_closed = transition_for(State.SYN_RECEIVED, Event.rcv_rst, Event.active_open)
    assert (to_listen.target, to_closed.target) == (State.LISTEN, State.CLOSED)
    with pytest.raises(ValueError, match="opened_by"):
        transition_for(State.SYN_RECEIVED, Event.rcv_rst)
    # Unguarded rows ignore opened_by; a missing pair is still an InvalidTransition whatever it says.
    for opened_by in (None, *OPENINGS):
        assert transition_for(State.SYN_SENT, Event.rcv_rst, opened_by).target is State.CLOSED
        with pytest.raises(InvalidTransition):
            transition_for(State.LISTEN, Event.rcv_ack, opened_by)
    # The complete diagram draws both arrows, each labelled with its condition.
    complete = diagram_rows(complete=True)
    assert ("SYN-RECEIVED", "rcv RST (after passive OPEN)", "LISTEN") in complete
    assert ("SYN-RECEIVED", "rcv RST (after active OPEN) / delete TCB", "CLOSED") in complete
    assert ("SYN-RECEIVED", "rcv RST (after active OPEN) / delete TCB", "CLOSED") not in diagram_rows()
    # RST is allowed once, not twice, in the connection's list of what it accepts.
    assert TCPConnection(State.SYN_RECEIVED).allowed_events().count(Event.rcv_rst) == 1


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (State.CLOSED, Event.rcv_syn),
        (State.CLOSED, Event.close),
        (State.LISTEN, Event.rcv_ack),
        (State.SYN_SENT, Event.rcv_ack),
        (State.ESTABLISHED, Event.active_open),
        (State.TIME_WAIT, Event.close),
        (State.LAST_ACK, Event.rcv_syn),
    ],
)
def test_pairs_not_in_the_table_raise_and_leave_the_state(state: State, event: Event) -> None:
    connection = TCPConnection(state)
    with pytest.raises(InvalidTransition) as raised:
        connection.handle(event)
    assert isinstance(raised.value, HandshakeError)
    assert (raised.value.state, raised.value.event) == (state, event)
    assert connection.state is state and connection.history == []
    assert state.value in str(raised.value)


def test_table_is_a_function_and_every_pair_is_either_a_row_or_an_error() -> None:
    keys = [(row.source, row.event, row.after) for row in TRANSITIONS]
    assert len(keys) == len(set(keys))
    guards: dict[tuple[State, Event], set[Event | None]] = {}
    for source, event, after in keys:
        guards.setdefault((source, event), set()).add(after)
    # A pair has one unguarded row, or exactly one row per kind of OPEN: never both, never a gap.
    assert all(found in ({None}, set(OPENINGS)) for found in guards.values()), guards
    assert [pair for pair, found in guards.items() if found != {None}] == [(State.SYN_RECEIVED, Event.rcv_rst)]
    for state in State:
        for event in Event:
            for opened_by in OPENINGS:
                if (state, event) in guards:
                    row = transition_for(state, event, opened_by)
                    assert row.source is state and row.event is event and row.after in (None, opened_by)
                else:
                    with pytest.raises(InvalidTransition):
                        transition_for(state, event, opened_by)
    assert {row.source for row in TRANSITIONS} == set(State)  # every state has a way out
