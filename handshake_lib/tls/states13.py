"""The TLS 1.3 handshake as two tables: one for the client, one for the server (RFC 8446 Appendix A).

Theory of operation
-------------------
As in :mod:`handshake_lib.tls.states` (TLS 1.2), an endpoint is always in one :class:`State`; what
arrives from the peer (or the application's ``start``) is looked up as ``(state, input)`` in its role's
table, the row says what to send and where to go, and a pair with no row is ``unexpected_message``
(:func:`transition_for` raises :class:`~handshake_lib.errors.UnexpectedMessage`) before anything reads the
message.  The states are RFC 8446's own (A.1 client, A.2 server), spelled out::

    Client                                               Server
    ClientHello (key_share)      -------->                                  (WAIT_CLIENT_HELLO)
                                                         ServerHello (key_share)
                                                         {EncryptedExtensions}
                                                         {CertificateRequest*}
                                                         {Certificate}
                                                         {CertificateVerify}
                                 <--------               {Finished}        (WAIT_FLIGHT2 -> WAIT_FINISHED)
    (WAIT_SERVER_HELLO, WAIT_ENCRYPTED_EXTENSIONS,
     WAIT_CERTIFICATE_OR_REQUEST, WAIT_CERTIFICATE,
     WAIT_CERTIFICATE_VERIFY, WAIT_FINISHED)
    {Certificate*}
    {CertificateVerify*}
    {Finished}                   -------->
                                 <--------               [NewSessionTicket*]
    [Application Data]           <------->               [Application Data] (CONNECTED)

``{}`` is protected with handshake keys, ``[]`` with application keys.  A.2's WAIT_FLIGHT2 is where the
server waits for the client's second flight; a server that sent CertificateRequest waits in WAIT_CERTIFICATE
instead (A.2's WAIT_CERT: a Finished there, skipping the Certificate it asked for, has no row, RFC 8446
4.4.2), then WAIT_CERTIFICATE_VERIFY (only when the Certificate was not empty), WAIT_FINISHED.

The guards (a row that needs one applies only while it holds; the most specific row wins, see
:func:`transition_for`):

* HelloRetryRequest (RFC 8446 4.1.4): :attr:`Guard.retry_needed` on the server (the client's key_shares
  do not include the group we want; the ClientHello decides, so the row is *refined* after reading it,
  :func:`refine`) sends HelloRetryRequest and waits in WAIT_SECOND_CLIENT_HELLO, where a ClientHello
  never retries again.  The client's HelloRetryRequest row sends the second ClientHello and waits in
  WAIT_SERVER_HELLO_AFTER_RETRY, which has no HelloRetryRequest row: a second one is unexpected_message
  (4.1.4: "If a client receives a second HelloRetryRequest in the same connection ... MUST abort").
* PSK accepted (RFC 8446 2.2): :attr:`Guard.psk_accepted` is exclusive, as 1.2's resumption is: its
  rows replace the full handshake's.  The server sends no Certificate/CertificateVerify; the client's
  EncryptedExtensions goes straight to WAIT_FINISHED.  A server authenticating with a PSK never sends
  CertificateRequest (4.3.2), so the psk rows have no client-certificate twin.
* Client certificate requested: server :attr:`Guard.client_certificate_requested` (configured to ask)
  adds CertificateRequest to the flight; the client, having received it (:attr:`Guard.certificate_requested`),
  sends Certificate (perhaps empty) and CertificateVerify too under :attr:`Guard.client_certificate_to_send`.
  The server's client Certificate row goes to WAIT_CERTIFICATE_VERIFY under
  :attr:`Guard.client_certificate_sent` (not empty), else to WAIT_FINISHED.
* 0-RTT (RFC 8446 2.3, 4.2.10): the client's ``start`` under :attr:`Guard.early_data_offered` sends
  ClientHello and early data; if the server's EncryptedExtensions carried ``early_data``
  (:attr:`Guard.early_data_accepted`) the client's Finished row sends EndOfEarlyData first.  The server
  accepting it (psk and early data accepted) waits in WAIT_END_OF_EARLY_DATA, where application data
  loops until EndOfEarlyData.  A server that declines skips the undecryptable early records: that is the
  record layer's business (RFC 8446 4.2.10, bounded by max_early_data_size), not a row.
* After the handshake, in CONNECTED: the client takes NewSessionTicket (a self-loop); either side takes
  KeyUpdate, and answers with its own under :attr:`Guard.update_requested` (4.6.3); the application's
  ``update_keys`` (an input, like ``start``) sends one of its own.  Post-handshake client
  authentication (4.6.2) has no row: our client does not offer ``post_handshake_auth``.
* ChangeCipherSpec (RFC 8446 5, D.4 middlebox compatibility mode): "An implementation may receive an
  unencrypted record of type change_cipher_spec consisting of the single byte value 0x01 at any time
  after the first ClientHello message has been sent or received and before the peer's Finished message
  has been received and MUST simply drop it".  Every state in that window has a self-loop that drops
  one, under :attr:`Guard.change_cipher_spec_droppable` (none received yet): a second one, or one
  anywhere else, is unexpected_message.  (Its value and that it was not protected are the record
  layer's checks.)  What *we* send for compatibility is not in the send columns either: the record
  layer adds it before our first protected record.

Fatal alerts end the connection in any state (ERROR), close_notify closes it (CLOSED), as in 1.2.
This module only holds the tables; the 1.3 client and server (next) follow them, and the lessons
draw them with :func:`diagram_rows`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from ..errors import UnexpectedMessage
from ..tables import Transition
from .constants import ContentType, ExtensionType, HandshakeType

__all__ = [
    "Role",
    "State",
    "Input",
    "Guard",
    "Transition",
    "CLIENT_TRANSITIONS",
    "SERVER_TRANSITIONS",
    "TABLES",
    "INITIAL_STATE",
    "EXCLUSIVE",
    "transition_for",
    "refine",
    "allowed_inputs",
    "diagram_rows",
    "Recorded",
    "replay",
    "replay_rows",
]

Role = Literal["client", "server"]


class State(Enum):
    """Where a TLS 1.3 handshake is (RFC 8446 A.1/A.2 names, spelled out).  Values are what diagrams print."""

    IDLE = "IDLE"  # client: start() not called yet
    WAIT_SERVER_HELLO = "WAIT_SERVER_HELLO"  # A.1 WAIT_SH
    WAIT_SERVER_HELLO_AFTER_RETRY = "WAIT_SERVER_HELLO_AFTER_RETRY"  # client: second ClientHello sent
    WAIT_ENCRYPTED_EXTENSIONS = "WAIT_ENCRYPTED_EXTENSIONS"  # A.1 WAIT_EE
    WAIT_CERTIFICATE_OR_REQUEST = "WAIT_CERTIFICATE_OR_REQUEST"  # A.1 WAIT_CERT_CR
    WAIT_CERTIFICATE = "WAIT_CERTIFICATE"  # client: after CertificateRequest; server: the client's
    WAIT_CERTIFICATE_VERIFY = "WAIT_CERTIFICATE_VERIFY"
    WAIT_FINISHED = "WAIT_FINISHED"
    WAIT_CLIENT_HELLO = "WAIT_CLIENT_HELLO"  # server: A.2 START
    WAIT_SECOND_CLIENT_HELLO = "WAIT_SECOND_CLIENT_HELLO"  # server: HelloRetryRequest sent
    WAIT_END_OF_EARLY_DATA = "WAIT_END_OF_EARLY_DATA"  # server: A.2 WAIT_EOED
    WAIT_FLIGHT2 = "WAIT_FLIGHT2"  # server: our Finished sent, the client's flight next
    CONNECTED = "CONNECTED"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


class Input(Enum):
    """What can happen: ``start`` or a message from the peer."""

    start = "start()"
    update_keys = "update_keys()"  # the application asks for fresh sending keys (RFC 8446 4.6.3)
    client_hello = "ClientHello"
    server_hello = "ServerHello"
    hello_retry_request = "HelloRetryRequest"  # a ServerHello with RFC 8446's fixed random
    encrypted_extensions = "EncryptedExtensions"
    certificate_request = "CertificateRequest"
    certificate = "Certificate"
    certificate_verify = "CertificateVerify"
    finished = "Finished"
    end_of_early_data = "EndOfEarlyData"
    new_session_ticket = "NewSessionTicket"
    key_update = "KeyUpdate"
    change_cipher_spec = "ChangeCipherSpec"
    application_data = "ApplicationData"


class Guard(Enum):
    """A condition a row needs besides its state and input; values are what the diagrams print."""

    retry_needed = "no key_share for our group"  # server: the ClientHello decides (refined)
    psk_accepted = "PSK accepted"  # exclusive: the abbreviated handshake
    client_certificate_requested = "client certificate requested"  # server: configured to ask
    client_certificate_sent = "client sent a certificate"  # server: the client's Certificate not empty
    certificate_requested = "CertificateRequest received"  # client
    client_certificate_to_send = "we have a certificate"  # client
    early_data_offered = "early data to send"  # client
    early_data_accepted = "early data accepted"  # client: EE had early_data; server: we accepted it
    tickets_to_send = "tickets to issue"  # server
    update_requested = "update_requested"  # the peer's KeyUpdate asked for ours
    change_cipher_spec_droppable = "no ChangeCipherSpec yet"  # RFC 8446 section 5: drop one


# Rows under these guards replace the whole flight, so they beat every other twin: the PSK's short handshake,
# and HelloRetryRequest (a server configured to ask for client certificates still just retries).
EXCLUSIVE: frozenset[Guard] = frozenset({Guard.psk_accepted, Guard.retry_needed})


_S, _I, _G = State, Input, Guard
_CERT_REQ = _G.client_certificate_requested
_FLIGHT = ("ServerHello", "EncryptedExtensions", "Certificate", "CertificateVerify", "Finished")
_FLIGHT_CR = (*_FLIGHT[:2], "CertificateRequest", *_FLIGHT[2:])
_FLIGHT_PSK = ("ServerHello", "EncryptedExtensions", "Finished")

# States in the window where one plaintext ChangeCipherSpec is dropped (after the first ClientHello,
# before the peer's Finished).
_CCS_WINDOW = {
    "client": (
        _S.WAIT_SERVER_HELLO, _S.WAIT_SERVER_HELLO_AFTER_RETRY, _S.WAIT_ENCRYPTED_EXTENSIONS,
        _S.WAIT_CERTIFICATE_OR_REQUEST, _S.WAIT_CERTIFICATE, _S.WAIT_CERTIFICATE_VERIFY, _S.WAIT_FINISHED,
    ),
    "server": (
        _S.WAIT_SECOND_CLIENT_HELLO, _S.WAIT_END_OF_EARLY_DATA, _S.WAIT_FLIGHT2, _S.WAIT_CERTIFICATE,
        _S.WAIT_CERTIFICATE_VERIFY, _S.WAIT_FINISHED,
    ),
}  # fmt: skip


def _ccs_rows(role: Role) -> tuple[Transition, ...]:
    return tuple(
        Transition(s, _I.change_cipher_spec, s, note="middlebox compatibility: dropped (RFC 8446 5)",
                   when=_G.change_cipher_spec_droppable)
        for s in _CCS_WINDOW[role]
    )  # fmt: skip


def _key_update_rows() -> tuple[Transition, ...]:
    return (
        Transition(_S.CONNECTED, _I.update_keys, _S.CONNECTED, ("KeyUpdate",),
                   note="update_requested when we want the peer's keys fresh too"),
        Transition(_S.CONNECTED, _I.key_update, _S.CONNECTED, note="next receiving key"),
        Transition(_S.CONNECTED, _I.key_update, _S.CONNECTED, ("KeyUpdate",),
                   note="next receiving key; ours answers, then our next sending key", when=_G.update_requested),
    )  # fmt: skip


CLIENT_TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.IDLE, _I.start, _S.WAIT_SERVER_HELLO, ("ClientHello",)),
    Transition(_S.IDLE, _I.start, _S.WAIT_SERVER_HELLO, ("ClientHello", "ApplicationData"),
               note="0-RTT under the client_early_traffic_secret", when=_G.early_data_offered),
    Transition(_S.WAIT_SERVER_HELLO, _I.hello_retry_request, _S.WAIT_SERVER_HELLO_AFTER_RETRY, ("ClientHello",),
               note="same hello, key_share for the group asked, cookie echoed; early data abandoned"),
    Transition(_S.WAIT_SERVER_HELLO, _I.server_hello, _S.WAIT_ENCRYPTED_EXTENSIONS, note="handshake keys"),
    Transition(_S.WAIT_SERVER_HELLO_AFTER_RETRY, _I.server_hello, _S.WAIT_ENCRYPTED_EXTENSIONS,
               note="must choose the group the retry asked for"),
    Transition(_S.WAIT_ENCRYPTED_EXTENSIONS, _I.encrypted_extensions, _S.WAIT_CERTIFICATE_OR_REQUEST),
    Transition(_S.WAIT_ENCRYPTED_EXTENSIONS, _I.encrypted_extensions, _S.WAIT_FINISHED,
               note="authenticated by the PSK", when=_G.psk_accepted),
    Transition(_S.WAIT_CERTIFICATE_OR_REQUEST, _I.certificate_request, _S.WAIT_CERTIFICATE),
    Transition(_S.WAIT_CERTIFICATE_OR_REQUEST, _I.certificate, _S.WAIT_CERTIFICATE_VERIFY,
               note="validate chain and host name"),
    Transition(_S.WAIT_CERTIFICATE, _I.certificate, _S.WAIT_CERTIFICATE_VERIFY, note="validate chain and host name"),
    Transition(_S.WAIT_CERTIFICATE_VERIFY, _I.certificate_verify, _S.WAIT_FINISHED,
               note="signature over the transcript hash"),
    Transition(_S.WAIT_FINISHED, _I.finished, _S.CONNECTED, ("Finished",), note="application keys"),
    Transition(_S.WAIT_FINISHED, _I.finished, _S.CONNECTED, ("EndOfEarlyData", "Finished"),
               when=(_G.psk_accepted, _G.early_data_accepted)),
    Transition(_S.WAIT_FINISHED, _I.finished, _S.CONNECTED, ("Certificate", "Finished"),
               note="an empty Certificate: we have none", when=_G.certificate_requested),
    Transition(_S.WAIT_FINISHED, _I.finished, _S.CONNECTED, ("Certificate", "CertificateVerify", "Finished"),
               when=(_G.certificate_requested, _G.client_certificate_to_send)),
    Transition(_S.CONNECTED, _I.new_session_ticket, _S.CONNECTED, note="kept for resumption"),
    *_key_update_rows(),
    Transition(_S.CONNECTED, _I.application_data, _S.CONNECTED),
    *_ccs_rows("client"),
)  # fmt: skip

SERVER_TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.WAIT_CLIENT_HELLO, _I.client_hello, _S.WAIT_FLIGHT2, _FLIGHT),
    Transition(_S.WAIT_CLIENT_HELLO, _I.client_hello, _S.WAIT_CERTIFICATE, _FLIGHT_CR, when=_CERT_REQ),
    Transition(_S.WAIT_CLIENT_HELLO, _I.client_hello, _S.WAIT_SECOND_CLIENT_HELLO, ("HelloRetryRequest",),
               note="cookie; the group we want", when=_G.retry_needed),
    Transition(_S.WAIT_CLIENT_HELLO, _I.client_hello, _S.WAIT_FLIGHT2, _FLIGHT_PSK, when=_G.psk_accepted),
    Transition(_S.WAIT_CLIENT_HELLO, _I.client_hello, _S.WAIT_END_OF_EARLY_DATA, _FLIGHT_PSK,
               note="early data accepted", when=(_G.psk_accepted, _G.early_data_accepted)),
    Transition(_S.WAIT_SECOND_CLIENT_HELLO, _I.client_hello, _S.WAIT_FLIGHT2, _FLIGHT,
               note="only the changes HRR allows"),
    Transition(_S.WAIT_SECOND_CLIENT_HELLO, _I.client_hello, _S.WAIT_CERTIFICATE, _FLIGHT_CR, when=_CERT_REQ),
    Transition(_S.WAIT_SECOND_CLIENT_HELLO, _I.client_hello, _S.WAIT_FLIGHT2, _FLIGHT_PSK, when=_G.psk_accepted),
    Transition(_S.WAIT_END_OF_EARLY_DATA, _I.application_data, _S.WAIT_END_OF_EARLY_DATA,
               note="0-RTT data, within max_early_data_size"),
    Transition(_S.WAIT_END_OF_EARLY_DATA, _I.end_of_early_data, _S.WAIT_FLIGHT2, note="client handshake keys"),
    Transition(_S.WAIT_FLIGHT2, _I.finished, _S.CONNECTED, note="no client authentication"),
    Transition(_S.WAIT_FLIGHT2, _I.finished, _S.CONNECTED, ("NewSessionTicket",), when=_G.tickets_to_send),
    Transition(_S.WAIT_CERTIFICATE, _I.certificate, _S.WAIT_FINISHED, note="empty: the client has none",
               when=_CERT_REQ),
    Transition(_S.WAIT_CERTIFICATE, _I.certificate, _S.WAIT_CERTIFICATE_VERIFY, note="validate the client's chain",
               when=(_CERT_REQ, _G.client_certificate_sent)),
    Transition(_S.WAIT_CERTIFICATE_VERIFY, _I.certificate_verify, _S.WAIT_FINISHED),
    Transition(_S.WAIT_FINISHED, _I.finished, _S.CONNECTED, when=_CERT_REQ),
    Transition(_S.WAIT_FINISHED, _I.finished, _S.CONNECTED, ("NewSessionTicket",),
               when=(_CERT_REQ, _G.tickets_to_send)),
    *_key_update_rows(),
    Transition(_S.CONNECTED, _I.application_data, _S.CONNECTED),
    *_ccs_rows("server"),
)  # fmt: skip


def _index(rows: Iterable[Transition]) -> dict[tuple[State, Input], tuple[Transition, ...]]:
    table: dict[tuple[State, Input], list[Transition]] = {}
    for row in rows:
        table.setdefault((row.source, row.received), []).append(row)
    for (state, received), twins in table.items():
        needs = [row.needs for row in twins]
        if len(set(needs)) != len(needs):
            raise AssertionError(f"two rows for {state.value} on {received.value} need the same guards")
    return {key: tuple(rows) for key, rows in table.items()}


TABLES: dict[str, dict[tuple[State, Input], tuple[Transition, ...]]] = {
    "client": _index(CLIENT_TRANSITIONS),
    "server": _index(SERVER_TRANSITIONS),
}
INITIAL_STATE: dict[str, State] = {"client": State.IDLE, "server": State.WAIT_CLIENT_HELLO}


def _check_role(role: str) -> None:
    if role not in INITIAL_STATE:
        raise ValueError(f"role must be 'client' or 'server', not {role!r}")


def transition_for(role: Role, state: State, received: Input, guards: Collection[Guard] = ()) -> Transition:
    """The row for ``received`` in ``state``: the most specific one whose guards all hold.

    UnexpectedMessage when the table has no row for the pair, or none whose guards hold.
    """
    _check_role(role)
    rows = TABLES[role].get((state, received))
    holding = set(guards)
    fits = [row for row in rows or () if row.needs <= holding]
    if rows and not fits:
        needed = " or ".join(" and ".join(g.value for g in Guard if g in row.needs) for row in rows)
        raise UnexpectedMessage(f"{received.value} is allowed in TLS 1.3 {role} state {state.value} only when {needed}")
    if not fits:
        expected = " or ".join(i.value for i in allowed_inputs(role, state, guards)) or "nothing"
        raise UnexpectedMessage(
            f"{received.value} is not allowed in TLS 1.3 {role} state {state.value} (expected {expected})"
        )
    return _most_specific(fits)


def _most_specific(rows: list[Transition]) -> Transition:
    """The row needing the most guards; rows under an exclusive guard (PSK accepted) beat every other,
    so a server configured to ask for client certificates still sends none on a PSK handshake (4.3.2)."""
    exclusive = [row for row in rows if row.needs & EXCLUSIVE]
    return max(exclusive or rows, key=lambda row: len(row.needs))


def refine(role: Role, row: Transition, guards: Collection[Guard]) -> Transition:
    """``row``, or its twin needing more guards that all hold now (the ClientHello decided HRR or PSK)."""
    holding = set(guards)
    twins = TABLES[role][(row.source, row.received)]
    better = [
        twin
        for twin in twins
        if twin.needs <= holding and (row.needs < twin.needs or (twin.needs & EXCLUSIVE and not row.needs & EXCLUSIVE))
    ]
    return _most_specific(better) if better else row


def allowed_inputs(role: Role, state: State, guards: Collection[Guard] | None = None) -> list[Input]:
    """What ``role`` accepts in ``state``, in table order (guarded rows only if ``guards`` allow, when given)."""
    _check_role(role)
    return [
        received
        for (source, received), rows in TABLES[role].items()
        if source is state and any(guards is None or row.needs <= set(guards) for row in rows)
    ]


def diagram_rows(role: Role, *, complete: bool = False) -> list[tuple[str, str, str]]:
    """(source, label, target) per arrow of ``role``'s table; self-loops (CCS, tickets, KeyUpdate, data)
    only if ``complete``.  Rows joining the same two states are one arrow, one label line per row."""
    _check_role(role)
    rows = CLIENT_TRANSITIONS if role == "client" else SERVER_TRANSITIONS
    arrows: dict[tuple[State, State], list[str]] = {}
    for row in rows:
        if complete or row.source is not row.target:
            arrows.setdefault((row.source, row.target), []).append(row.label)
    return [(source.value, "\n".join(labels), target.value) for (source, target), labels in arrows.items()]


# -- replaying a recorded message sequence ----------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One message as a recording saw it: who sent it, its content type, and the decoded message
    (a handshake message from :func:`~handshake_lib.tls.messages13.decode_handshake13`; None for a
    ChangeCipherSpec or application data)."""

    sender: Role
    content_type: int
    message: Any = None


