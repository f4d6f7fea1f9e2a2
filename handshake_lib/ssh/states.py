"""The SSH transport as tables (RFC 4253 sections 4, 7 and 9; RFC 8308; OpenSSH's strict key exchange).

Theory of operation
-------------------
An SSH connection runs two machines at once, each one table per role:

* the **transport** (:data:`TRANSPORT_TABLES`): the identification strings, the key exchange, NEWKEYS,
  and every later key exchange (rekeying, section 9), which either side may start at any time after
  the first one;
* the **service** (:data:`SERVICE_TABLES`): what the encrypted transport carries: the request for
  ``ssh-userauth``, the ``none`` request that asks a server which methods it takes (RFC 4252 section
  5.2), then user authentication (publickey query, PK_OK and signed request; password;
  keyboard-interactive rounds, RFC 4256; partial success; the banner).  Which row of a request's twins
  runs is decided by the handler from the message (``ssh.authentication`` judges it): the guards
  ``key_acceptable``, ``questions``, ``authenticated`` on the server, ``another_request`` on the client.
  Once AUTHENTICATED, the connection protocol's messages (RFC 4254, 80-100) each have a row that stays
  there: the service table only admits them; each channel's own table (``ssh.channels``) judges them.

Something arrives (a message, the peer's identification line) or the application asks for something
(``start``, ``rekey``); the connection looks up ``(state, input)`` in the table of that machine, runs
the row's handler, sends the row's ``send`` column in order and moves to the row's ``target``.  A pair
with no row is the peer breaking the protocol: :func:`transition_for` raises
:class:`~handshake_lib.errors.UnexpectedMessage` (SSH_MSG_DISCONNECT with PROTOCOL_ERROR) before
anything reads the message.  The first key exchange, as the client table encodes it::

    Client                                               Server
    identification
    KEXINIT               ------------------------->                         (WAIT_IDENTIFICATION)
                          <-------------------------     identification
                                                                             (WAIT_KEXINIT)
                          <-------------------------     KEXINIT
    KEX_ECDH_INIT         ------------------------->                         (WAIT_KEX_ECDH_INIT)
                                                         KEX_ECDH_REPLY: host key, server value,
                          <-------------------------     signature over H; NEWKEYS; EXT_INFO*
    NEWKEYS               ------------------------->                         (WAIT_NEWKEYS)
    SERVICE_REQUEST       ------------------------->     (service table from here on, encrypted)
                          <-------------------------     SERVICE_ACCEPT
    USERAUTH_REQUEST none ------------------------->
                          <-------------------------     USERAUTH_FAILURE: the methods that can continue
    USERAUTH_REQUEST      ------------------------->     (publickey, unsigned: would this key do?)
                          <-------------------------     USERAUTH_PK_OK
    USERAUTH_REQUEST      ------------------------->     (publickey, signed over session id + request)
                          <-------------------------     USERAUTH_SUCCESS   (AUTHENTICATED: channels)

The client sends its KEXINIT with its identification line, without waiting for the server's (RFC 4253
section 7 lets each side begin; paramiko and asyncssh do the same, OpenSSH's client waits), which saves
one round trip; the server answers the client's line with its KEXINIT, as OpenSSH's sshd does.

``KEX_ECDH_INIT``/``KEX_ECDH_REPLY`` are message numbers 30 and 31, which every method we implement
uses: RFC 5656 names them so for ECDH, RFC 8731 reuses them for Curve25519 and the hybrid methods, and
RFC 4253 calls the same numbers KEXDH_INIT/KEXDH_REPLY for finite-field Diffie-Hellman.

What RFC 4253 allows beside the plain flights is a row too, not an exception in code:

* **A wrong guess** (section 7): a client may send its first key exchange packet right after its
  KEXINIT (``first_kex_packet_follows``), guessing the method.  When the guess is wrong the server
  ignores that one packet: the server's KEXINIT row has a guarded twin (:attr:`Guard.wrong_guess_follows`)
  whose target, DISCARD_GUESS, swallows one KEX_ECDH_INIT.
* **EXT_INFO** (RFC 8308): a server that saw ``ext-info-c`` sends EXT_INFO right after its first
  NEWKEYS (:attr:`Guard.ext_info_wanted`); the client's service table accepts it once, as the first
  message after NEWKEYS (:attr:`Guard.ext_info_expected`).  A client that saw ``ext-info-s`` may send
  its own EXT_INFO as the next packet after its first NEWKEYS (RFC 8308 2.4; asyncssh's client does):
  the server's service table accepts that once too (:attr:`Guard.client_ext_info_expected`).
* **Rekeying** (section 9): from ENCRYPTED either side sends KEXINIT (``rekey``, on request or when a
  byte or packet limit is reached) and the exchange runs again; the session identifier stays the first H.

Between the tables: a party that has sent KEXINIT sends nothing but transport messages until its
NEWKEYS (section 7.1), so service messages are accepted only while the transport is in a state of
:data:`SERVICE_STATES` (the peer may still have some in flight when we start a rekey, none once it sent
its own KEXINIT).  Before the first NEWKEYS there is no service at all.

Generic messages are not in the tables, as alerts are not in TLS's: DISCONNECT (1) ends the connection
in any state; IGNORE (2), DEBUG (4) and UNIMPLEMENTED (3) are accepted anywhere, except during the first
key exchange under **strict kex** (both KEXINITs carry ``kex-strict-*-v00@openssh.com``: the Terrapin
countermeasure), where every message outside the table is fatal (:func:`strict_kex_allows`).  A message
number nobody defined is answered with UNIMPLEMENTED, again except under strict first kex.  This module
only holds the tables; the connection follows them and the notebooks draw them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from enum import Enum
from typing import Literal

from ..errors import UnexpectedMessage
from ..tables import Transition
from .constants import MessageNumber

__all__ = [
    "Role",
    "Machine",
    "State",
    "Input",
    "Guard",
    "Transition",
    "CLIENT_TRANSPORT",
    "SERVER_TRANSPORT",
    "CLIENT_SERVICE",
    "SERVER_SERVICE",
    "TRANSPORT_TABLES",
    "SERVICE_TABLES",
    "INITIAL_STATE",
    "SERVICE_STATES",
    "CONNECTION_INPUTS",
    "GENERIC_MESSAGES",
    "transition_for",
    "refine",
    "input_for",
    "machine_for",
    "strict_kex_allows",
    "allowed_inputs",
    "diagram_rows",
    "replay",
]

Role = Literal["client", "server"]
Machine = Literal["transport", "service"]


class State(Enum):
    """Where a machine is.  Values are what the diagrams print."""

    # transport
    IDLE = "IDLE"  # start() not called yet
    WAIT_IDENTIFICATION = "WAIT_IDENTIFICATION"  # ours sent, the peer's line not read yet
    WAIT_KEXINIT = "WAIT_KEXINIT"  # our KEXINIT sent
    KEXINIT_SENT = "KEXINIT_SENT"  # rekey: our KEXINIT sent first, the peer's to come
    WAIT_KEX_ECDH_INIT = "WAIT_KEX_ECDH_INIT"  # server: both KEXINITs seen
    DISCARD_GUESS = "DISCARD_GUESS"  # server: the client guessed the wrong method; its next kex packet is dropped
    WAIT_KEX_ECDH_REPLY = "WAIT_KEX_ECDH_REPLY"  # client: our share sent
    WAIT_NEWKEYS = "WAIT_NEWKEYS"  # our NEWKEYS sent (our new keys are on), the peer's to come
    ENCRYPTED = "ENCRYPTED"  # both NEWKEYS: new keys both ways
    # service
    NO_SERVICE = "NO_SERVICE"  # before the first NEWKEYS
    WAIT_SERVICE_ACCEPT = "WAIT_SERVICE_ACCEPT"  # client: SERVICE_REQUEST ssh-userauth sent
    WAIT_SERVICE_REQUEST = "WAIT_SERVICE_REQUEST"  # server: encrypted, nothing asked yet
    WAIT_USERAUTH = "WAIT_USERAUTH"  # client: a request sent; server: the service accepted, requests may come
    WAIT_INFO_RESPONSE = "WAIT_INFO_RESPONSE"  # server: keyboard-interactive questions sent
    AUTH_METHODS_KNOWN = "AUTH_METHODS_KNOWN"  # client: nothing (more) to try: the probe's end, or a failed login
    AUTHENTICATED = "AUTHENTICATED"  # USERAUTH_SUCCESS crossed: the connection protocol runs
    # both
    CLOSED = "CLOSED"  # DISCONNECT sent or received
    ERROR = "ERROR"


class Input(Enum):
    """What can happen: the application's ``start`` or ``rekey``, the transport's keys coming on, or a
    message from the peer (values: the RFC names without ``SSH_MSG_``)."""

    start = "start()"
    rekey = "rekey()"
    keys_on = "keys on"  # the transport reached ENCRYPTED for the first time (the service starts)
    identification = "identification"
    kexinit = "KEXINIT"
    kex_ecdh_init = "KEX_ECDH_INIT"
    kex_ecdh_reply = "KEX_ECDH_REPLY"
    newkeys = "NEWKEYS"
    ext_info = "EXT_INFO"
    service_request = "SERVICE_REQUEST"
    service_accept = "SERVICE_ACCEPT"
    userauth_request = "USERAUTH_REQUEST"
    userauth_failure = "USERAUTH_FAILURE"
    userauth_success = "USERAUTH_SUCCESS"
    userauth_banner = "USERAUTH_BANNER"
    userauth_pk_ok = "USERAUTH_PK_OK"
    userauth_passwd_changereq = "USERAUTH_PASSWD_CHANGEREQ"
    userauth_info_request = "USERAUTH_INFO_REQUEST"
    userauth_info_response = "USERAUTH_INFO_RESPONSE"
    # the connection protocol (RFC 4254): once authenticated, handed to ssh.channels' per-channel table
    global_request = "GLOBAL_REQUEST"
    request_success = "REQUEST_SUCCESS"
    request_failure = "REQUEST_FAILURE"
    channel_open = "CHANNEL_OPEN"
    channel_open_confirmation = "CHANNEL_OPEN_CONFIRMATION"
    channel_open_failure = "CHANNEL_OPEN_FAILURE"
    channel_window_adjust = "CHANNEL_WINDOW_ADJUST"
    channel_data = "CHANNEL_DATA"
    channel_extended_data = "CHANNEL_EXTENDED_DATA"
    channel_eof = "CHANNEL_EOF"
    channel_close = "CHANNEL_CLOSE"
    channel_request = "CHANNEL_REQUEST"
    channel_success = "CHANNEL_SUCCESS"
    channel_failure = "CHANNEL_FAILURE"


# Message numbers (RFC 4250 section 4.1.2, RFC 8308) of the inputs that are messages; the connection maps a
# received payload's first byte through this, so the table is never asked about a number it does not know.
_MESSAGE_INPUTS: dict[int, Input] = {
    5: Input.service_request,
    6: Input.service_accept,
    7: Input.ext_info,
    20: Input.kexinit,
    21: Input.newkeys,
    30: Input.kex_ecdh_init,
    31: Input.kex_ecdh_reply,
    50: Input.userauth_request,
    51: Input.userauth_failure,
    52: Input.userauth_success,
    53: Input.userauth_banner,
    61: Input.userauth_info_response,
    **{int(MessageNumber[i.name.upper()]): i for i in Input if i.name.startswith(("global_", "request_", "channel_"))},
}
# What the connection protocol reads (RFC 4254, messages 80-100): one row each in AUTHENTICATED, below.
CONNECTION_INPUTS: tuple[Input, ...] = tuple(i for i in Input if i.name.startswith(("global_", "request_", "channel_")))
# Message 60 is a different message per authentication method (RFC 4250 4.1.2): the decoded message's name decides.
_METHOD_SPECIFIC_INPUTS: dict[str, Input] = {
    "SSH_MSG_USERAUTH_PK_OK": Input.userauth_pk_ok,
    "SSH_MSG_USERAUTH_PASSWD_CHANGEREQ": Input.userauth_passwd_changereq,
    "SSH_MSG_USERAUTH_INFO_REQUEST": Input.userauth_info_request,
}
# DISCONNECT, IGNORE, UNIMPLEMENTED, DEBUG: outside the tables (see the module's docstring).
GENERIC_MESSAGES: frozenset[int] = frozenset({1, 2, 3, 4})


class Guard(Enum):
    """A condition a row needs besides its state and input; values are what the diagrams print."""

    wrong_guess_follows = "the client's guessed kex packet is for another method"  # server
    ext_info_wanted = "ext-info-c offered, first kex"  # server: send EXT_INFO after NEWKEYS
    ext_info_expected = "ext-info-c sent, first message after NEWKEYS"  # client
    client_ext_info_expected = "ext-info-s sent, first message after NEWKEYS"  # server
    # user authentication: what the handler decided about the message just read
    banner = "a banner is configured"  # server
    another_request = "something left to try"  # client: the next key, method or round
    key_acceptable = "a query for an authorized key"  # server
    questions = "keyboard-interactive: a round of questions"  # server
    authenticated = "the request completes a required chain of methods"  # server



_S, _I = State, Input

CLIENT_TRANSPORT: tuple[Transition, ...] = (
    Transition(
        _S.IDLE, _I.start, _S.WAIT_IDENTIFICATION, ("identification", "KEXINIT"),
        note="SSH-2.0-... CR LF, and KEXINIT right behind it: no need to wait for the server's line (7), "
        "which saves a round trip, as paramiko and asyncssh do",
    ),
    Transition(
        _S.WAIT_IDENTIFICATION, _I.identification, _S.WAIT_KEXINIT,
        note="lines before the server's version line are allowed (4.2); V_S kept for H",
    ),
    Transition(
        _S.WAIT_KEXINIT, _I.kexinit, _S.WAIT_KEX_ECDH_REPLY, ("KEX_ECDH_INIT",),
        note="negotiate: the first client algorithm the server also supports, per category",
    ),
    Transition(
        _S.WAIT_KEX_ECDH_REPLY, _I.kex_ecdh_reply, _S.WAIT_NEWKEYS, ("NEWKEYS",),
        note="check the host key (known_hosts), the signature over H; derive keys A..F; ours on after NEWKEYS",
    ),
    Transition(
        _S.WAIT_NEWKEYS, _I.newkeys, _S.ENCRYPTED,
        note="the server's keys on; strict kex: sequence numbers back to 0",
    ),
    # Rekeying (section 9): either side may start.
    Transition(_S.ENCRYPTED, _I.rekey, _S.KEXINIT_SENT, ("KEXINIT",), note="on request, or a byte/packet limit"),
    Transition(_S.KEXINIT_SENT, _I.kexinit, _S.WAIT_KEX_ECDH_REPLY, ("KEX_ECDH_INIT",), note="negotiate again"),
    Transition(
        _S.ENCRYPTED, _I.kexinit, _S.WAIT_KEX_ECDH_REPLY, ("KEXINIT", "KEX_ECDH_INIT"),
        note="the server started a new key exchange",
    ),
)  # fmt: skip

SERVER_TRANSPORT: tuple[Transition, ...] = (
    Transition(_S.IDLE, _I.start, _S.WAIT_IDENTIFICATION, ("identification",), note="SSH-2.0-... CR LF"),
    Transition(
        _S.WAIT_IDENTIFICATION, _I.identification, _S.WAIT_KEXINIT, ("KEXINIT",),
        note="the first line must be the version line; V_C kept for H",
    ),
    Transition(_S.WAIT_KEXINIT, _I.kexinit, _S.WAIT_KEX_ECDH_INIT, note="negotiate"),
    Transition(
        _S.WAIT_KEXINIT, _I.kexinit, _S.DISCARD_GUESS,
        note="first_kex_packet_follows, for a method we did not pick: drop that packet (7)",
        when=Guard.wrong_guess_follows,
    ),
    Transition(_S.DISCARD_GUESS, _I.kex_ecdh_init, _S.WAIT_KEX_ECDH_INIT, note="the wrong guess, ignored"),
    Transition(
        _S.WAIT_KEX_ECDH_INIT, _I.kex_ecdh_init, _S.WAIT_NEWKEYS, ("KEX_ECDH_REPLY", "NEWKEYS"),
        note="our value, K, H signed with the host key; keys A..F; ours on after NEWKEYS",
    ),
    Transition(
        _S.WAIT_KEX_ECDH_INIT, _I.kex_ecdh_init, _S.WAIT_NEWKEYS, ("KEX_ECDH_REPLY", "NEWKEYS", "EXT_INFO"),
        note="and server-sig-algs, the first message under the new keys (RFC 8308)",
        when=Guard.ext_info_wanted,
    ),
    Transition(
        _S.WAIT_NEWKEYS, _I.newkeys, _S.ENCRYPTED,
        note="the client's keys on; strict kex: sequence numbers back to 0",
    ),
    Transition(_S.ENCRYPTED, _I.rekey, _S.KEXINIT_SENT, ("KEXINIT",), note="on request, or a byte/packet limit"),
    Transition(_S.KEXINIT_SENT, _I.kexinit, _S.WAIT_KEX_ECDH_INIT, note="negotiate again"),
    Transition(
        _S.ENCRYPTED, _I.kexinit, _S.WAIT_KEX_ECDH_INIT, ("KEXINIT",), note="the client started a new key exchange",
    ),
)  # fmt: skip

CLIENT_SERVICE: tuple[Transition, ...] = (
    Transition(
        _S.NO_SERVICE, _I.keys_on, _S.WAIT_SERVICE_ACCEPT, ("SERVICE_REQUEST",),
        note="ssh-userauth, the first message under the new keys",
    ),
    Transition(
        _S.WAIT_SERVICE_ACCEPT, _I.ext_info, _S.WAIT_SERVICE_ACCEPT,
        note="server-sig-algs: which signature algorithms it accepts for user keys",
        when=Guard.ext_info_expected,
    ),
    Transition(
        _S.WAIT_SERVICE_ACCEPT, _I.service_accept, _S.WAIT_USERAUTH, ("USERAUTH_REQUEST",),
        note="method none: which methods can continue? (RFC 4252 5.2)",
    ),
    Transition(_S.WAIT_USERAUTH, _I.userauth_banner, _S.WAIT_USERAUTH, note="shown to the user (RFC 4252 5.4)"),
    Transition(
        _S.WAIT_USERAUTH, _I.userauth_failure, _S.AUTH_METHODS_KNOWN,
        note="the methods that can continue, and nothing left to try with them: a probe's end, or permission denied",
    ),
    Transition(
        _S.WAIT_USERAUTH, _I.userauth_failure, _S.WAIT_USERAUTH, ("USERAUTH_REQUEST",),
        note="the next key (a query, unsigned), keyboard-interactive or the password; partial success: the next method",
        when=Guard.another_request,
    ),
    Transition(
        _S.WAIT_USERAUTH, _I.userauth_pk_ok, _S.WAIT_USERAUTH, ("USERAUTH_REQUEST",),
        note="the key would do: the same request, signed over session id + request (RFC 4252 7)",
    ),
    Transition(
        _S.WAIT_USERAUTH, _I.userauth_info_request, _S.WAIT_USERAUTH, ("USERAUTH_INFO_RESPONSE",),
        note="one answer per prompt (RFC 4256 3.4)",
    ),
    Transition(
        _S.WAIT_USERAUTH, _I.userauth_passwd_changereq, _S.WAIT_USERAUTH,
        note="the password expired: PasswordChangeRequired, a clear error (changing passwords is not taught)",
    ),
    Transition(
        _S.WAIT_USERAUTH, _I.userauth_success, _S.AUTHENTICATED, note="logged in: the connection protocol starts",
    ),
    *(
        Transition(_S.AUTHENTICATED, received, _S.AUTHENTICATED, note="to the channel's own table (ssh/channels.py)")
        for received in CONNECTION_INPUTS
    ),
)  # fmt: skip

SERVER_SERVICE: tuple[Transition, ...] = (
    Transition(_S.NO_SERVICE, _I.keys_on, _S.WAIT_SERVICE_REQUEST, note="encrypted: services may be asked for"),
    Transition(
        _S.WAIT_SERVICE_REQUEST, _I.ext_info, _S.WAIT_SERVICE_REQUEST,
        note="the client's extensions (RFC 8308 2.4): recorded, none acted on",
        when=Guard.client_ext_info_expected,
    ),
    Transition(
        _S.WAIT_SERVICE_REQUEST, _I.service_request, _S.WAIT_USERAUTH, ("SERVICE_ACCEPT",),
        note="ssh-userauth only; any other: DISCONNECT SERVICE_NOT_AVAILABLE",
    ),
    Transition(
        _S.WAIT_SERVICE_REQUEST, _I.service_request, _S.WAIT_USERAUTH, ("SERVICE_ACCEPT", "USERAUTH_BANNER"),
        note="and the banner, before any request (RFC 4252 5.4)",
        when=Guard.banner,
    ),
    *(
        row
        for source in (_S.WAIT_USERAUTH, _S.WAIT_INFO_RESPONSE)  # a client may drop a keyboard-interactive round
        for row in (
            Transition(
                source, _I.userauth_request, _S.WAIT_USERAUTH, ("USERAUTH_FAILURE",),
                note="refused (or none, or a partial success): the methods that can continue; MaxAuthTries",
            ),
            Transition(
                source, _I.userauth_request, _S.WAIT_USERAUTH, ("USERAUTH_PK_OK",),
                note="an unsigned query for a key in authorized_keys", when=Guard.key_acceptable,
            ),
            Transition(
                source, _I.userauth_request, _S.WAIT_INFO_RESPONSE, ("USERAUTH_INFO_REQUEST",),
                note="keyboard-interactive: the first round of questions", when=Guard.questions,
            ),
            Transition(
                source, _I.userauth_request, _S.AUTHENTICATED, ("USERAUTH_SUCCESS",),
                note="a signature that verifies, the right password", when=Guard.authenticated,
            ),
        )
    ),
    Transition(
        _S.WAIT_INFO_RESPONSE, _I.userauth_info_response, _S.WAIT_USERAUTH, ("USERAUTH_FAILURE",),
        note="a wrong answer (or partial success)",
    ),
    Transition(
        _S.WAIT_INFO_RESPONSE, _I.userauth_info_response, _S.WAIT_INFO_RESPONSE, ("USERAUTH_INFO_REQUEST",),
        note="the next round (a one-time code after the password)", when=Guard.questions,
    ),
    Transition(
        _S.WAIT_INFO_RESPONSE, _I.userauth_info_response, _S.AUTHENTICATED, ("USERAUTH_SUCCESS",),
        note="every round answered right", when=Guard.authenticated,
    ),
    Transition(
        _S.AUTHENTICATED, _I.userauth_request, _S.AUTHENTICATED,
        note="after success: silently ignored (RFC 4252 5.1)",
    ),
    *(
        Transition(_S.AUTHENTICATED, received, _S.AUTHENTICATED, note="to the channel's own table (ssh/channels.py)")
        for received in CONNECTION_INPUTS
    ),
)  # fmt: skip

TRANSPORT_TABLES: dict[Role, dict[tuple[State, Input], tuple[Transition, ...]]] = {}
SERVICE_TABLES: dict[Role, dict[tuple[State, Input], tuple[Transition, ...]]] = {}
for _tables, _role, _rows in (
    (TRANSPORT_TABLES, "client", CLIENT_TRANSPORT),
    (TRANSPORT_TABLES, "server", SERVER_TRANSPORT),
    (SERVICE_TABLES, "client", CLIENT_SERVICE),
    (SERVICE_TABLES, "server", SERVER_SERVICE),
):
    _index: dict[tuple[State, Input], list[Transition]] = {}
    for _row in _rows:
        _index.setdefault((_row.source, _row.received), []).append(_row)
    for _twins in _index.values():
        # At most one unguarded row per (state, input), and no two rows with the same guards.
        assert len({_twin.needs for _twin in _twins}) == len(_twins), _twins
    _tables[_role] = {key: tuple(twins) for key, twins in _index.items()}

INITIAL_STATE: dict[Machine, State] = {"transport": State.IDLE, "service": State.NO_SERVICE}

# Transport states in which the peer may still send service messages: ENCRYPTED, and KEXINIT_SENT (we
# started a rekey; the peer's messages sent before it saw our KEXINIT are still arriving).
SERVICE_STATES: frozenset[State] = frozenset({State.ENCRYPTED, State.KEXINIT_SENT})


def _tables(machine: Machine) -> dict[Role, dict[tuple[State, Input], tuple[Transition, ...]]]:
    if machine == "transport":
        return TRANSPORT_TABLES
    if machine == "service":
        return SERVICE_TABLES
    raise ValueError(f"machine must be 'transport' or 'service', not {machine!r}")


def _rows(role: Role, machine: Machine) -> dict[tuple[State, Input], tuple[Transition, ...]]:
    tables = _tables(machine)
    if role not in tables:
        raise ValueError(f"role must be 'client' or 'server', not {role!r}")
    return tables[role]


def machine_for(received: Input) -> Machine:
    """Which machine an input belongs to: the key exchange's messages and ``start``/``rekey`` are transport."""
    if received in (Input.start, Input.rekey, Input.identification, Input.kexinit, Input.kex_ecdh_init,
                    Input.kex_ecdh_reply, Input.newkeys):
        return "transport"
    return "service"


