"""The TLS 1.2 client, RSA, ECDHE and DHE key exchange, as a sans-I/O core (table: ``states.CLIENT_TRANSITIONS``).

Theory of operation
-------------------
:meth:`TLSClient.start` queues the ClientHello.  Then every message from the server is first looked
up in the client's state table (an out-of-order message is ``unexpected_message`` before anything
else happens) and handled here:

* **ServerHello**: the server may only pick what we offered.  Version TLS 1.2 (anything else is
  ``protocol_version``); a cipher suite from our list and one we implement; compression ``null``;
  extensions only ones we sent (``unsupported_extension`` otherwise), an empty
  ``renegotiation_info`` (RFC 5746), and ``encrypt_then_mac`` only with a CBC suite (RFC 7366).  The
  extensions it echoes switch on the extended master secret (RFC 7627) and encrypt-then-MAC.
* **Certificate**: validated against the trust store and the host name we wanted by the course's own
  validator (``verify.py`` -> :func:`handshake_lib.pki.validate.validate`); its report, every check
  with its reason, is kept as ``certificate_report``.  A failure is a ``CertificateError`` subclass named
  after the alert that goes to the server (``UnknownCA``, ``CertificateExpired``, ``BadCertificate``...),
  the report attached as ``error.report``.  Its host-name and validity checks can be a learner's own
  functions (``certificate_checks=CertificateChecks(host_matches=..., within_validity=...)``, lesson 04's
  exercise), plugged into this very call.  Turning this off takes an explicit ``verify=False``.
* **CertificateStatus** (OCSP stapling, RFC 6066 section 8): with ``request_ocsp_status=True`` the
  ClientHello carries ``status_request``; a server that answers it with an empty ``status_request`` may
  send CertificateStatus right after Certificate (the table's WAIT_CERTIFICATE_STATUS).  The DER response
  is kept as it came in ``stapled_ocsp_response`` and :class:`HandshakeComplete`, and (with ``verify``)
  the validator reads it: the chain is validated again with the stapled answer (whose signature, for
  which certificate, how fresh), so a revoked certificate ends the handshake with ``certificate_revoked``
  and ``certificate_report`` holds the revocation check it made.  A server that
  acknowledged and then sends none is accepted, as RFC 6066 allows and OpenSSL's client does; an
  unrequested acknowledgement is ``unsupported_extension``, an unrequested CertificateStatus
  ``unexpected_message``.
* **ServerKeyExchange** (ECDHE/DHE suites: the table's ``WAIT_SERVER_KEY_EXCHANGE``, reached from
  Certificate or CertificateStatus under ``Guard.ephemeral_key_exchange``): the group must be one we offered
  in ``supported_groups`` (``TLSClient(groups=...)``; otherwise ``illegal_parameter``, as OpenSSL's
  ``SSL_R_WRONG_CURVE``), for DHE an RFC 7919 prime; the server's public value is validated
  (:mod:`~handshake_lib.tls.key_exchange`); then the signature over client_random + server_random + params
  must verify with the certificate's key in a scheme we listed (``decrypt_error`` otherwise, as OpenSSL).
  The default offer (:data:`~handshake_lib.tls.connection.DEFAULT_CLIENT_SUITES`) is a modern client's:
  ECDHE first, RSA key exchange after it (``cipher_suites=RSA_DEFAULT_SUITES`` asks for RSA only).
* **CertificateRequest** (mutual TLS): the server wants a certificate.  We pick a signature scheme that
  both our key can make and the server listed (:func:`~handshake_lib.tls.signatures.choose_scheme`);
  with no ``client_certificate_chain``, or no scheme that fits, the table's ServerHelloDone row sends an
  empty Certificate and the server decides (a server that requires one ends the handshake).
* **ServerHelloDone**: our turn (the row's flight: ClientKeyExchange, ChangeCipherSpec, Finished, each
  built by its sender).  ECDHE/DHE: a fresh key pair in the server's group, its public value in
  ClientKeyExchange, and the shared secret as the pre-master secret.  RSA: make a pre-master secret
  (client version + 46 random bytes), encrypt
  it to the certificate's RSA key (ClientKeyExchange), derive the master secret (with EMS: over the
  hash of the handshake up to and including ClientKeyExchange) and the key block, send
  ChangeCipherSpec (our records are protected from here on) and Finished.  After a CertificateRequest
  the flight starts with our Certificate (leaf and intermediates) and, if it is not empty, has a
  CertificateVerify after ClientKeyExchange: our signature over every handshake message so far.
* **NewSessionTicket**: accepted once, only if we asked for tickets and the server agreed (the table's
  guarded row: ``Guard.ticket_expected``); the ticket goes into ``HandshakeComplete.session``, and a
  ``TLSClient(session=...)`` holding one hands it back in ``session_ticket`` with a fresh 32-byte session
  ID, which the server echoes when it accepts the ticket (RFC 5077 sections 3.1 and 3.4).
* **Resumption** (RFC 5246 section 7.4.1.2): ``TLSClient(session=handshake.session)`` offers a
  :class:`~handshake_lib.tls.sessions.Session` from an earlier handshake with the same server (its session
  ID in the ClientHello).  A ServerHello that echoes that ID resumes it (the table's rows under
  ``Guard.session_resumed``): its suite must be the session's (RFC 5246 7.4.1.3: ``illegal_parameter``)
  and its EMS answer the session's (RFC 7627 section 5.3: ``handshake_failure``); keys come from the
  session's master secret and the new randoms, the server's ChangeCipherSpec and Finished come first and
  ours answer them.  Any other session ID is a full handshake.  :class:`HandshakeComplete` says
  ``resumed`` and carries the ``session`` to keep (None when the server gave no ID).
* **Renegotiation** (RFC 5746): the first ClientHello offers ``renegotiation_info`` (empty) and a server that
  answers it agrees to secure renegotiation.  Then :meth:`~TLSConnection.renegotiate` sends a new ClientHello
  over the open connection (encrypted under the current keys), whose ``renegotiation_info`` carries our last
  Finished verify_data and offers no session (a full handshake: fresh ephemeral keys); the ServerHello's
  must carry both sides' (``handshake_failure`` otherwise), and the server's certificate must be the one
  the first handshake validated (``illegal_parameter``, as BoringSSL refuses a changed one since the 2014
  triple handshake attack).  A **HelloRequest** starts the same, within ``max_renegotiations`` (the
  table's guarded row); without secure renegotiation, or over the limit, it is declined with a
  ``no_renegotiation`` warning (the unguarded row).  Application data keeps flowing in both directions until
  the new ChangeCipherSpec switches each direction's keys; a server that declines our hello with
  ``no_renegotiation`` leaves the connection as it was (:class:`RenegotiationRefused`).
* **ChangeCipherSpec**, then the server's **Finished**, whose ``verify_data`` must match ours over
  the whole transcript (``decrypt_error`` otherwise).  Then :class:`HandshakeComplete`.

Stages a learner can replace (DESIGN rule 5) come in one :class:`~handshake_lib.tls.stages.Stages`
object: ``TLSClient(name, stages=Stages(prf=my_prf))``.  A wrong one makes the *server* refuse the
handshake, exactly as a real peer would.  The client's extension options (``extended_master_secret``,
``encrypt_then_mac``, ``session_ticket``) configure the library's own ClientHello builder; a replaced
``build_client_hello`` sends exactly the hello it returns, and the client agrees to what that offered.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import (
    BadCertificate,
    CertificateError,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
    ProtocolError,
    ProtocolVersionError,
    UnsupportedCertificate,
)
from ..pki.checks import LIBRARY_CHECKS, CertificateChecks
from ..pki.report import Purpose, ValidationReport
from ..pki.revocation import RevocationPolicy
from .connection import (
    DEFAULT_CLIENT_SUITES,
    DEFAULT_MAX_RENEGOTIATIONS,
    RUNNABLE_SUITES,
    ConnectionStateError,
    HandshakeComplete,
    InternalError,
    KeyLogWriter,
    RandomBytes,
    ReceiverKey,
    TLSConnection,
    UnsupportedExtension,
)
from .constants import CipherSuite, ECPointFormat, ExtensionType, NamedGroup, ProtocolVersion, SignatureScheme, name_of
from .extensions import ECPointFormatsExtension, RenegotiationInfoExtension, SignatureAlgorithmsExtension
from .key_exchange import GROUPS, EphemeralKey, ffdhe_group_for
from .messages import (
    HELLO_RETRY_REQUEST_RANDOM,
    Certificate,
    CertificateRequest,
    CertificateStatus,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    DHClientKeyExchange,
    ECDHClientKeyExchange,
    NewSessionTicket,
    ServerDHParams,
    ServerECDHParams,
    ServerHello,
    ServerKeyExchange,
    decode_handshake,
)
from .negotiation import DEFAULT_GROUPS, DHE_SUITES, client_hello_for, suite_authentication
from .record import MAX_PLAINTEXT_LENGTH
from .sessions import Session
from .signatures import SigningKey, check_scheme, choose_scheme, schemes_for_key, sign
from .stages import LIBRARY_STAGES, BuildClientHello, Stages
from .states import Guard, Input, State
from .suites import suite_params
from .verify import load_trust_store, validate_peer_chain

__all__ = ["TLSClient", "DEFAULT_CLIENT_SUITES"]


class TLSClient(TLSConnection):
    """A TLS 1.2 client core.  Call :meth:`start`, then shuttle bytes (``net.tls`` runs it over a socket)."""

    role = "client"

    def __init__(
        self,
        server_name: str | None,
        *,
        # whom to trust
        cafile: str | Path | None = None,
        trusted_certificates: list[x509.Certificate] | None = None,
        verify: bool = True,
        now: datetime | None = None,
        # revocation: CRLs the client has (lesson 04 hands them over; a browser fetches them), and how a
        # missing or stale answer counts (pki.revocation.RevocationPolicy: "require-fresh" by default)
        crls: Sequence[x509.CertificateRevocationList] = (),
        revocation_policy: RevocationPolicy | str = RevocationPolicy.REQUIRE_FRESH,
        # what to offer
        cipher_suites: Sequence[CipherSuite | int] = DEFAULT_CLIENT_SUITES,
        # key exchange groups for ECDHE/DHE, in our order of preference (supported_groups); the RFC 7919
        # groups are added after them when a DHE suite is offered and none is named
        groups: Sequence[NamedGroup | int] = DEFAULT_GROUPS,
        extended_master_secret: bool = True,
        encrypt_then_mac: bool = True,
        session_ticket: bool = False,
        # ask the server to staple an OCSP response (status_request, RFC 6066 section 8); off by default,
        # as in openssl s_client (-status) and curl (--cert-status): nothing judges the answer yet
        request_ocsp_status: bool = False,
        # who we are, if the server asks (mutual TLS): our chain (leaf first, intermediates after) and its key
        client_certificate_chain: Sequence[x509.Certificate] = (),
        client_private_key: SigningKey | None = None,
        # randomness (fixed in tests), the key log (Wireshark), record size (lessons cut messages)
        random_bytes: RandomBytes = os.urandom,
        client_random: bytes | None = None,
        keylog: KeyLogWriter | None = None,
        fragment_size: int = MAX_PLAINTEXT_LENGTH,
        # the learner's replacements (DESIGN section 3, rule 6)
        stages: Stages = LIBRARY_STAGES,
        certificate_checks: CertificateChecks = LIBRARY_CHECKS,  # host name and validity (lesson 04, pki.checks)
        # an earlier handshake's session (HandshakeComplete.session) to resume
        session: Session | None = None,
        # renegotiations the server may ask for (HelloRequest) on one connection; 0 declines them all
        max_renegotiations: int = DEFAULT_MAX_RENEGOTIATIONS,
    ) -> None:
        super().__init__(
            random_bytes=random_bytes,
            keylog=keylog,
            extended_master_secret=extended_master_secret,
            encrypt_then_mac=encrypt_then_mac,
            fragment_size=fragment_size,
            stages=stages,
            max_renegotiations=max_renegotiations,
        )
        if verify and not server_name:
            raise ValueError("verify=True needs the server_name to check the certificate against")
        if not cipher_suites:
            raise ValueError("offer at least one cipher suite")
        unknown = [s for s in cipher_suites if s not in RUNNABLE_SUITES]
        if unknown:
            # Offering a suite we cannot run would let a server pick it: refuse before sending anything.
            raise ValueError(
                f"cannot offer {[hex(s) for s in unknown]}: only {[s.name for s in RUNNABLE_SUITES]} run here"
            )
        bad_groups = [g for g in groups if g not in GROUPS]
        if bad_groups or not groups:
            raise ValueError(f"groups must be non-empty and among {[g.name for g in GROUPS]}, not {list(groups)}")
        self.groups = [NamedGroup(g) for g in groups]
        if any(s in DHE_SUITES for s in cipher_suites) and not any(GROUPS[g].kind == "dhe" for g in self.groups):
            self.groups += [g for g, found in GROUPS.items() if found.kind == "dhe"]
        if client_random is not None and len(client_random) != 32:
            raise ValueError("client_random must be 32 bytes")
        self.server_name = server_name
        self.verify = verify
        self.crls = list(crls)
        self.revocation_policy = RevocationPolicy(revocation_policy)
        if not isinstance(certificate_checks, CertificateChecks):
            raise TypeError(f"certificate_checks must be a CertificateChecks, not {type(certificate_checks).__name__}")
        self.certificate_checks = certificate_checks
        self.cipher_suites = [CipherSuite(s) for s in cipher_suites]
        self.offer_session_ticket = session_ticket
        if session is not None and not isinstance(session, Session):
            raise TypeError(f"session must be a Session (HandshakeComplete.session), not {type(session).__name__}")
        if session is not None and session.server_name is not None and session.server_name != server_name:
            # A session authenticated one server (its certificate was checked then, not on resumption).
            raise ValueError(f"this session is {session.server_name!r}'s; it cannot be offered to {server_name!r}")
        self.offered_session = session
        if session is not None and session.ticket:
            self.offer_session_ticket = True  # the extension carries the ticket; the server may renew it
        self.request_ocsp_status = request_ocsp_status
        self._trust_anchors = load_trust_store(cafile, trusted_certificates) if verify else []
        self._client_random_option = client_random
        self._build_client_hello: BuildClientHello = stages.build_client_hello
        self._library_hello = self._build_client_hello is client_hello_for
        if self._build_client_hello is client_hello_for:
            # The library's own builder offers what this client was configured to offer.
            self._build_client_hello = partial(
                client_hello_for,
                extended_master_secret=extended_master_secret,
                encrypt_then_mac=encrypt_then_mac,  # added only when a CBC suite is on offer
                status_request=request_ocsp_status,
                groups=self.groups,
                session_id=self._offered_session_id(session, random_bytes),
                # RFC 5077 3.1: a ticket we hold goes back in the extension; True asks for a new one.
                session_ticket=session.ticket if session is not None and session.ticket else session_ticket,
            )
        if bool(client_certificate_chain) != (client_private_key is not None):
            raise ValueError("client_certificate_chain and client_private_key go together")
        if client_private_key is not None:
            if not schemes_for_key(client_private_key):
                raise ValueError(f"a {type(client_private_key).__name__} cannot sign CertificateVerify here")
            if _public_der(client_certificate_chain[0].public_key()) != _public_der(client_private_key.public_key()):
                raise ValueError("the client private key does not match the client certificate")
        self.client_certificate_chain = list(client_certificate_chain)
        self._client_private_key = client_private_key
        self._now = now
        self._reset_handshake()
        # The leaf the first handshake validated: a renegotiation must present the same one.
        self._first_server_leaf: x509.Certificate | None = None

    def _reset_handshake(self) -> None:
        """What one handshake learns, from its hellos to the server's messages: set up empty, and again when
        a renegotiation begins (``offered_session`` stays: it says how the connection began, and a
        renegotiating hello offers none)."""
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.server_certificates: list[x509.Certificate] = []
        self.verified_chain: list[x509.Certificate] = []
        # The validator's report on the server's chain (every check, pass or fail): set when verify=True.
        self.certificate_report: ValidationReport | None = None
        self.certificate_request: CertificateRequest | None = None
        self.client_signature_scheme: int | None = None  # chosen at CertificateRequest; None: nothing to sign
        self.session_ticket: NewSessionTicket | None = None
        self._ticket_agreed = False
        self._status_acknowledged = False  # the ServerHello answered status_request
        # ECDHE/DHE: the server's signed ephemeral key, and ours (made when we answer it).
        self.server_key_exchange: ServerKeyExchange | None = None
        self._server_public: bytes = b""
        self._ephemeral_group = None  # the key_exchange.Group the server chose
        self.ephemeral_key: EphemeralKey | None = None

    # The table's rows for the server's messages, and the messages it sends (``states.CLIENT_TRANSITIONS``).
    _RECEIVERS: ClassVar[dict[ReceiverKey, str | None]] = {
        Input.start: None,
        Input.server_hello: "_on_server_hello",
        Input.certificate: "_on_certificate",
        Input.certificate_request: "_on_certificate_request",
        Input.certificate_status: "_on_certificate_status",
        Input.server_key_exchange: "_on_server_key_exchange",
        Input.server_hello_done: None,  # nothing to check: the row's flight is our answer
        Input.new_session_ticket: "_on_new_session_ticket",
        Input.hello_request: "_on_hello_request",
    }
    _SENDERS: ClassVar[dict[str, str]] = {
        "ClientHello": "_send_client_hello",
        "ClientKeyExchange": "_send_client_key_exchange",
        "Certificate": "_send_certificate",
        "CertificateVerify": "_send_certificate_verify",
    }

    # -- the application's side ------------------------------------------------------------------
    def start(self) -> None:
        """Queue the ClientHello."""
        if self.handshake is not None or self.client_hello is not None:
            raise ConnectionStateError("start() was already called")
        try:
            self._step(Input.start, None, [])
        except ProtocolError as error:  # a learner's build_client_hello failed: nothing was sent
            self.error = error
            self._move(State.ERROR)
            raise

    def _on_renegotiate(self, _: None) -> None:
        self._handshake_messages.clear()  # the row's ClientHello follows, the first message of the new hashes
        self._begin_renegotiation()

    def _on_hello_request(self, _: object) -> None:
        # Two rows: declined (no_renegotiation, unguarded) or a new ClientHello, when its guards hold.
        if {Guard.secure_renegotiation, Guard.renegotiation_allowed} <= self.guards():
            self.peer_renegotiations += 1
            self._on_renegotiate(None)

    def _handshake_guards(self) -> frozenset[Guard]:
        # RFC 5077: one NewSessionTicket, and only if the server's hello agreed to session_ticket.
        guards: set[Guard] = set()
        if self._ticket_agreed and self.session_ticket is None:
            guards.add(Guard.ticket_expected)
        if self.client_signature_scheme is not None:  # a certificate, and a scheme the server accepts
            guards.add(Guard.client_certificate_to_send)
        if self._status_acknowledged:
            guards.add(Guard.status_request_acknowledged)
        if self.resumed:
            guards.add(Guard.session_resumed)
        if self.params is not None:
            ephemeral = self.params.key_exchange in ("ECDHE", "DHE")
            guards.add(Guard.ephemeral_key_exchange if ephemeral else Guard.rsa_key_exchange)
        return frozenset(guards)

    def _send_client_hello(self) -> None:
        fixed = self._client_random_option if not self.handshakes else None  # a renegotiation: fresh randoms
        random = fixed or self._random_bytes(32)
        try:
            suites = list(self.cipher_suites)
            hello = self._build_client_hello(client_random=random, suites=suites, server_name=self.server_name)
            raw = bytes(hello) if isinstance(hello, bytes | bytearray) else hello.to_bytes()
            if isinstance(hello, ClientHello) and self._library_hello:
                sent = hello  # our own builder's message: its encoding is symmetric (tests/test_tls_messages.py)
            else:
                # A learner's hello: keep what actually goes on the wire (decoded back), so the ServerHello is
                # checked against that, and a hello that does not decode fails here, naming the stage.
                sent, _ = decode_handshake(raw, annotate=False)
            if not isinstance(sent, ClientHello):
                raise TypeError(f"it returned a {type(sent).__name__}, not a ClientHello")
        except Exception as error:  # a learner's build_client_hello may fail any way; say which stage
            raise InternalError(f"build_client_hello failed: {type(error).__name__}: {error}") from error
        if self.handshakes:
            sent = self._renegotiating_hello(sent)
            raw = sent.to_bytes()
        self.client_hello = sent
        self.client_random = self.client_hello.random  # type: ignore[union-attr]
        self._send_handshake(self.client_hello, raw)  # type: ignore[arg-type]

    def _renegotiating_hello(self, hello: ClientHello) -> ClientHello:
        """``hello`` as a renegotiation sends it (RFC 5746 3.5): renegotiation_info with our last verify_data,
        no SCSV, and no session or ticket to resume (a full handshake, new keys from a new key exchange)."""
        kept = [
            e
            for e in hello.extensions or ()
            if e.extension_type != ExtensionType.renegotiation_info
            and not (e.extension_type == ExtensionType.session_ticket and getattr(e, "ticket", b""))
        ]
        return replace(
            hello,
            session_id=b"",
            cipher_suites=[s for s in hello.cipher_suites if s != CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV],
            extensions=[*kept, RenegotiationInfoExtension(self._renegotiation_info())],
        )

    # -- the server's messages, each reached through the table -----------------------------------
    def _on_server_hello(self, hello: ServerHello) -> None:
        offer = self.client_hello
        assert offer is not None
        selected = hello.extension(ExtensionType.supported_versions)
        if hello.random == HELLO_RETRY_REQUEST_RANDOM or selected is not None:
            # We never offered TLS 1.3, so a 1.3 answer (or a HelloRetryRequest) is a version we do not speak.
            raise ProtocolVersionError("the server answered with TLS 1.3, which this client did not offer")
        if hello.legacy_version != ProtocolVersion.TLS1_2:
            raise ProtocolVersionError(f"the server chose version 0x{hello.legacy_version:04x}; we speak TLS 1.2 only")
        if hello.cipher_suite not in offer.cipher_suites:
            raise IllegalParameter(f"the server chose cipher suite 0x{hello.cipher_suite:04x}, which we did not offer")
        if hello.cipher_suite not in RUNNABLE_SUITES:  # a learner's hello may offer more than we implement
            raise HandshakeFailure(f"cipher suite 0x{hello.cipher_suite:04x} is not implemented here")
        if hello.compression_method != 0:
            raise IllegalParameter(f"the server chose compression method {hello.compression_method}; we offered null")
        offered_types = {e.extension_type for e in offer.extensions or ()}
        if CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in offer.cipher_suites:
            offered_types.add(ExtensionType.renegotiation_info)  # the SCSV asks for it too (RFC 5746 3.4)
        for extension in hello.extensions or ():
            if extension.extension_type not in offered_types:
                raise UnsupportedExtension(
                    f"the server sent extension {extension.extension_type}, which we never offered"
                )
        params = suite_params(hello.cipher_suite)
        self._check_renegotiation_info(hello)
        etm = hello.extension(ExtensionType.encrypt_then_mac)  # decoded strictly: non-empty is a decode_error
        if etm is not None and params.is_aead:
            raise IllegalParameter("encrypt_then_mac may only answer a CBC suite (RFC 7366 section 3)")
        formats = hello.extension(ExtensionType.ec_point_formats)
        if isinstance(formats, ECPointFormatsExtension) and ECPointFormat.uncompressed not in formats.formats:
            # RFC 8422 section 5.2: the list MUST include uncompressed; OpenSSL: illegal_parameter.
            raise IllegalParameter("the server's ec_point_formats does not include uncompressed (RFC 8422 5.2)")
        ticket = hello.extension(ExtensionType.session_ticket)
        self.params = params
        self.server_hello = hello
        self.server_random = hello.random
        self.use_extended_master_secret = hello.extension(ExtensionType.extended_master_secret) is not None
        self.use_encrypt_then_mac = etm is not None
        self._ticket_agreed = ticket is not None
        offered = self.offered_session
        if offered is not None and offer.session_id and hello.session_id == offer.session_id:
            self._resume(hello, offered)
        # Only an answer to our request gets here (an unrequested one is unsupported_extension above), and
        # the server's status_request was decoded strictly (not empty: decode_error, as in OpenSSL).
        self._status_acknowledged = hello.extension(ExtensionType.status_request) is not None

    def _check_renegotiation_info(self, hello: ServerHello) -> None:
        """RFC 5746: empty on a first handshake (and then secure renegotiation is agreed); on a renegotiation
        our verify_data then the server's (3.5), which proves the server saw the same first handshake."""
        extension = hello.extension(ExtensionType.renegotiation_info)
        carried = extension.renegotiated_connection if isinstance(extension, RenegotiationInfoExtension) else None
        if not self.handshakes:
            if carried:
                raise HandshakeFailure("renegotiation_info must be empty on a first handshake (RFC 5746 section 3.4)")
            self.secure_renegotiation = carried is not None
            return
        expected = self._renegotiation_info("server")
        if carried is None or not hmac.compare_digest(carried, expected):
            raise HandshakeFailure(
                "the server's renegotiation_info does not carry both Finished messages of our last handshake "
                "(RFC 5746 section 3.5)"
            )

    @staticmethod
    def _offered_session_id(session: Session | None, random_bytes: RandomBytes) -> bytes:
        """The session ID our hello offers: the session's, or with a ticket a fresh one (RFC 5077 3.4: the
        server echoes it to say it accepted the ticket)."""
        if session is None:
            return b""
        return random_bytes(32) if session.ticket else session.session_id

    def _resume(self, hello: ServerHello, session: Session) -> None:
        """The server echoed our session ID: the abbreviated handshake, on the session's terms."""
        if hello.cipher_suite != session.cipher_suite:
            raise IllegalParameter(
                f"the server resumed our session with suite 0x{hello.cipher_suite:04x}, not the session's "
                f"0x{session.cipher_suite:04x} (RFC 5246 section 7.4.1.3)"
            )
        if self.use_extended_master_secret != session.extended_master_secret:
            raise HandshakeFailure(
                "the server resumed a session made "
                + ("with" if session.extended_master_secret else "without")
                + " the extended master secret in a handshake "
                + ("without" if session.extended_master_secret else "with")
                + " it (RFC 7627 section 5.3)"
            )
        self.resumed = True  # the table's ServerHello row is refined to the abbreviated handshake's
        self.session = session
        self._install_master_secret(session.master_secret)

    def _resumed_by(self) -> str | None:
        # With a ticket our session ID was fresh and random, so a server that echoed it accepted the ticket
        # (RFC 5077 section 3.4); without one, the ID itself.
        offered = self.offered_session
        return offered.resumable_by if self.resumed and offered is not None else None

    def _handshake_complete(self) -> HandshakeComplete:
        assert self.params is not None and self.server_hello is not None
        if not self.resumed and (self.server_hello.session_id or self.session_ticket is not None):
            self.session = Session(
                self.server_hello.session_id, self.master_secret, self.params.suite, self.use_extended_master_secret,
                server_name=self.server_name,
            )  # fmt: skip
        if self.session is not None and self.session_ticket is not None:
            # RFC 5077 3.3: the ticket to offer next time (a resumed session's renewed one replaces the old).
            self.session = replace(
                self.session, ticket=self.session_ticket.ticket,
                ticket_lifetime_hint=self.session_ticket.ticket_lifetime_hint,
            )  # fmt: skip
        return super()._handshake_complete()

    def _validate_server_chain(self, chain: list[x509.Certificate], stapled_ocsp: bytes | None = None) -> None:
        """Run the validator; keep its report on the connection (and on the error, when it refuses)."""
        assert self.server_name is not None
        try:
            report = validate_peer_chain(
                chain, self._trust_anchors, purpose=Purpose.SERVER, host=self.server_name, now=self._now,
                crls=self.crls, stapled_ocsp=stapled_ocsp, revocation_policy=self.revocation_policy,
                checks=self.certificate_checks,
            )  # fmt: skip
        except CertificateError as refused:
            self.certificate_report = refused.report  # the connection keeps the report, as the error does
            raise
        self.certificate_report = report
        self.verified_chain = list(report.path)

    def _on_certificate(self, message: Certificate) -> None:
        if not message.certificates:
            raise BadCertificate("the server sent an empty certificate list; RSA key exchange needs one")
        chain = message.x509()
        if self.verify:
            self._validate_server_chain(chain)
        leaf = chain[0]
        try:
            public_key = leaf.public_key()
        except Exception as exc:  # noqa: BLE001 - an unparsable key is the certificate's fault
            raise BadCertificate(f"the server's public key does not parse: {exc}") from None
        assert self.params is not None
        authentication = suite_authentication(self.params.suite)
        wanted = rsa.RSAPublicKey if authentication == "RSA" else ec.EllipticCurvePublicKey
        if not isinstance(public_key, wanted):
            raise UnsupportedCertificate(f"{self.params.name} needs an {authentication} certificate")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and self.params.key_exchange == "RSA" and not usage.key_encipherment:
            # RFC 5246 section 7.4.2: with RSA key exchange the key must be allowed to encrypt.
            raise UnsupportedCertificate("the certificate's keyUsage does not allow keyEncipherment")
        if usage is not None and self.params.key_exchange != "RSA" and not usage.digital_signature:
            # RFC 8422 section 5.3 / RFC 5246 7.4.2: an ephemeral suite's certificate signs ServerKeyExchange.
            raise UnsupportedCertificate("the certificate's keyUsage does not allow digitalSignature")
        if self._first_server_leaf is None:
            self._first_server_leaf = leaf
        elif leaf != self._first_server_leaf:
            # The triple handshake attack (2014) swaps servers between handshakes; BoringSSL and NSS refuse a
            # renegotiation that changes the server's certificate (SSL_R_SERVER_CERT_CHANGED).
            raise IllegalParameter("the server presented another certificate in the renegotiation")
        self.server_certificates = chain

    def _on_server_key_exchange(self, message: ServerKeyExchange) -> None:
        """The server's ephemeral key: a group we offered, then its signature with the certificate's key."""
        assert self.params is not None and self.server_certificates
        params = message.params
        if isinstance(params, ServerECDHParams):
            if params.named_group not in self.groups or GROUPS[NamedGroup(params.named_group)].kind != "ecdhe":
                # OpenSSL: SSL_R_WRONG_CURVE with illegal_parameter.
                raise IllegalParameter(
                    f"ServerKeyExchange uses {name_of(NamedGroup, params.named_group)}, which we did not offer"
                )
            group = GROUPS[NamedGroup(params.named_group)]
        else:
            assert isinstance(params, ServerDHParams)
            found = ffdhe_group_for(int.from_bytes(params.p, "big"), int.from_bytes(params.g, "big"))
            if found is None or (found.code is not None and found.code not in self.groups):
                # docs/limits.md: DHE with the RFC 7919 groups we offered, or RFC 3526's group 14 (OpenSSL 3.0's
                # automatic choice); never a server's own prime, whose safety we cannot check cheaply.
                raise HandshakeFailure(
                    f"the server's {len(params.p) * 8}-bit DH group is neither an RFC 7919 group we offered "
                    "nor RFC 3526's group 14"
                )
            group = found
        group.check_public(params.public)  # before the signature, as OpenSSL does: a bad point is decode-time
        public_key = self.server_certificates[0].public_key()
        scheme = message.signature_algorithm
        check_scheme(public_key, scheme, self._offered_signature_schemes(), what="ServerKeyExchange")
        verified = self._stages.check_server_key_exchange_signature(
            public_key, scheme, message.signature, self.client_random, self.server_random, message.params_bytes(),  # type: ignore[arg-type]
        )  # fmt: skip
        if verified is not True:  # RFC 5246 section 7.2.2 (and OpenSSL): decrypt_error
            raise DecryptError(
                f"the server's ServerKeyExchange ({name_of(SignatureScheme, scheme)}) does not verify with its "
                f"certificate's key (check_server_key_exchange_signature returned {verified!r})"
            )
        self.server_key_exchange = message
        self._ephemeral_group = group
        self._server_public = params.public
        self.group = group.code

    def _offered_signature_schemes(self) -> list[int]:
        assert self.client_hello is not None
        extension = self.client_hello.extension(ExtensionType.signature_algorithms)
        return list(extension.schemes) if isinstance(extension, SignatureAlgorithmsExtension) else []

    def _send_client_key_exchange(self) -> None:
        """Our turn after ServerHelloDone: a pre-master secret, encrypted to the certificate's key (RSA) or
        agreed with the server's ephemeral key (ECDHE/DHE); then keys."""
        assert self.client_hello is not None and self.server_certificates and self.params is not None
        if self.params.key_exchange != "RSA":
            group = self._ephemeral_group
            assert group is not None  # the table: ServerKeyExchange came before ServerHelloDone
            self.ephemeral_key = group.generate(self._random_bytes)
            pre_master = self.ephemeral_key.shared_secret(
                self._server_public, ecdhe=self._stages.ecdhe_premaster_secret
            )
            public = self.ephemeral_key.public
            self._send_handshake(
                ECDHClientKeyExchange(public) if group.kind == "ecdhe" else DHClientKeyExchange(public)
            )
            self._install_keys(pre_master)
            return
        pre_master = self._stages.make_pre_master_secret(self.client_hello.legacy_version, self._random_bytes)
        public_key = self.server_certificates[0].public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        encrypted = self._stages.encrypt_pre_master_secret(pre_master, public_key)
        self._send_handshake(ClientKeyExchange(encrypted))
        self._install_keys(pre_master)  # right after ClientKeyExchange joined the transcript (EMS)

    def _on_certificate_request(self, request: CertificateRequest) -> None:
        self.certificate_request = request
        if self._client_private_key is not None:
            self.client_signature_scheme = choose_scheme(
                self._client_private_key, request.supported_signature_algorithms, request.certificate_types
            )

    def _send_certificate(self) -> None:
        """Our chain if we can sign for it, else an empty list (RFC 5246 section 7.4.6)."""
        chain = self.client_certificate_chain if self.client_signature_scheme is not None else []
        self.client_certificates = list(chain)
        self._send_handshake(Certificate([c.public_bytes(serialization.Encoding.DER) for c in chain]))

    def _send_certificate_verify(self) -> None:
        """Sign every handshake message so far (ClientHello .. ClientKeyExchange) with our key."""
        assert self._client_private_key is not None and self.client_signature_scheme is not None
        scheme = self.client_signature_scheme
        signature = sign(self._client_private_key, scheme, bytes(self._handshake_messages))
        self._send_handshake(CertificateVerify(scheme, signature))

    def _on_certificate_status(self, status: CertificateStatus) -> None:
        # Kept as it came; the table already checked that we asked and that it follows Certificate.
        self.stapled_ocsp_response = status.ocsp_response
        if self.verify and self.server_certificates:
            # The chain passed at Certificate without it; now the validator reads the stapled answer too
            # (revoked: certificate_revoked; stale: the revocation policy decides), and its report replaces
            # the first one.
            self._validate_server_chain(self.server_certificates, status.ocsp_response)

    def _on_new_session_ticket(self, ticket: NewSessionTicket) -> None:
        self.session_ticket = ticket  # the table's guard already checked it was agreed and is the first


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
