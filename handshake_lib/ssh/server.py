"""The SSH server's transport (sans-I/O): key exchange signed with its host keys, and the service it offers.

The rows are ``states.SERVER_TRANSPORT`` and ``states.SERVER_SERVICE``; this module holds their
handlers and senders, :mod:`handshake_lib.ssh.connection` the rest.

The server offers the host key algorithms its keys can sign (an Ed25519 key: ``ssh-ed25519``; an RSA
key: ``rsa-sha2-512`` and ``rsa-sha2-256``; never SHA-1 ``ssh-rsa``), answers the client's key exchange
value with its own, K, and H signed by the negotiated host key, then NEWKEYS, and EXT_INFO with
``server-sig-algs`` when the client's first KEXINIT said ``ext-info-c``.  A client that guessed the key
exchange method wrong (``first_kex_packet_follows``) has its guessed packet dropped, as RFC 4253 section
7 says.  After NEWKEYS it accepts the ``ssh-userauth`` service only (anything else:
SERVICE_NOT_AVAILABLE), sends the policy's banner, and judges every authentication request by its
:class:`~handshake_lib.ssh.authentication.ServerAuthPolicy` (``ssh.authentication.ServerAuthenticator``):
the verdict picks the row (FAILURE, PK_OK, INFO_REQUEST, SUCCESS).  Without a policy nobody is let in
and every request is answered with the methods in ``auth_methods`` (what a probe needs).  Besides the
policy's MaxAuthTries, at most :data:`MAX_AUTH_REQUESTS` requests of any kind are read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import KeyExchangeFailed, ServiceNotAvailable, TooManyAuthenticationAttempts
from .authentication import SERVER_SIG_ALGS, AuthenticatedUser, Outcome, ServerAuthenticator, ServerAuthPolicy, Verdict
from .channels import ConnectionProtocol
from .connection import Algorithms, ExtInfoReceived, SSHConnection
from .constants import EXT_INFO_S
from .exchange_hash import ExchangeHash
from .hostkeys import HostKeyPair
from .kex import SharedSecret
from .messages import (
    ExtInfo,
    KexDHInit,
    KexDHReply,
    KexECDHInit,
    KexECDHReply,
    KexInit,
    ServiceAccept,
    ServiceRequest,
    UserauthBanner,
    UserauthFailure,
    UserauthInfoResponse,
    UserauthPkOk,
    UserauthRequest,
    UserauthSuccess,
)
from .negotiation import guess_is_right, wants_ext_info
from .packet import MAX_PACKET_SIZE, Packet
from .stages import LIBRARY_STAGES, SSHStages, call_stage
from .states import Guard, State

__all__ = [
    "SSHServer",
    "AuthenticationRequested",
    "AuthenticationAnswered",
    "UserAuthenticated",
    "MAX_AUTH_REQUESTS",
    "SERVER_SIG_ALGS",
]

# Requests of any kind (none, queries, rounds included); failures alone are bounded by the policy's max_failures.
MAX_AUTH_REQUESTS = 20


@dataclass(frozen=True)
class AuthenticationRequested:
    user: str
    service: str
    method: str


@dataclass(frozen=True)
class AuthenticationAnswered:
    """Our verdict on a request or a keyboard-interactive answer, and why (never a password)."""

    user: str
    method: str
    outcome: Outcome


@dataclass(frozen=True)
class UserAuthenticated:
    """USERAUTH_SUCCESS sent: who, by which methods, with which authorized_keys options."""

    user: AuthenticatedUser


class SSHServer(SSHConnection):
    """An SSH server with ``host_keys`` (at least one), offering ``auth_methods`` to clients."""

    role = "server"

    def __init__(
        self,
        host_keys: Sequence[HostKeyPair],
        *,
        auth_methods: Sequence[str] = ("publickey", "password"),
        auth: ServerAuthPolicy | None = None,
        client_address: str = "127.0.0.1",
        algorithms: Algorithms | None = None,
        software_version: str | None = None,
        random: Callable[[int], bytes] = os.urandom,
        max_packet_size: int = MAX_PACKET_SIZE,
        on_secrets: Callable[[bytes, SharedSecret, ExchangeHash], None] | None = None,
        stages: SSHStages = LIBRARY_STAGES,
        strict_kex: bool = True,
        channels: ConnectionProtocol | None = None,
    ) -> None:
        super().__init__(
            algorithms=algorithms,
            software_version=software_version,
            random=random,
            max_packet_size=max_packet_size,
            on_secrets=on_secrets,
            stages=stages,
            strict_kex=strict_kex,
            channels=channels,
        )
        self.host_keys = tuple(host_keys)
        if not self.host_keys:
            raise ValueError("an SSH server needs at least one host key")
        if not self._host_key_algorithms():
            raise ValueError(
                f"none of the host keys can sign any of {', '.join(self.algorithms.host_key)}"
            )
        self.auth_policy = auth if auth is not None else ServerAuthPolicy(offered=tuple(auth_methods))
        self.auth_methods = self.auth_policy.offered_methods
        self.authenticator = ServerAuthenticator(self.auth_policy, client_address=client_address)
        self.auth_requests = 0
        self._outcome: Outcome | None = None
        self._ext_info_wanted = False
        self._client_ext_info_pending = False
        self.client_extensions: tuple[tuple[str, bytes], ...] | None = None  # the client's EXT_INFO, if it sent one

    def _host_key_algorithms(self) -> tuple[str, ...]:
        signable = {algorithm for pair in self.host_keys for algorithm in pair.signature_algorithms}
        return tuple(algorithm for algorithm in self.algorithms.host_key if algorithm in signable)

    def _host_key_for(self, algorithm: str) -> HostKeyPair:
        for pair in self.host_keys:
            if algorithm in pair.signature_algorithms:
                return pair
        raise KeyExchangeFailed(f"no host key signs {algorithm}")  # negotiation offered only what we have

    def _guards(self) -> set[Guard]:
        guards = {Guard.ext_info_wanted} if self._ext_info_wanted else set()
        if self.auth_policy.banner and self.service_state is State.WAIT_SERVICE_REQUEST:
            guards.add(Guard.banner)
        return guards | ({Guard.client_ext_info_expected} if self._client_ext_info_pending else set())

    # -- transport ---------------------------------------------------------------------------------
    def _on_kexinit(self, kexinit: KexInit, events: list[object], packet: Packet | None) -> set[Guard] | None:
        super()._on_kexinit(kexinit, events, packet)
        kex = self._require_kex()
        assert kex.our_kexinit is not None and kex.negotiated is not None
        if kex.number == 1:
            self._ext_info_wanted = wants_ext_info(kexinit, "client")
        if kexinit.first_kex_packet_follows and not guess_is_right(kexinit, kex.our_kexinit, kex.negotiated):
            return {Guard.wrong_guess_follows}
        return None

    def _on_kex_ecdh_init(self, message: KexECDHInit | KexDHInit, events: list[object], packet: Packet | None) -> None:
        if self.transport_state is State.DISCARD_GUESS:
            return  # the client's guess, for a method we did not pick: ignored (RFC 4253 section 7)
        kex = self._require_kex()
        assert kex.method is not None and kex.negotiated is not None and self.peer_identification is not None
        pair = self._host_key_for(kex.negotiated.host_key)
        server_public, kex.shared_secret = kex.method.server_reply(message.client_public, self.random)
        kex.server_public = server_public
        kex.exchange_hash = call_stage(
            self.stages,
            "exchange_hash",
            kex.method,
            client_version=self.peer_identification.line,
            server_version=self.our_identification.line,
            client_kexinit=kex.peer_payload,
            server_kexinit=kex.our_payload,
            host_key_blob=pair.host_key.encode(),
            client_public=message.client_public,
            server_public=server_public,
            shared_secret=kex.shared_secret,
        )
        kex.host_key = self.host_key = pair.host_key
        self._derive(kex)

    def _send_kex_ecdh_reply(self) -> None:
        self._flight.append("KEX_ECDH_REPLY")
        kex = self._require_kex()
        assert kex.method is not None and kex.negotiated is not None and kex.exchange_hash is not None
        pair = self._host_key_for(kex.negotiated.host_key)
        signature = pair.sign(kex.exchange_hash.digest, kex.negotiated.host_key)
        if kex.method.public_encoding == "mpint":
            assert isinstance(kex.server_public, bytes)
            value = int.from_bytes(kex.server_public, "big", signed=True)
            self._send_message(KexDHReply(pair.host_key.encode(), value, signature))
        else:
            assert isinstance(kex.server_public, bytes)
            self._send_message(KexECDHReply(pair.host_key.encode(), kex.server_public, signature))

    def _send_ext_info(self) -> None:
        self._flight.append("EXT_INFO")
        self._ext_info_wanted = False
        self._send_message(ExtInfo.with_server_sig_algs(SERVER_SIG_ALGS))

    def _on_newkeys(self, message: object, events: list[object], packet: Packet | None) -> None:
        kex = self._require_kex()
        assert kex.our_kexinit is not None
        first = self.exchanges == 0
        super()._on_newkeys(message, events, packet)  # type: ignore[arg-type]
        # RFC 8308 2.4: a client that saw ext-info-s may send EXT_INFO as the next packet after its first NEWKEYS.
        self._client_ext_info_pending = first and EXT_INFO_S in kex.our_kexinit.kex_algorithms

    # -- service ------------------------------------------------------------------------------------
    def _on_ext_info(self, message: ExtInfo, events: list[object], packet: Packet | None) -> None:
        self._client_ext_info_pending = False
        self.client_extensions = message.extensions
        events.append(ExtInfoReceived(message.extensions, message.server_sig_algs))

    def _on_service_request(self, message: ServiceRequest, events: list[object], packet: Packet | None) -> None:
        self._client_ext_info_pending = False
        if message.service != "ssh-userauth":
            raise ServiceNotAvailable(f"service {message.service!r} is not available (only ssh-userauth)")

    def _send_service_accept(self) -> None:
        self._flight.append("SERVICE_ACCEPT")
        self._send_service_message(ServiceAccept("ssh-userauth"))

    def _send_userauth_banner(self) -> None:
        self._flight.append("USERAUTH_BANNER")
        self._send_service_message(UserauthBanner(self.auth_policy.banner))

    @property
    def authenticated_user(self) -> AuthenticatedUser | None:
        return self.authenticator.authenticated

    def _on_userauth_request(
        self, message: UserauthRequest, events: list[object], packet: Packet | None
    ) -> set[Guard] | None:
        if self.service_state is State.AUTHENTICATED:
            return None  # RFC 4252 5.1: a request after success is ignored
        self.auth_requests += 1
        if self.auth_requests > MAX_AUTH_REQUESTS:
            raise TooManyAuthenticationAttempts(f"more than {MAX_AUTH_REQUESTS} authentication requests")
        events.append(AuthenticationRequested(message.user, message.service, message.method))
        assert self.session_id is not None
        outcome = self.authenticator.on_request(message, self.session_id)
        return self._judged(message.user, message.method, outcome, events)

    def _on_userauth_info_response(
        self, message: UserauthInfoResponse, events: list[object], packet: Packet | None
    ) -> set[Guard] | None:
        outcome = self.authenticator.on_info_response(message)
        return self._judged(self.authenticator.user or "", "keyboard-interactive", outcome, events)

    def _judged(self, user: str, method: str, outcome: Outcome, events: list[object]) -> set[Guard] | None:
        self._outcome = outcome
        events.append(AuthenticationAnswered(user, method, outcome))
        if outcome.user is not None:
            events.append(UserAuthenticated(outcome.user))
        return {
            Verdict.PK_OK: {Guard.key_acceptable},
            Verdict.INFO_REQUEST: {Guard.questions},
            Verdict.SUCCESS: {Guard.authenticated},
        }.get(outcome.verdict)

    def _send_userauth_failure(self) -> None:
        self._flight.append("USERAUTH_FAILURE")
        outcome = self._outcome
        assert outcome is not None
        self._send_service_message(UserauthFailure(outcome.methods, outcome.verdict is Verdict.PARTIAL))

    def _send_userauth_pk_ok(self) -> None:
        self._flight.append("USERAUTH_PK_OK")
        assert self._outcome is not None and self._outcome.pk_ok is not None
        self._send_service_message(UserauthPkOk(*self._outcome.pk_ok))

    def _send_userauth_info_request(self) -> None:
        self._flight.append("USERAUTH_INFO_REQUEST")
        assert self._outcome is not None and self._outcome.info_request is not None
        self._send_service_message(self._outcome.info_request)

    def _send_userauth_success(self) -> None:
        self._flight.append("USERAUTH_SUCCESS")
        self._send_service_message(UserauthSuccess())