def transition_for(
    role: Role, machine: Machine, state: State, received: Input, guards: Collection[Guard] = ()
) -> Transition:
    """The row for ``received`` in ``state`` of ``role``'s ``machine``; UnexpectedMessage if there is none.

    Among a pair's rows, the most specific one whose guards all hold wins; none holding (and no unguarded
    row) is unexpected too, with the guard named.
    """
    rows = _rows(role, machine).get((state, received))
    if not rows:
        raise UnexpectedMessage(f"{received.value} is not allowed in {role} {machine} state {state.value}")
    holding = [row for row in rows if row.needs <= set(guards)]
    if holding:
        return max(holding, key=lambda row: len(row.needs))
    needed = " or ".join("; ".join(guard.value for guard in Guard if guard in row.needs) for row in rows)
    raise UnexpectedMessage(f"{received.value} is allowed in {role} {machine} state {state.value} only when {needed}")


def refine(role: Role, machine: Machine, row: Transition, guards: Collection[Guard]) -> Transition:
    """``row``, or its twin that needs more guards, all of which hold now (decided by the message itself)."""
    twins = _rows(role, machine)[(row.source, row.received)]
    better = [twin for twin in twins if row.needs < twin.needs <= set(guards)]
    return max(better, key=lambda twin: len(twin.needs)) if better else row


