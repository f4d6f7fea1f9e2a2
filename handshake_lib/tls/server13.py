"""The TLS 1.3 server as a sans-I/O core (table: ``states13.SERVER_TRANSITIONS``).

Theory of operation
-------------------
Everything is decided at the ClientHello (:meth:`TLS13Server._on_client_hello`), and the table's row,
refined by what was decided, says which flight goes out:

* **Version and shape**: ``supported_versions`` must offer TLS 1.3 (``protocol_version`` otherwise: a
  server that also speaks 1.2 is :mod:`~handshake_lib.tls.negotiate_version`'s), compression only
  ``null``, key shares well formed and in groups the client lists (``illegal_parameter``), and
  ``signature_algorithms`` present for a certificate handshake (``missing_extension``).
* **Suite**: our first suite the client offers (``handshake_failure`` if none).
* **Group**: our first group the client sent a share for; if it sent none we can use but lists one we
  support, the row is HelloRetryRequest (:attr:`Guard.retry_needed`) naming that group, with a cookie the
  second ClientHello must echo.  The second ClientHello may change only what RFC 8446 4.1.2 allows (the key
  share for that group, the cookie, early_data removed, the PSK's ages and binders): anything else is
  ``illegal_parameter``, and there is no second retry.
* **PSK** (resumption): each offered identity is one of our tickets
  (:func:`~handshake_lib.tls.tickets13.open_ticket13`); the first that opens, whose suite has the chosen
  suite's hash and whose mode (psk_dhe_ke with a key share, or psk_ke when ``psk_modes`` allows it) fits,
  is taken, *after* its binder verifies (``decrypt_error`` otherwise: RFC 8446 4.2.11).  A ticket that
  does not open is simply not taken (a full handshake), never an error.
* **0-RTT**: accepted only for the first identity, when the ticket allows early data, this server has
  ``max_early_data_size`` > 0, and its :class:`~handshake_lib.tls.tickets13.ReplayWindow` admits the
  ClientHello (fresh, never seen).  Then the row waits in WAIT_END_OF_EARLY_DATA and the early records
  arrive as :class:`EarlyData` events (their bytes counted against ``max_early_data_size``).  Declined, the
  early records are skipped as RFC 8446 4.2.10 says: those that fail to open under the handshake key, up to
  ``max_early_data_size`` bytes (after a HelloRetryRequest, every application_data record before the second
  ClientHello).  A server without a window never accepts: replay protection is not optional here.
* **Client certificate**: with ``client_ca`` the flight has CertificateRequest (never on a PSK
  handshake: 4.3.2); the client's Certificate is validated for clientAuth against ``client_ca``, an empty
  one refused with ``certificate_required`` when ``require_client_certificate``.

Keys: the handshake secrets once the ServerHello is in the transcript (our flight goes under the server's,
the client's records are read under its handshake secret, or its early secret first when 0-RTT was
accepted); the application secrets once our Finished is in it (we may send data, or tickets, from then);
the client's application secret and the resumption master secret once its Finished is checked; then one
NewSessionTicket (when ``ticket_keys`` are given and the client sent psk_key_exchange_modes, RFC 8446 4.2.9).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..errors import (
    BadCertificate,
    BadRecordMac,
    CertificateRequired,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
    MissingExtension,
    ProtocolError,
    ProtocolVersionError,
    UnexpectedMessage,
)
from ..pki.report import Purpose, ValidationReport
from ..wire import Writer
from .client13 import DEFAULT_SUITES13
from .connection import ApplicationData
from .connection13 import ReceiverKey, TLS13Connection
from .constants import ExtensionType, NamedGroup, ProtocolVersion, PskKeyExchangeMode, name_of
from .extensions import (
    CookieExtension,
    EarlyDataExtension,
    EarlyDataTicketExtension,
    Extension,
    KeyShareClientHelloExtension,
    KeyShareEntry,
    KeyShareHelloRetryRequestExtension,
    KeyShareServerHelloExtension,
    PreSharedKeyClientHelloExtension,
    PreSharedKeyServerHelloExtension,
    PskKeyExchangeModesExtension,
    SelectedVersionExtension,
    SignatureAlgorithmsExtension,
    SupportedGroupsExtension,
    SupportedVersionsExtension,
    encode_extensions,
)
from .key_schedule13 import message_hash, transcript_hash
from .key_share13 import KEY_SHARE_GROUPS13
from .messages import HELLO_RETRY_REQUEST_RANDOM, CertificateVerify, ClientHello, ServerHello
from .messages13 import (
    Certificate13,
    CertificateEntry,
    CertificateRequest13,
    EncryptedExtensions,
    EndOfEarlyData,
    NewSessionTicket13,
    certificate_verify_content,
    check_key_shares,
    truncated_client_hello,
)
from .record import MAX_PLAINTEXT_LENGTH
from .record13 import suite13
from .signatures import SUPPORTED_SCHEMES, SigningKey, check_scheme13, schemes_for_key13, sign, verify_signature
from .stages13 import LIBRARY_STAGES13, Stages13
from .states13 import Guard, Input, State
from .tickets import TicketKeys
from .tickets13 import ReplayWindow, TicketState13, open_ticket13, seal_ticket13
from .verify import load_trust_store, validate_peer_chain

__all__ = ["TLS13Server", "EarlyData", "DEFAULT_SERVER_GROUPS13"]

# Our preference: x25519 first (cheap), the hybrid when the client sent its share, then the NIST curves and
# the finite-field group.  A client's share in any of these is taken before a HelloRetryRequest is needed.
DEFAULT_SERVER_GROUPS13: tuple[NamedGroup, ...] = (
    NamedGroup.X25519MLKEM768,
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
    NamedGroup.ffdhe2048,
)
Identity = tuple[Sequence[bytes], SigningKey]
# Bytes of refused 0-RTT data we skip at most when max_early_data_size is 0 (a client may still send some).
_DEFAULT_SKIP = 16384


@dataclass(frozen=True)
class EarlyData(ApplicationData):
    """Application data that came as 0-RTT (RFC 8446 2.3): it may be a replay, so act on it with care."""


class TLS13Server(TLS13Connection):
    """A TLS 1.3 server core for one connection: feed it the client's bytes, send what it queues."""

    role = "server"

    def __init__(
        self,
        certificate_chain: Sequence[bytes] = (),
        private_key: SigningKey | None = None,
        *,
        identities: Sequence[Identity] = (),
        cipher_suites: Sequence[int] = DEFAULT_SUITES13,
        groups: Sequence[NamedGroup | int] = DEFAULT_SERVER_GROUPS13,
        # mutual TLS
        client_ca: str | Path | Sequence[x509.Certificate] | None = None,
        require_client_certificate: bool = False,
        now: datetime | None = None,
        # resumption and 0-RTT: ticket keys shared by the server's connections, the clock, what PSK modes we take,
        # how much early data a ticket allows (0: never), and the replay window that must admit it
        ticket_keys: TicketKeys | None = None,
        clock: Callable[[], float] | None = None,
        psk_modes: Sequence[int] = (PskKeyExchangeMode.psk_dhe_ke,),
        max_early_data_size: int = 0,
        anti_replay: ReplayWindow | None = None,
        # randomness (fixed in tests), the key log, record size, transcript, compatibility mode
        random_bytes: Callable[[int], bytes] = os.urandom,
        server_random: bytes | None = None,
        keylog: Callable[[str], None] | None = None,
        fragment_size: int = MAX_PLAINTEXT_LENGTH,
        keep_transcript: bool = True,
        stages: Stages13 = LIBRARY_STAGES13,
    ) -> None:
        super().__init__(
            random_bytes=random_bytes, keylog=keylog, fragment_size=fragment_size, keep_transcript=keep_transcript,
            clock=clock, stages=stages,
        )  # fmt: skip
        given = ([(certificate_chain, private_key)] if certificate_chain or private_key is not None else []) + list(
            identities
        )
        if not given:
            raise ValueError("the server needs a certificate chain (DER, leaf first) and its private key")
        self.identities: list[tuple[list[bytes], SigningKey]] = []
        for chain, key in given:
            if not chain or not isinstance(
                key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
            ):
                raise ValueError("each identity is a non-empty DER chain and an RSA, ECDSA or Ed25519 private key")
            self.identities.append(([bytes(der) for der in chain], key))
        if not cipher_suites or any(s not in (0x1301, 0x1302, 0x1303, 0x1304) for s in cipher_suites):
            raise ValueError("cipher_suites must be TLS 1.3 suites (0x1301 .. 0x1304)")
        bad = [g for g in groups if g not in KEY_SHARE_GROUPS13]
        if bad or not groups:
            raise ValueError(f"groups must be among {[g.name for g in KEY_SHARE_GROUPS13]}, not {bad or list(groups)}")
        if server_random is not None and len(server_random) != 32:
            raise ValueError("server_random must be 32 bytes")
        if ticket_keys is not None and clock is None:
            raise ValueError("ticket_keys need clock= (seconds): the core reads no clock itself")
        if max_early_data_size and (ticket_keys is None or anti_replay is None):
            raise ValueError("accepting 0-RTT needs ticket_keys and an anti_replay window (RFC 8446 section 8)")
        if require_client_certificate and client_ca is None:
            raise ValueError("require_client_certificate needs client_ca")
        self.cipher_suites = [int(s) for s in cipher_suites]
        self.groups = [NamedGroup(g) for g in groups]
        if client_ca is None:
            self.client_ca: list[x509.Certificate] = []
        elif isinstance(client_ca, str | Path):
            self.client_ca = load_trust_store(client_ca)
        else:
            self.client_ca = list(client_ca)
        self.require_client_certificate = require_client_certificate
        self._now = now
        self.ticket_keys = ticket_keys
        self.psk_modes = {PskKeyExchangeMode(m) for m in psk_modes}
        self.max_early_data_size = max_early_data_size
        self.anti_replay = anti_replay
        self._server_random_option = server_random
        if self.client_ca:
            self._guards.add(Guard.client_certificate_requested)
        # What the handshake learns and decides.
        self.client_hello: ClientHello | None = None
        self.first_client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.client_certificates: list[x509.Certificate] = []
        self.client_certificate_report: ValidationReport | None = None
        self.early_data_received = 0
        self.resumed_ticket: TicketState13 | None = None
        self._identity: tuple[list[bytes], SigningKey] | None = None
        self._client_schemes: list[int] = []
        self._chosen_group: int | None = None
        self._psk: bytes | None = None
        self._psk_index = 0
        self._cookie = b""
        self._skip_budget = 0  # bytes of refused 0-RTT records still to skip
        self._skipping_until_second_hello = False
        self._ccs_sent = False

    _RECEIVERS: ClassVar[dict[ReceiverKey, str | None]] = {
        Input.client_hello: "_on_client_hello",
        Input.end_of_early_data: "_on_end_of_early_data",
        Input.certificate: "_on_client_certificate",
        Input.certificate_verify: "_on_certificate_verify",
        (State.WAIT_END_OF_EARLY_DATA, Input.application_data): "_on_early_data",
    }
    _SENDERS: ClassVar[dict[str, str]] = {
        "HelloRetryRequest": "_send_hello_retry_request",
        "ServerHello": "_send_server_hello",
        "EncryptedExtensions": "_send_encrypted_extensions",
        "CertificateRequest": "_send_certificate_request",
        "Certificate": "_send_certificate",
        "CertificateVerify": "_send_certificate_verify",
        "NewSessionTicket": "_send_new_session_ticket",
    }

    # -- the ClientHello decides -----------------------------------------------------------------------
    def _on_client_hello(self, hello: ClientHello) -> None:
        retry = self._state is State.WAIT_SECOND_CLIENT_HELLO
        if retry:
            self._check_second_hello(hello)
            self._skipping_until_second_hello = False
        self._guards.discard(Guard.retry_needed)
        versions = hello.extension(ExtensionType.supported_versions)
        if not isinstance(versions, SupportedVersionsExtension) or ProtocolVersion.TLS1_3 not in versions.versions:
            raise ProtocolVersionError("the client does not offer TLS 1.3 (supported_versions), the only version here")
        if hello.compression_methods != b"\x00":
            raise IllegalParameter("a TLS 1.3 ClientHello offers exactly the null compression method (RFC 8446 4.1.2)")
        check_key_shares(hello)
        self.client_hello = hello
        if not retry:
            self.first_client_hello = hello
            self.client_random = hello.random
        suite_code = next((s for s in self.cipher_suites if s in hello.cipher_suites), None)
        if suite_code is None:
            raise HandshakeFailure("no TLS 1.3 cipher suite in common")
        self.suite = suite13(suite_code)
        modes_extension = hello.extension(ExtensionType.psk_key_exchange_modes)
        client_modes = (
            set(modes_extension.modes) if isinstance(modes_extension, PskKeyExchangeModesExtension) else set()
        )
        shares = hello.extension(ExtensionType.key_share)
        shared_groups = (
            {share.group for share in shares.client_shares}
            if isinstance(shares, KeyShareClientHelloExtension)
            else set()
        )
        supported = hello.extension(ExtensionType.supported_groups)
        listed = set(supported.groups) if isinstance(supported, SupportedGroupsExtension) else set()
        share_group = next((g for g in self.groups if g in shared_groups), None)
        # The PSK first: psk_ke needs no key share at all, and a retry is not needed for it.
        psk_offer = hello.extension(ExtensionType.pre_shared_key)
        self._psk = None
        if isinstance(psk_offer, PreSharedKeyClientHelloExtension) and self.ticket_keys is not None:
            if not client_modes:
                raise MissingExtension("pre_shared_key without psk_key_exchange_modes (RFC 8446 4.2.9)")
            self._choose_psk(hello, psk_offer, client_modes, share_group is not None, retry)
        if self._psk is not None and self.psk_mode == "psk_ke":
            self._chosen_group = None
        elif share_group is not None:
            self._chosen_group = share_group
        else:
            wanted = next((g for g in self.groups if g in listed), None)
            if wanted is None or retry:
                # After a retry the share for the group we asked for must be there (checked in _check_second_hello).
                raise HandshakeFailure("no key exchange group in common (supported_groups)")
            self._chosen_group = wanted
            self._psk = None
            self.psk_mode = None
            self._guards.discard(Guard.psk_accepted)
            self._guards.add(Guard.retry_needed)
            if hello.extension(ExtensionType.early_data) is not None:
                self.early_data_status = "rejected"  # a retry abandons 0-RTT (4.2.10), as the client reports too
                self._skipping_until_second_hello = True  # 4.2.10: skip its 0-RTT records until ClientHello2
                self._skip_budget = max(self.max_early_data_size, _DEFAULT_SKIP)
            return
        if self._psk is None:
            self._choose_identity(hello)
            if client_modes and self.ticket_keys is not None:
                self._guards.add(Guard.tickets_to_send)
        elif client_modes and self.ticket_keys is not None:
            self._guards.add(Guard.tickets_to_send)
        self._decide_early_data(hello, retry)

    def _check_second_hello(self, hello: ClientHello) -> None:
        """RFC 8446 4.1.2: the second ClientHello is the first, except for what the HelloRetryRequest changes."""
        first = self.first_client_hello
        assert first is not None
        if (hello.random, hello.session_id, hello.cipher_suites, hello.compression_methods, hello.legacy_version) != (
            first.random, first.session_id, first.cipher_suites, first.compression_methods, first.legacy_version,
        ):  # fmt: skip
            raise IllegalParameter("the second ClientHello changes more than the HelloRetryRequest allows (4.1.2)")
        changeable = {ExtensionType.key_share, ExtensionType.cookie, ExtensionType.early_data,
                      ExtensionType.pre_shared_key, ExtensionType.padding}  # fmt: skip

        def rest(h: ClientHello) -> bytes:
            """The extensions a retry must not change, as encoded (order included)."""
            writer = Writer()
            encode_extensions(
                writer, [e for e in h.extensions or () if e.extension_type not in changeable], "client_hello"
            )
            return writer.getvalue()

        if rest(hello) != rest(first):
            raise IllegalParameter("the second ClientHello changes extensions the HelloRetryRequest did not ask for")
        cookie = hello.extension(ExtensionType.cookie)
        if not isinstance(cookie, CookieExtension) or not hmac.compare_digest(cookie.cookie, self._cookie):
            raise IllegalParameter("the second ClientHello does not echo our cookie (RFC 8446 4.2.2)")
        if hello.extension(ExtensionType.early_data) is not None:
            raise IllegalParameter("early_data in the second ClientHello (RFC 8446 4.2.10)")
        shares = hello.extension(ExtensionType.key_share)
        groups = [s.group for s in shares.client_shares] if isinstance(shares, KeyShareClientHelloExtension) else []
        if groups != [self._chosen_group]:
            raise IllegalParameter(
                f"the second ClientHello's key shares are {[name_of(NamedGroup, g) for g in groups]}, "
                f"not the one we asked for ({name_of(NamedGroup, self._chosen_group or 0)})"
            )

    def _choose_psk(
        self,
        hello: ClientHello,
        offer: PreSharedKeyClientHelloExtension,
        client_modes: set[int],
        dhe: bool,
        retry: bool,
    ) -> None:
        assert self.suite is not None and self.ticket_keys is not None and self._clock is not None
        now = self._clock()
        for index, identity in enumerate(offer.identities):
            state = open_ticket13(self.ticket_keys, identity.identity, now)
            if state is None or suite13(state.cipher_suite).hash_name != self.suite.hash_name:
                continue
            if (
                dhe
                and PskKeyExchangeMode.psk_dhe_ke in client_modes
                and PskKeyExchangeMode.psk_dhe_ke in self.psk_modes
            ):
                mode = "psk_dhe_ke"
            elif PskKeyExchangeMode.psk_ke in client_modes and PskKeyExchangeMode.psk_ke in self.psk_modes:
                mode = "psk_ke"
            else:
                continue
            schedule = self._stages.schedule(self.suite.hash_name, state.psk)
            # Before the hello joins the transcript: empty, or message_hash(ClientHello1) and our HRR (4.2.11.2).
            hashed = transcript_hash(self.suite.hash_name, [*self._messages, truncated_client_hello(hello)])
            if not hmac.compare_digest(schedule.psk_binder(hashed), offer.binders[index]):
                raise DecryptError(f"the binder of PSK {index} does not verify (RFC 8446 4.2.11)")
            self._psk, self._psk_index, self.psk_mode, self.resumed_ticket = state.psk, index, mode, state
            self._ticket_age_ms = (identity.obfuscated_ticket_age - state.ticket_age_add) % (1 << 32)
            self._binder = offer.binders[index]
            self._guards.add(Guard.psk_accepted)
            return

    def _choose_identity(self, hello: ClientHello) -> None:
        schemes = hello.extension(ExtensionType.signature_algorithms)
        if not isinstance(schemes, SignatureAlgorithmsExtension):
            raise MissingExtension("a ClientHello without signature_algorithms (RFC 8446 9.2)")
        self._client_schemes = list(schemes.schemes)
        for chain, key in self.identities:
            scheme = next((s for s in schemes_for_key13(key) if s in self._client_schemes), None)
            if scheme is not None:
                self._identity, self.signature_scheme = (chain, key), scheme
                return
        raise HandshakeFailure("none of our certificates can sign with a scheme the client accepts in TLS 1.3")

    def _decide_early_data(self, hello: ClientHello, retry: bool) -> None:
        if hello.extension(ExtensionType.early_data) is None:
            return
        state = self.resumed_ticket
        accepted = (
            not retry
            and state is not None
            and self._psk_index == 0
            and state.max_early_data_size > 0
            and self.max_early_data_size > 0
            and self.anti_replay is not None
            and self._clock is not None
            and self.anti_replay.admit(self._binder, self._ticket_age_ms, state.issued_at, self._clock())
        )
        if accepted:
            self._guards.add(Guard.early_data_accepted)
            self.early_data_status = "accepted"
        else:
            self.early_data_status = "rejected"
            self._skip_budget = max(self.max_early_data_size, _DEFAULT_SKIP)

    # -- our flight --------------------------------------------------------------------------------------
    def _compatibility_ccs(self) -> None:
        """RFC 8446 D.4: right after our first handshake message, when the client is in compatibility mode."""
        assert self.client_hello is not None
        if self._ccs_sent or not self.client_hello.session_id:
            return
        self._ccs_sent = True
        self._send_compatibility_ccs()

    def _server_random(self) -> bytes:
        if not self.server_random:
            self.server_random = self._server_random_option or self._random_bytes(32)
        return self.server_random

    def _send_hello_retry_request(self) -> None:
        assert self.suite is not None and self.client_hello is not None and self._chosen_group is not None
        # The first ClientHello becomes message_hash(ClientHello1) in the transcript (4.4.1); the cookie binds
        # the retry to it, as a stateless server would keep it.
        self._messages = [message_hash(self.suite.hash_name, self._messages[0])]
        self._cookie = self._messages[0] + hashlib.sha256(self._messages[0] + self.client_random).digest()[:16]
        retry = ServerHello(
            random=HELLO_RETRY_REQUEST_RANDOM,
            session_id=self.client_hello.session_id,
            cipher_suite=self.suite.code,
            extensions=[
                SelectedVersionExtension(ProtocolVersion.TLS1_3),
                KeyShareHelloRetryRequestExtension(self._chosen_group),
                CookieExtension(self._cookie),
            ],
        )
        self.hello_retry_request = True
        self._send_handshake(retry)
        self._compatibility_ccs()

    def _send_server_hello(self) -> None:
        assert self.suite is not None and self.client_hello is not None
        extensions: list[Extension] = [SelectedVersionExtension(ProtocolVersion.TLS1_3)]
        shared: bytes | None = None
        if self._chosen_group is not None:
            shares = self.client_hello.extension(ExtensionType.key_share)
            assert isinstance(shares, KeyShareClientHelloExtension)
            client_share = shares.share_for(self._chosen_group)
            assert client_share is not None
            ours, shared = KEY_SHARE_GROUPS13[NamedGroup(self._chosen_group)].server_share(
                client_share.key_exchange, self._random_bytes
            )
            extensions.append(KeyShareServerHelloExtension(KeyShareEntry(self._chosen_group, ours)))
            self.group = self._chosen_group
        if self._psk is not None:
            extensions.append(PreSharedKeyServerHelloExtension(self._psk_index))
        hello = ServerHello(
            random=self._server_random(),
            session_id=self.client_hello.session_id,
            cipher_suite=self.suite.code,
            extensions=extensions,
        )
        self.server_hello = hello
        raw = hello.to_bytes()
        # Every secret first, then the ServerHello: if a (learner's) stage fails here, the alert goes out in
        # the clear right after the ClientHello, where the client can read it, not after an unkeyed ServerHello.
        self.schedule = self._stages.schedule(self.suite.hash_name, self._psk)
        if Guard.early_data_accepted in self._guards:
            early, early_exporter = self.schedule.early(self._transcript_hash())
            self._log_secret("CLIENT_EARLY_TRAFFIC_SECRET", early)
            self._log_secret("EARLY_EXPORTER_SECRET", early_exporter)  # as OpenSSL logs it
        client, server = self.schedule.handshake(shared, transcript_hash(self.suite.hash_name, [*self._messages, raw]))
        self._send_handshake(hello, raw)
        self._handshake_secrets = {"client": client, "server": server}
        self._log_secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET", client)
        self._log_secret("SERVER_HANDSHAKE_TRAFFIC_SECRET", server)
        self._compatibility_ccs()
        self._set_write_secret(server)
        if Guard.early_data_accepted in self._guards:
            self._set_read_secret(self.schedule.value("client_early_traffic_secret"))
        else:
            self._set_read_secret(client)

    def _send_encrypted_extensions(self) -> None:
        extensions: list[Extension] = []
        if Guard.early_data_accepted in self._guards:
            extensions.append(EarlyDataExtension())
        self._send_handshake(EncryptedExtensions(extensions))

    def _send_certificate_request(self) -> None:
        self._send_handshake(CertificateRequest13(b"", [SignatureAlgorithmsExtension(list(_CLIENT_SCHEMES))]))

    def _send_certificate(self) -> None:
        assert self._identity is not None
        self._send_handshake(Certificate13(b"", [CertificateEntry(der) for der in self._identity[0]]))

    def _send_certificate_verify(self) -> None:
        assert self._identity is not None and self.signature_scheme is not None
        content = certificate_verify_content("server", self._transcript_hash())
        self._send_handshake(
            CertificateVerify(self.signature_scheme, sign(self._identity[1], self.signature_scheme, content))
        )

    def _send_finished(self) -> None:
        super()._send_finished()
        self._install_application_secrets()
        self._set_write_secret(self._application_secrets["server"])

    def _send_new_session_ticket(self) -> None:
        assert self.suite is not None and self.schedule is not None and self.ticket_keys is not None
        assert self._clock is not None
        nonce = bytes(8)  # one ticket per connection: its resumption PSK needs no other nonce
        psk = self.schedule.resumption_psk(nonce)
        age_add = int.from_bytes(self._random_bytes(4), "big")
        now = self._clock()
        max_early = self.max_early_data_size
        state = TicketState13(self.suite.code, psk, age_add, now, max_early)
        ticket = seal_ticket13(self.ticket_keys, state, now, self._random_bytes)
        extensions: list[Extension] = [EarlyDataTicketExtension(max_early)] if max_early else []
        self._send_handshake(NewSessionTicket13(self.ticket_keys.lifetime, age_add, nonce, ticket, extensions))

    # -- the client's flight ---------------------------------------------------------------------------
    def _on_early_data(self, data: ApplicationData) -> EarlyData | None:
        self.early_data_received += len(data.data)
        if self.early_data_received > self.max_early_data_size:
            raise UnexpectedMessage(f"more than max_early_data_size ({self.max_early_data_size}) bytes of 0-RTT data")
        return EarlyData(data.data) if data.data else None

    def _on_end_of_early_data(self, _: EndOfEarlyData) -> None:
        self._set_read_secret(self._handshake_secrets["client"])

    def _skip_undecryptable(self, record: bytes, error: ProtocolError | None) -> bool:
        length = len(record) - 5
        if self._skip_budget < length:
            return False
        if error is None and self._skipping_until_second_hello and self._state is State.WAIT_SECOND_CLIENT_HELLO:
            self._skip_budget -= length
            return True
        if (
            isinstance(error, BadRecordMac)
            and self.early_data_status == "rejected"
            and self._state in (State.WAIT_FLIGHT2, State.WAIT_CERTIFICATE)
        ):
            self._skip_budget -= length  # 0-RTT data we refused: it does not open under the handshake key (4.2.10)
            return True
        return False

    def _after_transcript(self, received: Input) -> None:
        if received is Input.finished:
            assert self.schedule is not None
            self.schedule.resumption(self._transcript_hash())
            self._set_read_secret(self._application_secrets["client"])

    def _on_client_certificate(self, message: Certificate13) -> None:
        if message.certificate_request_context:
            raise IllegalParameter("the client's Certificate has a context; ours was empty (RFC 8446 4.4.2)")
        if not message.entries:
            if self.require_client_certificate:
                raise CertificateRequired("the client sent no certificate, and this server requires one")
            return
        try:
            chain = [x509.load_der_x509_certificate(entry.cert_data) for entry in message.entries]
        except ValueError as error:
            raise BadCertificate(f"the client's certificate does not parse: {error}") from None
        self.client_certificate_report = validate_peer_chain(
            chain, self.client_ca, purpose=Purpose.CLIENT, now=self._now
        )
        self.client_certificates = list(self.client_certificate_report.path) or chain
        self._client_leaf = chain[0]
        self._guards.add(Guard.client_certificate_sent)

    def _on_certificate_verify(self, message: CertificateVerify) -> None:
        public_key = self._client_leaf.public_key()
        check_scheme13(public_key, message.algorithm, _CLIENT_SCHEMES, signer="client")
        content = certificate_verify_content("client", self._transcript_hash())
        verify_signature(public_key, message.algorithm, message.signature, content, _CLIENT_SCHEMES)

    def _handshake_complete(self) -> Any:
        self.handshake = self._completion(client_certificates=tuple(self.client_certificates))
        return self.handshake


# What we accept in a client's CertificateVerify (1.3 rules: RSA as PSS only).
_CLIENT_SCHEMES: tuple[int, ...] = tuple(s for s in SUPPORTED_SCHEMES if s not in (0x0401, 0x0501, 0x0601))
