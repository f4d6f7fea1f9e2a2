"""The TLS 1.2 handshake as two tables: one for the client, one for the server (RFC 5246 section 7.3).

Theory of operation
-------------------
A TLS 1.2 endpoint is always in one :class:`State`.  Something arrives from the peer (a handshake
message, a ChangeCipherSpec, application data) or the application asks for something (``start``),
the endpoint looks up ``(state, what happened)`` in its role's table, sends what the row says and
moves to the row's target state.  A pair that is not in the table is the peer breaking the protocol:
:func:`transition_for` raises :class:`~handshake_lib.errors.UnexpectedMessage` (alert
``unexpected_message``) straight from the table, before any code looks at the message's contents.

The full handshake with RSA key exchange, as the tables below encode it::

    Client                                               Server
    ClientHello                  -------->                                  (WAIT_CLIENT_HELLO)
                                                         ServerHello
                                                         Certificate
                                 <--------               ServerHelloDone   (WAIT_CLIENT_KEY_EXCHANGE)
    ClientKeyExchange
    [ChangeCipherSpec]
    Finished                     -------->                                  (WAIT_CHANGE_CIPHER_SPEC,
                                                         NewSessionTicket*   WAIT_FINISHED)
                                                         [ChangeCipherSpec]
                                 <--------               Finished
    Application Data             <------->               Application Data   (CONNECTED)

The client's states mirror the server's flights: WAIT_SERVER_HELLO, WAIT_CERTIFICATE,
WAIT_SERVER_HELLO_DONE, then WAIT_CHANGE_CIPHER_SPEC and WAIT_FINISHED.

Client certificates (mutual TLS, RFC 5246 sections 7.4.4, 7.4.6 and 7.4.8) add one message to the
server's flight and up to two to the client's::

    Client                                               Server
                                                         ServerHello
                                                         Certificate
                                                         CertificateRequest
                                 <--------               ServerHelloDone   (WAIT_CLIENT_CERTIFICATE)
    Certificate                                                             (WAIT_CLIENT_KEY_EXCHANGE)
    ClientKeyExchange                                                       (WAIT_CERTIFICATE_VERIFY)
    CertificateVerify
    [ChangeCipherSpec]
    Finished                     -------->                  ...

The server's ClientHello row has a guarded twin: while :attr:`Guard.client_certificate_requested`
holds (the server was configured to ask), its flight includes CertificateRequest and it waits for the
client's Certificate.  The client's Certificate may be empty (it has none to give; a server that
*requires* one refuses that); only a non-empty one is followed by CertificateVerify, which is the
guarded twin of the server's ClientKeyExchange row (:attr:`Guard.client_certificate_sent`).  On the
client, CertificateRequest moves WAIT_SERVER_HELLO_DONE to CERTIFICATE_REQUESTED, whose ServerHelloDone
row sends Certificate first, and CertificateVerify too while :attr:`Guard.client_certificate_to_send`
holds.  A (state, input) pair may thus have several rows: one unguarded at most, the others each with
its own guards; the row whose guards hold wins, else the unguarded one.

OCSP stapling (RFC 6066 section 8) adds CertificateStatus right after the server's Certificate, when the
client asked (``status_request`` in its hello) and the server has a response to staple (it then says so
with an empty ``status_request`` in its ServerHello)::

    Client                                               Server
    ClientHello (status_request) -------->
                                                         ServerHello (status_request)
                                                         Certificate
                                                         CertificateStatus
                                 <--------               ServerHelloDone

On the server, :attr:`Guard.ocsp_response_to_staple` guards the ClientHello rows whose flight includes
CertificateStatus; with a client certificate requested too, the row needs both guards.  A row may need
several guards; the most specific row whose guards all hold wins.  The server learns whether the client
asked from the ClientHello itself, so the row found before the message was read (which decides
``unexpected_message``) is *refined* after its handler ran: a twin that needs more guards, all of which
now hold, replaces it (:func:`refine`).  A guard can thus only add to a flight, never take a row away.

On the client, :attr:`Guard.status_request_acknowledged` (the ServerHello had ``status_request``) sends
Certificate to WAIT_CERTIFICATE_STATUS.  RFC 6066 lets a server that acknowledged the request send no
CertificateStatus after all ("a server MAY also choose not to send"), and OpenSSL's client accepts that
("The CertificateStatus message is optional even if ext.status_expected is set"), so ServerHelloDone and
CertificateRequest are rows of WAIT_CERTIFICATE_STATUS too.  A CertificateStatus the client did not ask
for, or anywhere else, has no row: ``unexpected_message``, as in OpenSSL.

Ephemeral key exchange (ECDHE, RFC 8422; DHE, RFC 5246 and RFC 7919) adds ServerKeyExchange after the
server's Certificate (and after CertificateStatus, when it staples), and changes what ClientKeyExchange
carries (the client's public value instead of an encrypted pre-master secret)::

    Client                                               Server
    ClientHello (supported_groups) -------->
                                                         ServerHello
                                                         Certificate
                                                         CertificateStatus*
                                                         ServerKeyExchange  (signed: both randoms, params)
                                                         CertificateRequest*
                                 <--------               ServerHelloDone
    Certificate*
    ClientKeyExchange (public value)
    CertificateVerify*  ...

On the server every ClientHello row has a twin under :attr:`Guard.ephemeral_key_exchange` (decided by the
ClientHello, like stapling: the row is refined), whose flight adds ServerKeyExchange; with the other guards
that makes eight rows, closed under union.  On the client the ServerHello's suite decides: with an ephemeral
suite Certificate goes to WAIT_SERVER_KEY_EXCHANGE (or WAIT_CERTIFICATE_STATUS, whose CertificateStatus
then goes there too); the rows of WAIT_CERTIFICATE_STATUS that go on without a ServerKeyExchange need
:attr:`Guard.rsa_key_exchange`, so an ECDHE server that skips it is ``unexpected_message``, as is a
ServerKeyExchange in an RSA handshake (it has no row).

Resumption (RFC 5246 sections 7.3 and 7.4.1.2) is a different, shorter handshake: the client offers a
session ID (or a ticket, RFC 5077), and a server that still knows that session echoes the ID, then
finishes first::

    Client                                               Server
    ClientHello (session_id)     -------->                                  (WAIT_CLIENT_HELLO)
                                                         ServerHello (same session_id)
                                                         NewSessionTicket*
                                                         [ChangeCipherSpec]
                                 <--------               Finished          (WAIT_CHANGE_CIPHER_SPEC)
    [ChangeCipherSpec]
    Finished                     -------->                                  (WAIT_FINISHED -> CONNECTED)

:attr:`Guard.session_resumed` is *exclusive* (:data:`EXCLUSIVE`): its rows replace the full handshake's
rows instead of adding a message to them, so they are exempt from the union rule, :func:`refine` moves to
them from any twin (the ClientHello or ServerHello decides, as for stapling), and while it holds a
connection reports no guard of the full handshake.  That is the one exception to "a guard only adds".
On the client, ServerHello under the guard goes straight to WAIT_CHANGE_CIPHER_SPEC and its Finished row
sends ChangeCipherSpec and Finished; on the server, ClientHello's flight is ServerHello, ChangeCipherSpec,
Finished, and the client's Finished row sends nothing.

The table drives the code.  :class:`~handshake_lib.tls.connection.TLSConnection` looks every input up
here, runs the handler the row's input names (``ServerHello`` -> check what the server chose), sends the
row's ``send`` column in order, each message built by the sender of that name, checks that what went
out is exactly that column (anything else is a bug: ``InternalError``), and only then moves to the row's
``target``: the one place a handshake state changes.  What RFC 5246 allows outside the plain flights is
a row too, rather than an exception written in code:

* NewSessionTicket (RFC 5077) in WAIT_CHANGE_CIPHER_SPEC has a *guard*, as the RST of RFC 9293 note 1
  has in :mod:`handshake_lib.tcp.states`: the row applies only while :attr:`Guard.ticket_expected`
  holds (the server agreed to ``session_ticket`` and sent no ticket yet); otherwise the message is
  ``unexpected_message`` like any other missing row.
* Application data in CLOSED: after our close_notify, what the peer still sends is discarded (section
  7.2.1).

Renegotiation (RFC 5746) is the same handshake again over the open connection, its messages protected by
the current keys::

    Client                                               Server
                                 <--------               HelloRequest      (renegotiate(): asks, optional)
    ClientHello (renegotiation_info: client's last verify_data)   -------->  (CONNECTED)
                                 <--------               ServerHello (renegotiation_info: both sides')
                                                         ... the full handshake's flight, as above
    Application Data             <------->               Application Data  (until each ChangeCipherSpec)

The application's ``renegotiate()`` is an input, like ``start()``: on a client it sends a ClientHello from
CONNECTED, on a server a HelloRequest (both under :attr:`Guard.secure_renegotiation`: the first handshake
agreed renegotiation_info).  The server's ClientHello rows in CONNECTED are made from those of
WAIT_CLIENT_HELLO by :func:`_renegotiation_rows`, each also needing :attr:`Guard.renegotiation_allowed`
(within ``max_renegotiations``, or we asked); the unguarded CONNECTED row declines with the warning
``no_renegotiation`` (RFC 5746 section 4.4), as does the client's unguarded HelloRequest row (RFC 5246
7.4.1.1).  That warning, in answer to our own request, is the one alert with rows (``Input.no_renegotiation``):
the connection goes back to, or stays, CONNECTED with its keys.  While a renegotiation runs
(:attr:`Guard.renegotiating`), application data has a self-loop in every state before the peer's
ChangeCipherSpec.

Other alerts are not in the tables: a fatal alert ends the connection in any state, and ``close_notify``
closes it (``CLOSED``).  A connection that detected an error is in ``ERROR`` and refuses further use.
This module only holds the tables; :mod:`handshake_lib.tls.connection` and its two roles
(:mod:`~handshake_lib.tls.client`, :mod:`~handshake_lib.tls.server`) follow them, and the notebooks
draw them with :func:`diagram_rows`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from ..errors import TLSAlert, UnexpectedMessage
from .constants import AlertLevel, CipherSuite, ContentType, ExtensionType, HandshakeType, name_of

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
    "input_for",
    "allowed_inputs",
    "diagram_rows",
    "replay",
]

Role = Literal["client", "server"]


class State(Enum):
    """Where a handshake is.  Values are what the diagrams print."""

    IDLE = "IDLE"  # client: start() not called yet
    WAIT_SERVER_HELLO = "WAIT_SERVER_HELLO"
    WAIT_CERTIFICATE = "WAIT_CERTIFICATE"
    WAIT_CERTIFICATE_STATUS = "WAIT_CERTIFICATE_STATUS"  # client: status_request acknowledged, Certificate seen
    WAIT_SERVER_KEY_EXCHANGE = "WAIT_SERVER_KEY_EXCHANGE"  # client: ECDHE/DHE suite, Certificate seen
    WAIT_SERVER_HELLO_DONE = "WAIT_SERVER_HELLO_DONE"
    CERTIFICATE_REQUESTED = "CERTIFICATE_REQUESTED"  # client: CertificateRequest seen, ServerHelloDone next
    WAIT_CLIENT_HELLO = "WAIT_CLIENT_HELLO"  # server's first state
    WAIT_CLIENT_CERTIFICATE = "WAIT_CLIENT_CERTIFICATE"  # server: CertificateRequest sent
    WAIT_CLIENT_KEY_EXCHANGE = "WAIT_CLIENT_KEY_EXCHANGE"
    WAIT_CERTIFICATE_VERIFY = "WAIT_CERTIFICATE_VERIFY"  # server: the client sent a certificate
    WAIT_CHANGE_CIPHER_SPEC = "WAIT_CHANGE_CIPHER_SPEC"
    WAIT_FINISHED = "WAIT_FINISHED"
    CONNECTED = "CONNECTED"
    CLOSED = "CLOSED"  # close_notify sent or received
    ERROR = "ERROR"  # a fatal alert was sent or received


class Input(Enum):
    """What can happen: the application's ``start`` or ``renegotiate``, or a message received from the peer."""

    start = "start()"
    renegotiate = "renegotiate()"
    hello_request = "HelloRequest"
    client_hello = "ClientHello"
    server_hello = "ServerHello"
    certificate = "Certificate"
    certificate_status = "CertificateStatus"
    server_key_exchange = "ServerKeyExchange"
    certificate_request = "CertificateRequest"
    server_hello_done = "ServerHelloDone"
    client_key_exchange = "ClientKeyExchange"
    certificate_verify = "CertificateVerify"
    new_session_ticket = "NewSessionTicket"
    change_cipher_spec = "ChangeCipherSpec"
    finished = "Finished"
    application_data = "ApplicationData"
    # The one alert with a row: the peer declining the renegotiation we asked for (RFC 5746 section 4.5).
    no_renegotiation = "Alert(no_renegotiation)"