def input_for(message_number: int, message_name: str | None = None) -> Input | None:
    """The table input for a received message number (RFC 4250); None for one the tables do not know.

    Number 60 needs the decoded message's name (``SSH_MSG_USERAUTH_PK_OK``...): it means a different message
    for each authentication method; without the name it is taken as PK_OK.
    """
    if message_number == 60:
        return _METHOD_SPECIFIC_INPUTS.get(message_name or "SSH_MSG_USERAUTH_PK_OK")
    return _MESSAGE_INPUTS.get(message_number)


def strict_kex_allows(message_number: int) -> bool:
    """Under strict kex, whether a message may arrive during the first key exchange: only the exchange's own.

    Everything else (IGNORE and DEBUG included, which a Terrapin attacker would inject or delete to shift
    sequence numbers) ends the connection.
    """
    return message_number in (20, 21, 30, 31)


def allowed_inputs(role: Role, machine: Machine, state: State) -> list[Input]:
    """What ``role``'s ``machine`` accepts in ``state``, in table order."""
    return [received for (source, received) in _rows(role, machine) if source is state]


def diagram_rows(role: Role, machine: Machine = "transport", *, complete: bool = False) -> list[tuple[str, str, str]]:
    """(source, label, target) rows for a state diagram; rows that stay in their state only if ``complete``."""
    arrows: dict[tuple[State, State], list[Transition]] = {}
    for rows in _rows(role, machine).values():
        for row in rows:
            if complete or row.source is not row.target:
                arrows.setdefault((row.source, row.target), []).append(row)
    return [
        (source.value, "\n".join(row.label for row in rows), target.value) for (source, target), rows in arrows.items()
    ]