def _input(item: Recorded) -> Input:
    if item.content_type == ContentType.change_cipher_spec:
        return Input.change_cipher_spec
    if item.content_type == ContentType.application_data:
        return Input.application_data
    message = item.message
    if message.msg_type == HandshakeType.server_hello:
        from .messages13 import is_hello_retry_request  # the tables module needs no message classes

        return Input.hello_retry_request if is_hello_retry_request(message) else Input.server_hello
    return Input[HandshakeType(message.msg_type).name]


def _has_extension(message: Any, extension_type: int) -> bool:
    finder = getattr(message, "extension", None)
    return finder is not None and finder(extension_type) is not None


def replay(role: Role, messages: Iterable[Recorded]) -> list[State]:
    """``role``'s state after each message of a recorded sequence, walking its table.

    The guards are what that endpoint would have known, read from the messages.  What it decided itself
    is read from what it sent, anywhere in the sequence (as 1.2's replay does): the server sent
    HelloRetryRequest (retry needed), CertificateRequest (asked for a certificate), NewSessionTicket
    (tickets to issue), a ServerHello with pre_shared_key (PSK accepted) or EncryptedExtensions with
    early_data (accepted); the client offered early_data, or sent a non-empty Certificate.  What it
    learned from the peer counts from that message on: the ServerHello's pre_shared_key, the
    EncryptedExtensions' early_data, a CertificateRequest, a non-empty client Certificate, a KeyUpdate's
    update_requested, a ChangeCipherSpec already dropped.  Messages the role sent change nothing, except
    the client's first (its ``start``) and a KeyUpdate that answers nothing (its ``update_keys``).
    The first refused input ends the list with ERROR (the connection would have sent unexpected_message).
    """
    return [State.ERROR if row is None else state for state, row in _walk(role, messages)]