class Guard(Enum):
    """A condition a row needs besides its state and input; values are what the diagrams print."""

    ticket_expected = "session_ticket agreed, no ticket yet"
    client_certificate_requested = "client certificate requested"  # server: configured to ask
    client_certificate_sent = "client sent a certificate"  # server: the client's Certificate was not empty
    client_certificate_to_send = "we have a certificate"  # client: configured with a certificate and key
    ocsp_response_to_staple = "status requested, response to staple"  # server: the client asked, we have one
    status_request_acknowledged = "status_request acknowledged in ServerHello"  # client
    # The suite's key exchange: ECDHE/DHE adds ServerKeyExchange (server: the ClientHello decides, so the
    # row is refined; client: the ServerHello's suite).  The client's rows that skip ServerKeyExchange
    # after a CertificateStatus need rsa_key_exchange, so an ephemeral suite cannot skip it there.
    ephemeral_key_exchange = "ECDHE or DHE suite"
    rsa_key_exchange = "RSA key exchange suite"  # client
    # The abbreviated handshake (RFC 5246 7.3, 7.4.1.2): the ServerHello echoed the session ID the client
    # offered.  Exclusive: it replaces the full handshake's flight instead of adding to it (see EXCLUSIVE).
    session_resumed = "session resumed"
    ticket_to_send = "session_ticket agreed, no ticket sent yet"  # server: RFC 5077, we hold ticket keys
    # Renegotiation (RFC 5746): the first handshake agreed renegotiation_info (or the client sent the SCSV);
    # the peer may start another one (within max_renegotiations, or the server asked with HelloRequest);
    # a renegotiation is under way (application data may still arrive under the current keys); the server
    # sent HelloRequest and the client has not answered yet.
    secure_renegotiation = "renegotiation_info agreed"
    renegotiation_allowed = "within the renegotiation limit"
    renegotiating = "renegotiating"
    hello_request_sent = "HelloRequest sent, unanswered"  # server