def replay(role: Role, events: Iterable[tuple[str, int | str]]) -> list[tuple[State, State]]:
    """Both machines' states after each event of a recorded connection, by walking the tables.

    ``events`` are ``(direction, what)``: direction ``"sent"`` or ``"received"``; ``what`` a message number,
    a message name (``"SSH_MSG_USERAUTH_INFO_REQUEST"``: number 60 means three messages), or
    ``"identification"`` for a version line.  The first thing sent starts the transport; a NEWKEYS
    received that reaches ENCRYPTED for the first time starts the service (``keys_on``); a KEXINIT sent
    from ENCRYPTED is a ``rekey``.  DISCONNECT in either direction means CLOSED; an input a table refuses
    means ERROR (the connection would have disconnected).  Guards are read from the record: a server saw
    the client's guess go wrong if it received a KEX_ECDH_INIT right after KEXINIT and before sending its
    reply, which it discarded (not representable here: replay assumes right guesses); EXT_INFO is accepted
    once by either side, right after the first NEWKEYS.  Which of a service row's twins ran (PK_OK or
    FAILURE, a next request or the end) is read from what was sent right after the message.
    """
    transport, service = State.IDLE, State.NO_SERVICE
    after: list[tuple[State, State]] = []
    ext_info_pending = False
    events = list(events)
    for index, (direction, what) in enumerate(events):
        if isinstance(what, str) and what.startswith("SSH_MSG_"):
            name: str | None = what
            what = _number_of(what.removeprefix("SSH_MSG_"))
        else:
            name = None
        if State.ERROR in (transport, service) or State.CLOSED in (transport, service):
            after.append((transport, service))
            continue
        if what == 1:
            transport = service = State.CLOSED
        elif direction == "sent":
            if transport is State.IDLE:
                transport = transition_for(role, "transport", transport, Input.start).target
            elif what == 20 and transport is State.ENCRYPTED:
                transport = transition_for(role, "transport", transport, Input.rekey).target
        else:
            received = Input.identification if what == "identification" else input_for(int(what), name)
            if received is not None:
                machine = machine_for(received)
                expected = Guard.ext_info_expected if role == "client" else Guard.client_ext_info_expected
                guards = {expected} if ext_info_pending else set()
                try:
                    if machine == "transport":
                        first = service is State.NO_SERVICE
                        transport = transition_for(role, machine, transport, received, guards).target
                        if first and transport is State.ENCRYPTED:
                            service = transition_for(role, "service", service, Input.keys_on).target
                            ext_info_pending = True
                    else:
                        if transport not in SERVICE_STATES:
                            raise UnexpectedMessage(f"{received.value} during a key exchange")
                        row = transition_for(role, machine, service, received, guards)
                        service = _twin_that_sent(role, row, guards, _sent_after(events, index)).target
                        ext_info_pending = False
                except UnexpectedMessage:
                    transport = service = State.ERROR
        after.append((transport, service))
    return after


