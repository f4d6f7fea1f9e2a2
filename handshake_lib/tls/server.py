"""The TLS 1.2 server, RSA, ECDHE and DHE key exchange, as a sans-I/O core (table: ``states.SERVER_TRANSITIONS``).

Theory of operation
-------------------
The server speaks second.  Each client message is checked against the server's state table first,
then handled here:

* **ClientHello** (decoded strictly by :mod:`handshake_lib.tls.messages`): choose the version (TLS 1.2
  only: a client that offers only 1.3, or only 1.1 and below, gets ``protocol_version``), the cipher
  suite (:func:`~handshake_lib.tls.negotiation.choose_cipher_suite`, server preference by default, as
  OpenSSL servers do; nothing shared: ``handshake_failure``), and the extensions to answer
  (:func:`~handshake_lib.tls.negotiation.server_extensions`, which answers ``encrypt_then_mac`` only
  when the client asked and the suite is CBC).  The row's flight follows: ServerHello, Certificate,
  ServerHelloDone, each built by its sender.
* **Client certificates** (mutual TLS), when ``client_ca`` is given: the flight includes a
  CertificateRequest (our signature schemes, and the subject names of the CAs we trust), and the client
  answers with its Certificate first.  An empty one is accepted unless ``require_client_certificate``
  (then ``handshake_failure``, the alert OpenSSL sends in TLS 1.2); a chain is validated for clientAuth
  against ``client_ca`` (:func:`~handshake_lib.tls.verify.verify_client_chain`: ``unknown_ca``,
  ``certificate_expired``, ``unsupported_certificate``...).  A non-empty Certificate must be followed,
  after ClientKeyExchange, by a **CertificateVerify** whose signature over every handshake message before
  it verifies with the certificate's key (``decrypt_error`` otherwise).  The path validation built ends
  up in ``client_certificates`` and in :class:`HandshakeComplete`.
* **OCSP stapling** (RFC 6066 section 8), when ``ocsp_response`` is given (the DER a CA's OCSP
  responder signed about our certificate): a client whose hello has ``status_request`` (type ocsp) gets an
  empty ``status_request`` in our ServerHello and a **CertificateStatus** right after Certificate (the
  table's rows guarded by ``ocsp_response_to_staple``); a client that did not ask gets neither.  The
  response is sent as given, never parsed: a teaching server may staple a stale or revoked one on purpose.
  At most :data:`~handshake_lib.tls.messages.MAX_STAPLED_OCSP_RESPONSE` bytes (OpenSSL's clients refuse
  more): ValueError at construction.
* **Identities and groups**: ``TLSServer(chain, key, identities=[(ecdsa_chain, ecdsa_key)], groups=...)``
  holds an RSA and an ECDSA certificate; a suite is only offered to the chooser if we hold the identity it
  authenticates with (``*_ECDSA_*``: the ECDSA one, and only if the client's ``supported_groups`` names its
  curve, RFC 8422 section 5.1) and, for ECDHE/DHE, a group both sides support
  (:func:`~handshake_lib.tls.negotiation.choose_group`, our order of preference).
* **ServerKeyExchange** (ECDHE/DHE: the table's rows under ``Guard.ephemeral_key_exchange``, after
  CertificateStatus and before CertificateRequest): a fresh key pair from
  :mod:`~handshake_lib.tls.key_exchange`, its public value (and, for DHE, the RFC 7919 prime and
  generator), signed with the certificate's key over both randoms and the params, in a scheme the client
  listed in ``signature_algorithms`` (RSA-PSS first for an RSA key).
* **ClientKeyExchange** (ECDHE/DHE): the client's public value, validated (off the curve or compressed:
  ``illegal_parameter``; an all-zero X25519 secret: ``illegal_parameter``; a DH value outside 1 < Y < p-1:
  ``handshake_failure``), and the shared secret is the pre-master secret.
* **ClientKeyExchange** (RSA): decrypt the pre-master secret with
  :func:`~handshake_lib.tls.rsa_kx.decrypt_pre_master_secret`, which never says whether decryption
  worked (Bleichenbacher's countermeasure): a bad ciphertext just gives a random pre-master secret,
  and the handshake fails at the client's Finished (its record does not decrypt: ``bad_record_mac``)
  exactly as it would for a client with the wrong key.  Derive the keys.
* **ChangeCipherSpec**, then the client's **Finished** (``decrypt_error`` if it does not match); then
  our ChangeCipherSpec and Finished, and :class:`HandshakeComplete`.

* **Session IDs** (RFC 5246 section 7.4.1.2), when a :class:`~handshake_lib.tls.sessions.SessionCache` is
  given (``session_cache=``, shared by every connection of the server, with ``clock=``: the caller's
  time in seconds, since the core reads no clock): a full handshake gets a fresh 32-byte session ID and
  its master secret, suite and EMS flag go in the cache once both Finished messages are checked.  A
  ClientHello offering a cached ID, still within the cache's lifetime, whose suite the client offers again
  and we still serve, and whose EMS flag the new hello agrees with (RFC 7627 section 5.3: otherwise a full
  handshake), gets the abbreviated handshake: ServerHello with the same ID, ChangeCipherSpec, Finished
  (the table's rows under ``Guard.session_resumed``), keys from the cached master secret and the new
  randoms.  An unknown or expired ID is a full handshake, never an error.
* **Tickets** (RFC 5077), when :class:`~handshake_lib.tls.tickets.TicketKeys` are given (``ticket_keys=``,
  with ``clock=``): a client that sends ``session_ticket`` gets it back in our ServerHello and a
  NewSessionTicket (the session sealed with the current key, ``ticket_lifetime_hint`` seconds) before our
  ChangeCipherSpec (the rows under ``Guard.ticket_to_send``).  A ticket that opens, offered with a session
  ID, resumes as a cached ID does (and gets a renewed ticket); one that does not open is a full handshake.

* **Renegotiation** (RFC 5746): a first ClientHello with ``renegotiation_info`` (empty) or the SCSV gets an
  empty ``renegotiation_info`` back, and secure renegotiation is agreed.  :meth:`~TLSConnection.renegotiate`
  then sends HelloRequest (left out of the handshake hashes); a ClientHello over the open connection, asked
  for or not, must carry the client's last verify_data and no SCSV (``handshake_failure`` otherwise), and
  starts the same handshake again (the table's CONNECTED rows, made from WAIT_CLIENT_HELLO's), our
  ServerHello carrying both sides' verify_data.  A client may start at most ``max_renegotiations`` itself
  (CVE-2011-1473: each costs us a key exchange); past that, or without secure renegotiation, it gets the
  warning ``no_renegotiation`` and the connection goes on (the unguarded row).

Stages a learner can replace (``choose_cipher_suite``, ``decrypt_pre_master_secret``, the key schedule,
``record_mac``, ``verify_data``) come in one :class:`~handshake_lib.tls.stages.Stages` object:
``TLSServer(chain, key, stages=Stages(choose_cipher_suite=mine))``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import CertificateError, HandshakeFailure, InternalError
from ..pki.report import Purpose
from .connection import (
    DEFAULT_MAX_RENEGOTIATIONS,
    DEFAULT_SERVER_SUITES,
    RUNNABLE_SUITES,
    Event,
    HandshakeComplete,
    KeyLogWriter,
    RandomBytes,
    ReceiverKey,
    TLSConnection,
)
from .constants import CipherSuite, ContentType, ExtensionType, NamedGroup, ProtocolVersion
from .extensions import Extension, RenegotiationInfoExtension
from .key_exchange import GROUPS, EphemeralKey
from .messages import (
    DOWNGRADE_TLS12,
    MAX_STAPLED_OCSP_RESPONSE,
    Alert,
    Certificate,
    CertificateRequest,
    CertificateStatus,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    DHClientKeyExchange,
    ECDHClientKeyExchange,
    HelloRequest,
    NewSessionTicket,
    ServerDHParams,
    ServerECDHParams,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchange,
)
from .negotiation import (
    DEFAULT_GROUPS,
    choose_group,
    choose_version,
    client_asks_for_ocsp,
    client_groups,
    server_extensions,
    suite_authentication,
)
from .record import MAX_PLAINTEXT_LENGTH
from .sessions import Session, SessionCache
from .signatures import CERTIFICATE_TYPES, SUPPORTED_SCHEMES, SigningKey, choose_scheme, sign, verify_signature
from .stages import LIBRARY_STAGES, Stages
from .states import Guard, Input, State
from .suites import suite_params
from .tickets import TicketKeys
from .verify import load_trust_store, validate_peer_chain

__all__ = ["TLSServer", "Identity", "DEFAULT_SERVER_SUITES", "DEFAULT_SERVER_GROUPS"]

# ECDHE groups first (x25519, P-256, P-384), then the RFC 7919 groups for DHE suites.
DEFAULT_SERVER_GROUPS: tuple[NamedGroup, ...] = (*DEFAULT_GROUPS, NamedGroup.ffdhe2048, NamedGroup.ffdhe3072)
_CURVE_GROUPS = {"secp256r1": NamedGroup.secp256r1, "secp384r1": NamedGroup.secp384r1}
# A certificate chain (DER, leaf first) and its private key: one identity the server can present.
Identity = tuple[Sequence[bytes], SigningKey]


class TLSServer(TLSConnection):
    """A TLS 1.2 server core for one connection: feed it the client's bytes, send what it queues."""

    role = "server"

    def __init__(
        self,
        certificate_chain: Sequence[bytes] = (),
        private_key: SigningKey | None = None,
        *,
        # more identities, picked by suite (an RSA one for TLS_RSA_*, TLS_ECDHE_RSA_*, TLS_DHE_RSA_*; an
        # ECDSA one for TLS_ECDHE_ECDSA_*): ``[(rsa_chain, rsa_key), (ecdsa_chain, ecdsa_key)]``
        identities: Sequence[Identity] = (),
        # what to accept
        cipher_suites: Sequence[CipherSuite | int] = DEFAULT_SERVER_SUITES,
        # ECDHE/DHE groups in our order of preference
        groups: Sequence[NamedGroup | int] = DEFAULT_SERVER_GROUPS,
        prefer: Literal["server", "client"] = "server",
        extended_master_secret: bool = True,
        encrypt_then_mac: bool = True,
        # mutual TLS: ask for a client certificate issued by these CAs (a PEM file, or certificates);
        # required: refuse a client that sends none (optional otherwise)
        client_ca: str | Path | Sequence[x509.Certificate] | None = None,
        require_client_certificate: bool = False,
        now: datetime | None = None,
        # OCSP stapling: the DER OCSP response to send a client that asks (status_request)
        ocsp_response: bytes | None = None,
        # randomness (fixed in tests), the key log (Wireshark), record size (lessons cut messages)
        random_bytes: RandomBytes = os.urandom,
        server_random: bytes | None = None,
        keylog: KeyLogWriter | None = None,
        fragment_size: int = MAX_PLAINTEXT_LENGTH,
        # the learner's replacements (DESIGN section 3, rule 6)
        stages: Stages = LIBRARY_STAGES,
        # False: keep no record transcript (a server under load that shows nothing)
        keep_transcript: bool = True,
        # resumption: the server's session cache (one object for all its connections) and the caller's clock
        session_cache: SessionCache | None = None,
        ticket_keys: TicketKeys | None = None,
        clock: Callable[[], float] | None = None,
        # renegotiations a client may start on one connection (RFC 5746); 0 declines them all.  The ones we
        # ask for with renegotiate() (HelloRequest) do not count.
        max_renegotiations: int = DEFAULT_MAX_RENEGOTIATIONS,
        # this server also speaks TLS 1.3 (tls/negotiate_version.py): RFC 8446 4.1.3's downgrade sentinel goes
        # in the last 8 bytes of our random whenever we negotiate 1.2
        downgrade_sentinel: bool = False,
    ) -> None:
        super().__init__(
            random_bytes=random_bytes,
            keylog=keylog,
            extended_master_secret=extended_master_secret,
            encrypt_then_mac=encrypt_then_mac,
            fragment_size=fragment_size,
            stages=stages,
            keep_transcript=keep_transcript,
            max_renegotiations=max_renegotiations,
        )
        given = ([(certificate_chain, private_key)] if certificate_chain or private_key is not None else []) + list(
            identities
        )
        if not given:
            raise ValueError("the server needs a certificate chain (DER, leaf first) and its private key")
        # One identity per kind of key: "RSA" or "ECDSA" (suites.py's names for what a suite authenticates with).
        self.identities: dict[str, tuple[list[bytes], SigningKey]] = {}
        for chain, key in given:
            if not chain:
                raise ValueError("the server needs a certificate chain (DER, leaf first)")
            if isinstance(key, rsa.RSAPrivateKey):
                kind = "RSA"
            elif isinstance(key, ec.EllipticCurvePrivateKey):
                kind = "ECDSA"
            else:
                raise TypeError(f"a server key must be RSA or ECDSA, not {type(key).__name__}")
            if kind in self.identities:
                raise ValueError(f"two {kind} identities: give one per kind of key")
            self.identities[kind] = ([bytes(der) for der in chain], key)
        unknown = [s for s in cipher_suites if s not in RUNNABLE_SUITES]
        if unknown or not cipher_suites:
            raise ValueError(f"cipher_suites must be non-empty and among {[s.name for s in RUNNABLE_SUITES]}")
        bad_groups = [g for g in groups if g not in GROUPS]
        if bad_groups or not groups:
            raise ValueError(f"groups must be non-empty and among {[g.name for g in GROUPS]}, not {list(groups)}")
        self.groups = [NamedGroup(g) for g in groups]
        if server_random is not None and len(server_random) != 32:
            raise ValueError("server_random must be 32 bytes")
        # The identity of the first kind configured until a suite picks one (the old single-certificate API).
        first = next(iter(self.identities.values()))
        self.certificate_chain: list[bytes] = first[0]
        self.private_key: SigningKey = first[1]
        self.cipher_suites = [CipherSuite(s) for s in cipher_suites]
        self.prefer = prefer
        self._server_random_option = server_random
        self.downgrade_sentinel = downgrade_sentinel
        if require_client_certificate and client_ca is None:
            raise ValueError("require_client_certificate needs client_ca: the CAs a client certificate must come from")
        if client_ca is None:
            self.client_ca: list[x509.Certificate] = []
        elif isinstance(client_ca, str | Path):
            self.client_ca = load_trust_store(client_ca)
        else:  # as given: an empty list must not fall back to the system's roots, as load_trust_store would
            self.client_ca = list(client_ca)
        if client_ca is not None and not self.client_ca:
            raise ValueError("client_ca holds no certificate")
        # CertificateRequest lists every CA's name in a vector of at most 2^16-1 bytes (RFC 5246 7.4.4).
        names = sum(2 + len(ca.subject.public_bytes()) for ca in self.client_ca)
        if names > 0xFFFF:
            raise ValueError(f"client_ca's names take {names} bytes; a CertificateRequest holds at most 65535")
        self.require_client_certificate = require_client_certificate
        if ocsp_response is not None:
            if not isinstance(ocsp_response, bytes | bytearray) or not ocsp_response:
                raise ValueError("ocsp_response must be the DER bytes of an OCSP response (not empty)")
            if len(ocsp_response) > MAX_STAPLED_OCSP_RESPONSE:
                raise ValueError(
                    f"ocsp_response has {len(ocsp_response)} bytes; a CertificateStatus carries at most "
                    f"{MAX_STAPLED_OCSP_RESPONSE} (OpenSSL's clients refuse more)"
                )
            ocsp_response = bytes(ocsp_response)
        self.ocsp_response = ocsp_response
        self._now = now
        if (session_cache is not None or ticket_keys is not None) and clock is None:
            raise ValueError("session_cache and ticket_keys need clock= (seconds): the core reads no clock itself")
        self.session_cache = session_cache
        self.ticket_keys = ticket_keys
        self._clock = clock
        self._hello_request_sent = False  # renegotiate() asked; the client has not answered yet
        self._reset_handshake()

    def _reset_handshake(self) -> None:
        """What one handshake decides, from the ClientHello on: set up empty, and again when a renegotiation's
        ClientHello arrives (it decides everything again)."""
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.certificate_request: CertificateRequest | None = None
        self._client_leaf: x509.Certificate | None = None  # the client's certificate, once validated
        self._staple = False  # the client asked for status and we have a response: CertificateStatus goes out
        # ECDHE/DHE: our ephemeral key for this handshake and the ServerKeyExchange that carried it.
        self.ephemeral_key: EphemeralKey | None = None
        self.server_key_exchange: ServerKeyExchange | None = None
        self._ticket_agreed = False  # the client sent session_ticket and we hold ticket keys
        self.new_session_ticket: NewSessionTicket | None = None  # the ticket we sent
        self.resumed_by: str | None = None  # "session ID" or "ticket"

    # The table's rows for the client's messages, and the messages it sends (``states.SERVER_TRANSITIONS``).
    _RECEIVERS: ClassVar[dict[ReceiverKey, str | None]] = {
        Input.client_hello: "_on_client_hello",
        (State.CONNECTED, Input.client_hello): "_on_renegotiation_client_hello",
        Input.client_key_exchange: "_on_client_key_exchange",
        Input.certificate: "_on_client_certificate",
        Input.certificate_verify: "_on_certificate_verify",
    }
    _SENDERS: ClassVar[dict[str, str]] = {
        "ServerHello": "_send_server_hello",
        "Certificate": "_send_certificate",
        "ServerHelloDone": "_send_server_hello_done",
        "CertificateRequest": "_send_certificate_request",
        "CertificateStatus": "_send_certificate_status",
        "ServerKeyExchange": "_send_server_key_exchange",
        "NewSessionTicket": "_send_new_session_ticket",
        "HelloRequest": "_send_hello_request",
    }

    # -- renegotiation (RFC 5746) ----------------------------------------------------------------
    def _renegotiation_guards(self) -> set[Guard]:
        guards = super()._renegotiation_guards()
        if self._hello_request_sent:
            guards |= {Guard.hello_request_sent, Guard.renegotiation_allowed}  # we asked: not the client's count
        return guards

    def _on_renegotiate(self, _: None) -> None:
        self._hello_request_sent = True  # the row's HelloRequest follows

    def _send_hello_request(self) -> None:
        # Not a part of the handshake it asks for: left out of the handshake hashes (RFC 5246 7.4.1.1).
        self._send_records(ContentType.handshake, HelloRequest().to_bytes(), [HelloRequest()])

    def _on_no_renegotiation(self, alert: Alert) -> Event:
        self._hello_request_sent = False
        return super()._on_no_renegotiation(alert)

    def _on_renegotiation_client_hello(self, hello: ClientHello) -> None:
        """A ClientHello over the open connection: two rows, declined (unguarded) or a new handshake."""
        if not {Guard.secure_renegotiation, Guard.renegotiation_allowed} <= self.guards():
            return  # the unguarded row: its no_renegotiation warning is the whole answer
        if not self._hello_request_sent:
            self.peer_renegotiations += 1
        self._hello_request_sent = False
        self._begin_renegotiation()
        self._on_client_hello(hello)

    def _check_renegotiation_info(self, hello: ClientHello) -> None:
        """RFC 5746: a first hello with the extension (empty) or the SCSV agrees to secure renegotiation
        (3.6); a renegotiating one must carry our client's last verify_data and no SCSV (3.7)."""
        extension = hello.extension(ExtensionType.renegotiation_info)
        carried = extension.renegotiated_connection if isinstance(extension, RenegotiationInfoExtension) else None
        scsv = CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in hello.cipher_suites
        if not self.handshakes:
            if carried:
                raise HandshakeFailure("renegotiation_info must be empty on a first handshake (RFC 5746 section 3.6)")
            self.secure_renegotiation = carried is not None or scsv
            return
        if scsv:
            raise HandshakeFailure("a renegotiating ClientHello must not carry the SCSV (RFC 5746 section 3.7)")
        if carried is None:
            raise HandshakeFailure("a renegotiating ClientHello without renegotiation_info (RFC 5746 section 3.7)")
        if not hmac.compare_digest(carried, self._renegotiation_info("client")):
            raise HandshakeFailure(
                "renegotiation_info does not carry the client's last Finished: not the handshake we had "
                "(RFC 5746 section 3.7)"
            )

    def _answer_renegotiation_info(self, extensions: list[Extension]) -> list[Extension]:
        """Our ServerHello's renegotiation_info: empty first, then both sides' last verify_data (RFC 5746 3.7)."""
        return [
            RenegotiationInfoExtension(self._renegotiation_info()) if isinstance(e, RenegotiationInfoExtension) else e
            for e in extensions
        ]

    def _handshake_guards(self) -> frozenset[Guard]:
        guards: set[Guard] = set()
        if self._ticket_agreed and self.new_session_ticket is None:
            guards.add(Guard.ticket_to_send)
        if self.resumed:  # exclusive: the abbreviated handshake has none of the full one's other messages
            return frozenset({*guards, Guard.session_resumed})
        if self.client_ca:
            guards.add(Guard.client_certificate_requested)
        if self._client_leaf is not None:
            guards.add(Guard.client_certificate_sent)
        if self._staple:
            guards.add(Guard.ocsp_response_to_staple)
        if self.params is not None and self.params.key_exchange in ("ECDHE", "DHE"):
            guards.add(Guard.ephemeral_key_exchange)
        return frozenset(guards)

    def _offered_session(self, hello: ClientHello) -> Session | None:
        """The session ``hello`` offers, by ticket or by ID, if we may resume it (else None: a full handshake).

        A ticket that does not open (not ours, altered, expired) is no error: a full handshake (RFC 5077
        3.4).  A ticket needs the session ID the client sent with it, which we echo to say we resumed.
        """
        if not hello.session_id:
            return None
        assert self._clock is not None or (self.session_cache is None and self.ticket_keys is None)
        session = None
        offered = hello.extension(ExtensionType.session_ticket)
        ticket = getattr(offered, "ticket", b"")
        if self.ticket_keys is not None and ticket:
            assert self._clock is not None
            try:
                session = self.ticket_keys.open(
                    ticket, hello.session_id, self._clock(), open_ticket=self._stages.open_ticket
                )
            except Exception as error:  # a learner's stage may fail any way; say which stage
                raise InternalError(f"open_ticket failed: {type(error).__name__}: {error}") from error
            self.resumed_by = "ticket" if session is not None else None
        if session is None and self.session_cache is not None:
            assert self._clock is not None
            session = self.session_cache.get(hello.session_id, self._clock())
            self.resumed_by = "session ID" if session is not None else None
        if session is None or session.cipher_suite not in hello.cipher_suites:
            return None  # RFC 5246 7.4.1.2: the client must offer the session's suite again
        if session.cipher_suite not in self.cipher_suites or not self._can_serve(session.cipher_suite, hello):
            return None
        offers_ems = hello.extension(ExtensionType.extended_master_secret) is not None
        if session.extended_master_secret != (offers_ems and self.offer_extended_master_secret):
            # RFC 7627 section 5.3: a session made with EMS is not resumed by a hello without it (abort the
            # abbreviated handshake), and one made without is not resumed by a hello with it: full handshake.
            return None
        return session

    def _on_client_hello(self, hello: ClientHello) -> None:
        self.client_hello = hello
        self.version = choose_version(hello, [ProtocolVersion.TLS1_2])
        self._check_renegotiation_info(hello)
        self._ticket_agreed = (
            self.ticket_keys is not None and hello.extension(ExtensionType.session_ticket) is not None
        )
        cached = self._offered_session(hello)
        if cached is not None:
            self._resume(hello, cached)
            return
        self.resumed_by = None
        # A learner's choose_cipher_suite(offered, supported, prefer=...) can stand in for ours (exercise 03).
        # Only suites we can serve to this client: an identity of the kind the suite authenticates with, and
        # for ECDHE/DHE a group both sides support (RFC 8422 section 5.1), then the chooser picks among them.
        servable = [s for s in self.cipher_suites if self._can_serve(s, hello)]
        if not servable:
            raise HandshakeFailure("no cipher suite in common that this server has a certificate and a group for")
        choice = self._stages.choose_cipher_suite(hello.cipher_suites, servable, prefer=self.prefer)
        suite = CipherSuite(choice) if choice in servable else None
        if suite is None or suite not in hello.cipher_suites:
            raise HandshakeFailure(f"the cipher suite chooser picked {choice!r}, which both sides do not support")
        params = suite_params(suite)
        self.certificate_chain, self.private_key = self.identities[suite_authentication(suite)]
        if params.key_exchange in ("ECDHE", "DHE"):
            chosen = choose_group(hello, suite, self.groups)
            assert chosen is not None  # _can_serve checked it
            self.group = NamedGroup(chosen)
            offered = hello.extension(ExtensionType.signature_algorithms)
            # No signature_algorithms: RFC 5246 7.4.1.4.1 means SHA-1, which we do not sign with; we assume
            # SHA-256 (docs/limits.md), as every TLS 1.2 client sends the extension.
            schemes = list(getattr(offered, "schemes", ())) or [0x0401, 0x0403]
            scheme = choose_scheme(self.private_key, schemes)
            if scheme is None:
                # OpenSSL: SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM with handshake_failure.
                raise HandshakeFailure("no signature scheme the client accepts fits our key for ServerKeyExchange")
            self._server_key_exchange_scheme = scheme
        staple = self.ocsp_response is not None and client_asks_for_ocsp(hello)
        extensions = server_extensions(
            hello,
            cipher_suite=suite,
            extended_master_secret=self.offer_extended_master_secret,
            encrypt_then_mac=self.offer_encrypt_then_mac,
            staple_ocsp=staple,
            session_tickets=self._ticket_agreed,
        )
        self.params = params
        self.client_random = hello.random
        self.server_random = self._new_server_random()
        self.use_extended_master_secret = any(
            e.extension_type == ExtensionType.extended_master_secret for e in extensions
        )
        self.use_encrypt_then_mac = not params.is_aead and any(
            e.extension_type == ExtensionType.encrypt_then_mac for e in extensions
        )
        self._staple = staple  # the table's row is refined to the one whose flight has CertificateStatus
        self.server_hello = ServerHello(
            legacy_version=self.version,
            random=self.server_random,
            # A fresh ID when we keep a cache (RFC 5246 7.4.1.3); empty otherwise: this session cannot be resumed.
            session_id=self._random_bytes(32) if self.session_cache is not None else b"",
            cipher_suite=suite,
            compression_method=0,
            extensions=self._answer_renegotiation_info(extensions),
        )

    def _resume(self, hello: ClientHello, session: Session) -> None:
        """The abbreviated handshake: the session's suite and master secret, new randoms, new keys."""
        suite = session.cipher_suite
        params = suite_params(suite)
        extensions = server_extensions(
            hello,
            cipher_suite=suite,
            extended_master_secret=self.offer_extended_master_secret,
            encrypt_then_mac=self.offer_encrypt_then_mac,
            staple_ocsp=False,
            session_tickets=self._ticket_agreed,
        )
        self.params = params
        self.client_random = hello.random
        self.server_random = self._new_server_random()
        self.use_extended_master_secret = session.extended_master_secret
        self.use_encrypt_then_mac = not params.is_aead and any(
            e.extension_type == ExtensionType.encrypt_then_mac for e in extensions
        )
        self.resumed = True  # the row is refined to the abbreviated handshake's (Guard.session_resumed)
        self.session = session
        self.server_hello = ServerHello(
            legacy_version=self.version,
            random=self.server_random,
            session_id=session.session_id,
            cipher_suite=suite,
            compression_method=0,
            extensions=self._answer_renegotiation_info(extensions),
        )
        self._install_master_secret(session.master_secret)

    def _this_session(self) -> Session:
        assert self.params is not None and self.server_hello is not None
        return Session(
            self.server_hello.session_id, self.master_secret, self.params.suite, self.use_extended_master_secret
        )

    def _send_new_session_ticket(self) -> None:
        """This session, sealed with the current ticket key (RFC 5077 section 4), for the client to keep."""
        assert self.ticket_keys is not None and self._clock is not None
        ticket = self.ticket_keys.seal(self.session or self._this_session(), self._clock())
        self.new_session_ticket = NewSessionTicket(self.ticket_keys.ticket_lifetime_hint, ticket)
        self._send_handshake(self.new_session_ticket)

    def _resumed_by(self) -> str | None:
        return self.resumed_by if self.resumed else None

    def _handshake_complete(self) -> HandshakeComplete:
        if not self.resumed and self.server_hello is not None and self.server_hello.session_id:
            assert self.session_cache is not None and self._clock is not None
            self.session = self._this_session()
            self.session_cache.store(self.session, self._clock())
        return super()._handshake_complete()

    def _send_server_hello(self) -> None:
        assert self.server_hello is not None
        self._send_handshake(self.server_hello)

    def _send_certificate(self) -> None:
        self._send_handshake(Certificate(self.certificate_chain))

    def _send_certificate_status(self) -> None:
        assert self.ocsp_response is not None
        self.stapled_ocsp_response = self.ocsp_response
        self._send_handshake(CertificateStatus(self.ocsp_response))

    def _new_server_random(self) -> bytes:
        random = self._server_random_option or self._random_bytes(32)
        # RFC 8446 4.1.3: signed by ServerKeyExchange (or proven by Finished), so stripping the client's 1.3
        # offer on the way cannot hide that we could have spoken 1.3.
        return random[:24] + DOWNGRADE_TLS12 if self.downgrade_sentinel else random

    def _can_serve(self, suite: int, hello: ClientHello) -> bool:
        # Not filtered by the client's offer: the chooser (a learner's, in exercise 03) must do that itself.
        if suite_authentication(suite) not in self.identities:
            return False
        if suite_params(suite).key_exchange == "RSA":
            return isinstance(self.identities["RSA"][1], rsa.RSAPrivateKey)
        key = self.identities[suite_authentication(suite)][1]
        if isinstance(key, ec.EllipticCurvePrivateKey):
            # RFC 8422 section 5.1: the client's supported_groups names the curves it can verify an ECDSA
            # signature on too (OpenSSL checks the same: tls1_check_cert_param); no list means P-256 only.
            offered = client_groups(hello)
            curve = _CURVE_GROUPS.get(key.curve.name)
            if curve is None or curve not in (offered if offered is not None else [NamedGroup.secp256r1]):
                return False
        return choose_group(hello, suite, self.groups) is not None

    def _send_server_key_exchange(self) -> None:
        """Our ephemeral key for this handshake, signed with the certificate's key over both randoms."""
        assert self.group is not None
        group = GROUPS[NamedGroup(self.group)]
        self.ephemeral_key = group.generate(self._random_bytes)
        params: ServerECDHParams | ServerDHParams
        if group.kind == "ecdhe":
            params = ServerECDHParams(group.code, self.ephemeral_key.public)
        else:
            length = group.public_length
            params = ServerDHParams(group.p.to_bytes(length, "big"), bytes([group.g]), self.ephemeral_key.public)
        message = ServerKeyExchange(params, self._server_key_exchange_scheme, b"")
        signed = self.client_random + self.server_random + message.params_bytes()
        message.signature = sign(self.private_key, self._server_key_exchange_scheme, signed)
        self.server_key_exchange = message
        self._send_handshake(message)

    def _send_server_hello_done(self) -> None:
        self._send_handshake(ServerHelloDone())

    def _on_client_key_exchange(self, message: ClientKeyExchange | ECDHClientKeyExchange | DHClientKeyExchange) -> None:
        assert self.client_hello is not None
        if isinstance(message, ECDHClientKeyExchange | DHClientKeyExchange):
            assert self.ephemeral_key is not None  # decoded so only when the suite is ECDHE/DHE
            self._install_keys(self.ephemeral_key.shared_secret(message.public))
            return
        assert isinstance(self.private_key, rsa.RSAPrivateKey)  # _can_serve: RSA key exchange needs an RSA key
        pre_master = self._stages.decrypt_pre_master_secret(
            message.encrypted_pre_master_secret, self.private_key, self.client_hello.legacy_version, self._random_bytes
        )
        self._install_keys(pre_master)

    # -- mutual TLS ------------------------------------------------------------------------------
    def _send_certificate_request(self) -> None:
        # The CAs' subject names, as OpenSSL's s_server -CAfile sends them: a client with several
        # certificates can pick one these CAs issued.
        names = [ca.subject.public_bytes() for ca in self.client_ca]
        self.certificate_request = CertificateRequest(list(CERTIFICATE_TYPES), list(SUPPORTED_SCHEMES), names)
        self._send_handshake(self.certificate_request)

    def _on_client_certificate(self, message: Certificate) -> None:
        if not message.certificates:
            if self.require_client_certificate:
                # OpenSSL in TLS 1.2: SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE with handshake_failure
                # (TLS 1.3 has certificate_required for it).
                raise HandshakeFailure("the client sent no certificate, and this server requires one")
            return
        chain = message.x509()
        try:
            report = validate_peer_chain(chain, self.client_ca, purpose=Purpose.CLIENT, now=self._now)
        except CertificateError as refused:
            self.client_certificate_report = refused.report
            raise
        self.client_certificate_report = report
        self.client_certificates = list(report.path)
        self._client_leaf = chain[0]

    def _on_certificate_verify(self, message: CertificateVerify) -> None:
        assert self._client_leaf is not None  # the table's guard: only after a non-empty Certificate
        offered = self.certificate_request.supported_signature_algorithms if self.certificate_request else ()
        verify_signature(
            self._client_leaf.public_key(), message.algorithm, message.signature, self._messages_before_current, offered
        )