# Guards that pick a different handshake rather than add a message to a flight: rows under them are
# exempt from the union rule in ``_index``, ``refine`` may move to them from any row, and while one holds a
# connection's ``guards()`` reports no guard of the full handshake.
EXCLUSIVE: frozenset[Guard] = frozenset({Guard.session_resumed})


@dataclass(frozen=True)
class Transition:
    """One row: in ``source``, on ``received`` (if ``when`` holds), send ``send`` in order, go to ``target``.

    ``send`` names what goes out: handshake messages and ChangeCipherSpec by their names, an alert as
    ``Alert(<description>)``.  ``when`` is None for a row that needs nothing but its state and input, a
    Guard, or a tuple of Guards that must all hold.
    """

    source: State
    received: Input
    target: State
    send: tuple[str, ...] = ()
    note: str = ""
    when: Guard | tuple[Guard, ...] | None = None

    @property
    def needs(self) -> frozenset[Guard]:
        """The guards this row needs (empty for an unguarded row)."""
        if self.when is None:
            return frozenset()
        return frozenset(self.when) if isinstance(self.when, tuple) else frozenset((self.when,))

    @property
    def label(self) -> str:
        """``ServerHelloDone / ClientKeyExchange, ChangeCipherSpec, Finished``: the arrow's text."""
        return _event_label(self.received, _ordered(self.needs), self.send)


def _ordered(guards: Collection[Guard]) -> list[Guard]:
    """``guards`` in the order the enum lists them: labels and messages read the same every time."""
    return [guard for guard in Guard if guard in guards]


def _event_label(received: Input, guards: Iterable[Guard], send: Iterable[str]) -> str:
    texts = [guard.value for guard in guards]
    event = f"{received.value} [{'; '.join(texts)}]" if texts else received.value
    flight = ", ".join(send)
    return f"{event} / {flight}" if flight else event


