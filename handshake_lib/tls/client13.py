"""The TLS 1.3 client as a sans-I/O core (table: ``states13.CLIENT_TRANSITIONS``).

Theory of operation
-------------------
:meth:`TLS13Client.start` queues the ClientHello: ``supported_versions`` (1.3, and 1.2 when
``offer_tls12``), one key share per group of ``key_share_groups`` (by default X25519MLKEM768 and x25519, as
browsers send), ``supported_groups`` listing every group we can do, ``signature_algorithms``,
``psk_key_exchange_modes`` (so the server sends tickets), a random 32-byte ``legacy_session_id`` (middlebox
compatibility, RFC 8446 D.4), and, resuming, ``pre_shared_key`` last with the ticket's obfuscated age and
a binder over the hello (plus ``early_data`` and the 0-RTT data itself when ``early_data`` is given and the
ticket allows it).  Then the server's messages, each looked up in the table first:

* **HelloRetryRequest** (the table's row sends the second ClientHello): the server wants a share in
  another group we offered (``illegal_parameter`` otherwise, and for an HRR that would change nothing);
  the transcript restarts with ``message_hash(ClientHello1)``; the second hello is the first with one key
  share for that group, the server's cookie echoed, no ``early_data`` (0-RTT is abandoned), a fresh binder.
  A second HRR has no row: ``unexpected_message``.
* **ServerHello**: ``supported_versions`` must say 1.3 (without it the server chose 1.2: with
  ``offer_tls12`` the core stops and :attr:`tls12_server_hello` holds the hello for
  :mod:`~handshake_lib.tls.negotiate_version` to hand the connection to the TLS 1.2 client, after checking
  the downgrade sentinel; otherwise ``protocol_version``); suite, session ID echo, extensions (only ones
  we sent, and only those RFC 8446 4.2 allows), the key share in a group we sent a share for (the HRR's
  group after a retry), ``pre_shared_key`` selecting our one identity with the ticket's hash.  Then the
  shared secret, the handshake secret and both handshake traffic secrets; the server's records are read
  with its handshake keys from here on.
* **EncryptedExtensions** (answers only to what we offered; ``early_data`` there means 0-RTT was
  accepted), then either the PSK's short path straight to Finished, or **CertificateRequest** (we answer
  with our chain and a scheme it lists, or an empty Certificate), **Certificate** (validated by the course's
  validator for ``server_name``, unless ``verify=False``) and **CertificateVerify** (a scheme we offered and
  the key can make in 1.3: RSA only as PSS; the signature over 64 spaces, the context string and the
  transcript hash).
* **Finished**: verify_data with the server's finished key; then the application secrets (and the
  exporter), and our flight: EndOfEarlyData under the early keys if the server took our 0-RTT data,
  Certificate/CertificateVerify if asked, Finished; then our application keys, and the resumption master
  secret over the whole transcript.
* After the handshake: **NewSessionTicket** gives a :class:`~handshake_lib.tls.tickets13.ResumptionTicket`
  (:class:`~handshake_lib.tls.connection13.TicketReceived`), **KeyUpdate** moves the server's keys on (and
  ours, if it asked).

The core reads no clock: ticket ages come from ``clock=`` (seconds), which resumption needs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import (
    BadCertificate,
    ConnectionStateError,
    DecodeError,
    IllegalParameter,
    MissingExtension,
    ProtocolVersionError,
)
from ..pki.checks import LIBRARY_CHECKS, CertificateChecks
from ..pki.report import Purpose, ValidationReport
from ..pki.revocation import RevocationPolicy
from .connection import ApplicationData
from .connection13 import ReceiverKey, TicketReceived, TLS13Connection
from .constants import (
    CipherSuite,
    ContentType,
    ExtensionType,
    NamedGroup,
    ProtocolVersion,
    PskKeyExchangeMode,
    SignatureScheme,
)
from .extensions import (
    CookieExtension,
    EarlyDataExtension,
    EarlyDataTicketExtension,
    ECPointFormatsExtension,
    ExtendedMasterSecretExtension,
    Extension,
    KeyShareClientHelloExtension,
    KeyShareHelloRetryRequestExtension,
    KeyShareServerHelloExtension,
    PreSharedKeyClientHelloExtension,
    PreSharedKeyServerHelloExtension,
    PskIdentity,
    PskKeyExchangeModesExtension,
    RenegotiationInfoExtension,
    SelectedVersionExtension,
    ServerNameExtension,
    SessionTicketExtension,
    SignatureAlgorithmsExtension,
    SupportedGroupsExtension,
    SupportedVersionsExtension,
    check_extensions_allowed,
    check_solicited,
)
from .key_schedule13 import KeySchedule13, message_hash, transcript_hash
from .key_share13 import KEY_SHARE_GROUPS13, ClientKeyShare13
from .messages import (
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    CertificateVerify,
    ClientHello,
    ServerHello,
)
from .messages13 import (
    Certificate13,
    CertificateEntry,
    CertificateRequest13,
    EncryptedExtensions,
    EndOfEarlyData,
    NewSessionTicket13,
    certificate_verify_content,
    check_key_share_selection,
    truncated_client_hello,
)
from .negotiation import is_ip_address
from .record import MAX_PLAINTEXT_LENGTH
from .record13 import SUITES13, suite13
from .signatures import SUPPORTED_SCHEMES, SigningKey, check_scheme13, schemes_for_key13, sign, verify_signature
from .stages13 import LIBRARY_STAGES13, Stages13
from .states13 import Guard, Input, State
from .tickets13 import ResumptionTicket
from .verify import load_trust_store, validate_peer_chain

__all__ = [
    "TLS13Client",
    "DEFAULT_SUITES13",
    "DEFAULT_GROUPS13",
    "DEFAULT_KEY_SHARES13",
]

# OpenSSL's default order of TLS 1.3 suites (AES-256 first); CCM only when asked for.
DEFAULT_SUITES13: tuple[int, ...] = (0x1302, 0x1303, 0x1301)
# What we can do, most preferred first: the hybrid browsers offer first, then the classic groups.
DEFAULT_GROUPS13: tuple[NamedGroup, ...] = (
    NamedGroup.X25519MLKEM768,
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
    NamedGroup.ffdhe2048,
)
# The shares our first ClientHello carries (Chrome's and Firefox's choice): a server that wants another
# group answers with HelloRetryRequest.
DEFAULT_KEY_SHARES13: tuple[NamedGroup, ...] = (NamedGroup.X25519MLKEM768, NamedGroup.x25519)
# The TLS 1.2 groups and suites offered beside 1.3 when falling back is allowed (tls/negotiation.py's).
_TLS12_GROUPS = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)


class TLS13Client(TLS13Connection):
    """A TLS 1.3 client core.  Call :meth:`start`, then shuttle bytes (``net.tls`` runs it over a socket)."""

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
        crls: Sequence[x509.CertificateRevocationList] = (),
        revocation_policy: RevocationPolicy | str = RevocationPolicy.REQUIRE_FRESH,
        certificate_checks: CertificateChecks = LIBRARY_CHECKS,
        # what to offer
        cipher_suites: Sequence[int] = DEFAULT_SUITES13,
        groups: Sequence[NamedGroup | int] = DEFAULT_GROUPS13,
        key_share_groups: Sequence[NamedGroup | int] = DEFAULT_KEY_SHARES13,
        signature_schemes: Sequence[int] = SUPPORTED_SCHEMES,
        # also offer TLS 1.2 (the hello then carries 1.2's suites and extensions too): negotiate_version.py
        offer_tls12: bool = False,
        tls12_cipher_suites: Sequence[int] = (),
        # a TLS 1.2 session to resume if the server picks 1.2: its ID as our legacy_session_id (browsers do
        # this), its RFC 5077 ticket (or an empty one, asking for a ticket) in session_ticket
        tls12_session_id: bytes | None = None,
        tls12_session_ticket: bytes | None = None,
        # who we are, if the server asks
        client_certificate_chain: Sequence[x509.Certificate] = (),
        client_private_key: SigningKey | None = None,
        # resumption: a ticket from an earlier connection (TicketReceived.ticket), how to use it, 0-RTT data
        ticket: ResumptionTicket | None = None,
        psk_modes: Sequence[int] = (PskKeyExchangeMode.psk_dhe_ke,),
        early_data: bytes | None = None,
        # randomness (fixed in tests), the key log (Wireshark), record size, the clock for ticket ages
        random_bytes: Any = os.urandom,
        client_random: bytes | None = None,
        keylog: Any = None,
        fragment_size: int = MAX_PLAINTEXT_LENGTH,
        clock: Any = None,
        middlebox_compatibility: bool = True,
        keep_transcript: bool = True,
        # the learner's key schedule (lesson 10's exercise): Stages13(hkdf_expand_label=..., ...)
        stages: Stages13 = LIBRARY_STAGES13,
    ) -> None:
        super().__init__(
            random_bytes=random_bytes, keylog=keylog, fragment_size=fragment_size, keep_transcript=keep_transcript,
            clock=clock, stages=stages,
        )  # fmt: skip
        if verify and not server_name:
            raise ValueError("verify=True needs the server_name to check the certificate against")
        unknown = [s for s in cipher_suites if s not in SUITES13]
        if unknown or not cipher_suites:
            raise ValueError(f"cipher_suites must be non-empty TLS 1.3 suites ({[hex(s) for s in SUITES13]})")
        bad = [g for g in (*groups, *key_share_groups) if g not in KEY_SHARE_GROUPS13]
        if bad or not groups:
            raise ValueError(f"groups must be among {[g.name for g in KEY_SHARE_GROUPS13]}, not {bad or list(groups)}")
        if any(g not in groups for g in key_share_groups):
            raise ValueError("every key_share_groups entry must be in groups (RFC 8446 4.2.8)")
        if client_random is not None and len(client_random) != 32:
            raise ValueError("client_random must be 32 bytes")
        if bool(client_certificate_chain) != (client_private_key is not None):
            raise ValueError("client_certificate_chain and client_private_key go together")
        if client_private_key is not None and not schemes_for_key13(client_private_key):
            raise ValueError(f"a {type(client_private_key).__name__} cannot sign a TLS 1.3 CertificateVerify")
        if ticket is not None and not isinstance(ticket, ResumptionTicket):
            raise TypeError(f"ticket must be a ResumptionTicket (TicketReceived.ticket), not {type(ticket).__name__}")
        if ticket is not None and clock is None:
            raise ValueError("resuming with a ticket needs clock= (seconds): its age goes in the ClientHello")
        if early_data is not None and ticket is None:
            raise ValueError("early data needs a ticket to resume (RFC 8446 section 2.3)")
        modes = [PskKeyExchangeMode(m) for m in psk_modes]
        if not modes:
            raise ValueError("psk_modes must name psk_dhe_ke and/or psk_ke")
        self.server_name = server_name
        self.verify = verify
        self.crls = list(crls)
        self.revocation_policy = RevocationPolicy(revocation_policy)
        self.certificate_checks = certificate_checks
        self._now = now
        self._trust_anchors = load_trust_store(cafile, trusted_certificates) if verify else []
        self.cipher_suites = [int(s) for s in cipher_suites]
        self.groups = [NamedGroup(g) for g in groups]
        self.key_share_groups = [NamedGroup(g) for g in key_share_groups]
        self.signature_schemes = [int(s) for s in signature_schemes]
        self.offer_tls12 = offer_tls12
        self.tls12_cipher_suites = [int(s) for s in tls12_cipher_suites]
        if (tls12_session_id is not None or tls12_session_ticket is not None) and not offer_tls12:
            raise ValueError("a TLS 1.2 session is offered only together with TLS 1.2 (offer_tls12=True)")
        if tls12_session_id is not None and not 1 <= len(tls12_session_id) <= 32:
            raise ValueError("a session ID has 1 to 32 bytes")
        self.tls12_session_id = tls12_session_id
        self.tls12_session_ticket = tls12_session_ticket
        self.client_certificate_chain = list(client_certificate_chain)
        self._client_private_key = client_private_key
        self.offered_ticket = ticket
        self.psk_modes = modes
        self._client_random_option = client_random
        self._middlebox = middlebox_compatibility
        # 0-RTT only with a ticket that allows it, sent in the first ClientHello (RFC 8446 4.2.10).
        self.early_data = early_data if ticket is not None and ticket.max_early_data_size > 0 else None
        if self.early_data is not None:
            if len(self.early_data) > ticket.max_early_data_size:  # type: ignore[union-attr]
                raise ValueError(
                    f"the ticket allows {ticket.max_early_data_size} bytes of early data, not {len(self.early_data)}"
                )  # type: ignore[union-attr]  # noqa: E501
            self._guards.add(Guard.early_data_offered)
        # What the handshake learns.
        self.client_hello: ClientHello | None = None
        self.first_client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.encrypted_extensions: EncryptedExtensions | None = None
        self.certificate_request: CertificateRequest13 | None = None
        self.server_certificates: list[x509.Certificate] = []
        self.certificate_report: ValidationReport | None = None
        self.tickets: list[ResumptionTicket] = []
        self.tls12_server_hello: ServerHello | None = None  # the server chose TLS 1.2 (offer_tls12)
        self._key_shares: dict[int, ClientKeyShare13] = {}
        self._retry_group: int | None = None
        self._cookie: bytes | None = None
        self._client_scheme: int | None = None
        self._early_schedule: KeySchedule13 | None = None
        self._shared_secret: bytes | None = None

    _RECEIVERS: ClassVar[dict[ReceiverKey, str | None]] = {
        Input.start: None,
        Input.hello_retry_request: "_on_hello_retry_request",
        Input.server_hello: "_on_server_hello",
        Input.encrypted_extensions: "_on_encrypted_extensions",
        Input.certificate_request: "_on_certificate_request",
        Input.certificate: "_on_certificate",
        Input.certificate_verify: "_on_certificate_verify",
        Input.new_session_ticket: "_on_new_session_ticket",
    }
    _SENDERS: ClassVar[dict[str, str]] = {
        "ClientHello": "_send_client_hello",
        "ApplicationData": "_send_early_data",
        "EndOfEarlyData": "_send_end_of_early_data",
        "Certificate": "_send_certificate",
        "CertificateVerify": "_send_certificate_verify",
    }

    # -- the application's side --------------------------------------------------------------------
    def start(self) -> None:
        """Queue the ClientHello (and 0-RTT data, when resuming with ``early_data``)."""
        if self.client_hello is not None:
            raise ConnectionStateError("start() was already called")
        self._step(Input.start, None, [])

    @property
    def fell_back_to_tls12(self) -> bool:
        return self.tls12_server_hello is not None

    # -- the ClientHello -----------------------------------------------------------------------------
    def _hello_extensions(self) -> list[Extension]:
        extensions: list[Extension] = []
        if self.server_name and not is_ip_address(self.server_name):
            extensions.append(ServerNameExtension.for_host(self.server_name))
        groups = list(self.groups)
        if self.offer_tls12:
            groups += [g for g in _TLS12_GROUPS if g not in groups]
        extensions.append(SupportedGroupsExtension(groups))
        schemes = self.signature_schemes if self.offer_tls12 else [s for s in self.signature_schemes if s not in _PKCS1]
        extensions.append(SignatureAlgorithmsExtension(schemes))
        if self.offer_tls12:
            extensions += [ECPointFormatsExtension(), ExtendedMasterSecretExtension(), RenegotiationInfoExtension()]
            if self.tls12_session_ticket is not None:
                extensions.append(SessionTicketExtension(self.tls12_session_ticket))
        versions = [ProtocolVersion.TLS1_3] + ([ProtocolVersion.TLS1_2] if self.offer_tls12 else [])
        extensions.append(SupportedVersionsExtension(versions))
        extensions.append(PskKeyExchangeModesExtension([int(m) for m in self.psk_modes]))
        extensions.append(KeyShareClientHelloExtension([share.entry for share in self._key_shares.values()]))
        if self._cookie is not None:
            extensions.append(CookieExtension(self._cookie))
        if Guard.early_data_offered in self._guards:
            extensions.append(EarlyDataExtension())
        return extensions

    def _send_client_hello(self) -> None:
        retry = self.client_hello is not None
        if not retry:
            self.client_random = self._client_random_option or self._random_bytes(32)
            session_id = self.tls12_session_id or (self._random_bytes(32) if self._middlebox else b"")
            for group in self.key_share_groups:
                self._key_shares[group] = KEY_SHARE_GROUPS13[group].client_share(self._random_bytes)
        else:
            assert self._retry_group is not None and self.client_hello is not None
            session_id = self.client_hello.session_id
            self._key_shares = {
                self._retry_group: KEY_SHARE_GROUPS13[NamedGroup(self._retry_group)].client_share(self._random_bytes)
            }
        suites = list(self.cipher_suites) + (list(self.tls12_cipher_suites) if self.offer_tls12 else [])
        if self.offer_tls12 and CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV in suites:
            suites.remove(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV)  # renegotiation_info says it
        hello = ClientHello(
            random=self.client_random, session_id=session_id, cipher_suites=suites, extensions=self._hello_extensions()
        )
        ticket = self.offered_ticket
        if ticket is not None and suite13(ticket.cipher_suite).code in self.cipher_suites:
            hello = self._with_binder(hello, ticket)
        self.client_hello = hello
        if not retry:
            self.first_client_hello = hello
        self._send_handshake(hello)
        if self._middlebox and not retry:
            self._compatibility_ccs_due = True  # one, before our first protected record (RFC 8446 D.4)

    def _with_binder(self, hello: ClientHello, ticket: ResumptionTicket) -> ClientHello:
        """``hello`` with ``pre_shared_key`` last: the ticket, its obfuscated age, and the binder over the
        hello up to the binders (computed with zeros in their place first: RFC 8446 4.2.11.2)."""
        psk_suite = suite13(ticket.cipher_suite)
        now = self._clock() if self._clock is not None else 0.0
        identity = PskIdentity(ticket.ticket, ticket.obfuscated_age(now))
        length = 48 if psk_suite.hash_name == "sha384" else 32
        placeholder = PreSharedKeyClientHelloExtension([identity], [bytes(length)])
        draft = ClientHello(
            random=hello.random, session_id=hello.session_id, cipher_suites=hello.cipher_suites,
            extensions=[*(hello.extensions or []), placeholder],
        )  # fmt: skip
        schedule = self._stages.schedule(psk_suite.hash_name, ticket.psk)
        # After a HelloRetryRequest the binder covers message_hash(ClientHello1) and the HRR too (4.2.11.2).
        hashed = transcript_hash(psk_suite.hash_name, [*self._messages, truncated_client_hello(draft)])
        binder = schedule.psk_binder(hashed)
        self._early_schedule = schedule
        return ClientHello(
            random=hello.random, session_id=hello.session_id, cipher_suites=hello.cipher_suites,
            extensions=[*(hello.extensions or []), PreSharedKeyClientHelloExtension([identity], [binder])],
        )  # fmt: skip

    def _send_early_data(self) -> None:
        """0-RTT: the client_early_traffic_secret over the ClientHello, then the data under it (RFC 8446 2.3)."""
        assert self.offered_ticket is not None and self._early_schedule is not None and self.early_data is not None
        self.suite = suite13(self.offered_ticket.cipher_suite)
        early_secret, early_exporter = self._early_schedule.early(transcript_hash(self.suite.hash_name, self._messages))
        self._set_write_secret(early_secret, "CLIENT_EARLY_TRAFFIC_SECRET")
        self._log_secret("EARLY_EXPORTER_SECRET", early_exporter)  # as OpenSSL logs it
        self._send_content(ContentType.application_data, self.early_data, [ApplicationData(self.early_data)])

    # -- the server's messages ------------------------------------------------------------------------
    def _receive_handshake(self, message: Any, raw: bytes, events: list[Any]) -> None:
        # A ServerHello without supported_versions chose TLS 1.2 (or older): not a row of the 1.3 table.
        if (
            isinstance(message, ServerHello)
            and self._state is State.WAIT_SERVER_HELLO
            and message.extension(ExtensionType.supported_versions) is None
        ):
            self._tls12_answer(message)
            self.tls12_server_hello = message
            self._close_received = True  # stop reading: the TLS 1.2 client takes the connection from here
            return
        super()._receive_handshake(message, raw, events)

    def _tls12_answer(self, hello: ServerHello) -> None:
        if not self.offer_tls12:
            raise ProtocolVersionError(
                f"the server chose version 0x{hello.legacy_version:04x}; this client offered only TLS 1.3"
            )
        if hello.legacy_version != ProtocolVersion.TLS1_2:
            raise ProtocolVersionError(f"the server chose version 0x{hello.legacy_version:04x}; we offered 1.3 and 1.2")
        # RFC 8446 4.1.3: a TLS 1.3 server that negotiates 1.2 says so in its random; seeing that here means
        # someone removed our 1.3 offer on the way.
        if hello.random[-8:] in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
            raise IllegalParameter("the server random signals a downgrade from TLS 1.3 (RFC 8446 section 4.1.3)")

    def _check_server_hello_common(self, hello: ServerHello, *, retry: bool) -> None:
        assert self.client_hello is not None
        selected = hello.extension(ExtensionType.supported_versions)
        if not isinstance(selected, SelectedVersionExtension) or selected.selected_version != ProtocolVersion.TLS1_3:
            version = getattr(selected, "selected_version", None)
            raise IllegalParameter(f"supported_versions in the ServerHello selects {version!r}, not TLS 1.3 (0x0304)")
        if hello.legacy_version != ProtocolVersion.TLS1_2:
            raise IllegalParameter(
                f"a TLS 1.3 ServerHello says legacy_version 0x{hello.legacy_version:04x}, not 0x0303"
            )
        if hello.session_id != self.client_hello.session_id:
            raise IllegalParameter("the ServerHello does not echo our legacy_session_id (RFC 8446 4.1.3)")
        if hello.cipher_suite not in self.cipher_suites:
            raise IllegalParameter(
                f"the server chose cipher suite 0x{hello.cipher_suite:04x}, which we did not offer for 1.3"
            )
        if hello.compression_method != 0:
            raise IllegalParameter(f"compression method {hello.compression_method} in TLS 1.3")
        context = "hello_retry_request" if retry else "server_hello"
        check_extensions_allowed(hello.extensions, context)
        offered = [e.extension_type for e in self.client_hello.extensions or ()]
        check_solicited(hello.extensions, offered, hello_retry_request=retry)

    def _on_hello_retry_request(self, hrr: ServerHello) -> None:
        self._check_server_hello_common(hrr, retry=True)
        assert self.client_hello is not None
        check_key_share_selection(self.client_hello, hrr)
        share = hrr.extension(ExtensionType.key_share)
        cookie = hrr.extension(ExtensionType.cookie)
        if not isinstance(share, KeyShareHelloRetryRequestExtension) and cookie is None:
            # 4.1.4: an HRR that would not change the ClientHello is illegal_parameter.
            raise IllegalParameter("a HelloRetryRequest that asks for no change (no key_share group, no cookie)")
        self.suite = suite13(hrr.cipher_suite)
        self.hello_retry_request = True
        self._retry_group = (
            share.selected_group
            if isinstance(share, KeyShareHelloRetryRequestExtension)
            else next(iter(self._key_shares))
        )
        self._cookie = cookie.cookie if isinstance(cookie, CookieExtension) else None
        # The transcript restarts: ClientHello1 becomes message_hash(ClientHello1) (4.4.1); the HRR joins next.
        self._messages = [message_hash(self.suite.hash_name, self._messages[0])]
        if Guard.early_data_offered in self._guards:
            self._guards.discard(Guard.early_data_offered)
            self.early_data_status = "rejected"
        self._sealer = None  # the second ClientHello is plaintext, whatever 0-RTT keys were on

    def _on_server_hello(self, hello: ServerHello) -> None:
        self._check_server_hello_common(hello, retry=False)
        assert self.client_hello is not None
        suite = suite13(hello.cipher_suite)
        if self.hello_retry_request and self.suite is not None and suite.code != self.suite.code:
            raise IllegalParameter("the ServerHello's cipher suite differs from the HelloRetryRequest's (4.1.4)")
        self.server_hello = hello
        self.server_random = hello.random
        self.suite = suite
        psk = hello.extension(ExtensionType.pre_shared_key)
        share = hello.extension(ExtensionType.key_share)
        psk_secret: bytes | None = None
        if isinstance(psk, PreSharedKeyServerHelloExtension):
            ticket = self.offered_ticket
            offered_psk = (self.client_hello.extensions or [None])[-1]
            if ticket is None or not isinstance(offered_psk, PreSharedKeyClientHelloExtension):
                raise IllegalParameter(
                    "the server accepted a PSK we did not offer"
                )  # pragma: no cover - check_solicited
            if psk.selected_identity != 0:
                raise IllegalParameter(f"the server selected PSK {psk.selected_identity}; we offered one (index 0)")
            if suite13(ticket.cipher_suite).hash_name != suite.hash_name:
                raise IllegalParameter("the server's suite has another hash than the resumed session's (4.2.11)")
            psk_secret = ticket.psk
            self._guards.add(Guard.psk_accepted)
            self.psk_mode = "psk_dhe_ke" if share is not None else "psk_ke"
            if self.psk_mode not in {m.name for m in self.psk_modes}:
                raise IllegalParameter(f"the server used the PSK as {self.psk_mode}, which we did not offer")
        elif Guard.early_data_offered in self._guards:
            self.early_data_status = "rejected"  # no PSK, no 0-RTT
        if share is None and psk_secret is None:
            raise MissingExtension("a ServerHello with neither key_share nor pre_shared_key (RFC 8446 9.2)")
        shared: bytes | None = None
        if isinstance(share, KeyShareServerHelloExtension):
            check_key_share_selection(self.client_hello, hello)
            group = share.server_share.group
            if self._retry_group is not None and group != self._retry_group:
                raise IllegalParameter("the ServerHello's group is not the one the HelloRetryRequest asked for")
            shared = self._key_shares[group].shared_secret(share.server_share.key_exchange)
            self.group = group
        self._shared_secret = shared
        self.schedule = self._stages.schedule(suite.hash_name, psk_secret)

    def _after_transcript(self, received: Input) -> None:
        assert self.suite is not None
        if received is Input.server_hello:
            assert self.schedule is not None
            client, server = self.schedule.handshake(self._shared_secret, self._transcript_hash())
            self._handshake_secrets = {"client": client, "server": server}
            self._log_secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET", client)
            self._log_secret("SERVER_HANDSHAKE_TRAFFIC_SECRET", server)
            self._set_read_secret(server)
            if Guard.early_data_offered not in self._guards:
                self._set_write_secret(client)
        elif received is Input.finished:
            self._install_application_secrets()
            self._set_read_secret(self._application_secrets["server"])

    def _on_encrypted_extensions(self, message: EncryptedExtensions) -> None:
        assert self.client_hello is not None
        offered = [e.extension_type for e in self.client_hello.extensions or ()]
        check_solicited(message.extensions, offered)
        self.encrypted_extensions = message
        if message.extension(ExtensionType.early_data) is not None:
            if Guard.psk_accepted not in self._guards or Guard.early_data_offered not in self._guards:
                raise IllegalParameter("the server accepted early data we did not send")
            assert self.offered_ticket is not None and self.suite is not None
            if self.suite.code != self.offered_ticket.cipher_suite:
                # RFC 8446 4.2.10: 0-RTT is accepted only under the ticket's own suite.
                raise IllegalParameter("the server accepted our early data under another cipher suite")
            self._guards.add(Guard.early_data_accepted)
            self.early_data_status = "accepted"
        elif Guard.early_data_offered in self._guards:
            self.early_data_status = "rejected"
            self._set_write_secret(self._handshake_secrets["client"])  # 0-RTT refused: straight to handshake keys

    def _on_certificate_request(self, request: CertificateRequest13) -> None:
        if request.certificate_request_context:
            raise IllegalParameter("a CertificateRequest in the handshake has an empty context (RFC 8446 4.3.2)")
        self.certificate_request = request
        self._guards.add(Guard.certificate_requested)
        schemes = request.extension(ExtensionType.signature_algorithms)
        offered = schemes.schemes if isinstance(schemes, SignatureAlgorithmsExtension) else []
        key = self._client_private_key
        if key is not None:
            self._client_scheme = next((s for s in schemes_for_key13(key) if s in offered), None)
            if self._client_scheme is not None:
                self._guards.add(Guard.client_certificate_to_send)

    def _on_certificate(self, message: Certificate13) -> None:
        if message.certificate_request_context:
            raise IllegalParameter("the server's Certificate has a request context (RFC 8446 4.4.2)")
        if not message.entries:
            raise DecodeError("the server sent an empty Certificate (RFC 8446 4.4.2.4)", field="certificate_list")
        try:
            chain = [x509.load_der_x509_certificate(entry.cert_data) for entry in message.entries]
        except ValueError as error:
            raise BadCertificate(f"the server's certificate does not parse: {error}") from None
        self.server_certificates = chain
        if self.verify:
            self.certificate_report = validate_peer_chain(
                chain, self._trust_anchors, purpose=Purpose.SERVER, host=self.server_name, now=self._now,
                crls=self.crls, revocation_policy=self.revocation_policy, checks=self.certificate_checks,
            )  # fmt: skip

    def _on_certificate_verify(self, message: CertificateVerify) -> None:
        public_key = self.server_certificates[0].public_key()
        offered = [s for s in self.signature_schemes if s not in _PKCS1]
        check_scheme13(public_key, message.algorithm, offered, signer="server")
        content = certificate_verify_content("server", self._transcript_hash())
        verify_signature(
            public_key, message.algorithm, message.signature, content, offered, what="server CertificateVerify"
        )
        self.signature_scheme = message.algorithm

    def _on_new_session_ticket(self, message: NewSessionTicket13) -> TicketReceived:
        assert self.suite is not None and self.schedule is not None
        early = message.extension(ExtensionType.early_data)
        ticket = ResumptionTicket(
            ticket=message.ticket,
            psk=self.schedule.resumption_psk(message.ticket_nonce),
            cipher_suite=self.suite.code,
            ticket_age_add=message.ticket_age_add,
            lifetime=min(message.ticket_lifetime, 604_800),
            received_at=self._clock() if self._clock is not None else 0.0,
            max_early_data_size=early.max_early_data_size if isinstance(early, EarlyDataTicketExtension) else 0,
            server_name=self.server_name,
        )
        if len(self.tickets) < _MAX_TICKETS_KEPT:
            self.tickets.append(ticket)
        return TicketReceived(ticket)

    # -- our second flight ----------------------------------------------------------------------------
    def _send_end_of_early_data(self) -> None:
        self._send_handshake(EndOfEarlyData())
        self._set_write_secret(self._handshake_secrets["client"])

    def _send_certificate(self) -> None:
        request = self.certificate_request
        assert request is not None
        chain = self.client_certificate_chain if Guard.client_certificate_to_send in self._guards else []
        entries = [CertificateEntry(cert.public_bytes(serialization.Encoding.DER)) for cert in chain]
        self._send_handshake(Certificate13(request.certificate_request_context, entries))

    def _send_certificate_verify(self) -> None:
        assert self._client_private_key is not None and self._client_scheme is not None
        content = certificate_verify_content("client", self._transcript_hash())
        signature = sign(self._client_private_key, self._client_scheme, content)
        self._send_handshake(CertificateVerify(self._client_scheme, signature))

    def _send_finished(self) -> None:
        super()._send_finished()
        assert self.schedule is not None
        self._set_write_secret(self._application_secrets["client"])
        self.schedule.resumption(self._transcript_hash())


_PKCS1 = {SignatureScheme.rsa_pkcs1_sha256, SignatureScheme.rsa_pkcs1_sha384, SignatureScheme.rsa_pkcs1_sha512}
_MAX_TICKETS_KEPT = 8  # tickets a client keeps from one connection (OpenSSL's servers send 2)