# What a service row's handler decides from the message itself (replay reads it from what was sent next).
_DECIDED_GUARDS = frozenset({Guard.banner, Guard.another_request, Guard.key_acceptable, Guard.questions,
                             Guard.authenticated})  # fmt: skip


def _number_of(name: str) -> int:
    """``"USERAUTH_PK_OK"`` -> 60 (a send column's name, or a message name without ``SSH_MSG_``)."""
    return int(MessageNumber[name])


def _sent_after(events: list[tuple[str, int | str]], index: int) -> list[int | str]:
    """What was sent right after event ``index``, up to the next thing received."""
    sent: list[int | str] = []
    for direction, what in events[index + 1 :]:
        if direction != "sent":
            break
        sent.append(what)
    return sent


def _sends_match(send: tuple[str, ...], sent: list[int | str]) -> bool:
    if len(sent) < len(send):
        return False
    for name, what in zip(send, sent, strict=False):
        if isinstance(what, str):
            if what.removeprefix("SSH_MSG_") != name:
                return False
        elif _number_of(name) != what:
            return False
    return True


def _twin_that_sent(role: Role, row: Transition, guards: Collection[Guard], sent: list[int | str]) -> Transition:
    """Among ``row``'s twins a handler could have chosen, the one whose flight is what was sent next."""
    twins = _rows(role, "service")[(row.source, row.received)]
    possible = [twin for twin in twins if twin.needs <= set(guards) | _DECIDED_GUARDS]
    matching = [twin for twin in possible if twin.send and _sends_match(twin.send, sent)]
    if matching:
        return max(matching, key=lambda twin: len(twin.send))
    return row