_C, _I = State, Input
CLIENT_TRANSITIONS: tuple[Transition, ...] = (
    Transition(_C.IDLE, _I.start, _C.WAIT_SERVER_HELLO, ("ClientHello",)),
    Transition(_C.WAIT_SERVER_HELLO, _I.server_hello, _C.WAIT_CERTIFICATE),
    Transition(
        _C.WAIT_SERVER_HELLO,
        _I.server_hello,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        note="our session ID echoed: same suite and EMS flag, keys from the cached master secret",
        when=Guard.session_resumed,
    ),
    Transition(_C.WAIT_CERTIFICATE, _I.certificate, _C.WAIT_SERVER_HELLO_DONE, note="validate chain and host name"),
    Transition(
        _C.WAIT_CERTIFICATE,
        _I.certificate,
        _C.WAIT_CERTIFICATE_STATUS,
        note="validate chain and host name; a stapled OCSP response may follow (RFC 6066 section 8)",
        when=Guard.status_request_acknowledged,
    ),
    Transition(
        _C.WAIT_CERTIFICATE_STATUS,
        _I.certificate_status,
        _C.WAIT_SERVER_HELLO_DONE,
        note="keep the OCSP response; the validator reads it (a revoked answer: certificate_revoked)",
    ),
    Transition(
        _C.WAIT_CERTIFICATE_STATUS,
        _I.server_hello_done,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        ("ClientKeyExchange", "ChangeCipherSpec", "Finished"),
        note="RFC 6066 section 8: acknowledged, then none sent; OpenSSL's client accepts it",
        when=Guard.rsa_key_exchange,
    ),
    Transition(
        _C.WAIT_CERTIFICATE_STATUS,
        _I.certificate_request,
        _C.CERTIFICATE_REQUESTED,
        note="no CertificateStatus after all; pick a signature scheme our key can make",
        when=Guard.rsa_key_exchange,
    ),
    Transition(
        _C.WAIT_CERTIFICATE,
        _I.certificate,
        _C.WAIT_SERVER_KEY_EXCHANGE,
        note="validate chain and host name; the server's ephemeral key comes next, signed",
        when=Guard.ephemeral_key_exchange,
    ),
    Transition(
        _C.WAIT_CERTIFICATE,
        _I.certificate,
        _C.WAIT_CERTIFICATE_STATUS,
        note="validate chain and host name; a stapled OCSP response may follow, then ServerKeyExchange",
        when=(Guard.status_request_acknowledged, Guard.ephemeral_key_exchange),
    ),
    Transition(
        _C.WAIT_CERTIFICATE_STATUS,
        _I.certificate_status,
        _C.WAIT_SERVER_KEY_EXCHANGE,
        note="keep the OCSP response; the validator reads it; ServerKeyExchange next",
        when=Guard.ephemeral_key_exchange,
    ),
    Transition(
        _C.WAIT_CERTIFICATE_STATUS,
        _I.server_key_exchange,
        _C.WAIT_SERVER_HELLO_DONE,
        note="no CertificateStatus after all; check the signature over both randoms and the params",
        when=Guard.ephemeral_key_exchange,
    ),
    Transition(
        _C.WAIT_SERVER_KEY_EXCHANGE,
        _I.server_key_exchange,
        _C.WAIT_SERVER_HELLO_DONE,
        note="a group we offered, a valid public value, the signature over both randoms and the params",
    ),
    Transition(
        _C.WAIT_SERVER_HELLO_DONE,
        _I.server_hello_done,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        ("ClientKeyExchange", "ChangeCipherSpec", "Finished"),
    ),
    Transition(
        _C.WAIT_SERVER_HELLO_DONE,
        _I.certificate_request,
        _C.CERTIFICATE_REQUESTED,
        note="pick a signature scheme our key can make",
    ),
    Transition(
        _C.CERTIFICATE_REQUESTED,
        _I.server_hello_done,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        ("Certificate", "ClientKeyExchange", "ChangeCipherSpec", "Finished"),
        note="no certificate to give: an empty Certificate (7.4.6)",
    ),
    Transition(
        _C.CERTIFICATE_REQUESTED,
        _I.server_hello_done,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        ("Certificate", "ClientKeyExchange", "CertificateVerify", "ChangeCipherSpec", "Finished"),
        note="CertificateVerify signs every handshake message so far (7.4.8)",
        when=Guard.client_certificate_to_send,
    ),
    Transition(
        _C.WAIT_CHANGE_CIPHER_SPEC,
        _I.new_session_ticket,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        note="RFC 5077: only when session_ticket was agreed, and only once",
        when=Guard.ticket_expected,
    ),
    Transition(_C.WAIT_CHANGE_CIPHER_SPEC, _I.change_cipher_spec, _C.WAIT_FINISHED, note="server keys on"),
    Transition(_C.WAIT_FINISHED, _I.finished, _C.CONNECTED, note="check verify_data"),
    Transition(
        _C.WAIT_FINISHED,
        _I.finished,
        _C.CONNECTED,
        ("ChangeCipherSpec", "Finished"),
        note="abbreviated handshake: the server finished first, we answer",
        when=Guard.session_resumed,
    ),
    Transition(_C.CONNECTED, _I.application_data, _C.CONNECTED),
    Transition(
        _C.CONNECTED,
        _I.hello_request,
        _C.CONNECTED,
        ("Alert(no_renegotiation)",),
        note="RFC 5246 7.4.1.1: a client may decline renegotiation; RFC 5746 4.5: with this warning",
    ),
    Transition(
        _C.CONNECTED,
        _I.hello_request,
        _C.WAIT_SERVER_HELLO,
        ("ClientHello",),
        note="the server asks for a new handshake: renegotiation_info carries our last Finished (RFC 5746 3.5)",
        when=(Guard.secure_renegotiation, Guard.renegotiation_allowed),
    ),
    Transition(
        _C.CONNECTED,
        _I.renegotiate,
        _C.WAIT_SERVER_HELLO,
        ("ClientHello",),
        note="we ask for a new handshake over the open connection (RFC 5746 3.5)",
        when=Guard.secure_renegotiation,
    ),
    Transition(
        _C.WAIT_SERVER_HELLO,
        _I.no_renegotiation,
        _C.CONNECTED,
        note="the server declined our renegotiation: the connection goes on with its keys (RFC 5746 4.5)",
        when=Guard.renegotiating,
    ),
    Transition(_C.CLOSED, _I.application_data, _C.CLOSED, note="after our close_notify: discarded (7.2.1)"),
)