def replay_rows(role: Role, messages: Iterable[Recorded]) -> list[Transition | None]:
    """The row :func:`replay` took at each message of the sequence (the client's ``start`` row at its
    first message, None at the other messages ``role`` sent); like :func:`replay` it stops at a refusal,
    whose place holds None.  Lets a check compare what the role really sent with each row's ``send``."""
    return [None if row is _SENT else row for _, row in _walk(role, messages)]


def _walk(role: Role, messages: Iterable[Recorded]) -> list[tuple[State, Transition | None]]:
    """(state, row) after each message: the row taken, ``_SENT`` for a message the role sent, None where
    the table refused (the walk stops there)."""
    _check_role(role)
    items = list(messages)
    known: set[Guard] = {Guard.change_cipher_spec_droppable}
    for item in items:
        if item.sender == role:
            known |= _learned(role, item)
    state = INITIAL_STATE[role]
    steps: list[tuple[State, Transition | None]] = []
    answering = False  # a KeyUpdate we send now answers the peer's update_requested
    for item in items:
        received = _input(item)
        if item.sender == role:
            row = None
            if state is State.IDLE:
                row = transition_for(role, state, Input.start, known)
            elif received is Input.key_update and not answering:
                row = transition_for(role, state, Input.update_keys, known)  # ours, not an answer
            answering = answering and received is not Input.key_update
            state = row.target if row is not None else state
            steps.append((state, row if row is not None else _SENT))
            continue
        known |= _learned(role, item)
        guards = set(known)
        if received is Input.key_update and item.message.request_update:
            guards.add(Guard.update_requested)
        try:
            row = transition_for(role, state, received, guards)
        except UnexpectedMessage:
            steps.append((State.ERROR, None))
            break
        state = row.target
        answering = answering or "KeyUpdate" in row.send
        if received is Input.change_cipher_spec:
            known.discard(Guard.change_cipher_spec_droppable)
        steps.append((state, row))
    return steps


# A marker for "a message the role sent" inside _walk, told apart from a refusal (None).
_SENT = Transition(State.IDLE, Input.start, State.IDLE, note="sent")


def _learned(role: Role, item: Recorded) -> set[Guard]:
    """The guards one message (sent or received by ``role``) makes hold."""
    received, message = _input(item), item.message
    if received is Input.client_hello and role == "client" and _has_extension(message, ExtensionType.early_data):
        return {Guard.early_data_offered}
    if received is Input.hello_retry_request and role == "server":
        return {Guard.retry_needed}
    if received is Input.server_hello and _has_extension(message, ExtensionType.pre_shared_key):
        return {Guard.psk_accepted}
    if received is Input.encrypted_extensions and _has_extension(message, ExtensionType.early_data):
        return {Guard.early_data_accepted}
    if received is Input.certificate_request:
        return {Guard.client_certificate_requested if role == "server" else Guard.certificate_requested}
    if received is Input.new_session_ticket and role == "server":
        return {Guard.tickets_to_send}
    if received is Input.certificate and item.sender == "client" and message.entries:
        return {Guard.client_certificate_sent if role == "server" else Guard.client_certificate_to_send}
    return set()