SERVER_TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_KEY_EXCHANGE,
        ("ServerHello", "Certificate", "ServerHelloDone"),
        note="choose version, suite, extensions",
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_CERTIFICATE,
        ("ServerHello", "Certificate", "CertificateRequest", "ServerHelloDone"),
        note="choose version, suite, extensions; ask for the client's certificate",
        when=Guard.client_certificate_requested,
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_KEY_EXCHANGE,
        ("ServerHello", "Certificate", "CertificateStatus", "ServerHelloDone"),
        note="choose version, suite, extensions; staple the OCSP response the client asked for",
        when=Guard.ocsp_response_to_staple,
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_CERTIFICATE,
        ("ServerHello", "Certificate", "CertificateStatus", "CertificateRequest", "ServerHelloDone"),
        note="staple the OCSP response (right after Certificate, RFC 6066 section 8); ask for a certificate",
        when=(Guard.client_certificate_requested, Guard.ocsp_response_to_staple),
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_KEY_EXCHANGE,
        ("ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone"),
        note="ECDHE/DHE suite: our ephemeral key, signed over both randoms",
        when=Guard.ephemeral_key_exchange,
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_CERTIFICATE,
        ("ServerHello", "Certificate", "ServerKeyExchange", "CertificateRequest", "ServerHelloDone"),
        note="ECDHE/DHE suite; ask for the client's certificate",
        when=(Guard.client_certificate_requested, Guard.ephemeral_key_exchange),
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_KEY_EXCHANGE,
        ("ServerHello", "Certificate", "CertificateStatus", "ServerKeyExchange", "ServerHelloDone"),
        note="ECDHE/DHE suite; staple the OCSP response",
        when=(Guard.ocsp_response_to_staple, Guard.ephemeral_key_exchange),
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CLIENT_CERTIFICATE,
        (
            "ServerHello",
            "Certificate",
            "CertificateStatus",
            "ServerKeyExchange",
            "CertificateRequest",
            "ServerHelloDone",
        ),
        note="ECDHE/DHE suite; staple; ask for a certificate",
        when=(Guard.client_certificate_requested, Guard.ocsp_response_to_staple, Guard.ephemeral_key_exchange),
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        ("ServerHello", "ChangeCipherSpec", "Finished"),
        note="a cached session, same suite and EMS flag: the abbreviated handshake",
        when=Guard.session_resumed,
    ),
    Transition(
        _C.WAIT_CLIENT_HELLO,
        _I.client_hello,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        ("ServerHello", "NewSessionTicket", "ChangeCipherSpec", "Finished"),
        note="resumed (by ID or ticket), and a new ticket for next time (RFC 5077 3.1)",
        when=(Guard.session_resumed, Guard.ticket_to_send),
    ),
    Transition(
        _C.WAIT_CLIENT_CERTIFICATE,
        _I.certificate,
        _C.WAIT_CLIENT_KEY_EXCHANGE,
        note="validate the client chain (clientAuth); empty: refused if required",
    ),
    Transition(
        _C.WAIT_CLIENT_KEY_EXCHANGE,
        _I.client_key_exchange,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        note="decrypt the pre-master secret (RSA), or compute it from the client's public value (ECDHE/DHE)",
    ),
    Transition(
        _C.WAIT_CLIENT_KEY_EXCHANGE,
        _I.client_key_exchange,
        _C.WAIT_CERTIFICATE_VERIFY,
        note="decrypt pre-master",
        when=Guard.client_certificate_sent,
    ),
    Transition(
        _C.WAIT_CERTIFICATE_VERIFY,
        _I.certificate_verify,
        _C.WAIT_CHANGE_CIPHER_SPEC,
        note="check the signature with the client certificate's key",
    ),
    Transition(_C.WAIT_CHANGE_CIPHER_SPEC, _I.change_cipher_spec, _C.WAIT_FINISHED, note="client keys on"),
    Transition(_C.WAIT_FINISHED, _I.finished, _C.CONNECTED, ("ChangeCipherSpec", "Finished"), note="check verify_data"),
    Transition(
        _C.WAIT_FINISHED,
        _I.finished,
        _C.CONNECTED,
        ("NewSessionTicket", "ChangeCipherSpec", "Finished"),
        note="check verify_data; the session, sealed in a ticket, before our ChangeCipherSpec (RFC 5077 3.3)",
        when=Guard.ticket_to_send,
    ),
    Transition(
        _C.WAIT_FINISHED,
        _I.finished,
        _C.CONNECTED,
        note="abbreviated handshake: we finished first; check verify_data",
        when=Guard.session_resumed,
    ),
    Transition(_C.CONNECTED, _I.application_data, _C.CONNECTED),
    Transition(
        _C.CONNECTED,
        _I.renegotiate,
        _C.CONNECTED,
        ("HelloRequest",),
        note="ask the client for a new handshake (RFC 5246 7.4.1.1); it may decline, or ignore us",
        when=Guard.secure_renegotiation,
    ),
    Transition(
        _C.CONNECTED,
        _I.client_hello,
        _C.CONNECTED,
        ("Alert(no_renegotiation)",),
        note="a renegotiation we do not allow (no renegotiation_info, or over the limit): declined (RFC 5746 4.4)",
    ),
    Transition(
        _C.CONNECTED,
        _I.no_renegotiation,
        _C.CONNECTED,
        note="the client declined our HelloRequest: the connection goes on with its keys",
        when=Guard.hello_request_sent,
    ),
    Transition(_C.CLOSED, _I.application_data, _C.CLOSED, note="after our close_notify: discarded (7.2.1)"),
)


_RENEGOTIATING = Guard.renegotiating


def _renegotiation_rows(rows: tuple[Transition, ...], role: Role) -> tuple[Transition, ...]:
    """The rows a renegotiation adds, made from the table itself so that they cannot drift from it.

    A renegotiation is the same handshake again, over the open connection (RFC 5246 section 7.4.1.1): on
    the server each ClientHello row of WAIT_CLIENT_HELLO gets a twin in CONNECTED that also needs
    :attr:`Guard.secure_renegotiation` and :attr:`Guard.renegotiation_allowed` (without them the CONNECTED
    row above declines).  While it runs, application data may still arrive under the current keys in
    every state before the peer's ChangeCipherSpec (WAIT_FINISHED is after it: OpenSSL too refuses data
    between ChangeCipherSpec and Finished).
    """
    added: list[Transition] = []
    if role == "server":
        renegotiation = (Guard.secure_renegotiation, Guard.renegotiation_allowed)
        added += [
            Transition(
                _C.CONNECTED,
                _I.client_hello,
                row.target,
                row.send,
                note=f"renegotiation: {row.note}",
                when=tuple(_ordered(row.needs | set(renegotiation))),
            )
            for row in rows
            if row.source is _C.WAIT_CLIENT_HELLO and row.received is _I.client_hello
        ]
    handshake_states = {row.source for row in rows} - {
        _C.IDLE, _C.WAIT_CLIENT_HELLO, _C.WAIT_FINISHED, _C.CONNECTED, _C.CLOSED, _C.ERROR
    }  # fmt: skip
    added += [
        Transition(state, _I.application_data, state, note="renegotiating: data, current keys", when=_RENEGOTIATING)
        for state in State
        if state in handshake_states
    ]
    return rows + tuple(added)


CLIENT_TRANSITIONS = _renegotiation_rows(CLIENT_TRANSITIONS, "client")
SERVER_TRANSITIONS = _renegotiation_rows(SERVER_TRANSITIONS, "server")


def _index(rows: tuple[Transition, ...]) -> dict[tuple[State, Input], tuple[Transition, ...]]:
    # The rows of each (state, input): at most one unguarded, the others each under their own set of guards,
    # and the sets closed under union, so that a lookup is a function of state, input and guards (of the
    # rows whose guards all hold, exactly one needs the most).
    table: dict[tuple[State, Input], tuple[Transition, ...]] = {}
    for row in rows:
        twins = table.get((row.source, row.received), ())
        if any(twin.needs == row.needs for twin in twins):  # pragma: no cover - guards edits to the tables
            raise AssertionError(f"two rows for {row.received.value} in {row.source.value} under the same guards")
        table[(row.source, row.received)] = (*twins, row)
    for (source, received), twins in table.items():
        sets = {twin.needs for twin in twins}
        # Rows under an exclusive guard form their own family (a different handshake): closed among themselves.
        family = [(a, b) for a in sets for b in sets if a and b and bool(a & EXCLUSIVE) == bool(b & EXCLUSIVE)]
        if any(a | b not in sets for a, b in family):  # pragma: no cover - as above
            raise AssertionError(f"{received.value} in {source.value}: guarded rows not closed under union")
    return table


TABLES: dict[str, dict[tuple[State, Input], tuple[Transition, ...]]] = {
    "client": _index(CLIENT_TRANSITIONS),
    "server": _index(SERVER_TRANSITIONS),
}
INITIAL_STATE: dict[str, State] = {"client": State.IDLE, "server": State.WAIT_CLIENT_HELLO}


def transition_for(role: Role, state: State, received: Input, guards: Collection[Guard] = ()) -> Transition:
    """The row for ``received`` in ``state``; UnexpectedMessage when the table has none.

    ``guards`` are the conditions that hold now; a guarded row applies only when its guard is among them.
    """
    rows = TABLES[role].get((state, received))
    if rows is None:
        expected = " or ".join(i.value for i in allowed_inputs(role, state, guards)) or "nothing"
        raise UnexpectedMessage(f"{received.value} is not allowed in {role} state {state.value} (expected {expected})")
    holding = [row for row in rows if row.needs <= set(guards)]
    if holding:
        return max(holding, key=lambda row: len(row.needs))
    needed = " or ".join(" and ".join(g.value for g in _ordered(row.needs)) for row in rows)
    raise UnexpectedMessage(f"{received.value} is allowed in {role} state {state.value} only when {needed}")


def refine(role: Role, row: Transition, guards: Collection[Guard]) -> Transition:
    """``row``, or its twin that needs more guards, all of which hold now (the most specific one).

    For a guard that the received message itself decides (the server staples only when the ClientHello
    asked): the connection finds ``row`` before reading the message, runs its handler, then refines.
    """
    twins = TABLES[role][(row.source, row.received)]
    holding = set(guards)
    # An exclusive guard (a resumed session) swaps the row for its family's, whatever the row needed.
    better = [
        twin
        for twin in twins
        if twin.needs <= holding and (row.needs < twin.needs or (twin.needs & EXCLUSIVE and not row.needs & EXCLUSIVE))
    ]
    return max(better, key=lambda twin: len(twin.needs)) if better else row


def allowed_inputs(role: Role, state: State, guards: Collection[Guard] | None = None) -> list[Input]:
    """What the ``role`` table accepts in ``state``, in table order (guarded rows only if ``guards`` allow,
    when ``guards`` is given)."""
    return [
        received
        for (source, received), rows in TABLES[role].items()
        if source is state and any(guards is None or row.needs <= set(guards) for row in rows)
    ]


def diagram_rows(role: Role, *, complete: bool = False, renegotiation: bool = False) -> list[tuple[str, str, str]]:
    """(source, label, target) rows for a state diagram of ``role``'s table.

    Rows whose source and target are the same state (application data, NewSessionTicket, HelloRequest)
    do not draw as arrows and are left out unless ``complete``; so are the rows only a renegotiation takes
    (from CONNECTED into a new handshake, and back when the peer declines) unless ``renegotiation`` or
    ``complete``: the diagram of one handshake is what most lessons draw.  Rows that join the same two states on
    the same input (the client's ServerHelloDone with and without a certificate to send) are one arrow,
    labelled as RFC 5246 draws its flights: a message only some of them send is starred
    (``CertificateVerify*``).
    """
    rows = CLIENT_TRANSITIONS if role == "client" else SERVER_TRANSITIONS
    if role not in ("client", "server"):
        raise ValueError(f"role must be 'client' or 'server', not {role!r}")
    arrows: dict[tuple[State, State], list[Transition]] = {}
    for row in rows:
        if not complete and (row.source is row.target or (_renegotiation_only(row) and not renegotiation)):
            continue
        arrows.setdefault((row.source, row.target), []).append(row)
    return [(source.value, _merged_label(twins), target.value) for (source, target), twins in arrows.items()]


def _renegotiation_only(row: Transition) -> bool:
    """A row that only a renegotiation takes: out of CONNECTED into a handshake, or back on a refusal."""
    leaves_connected = row.source is State.CONNECTED and row.target is not State.CONNECTED
    return leaves_connected or row.received is Input.no_renegotiation or Guard.renegotiating in row.needs


def _merged_label(rows: list[Transition]) -> str:
    """One label for rows joining the same two states: ``Input / A, B*, C`` when they share their input
    and each flight is the longest one with some messages left out; one line per row otherwise."""
    if len(rows) == 1:
        return rows[0].label
    longest = max(rows, key=lambda row: len(row.send)).send

    def within(send: tuple[str, ...]) -> bool:  # send is longest with some messages left out, in order
        rest = iter(longest)
        return all(any(name == other for other in rest) for name in send)

    if len({row.received for row in rows}) > 1 or not all(within(row.send) for row in rows):
        return "\n".join(row.label for row in rows)
    flight = [name if all(name in row.send for row in rows) else f"{name}*" for name in longest]
    # The guards every merged row needs still label the arrow (the server's ClientHello with a client
    # certificate requested, stapling or not).
    common = frozenset.intersection(*(row.needs for row in rows))
    return _event_label(rows[0].received, _ordered(common), flight)


# -- replaying a transcript through the table --------------------------------------------------------
# A separate block on purpose: it only reads the table through ``transition_for``.


def replay(role: Role, transcript: Iterable[Any]) -> list[State]:
    """The ``role``'s state after each record of ``transcript``, by walking its table over the messages.

    ``transcript`` holds records as a connection keeps them (``TranscriptEntry``: ``direction``,
    ``content_type``, decoded ``messages``).  Each message the role *received* is turned into the
    table's own :class:`Input` (a handshake message by its ``HandshakeType``, a ChangeCipherSpec or
    application data by its ``ContentType``: the enums share member names) and looked up with
    :func:`transition_for`; the client's first record sent is its ``start``.  As in a connection,
    a fatal alert in either direction means ``ERROR`` and close_notify ``CLOSED``; an input the table
    refuses means ``ERROR`` too (the connection would have sent unexpected_message).  Messages the
    table has no input for change nothing.  The guards are what the connection would have known, read
    per handshake (a renegotiation is a new one, from its ClientHello): a NewSessionTicket is expected once
    the ServerHello agreed to ``session_ticket``, and only once; the server asked for a client certificate
    if it sent a CertificateRequest, the client had one to send if its Certificate was not empty, and the
    server received one once the client's Certificate was not empty; the server stapled if it sent a
    CertificateStatus, and the client expects one once the ServerHello acknowledged ``status_request``; the
    key exchange is ephemeral if the server sent a ServerKeyExchange, and, for the client, if the ServerHello
    chose an ECDHE or DHE suite (RSA otherwise).  Renegotiation (RFC 5746): secure once the first
    ServerHello carried ``renegotiation_info``; a renegotiation the role declined (it sent the warning
    ``no_renegotiation`` in that handshake) was not allowed; a client's ClientHello sent once connected,
    not asked for by a HelloRequest, is its ``renegotiate()``.
    """
    if role not in INITIAL_STATE:
        raise ValueError(f"role must be 'client' or 'server', not {role!r}")
    incoming = "server->client" if role == "client" else "client->server"
    state = INITIAL_STATE[role]
    entries = list(transcript)
    after: list[State] = []
    secure = False
    for number, handshake in enumerate(_handshakes(entries)):
        known = _known_guards(role, incoming, handshake)
        if number == 0:
            secure = _agrees_secure_renegotiation(handshake)
        if secure:
            known.add(Guard.secure_renegotiation)
        ticket_agreed = ticket_received = status_acknowledged = False
        for entry in handshake:
            if state is State.IDLE and entry.direction != incoming:
                state = transition_for(role, state, Input.start).target
            elif (
                role == "client"
                and state is State.CONNECTED
                and entry.direction != incoming
                and _has(entry, HandshakeType.client_hello)
            ):
                state = _replayed_step(role, state, Input.renegotiate, known)
            for message in entry.messages:
                if state in (State.CLOSED, State.ERROR):
                    break
                if entry.content_type == ContentType.alert:
                    if message.level == AlertLevel.fatal:
                        state = State.ERROR
                    elif message.description == TLSAlert.close_notify:
                        state = State.CLOSED
                    elif entry.direction == incoming and message.description == TLSAlert.no_renegotiation:
                        guards = known | ({Guard.renegotiating} if number else set())
                        if Input.no_renegotiation in allowed_inputs(role, state, guards):
                            state = transition_for(role, state, Input.no_renegotiation, guards).target
                    continue
                if entry.direction != incoming:
                    continue
                received = input_for(entry.content_type, message)
                if received is None:
                    continue
                if received is Input.server_hello:
                    ticket_agreed = message.extension(ExtensionType.session_ticket) is not None
                    status_acknowledged = message.extension(ExtensionType.status_request) is not None
                    known.add(
                        Guard.ephemeral_key_exchange
                        if _is_ephemeral_suite(getattr(message, "cipher_suite", 0))
                        else Guard.rsa_key_exchange
                    )
                guards = set(known)
                if ticket_agreed and not ticket_received:
                    guards.add(Guard.ticket_expected)
                if status_acknowledged:
                    guards.add(Guard.status_request_acknowledged)
                if number and state is not State.CONNECTED:
                    guards.add(Guard.renegotiating)
                state = _replayed_step(role, state, received, guards)
                ticket_received = ticket_received or received is Input.new_session_ticket
                if role == "server" and received is Input.certificate and getattr(message, "certificates", None):
                    known.add(Guard.client_certificate_sent)
            after.append(state)
    return after


def _replayed_step(role: Role, state: State, received: Input, guards: Collection[Guard]) -> State:
    try:
        return transition_for(role, state, received, guards).target
    except UnexpectedMessage:
        return State.ERROR


def _has(entry: Any, handshake_type: int) -> bool:
    return entry.content_type == ContentType.handshake and any(
        getattr(m, "handshake_type", None) == handshake_type for m in entry.messages
    )


def _handshakes(entries: list[Any]) -> list[list[Any]]:
    """The transcript cut at each ClientHello after the first: one list of records per handshake."""
    cuts = [i for i, entry in enumerate(entries) if _has(entry, HandshakeType.client_hello)][1:]
    bounds = [0, *cuts, len(entries)]
    return [entries[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a] or [[]]


def _agrees_secure_renegotiation(entries: list[Any]) -> bool:
    server_hello = next(
        (m for e in entries if _has(e, HandshakeType.server_hello) for m in e.messages
         if getattr(m, "handshake_type", None) == HandshakeType.server_hello),
        None,
    )  # fmt: skip
    return server_hello is not None and server_hello.extension(ExtensionType.renegotiation_info) is not None


def _known_guards(role: Role, incoming: str, entries: list[Any]) -> set[Guard]:
    """What the endpoint itself knew in one handshake, read back from what it sent."""
    sent = [
        message
        for entry in entries
        if entry.direction != incoming and entry.content_type in (ContentType.handshake, ContentType.alert)
        for message in entry.messages
    ]
    types = {getattr(m, "handshake_type", None) for m in sent}
    known: set[Guard] = set()
    if HandshakeType.certificate_request in types:
        known.add(Guard.client_certificate_requested)
    if any(getattr(m, "handshake_type", None) == HandshakeType.certificate and getattr(m, "certificates", None)
           for m in sent):  # fmt: skip
        known.add(Guard.client_certificate_to_send)
    if HandshakeType.certificate_status in types:
        known.add(Guard.ocsp_response_to_staple)
    if HandshakeType.server_key_exchange in types:
        known.add(Guard.ephemeral_key_exchange)
    if HandshakeType.hello_request in types:
        known.add(Guard.hello_request_sent)
    if not any(getattr(m, "description", None) == TLSAlert.no_renegotiation for m in sent):
        known.add(Guard.renegotiation_allowed)  # it took part in every renegotiation it was asked for
    # Resumed: the ServerHello echoed the (non-empty) session ID of the ClientHello (RFC 5246 7.4.1.3).
    hellos = {
        m.handshake_type: m
        for entry in entries
        if entry.content_type == ContentType.handshake
        for m in entry.messages
        if getattr(m, "handshake_type", None) in (HandshakeType.client_hello, HandshakeType.server_hello)
    }
    offered_id = getattr(hellos.get(HandshakeType.client_hello), "session_id", b"")
    if offered_id and getattr(hellos.get(HandshakeType.server_hello), "session_id", b"") == offered_id:
        known.add(Guard.session_resumed)
    if Guard.session_resumed not in known and HandshakeType.new_session_ticket in types:
        known.add(Guard.ticket_to_send)
    return known


def _is_ephemeral_suite(suite: int) -> bool:
    # By name, as the wire enum spells it: the tables do not depend on which suites the library runs.
    name = name_of(CipherSuite, suite)
    return name.startswith(("TLS_ECDHE_", "TLS_DHE_"))


def input_for(content_type: int, message: Any) -> Input | None:
    """The table input for one received message, named through the wire enums; None if it has none.

    The wire enums (``HandshakeType``, ``ContentType``) and :class:`Input` share member names, so this is
    the one mapping from what arrived to a table row; the connection and :func:`replay` both use it.
    """
    try:
        wire = (
            HandshakeType(message.handshake_type)
            if content_type == ContentType.handshake
            else ContentType(content_type)
        )
    except ValueError:
        return None
    return Input.__members__.get(wire.name)
