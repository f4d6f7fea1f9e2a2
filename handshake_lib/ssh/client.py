"""The SSH client's transport (sans-I/O): key exchange, the server's host key checked, the ``none`` probe.

The rows are ``states.CLIENT_TRANSPORT`` and ``states.CLIENT_SERVICE``; this module holds their handlers
(``_on_<input>``) and senders (``_send_<name>``), :mod:`handshake_lib.ssh.connection` the rest.

The host key.  The server's KEX_ECDH_REPLY carries its host key K_S and a signature over H.  Like
OpenSSH, the client first decides whether it trusts the key for this host (``known_hosts`` under a
:class:`~handshake_lib.ssh.known_hosts.HostKeyPolicy`: strict by default, accept-new, or ask through a
callback), then checks the signature with it, with the negotiated signature algorithm only.  A key it
does not trust ends the connection with HOST_KEY_NOT_VERIFIABLE (``UnknownHostKey``, ``HostKeyChanged``,
``HostKeyRevoked``); a signature that does not verify, KEY_EXCHANGE_FAILED (``BadHostKeySignature``).
A later key exchange must present the same host key.  When ``accept-new`` (or a yes) adds the key,
:class:`HostKeyTrusted` carries the new known_hosts text for the caller to write: the core writes no file.

After NEWKEYS the client asks for ``ssh-userauth`` and sends the ``none`` request as ``user``; the
server's USERAUTH_FAILURE lists the methods that can continue (:class:`AuthenticationMethods`).  Without
credentials (``auth=None``) that is where a probe ends.  With a :class:`~handshake_lib.ssh.authentication.ClientAuth`
the client goes on (``ssh.authentication.ClientAuthenticator`` picks each next request): keys queried then
signed after PK_OK, keyboard-interactive rounds answered, the password, until USERAUTH_SUCCESS
(:class:`AuthenticationSucceeded`, service state AUTHENTICATED) or nothing is left to try (service state
AUTH_METHODS_KNOWN, :attr:`SSHClient.authentication_failed`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import HostKeyChanged, InternalError, KeyExchangeFailed, ProtocolError
from .authentication import ClientAuth, ClientAuthenticator
from .channels import ConnectionProtocol
from .connection import Algorithms, ExtInfoReceived, SSHConnection
from .constants import EXT_INFO_C
from .exchange_hash import ExchangeHash
from .hostkeys import HostKey, decode_host_key
from .kex import SharedSecret
from .known_hosts import HostKeyDecision, HostKeyPolicy, HostKeyQuestion, KnownHosts
from .messages import (
    ExtInfo,
    KexDHInit,
    KexDHReply,
    KexECDHInit,
    KexECDHReply,
    ServiceAccept,
    ServiceRequest,
    UserauthBanner,
    UserauthFailure,
    UserauthInfoRequest,
    UserauthInfoResponse,
    UserauthPasswdChangereq,
    UserauthPkOk,
    UserauthRequest,
    UserauthSuccess,
)
from .packet import MAX_PACKET_SIZE, Packet
from .stages import LIBRARY_STAGES, SSHStages, call_stage
from .states import Guard, State

__all__ = [
    "SSHClient",
    "HostKeyTrusted",
    "ServiceAccepted",
    "AuthenticationMethods",
    "AuthenticationSucceeded",
    "BannerReceived",
    "KeyAccepted",
    "QuestionsAsked",
]


@dataclass(frozen=True)
class HostKeyTrusted:
    """The server's host key passed the known_hosts check (``decision.new_text``: write it, the key was added)."""

    host_key: HostKey
    decision: HostKeyDecision


@dataclass(frozen=True)
class ServiceAccepted:
    service: str


@dataclass(frozen=True)
class AuthenticationMethods:
    """USERAUTH_FAILURE: the methods that can continue (the answer to the ``none`` probe)."""

    methods: tuple[str, ...]
    partial_success: bool


@dataclass(frozen=True)
class AuthenticationSucceeded:
    """USERAUTH_SUCCESS: we are in, by ``methods`` (in order; empty: the server wanted no authentication)."""

    methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyAccepted:
    """USERAUTH_PK_OK: the server would accept a signature from this key; the signed request follows."""

    algorithm: str
    public_key: bytes


@dataclass(frozen=True)
class QuestionsAsked:
    """A keyboard-interactive round (its answers went back, masked in the transcript)."""

    request: UserauthInfoRequest


@dataclass(frozen=True)
class BannerReceived:
    message: str


class SSHClient(SSHConnection):
    """An SSH client for ``host`` (a name or address) at ``port``, checking host keys against ``known_hosts``."""

    role = "client"

    def __init__(
        self,
        host: str,
        port: int = 22,
        *,
        user: str = "handshakes",
        auth: ClientAuth | None = None,
        known_hosts: KnownHosts | None = None,
        host_key_policy: HostKeyPolicy = HostKeyPolicy.STRICT,
        ask: Callable[[HostKeyQuestion], bool] | None = None,
        algorithms: Algorithms | None = None,
        software_version: str | None = None,
        random: Callable[[int], bytes] = os.urandom,
        max_packet_size: int = MAX_PACKET_SIZE,
        rekey_after_bytes: int | None = None,
        rekey_after_packets: int | None = None,
        on_secrets: Callable[[bytes, SharedSecret, ExchangeHash], None] | None = None,
        stages: SSHStages = LIBRARY_STAGES,
        strict_kex: bool = True,
        channels: ConnectionProtocol | None = None,
    ) -> None:
        limits = {}
        if rekey_after_bytes is not None:
            limits["rekey_after_bytes"] = rekey_after_bytes
        if rekey_after_packets is not None:
            limits["rekey_after_packets"] = rekey_after_packets
        super().__init__(
            algorithms=algorithms,
            software_version=software_version,
            random=random,
            max_packet_size=max_packet_size,
            on_secrets=on_secrets,
            stages=stages,
            strict_kex=strict_kex,
            channels=channels,
            **limits,
        )
        self.host = host
        self.port = port
        self.user = user
        self.known_hosts = known_hosts if known_hosts is not None else KnownHosts.parse("")
        self.host_key_policy = HostKeyPolicy(host_key_policy)
        if self.host_key_policy is HostKeyPolicy.ASK and ask is None:
            raise ValueError("host_key_policy ask needs an ask callback")
        self.ask = ask
        self.host_key_decision: HostKeyDecision | None = None
        self.server_sig_algs: tuple[str, ...] | None = None
        self.methods: tuple[str, ...] | None = None
        self.authenticator = ClientAuthenticator(auth, user)
        self._next_request: UserauthRequest | None = None
        self._info_response = UserauthInfoResponse(())
        self._ext_info_pending = False

    def _guards(self) -> set[Guard]:
        return {Guard.ext_info_expected} if self._ext_info_pending else set()

    # -- transport ---------------------------------------------------------------------------------
    def _send_kex_ecdh_init(self) -> None:
        self._flight.append("KEX_ECDH_INIT")
        kex = self._require_kex()
        assert kex.method is not None
        kex.client_share = kex.method.client_start(self.random)
        public = kex.client_share.public
        if kex.method.public_encoding == "mpint":
            self._send_message(KexDHInit(int.from_bytes(public, "big", signed=True)))
        else:
            self._send_message(KexECDHInit(public))

    def _on_kex_ecdh_reply(
        self, reply: KexECDHReply | KexDHReply, events: list[object], packet: Packet | None
    ) -> None:
        kex = self._require_kex()
        assert kex.method is not None and kex.negotiated is not None and kex.client_share is not None
        assert self.peer_identification is not None
        try:
            host_key = decode_host_key(reply.host_key)
        except ProtocolError as error:
            raise KeyExchangeFailed(f"the server's host key blob does not decode: {error}") from error
        if kex.negotiated.host_key not in host_key.signature_algorithms:
            raise KeyExchangeFailed(
                f"the server sent a {host_key.key_type} host key, but {kex.negotiated.host_key} was negotiated"
            )
        if self.host_key is None:
            decision = self._trust(host_key)
            events.append(HostKeyTrusted(host_key, decision))
        elif host_key != self.host_key:
            raise HostKeyChanged(
                f"the server's host key changed during a key exchange: {self.host_key.fingerprint()} "
                f"became {host_key.fingerprint()}"
            )
        kex.server_public = reply.server_public
        kex.shared_secret = kex.client_share.finish(reply.server_public)
        kex.exchange_hash = call_stage(
            self.stages,
            "exchange_hash",
            kex.method,
            client_version=self.our_identification.line,
            server_version=self.peer_identification.line,
            client_kexinit=kex.our_payload,
            server_kexinit=kex.peer_payload,
            host_key_blob=reply.host_key,
            client_public=kex.client_share.public,
            server_public=reply.server_public,
            shared_secret=kex.shared_secret,
        )
        host_key.verify(reply.signature, kex.exchange_hash.digest, [kex.negotiated.host_key])
        kex.host_key = self.host_key = host_key
        self._derive(kex)

    def _trust(self, host_key: HostKey) -> HostKeyDecision:
        decision = call_stage(
            self.stages, "check_host_key",
            self.known_hosts, self.host, self.port, host_key, self.host_key_policy, ask=self.ask, random=self.random,
        )  # fmt: skip
        if not isinstance(decision, HostKeyDecision):
            raise InternalError(f"check_host_key returned {type(decision).__name__}, not a HostKeyDecision")
        self.host_key_decision = decision
        return decision

    def _on_newkeys(self, message: object, events: list[object], packet: Packet | None) -> None:
        kex = self._require_kex()
        assert kex.our_kexinit is not None
        offered_ext_info = EXT_INFO_C in kex.our_kexinit.kex_algorithms
        first = self.exchanges == 0
        super()._on_newkeys(message, events, packet)  # type: ignore[arg-type]
        # RFC 8308 2.4: the server's EXT_INFO, if any, is its first message after its first NEWKEYS.
        self._ext_info_pending = first and offered_ext_info

    # -- service ------------------------------------------------------------------------------------
    def _send_service_request(self) -> None:
        self._flight.append("SERVICE_REQUEST")
        self._send_service_message(ServiceRequest("ssh-userauth"))

    def _on_ext_info(self, message: ExtInfo, events: list[object], packet: Packet | None) -> None:
        self._ext_info_pending = False
        self.server_sig_algs = message.server_sig_algs
        events.append(ExtInfoReceived(message.extensions, message.server_sig_algs))

    def _on_service_accept(self, message: ServiceAccept, events: list[object], packet: Packet | None) -> None:
        self._ext_info_pending = False
        if message.service != "ssh-userauth":
            raise ProtocolError(f"the server accepted service {message.service!r}; we asked for ssh-userauth")
        events.append(ServiceAccepted(message.service))
        self._next_request = self.authenticator.first()

    def _send_userauth_request(self) -> None:
        self._flight.append("USERAUTH_REQUEST")
        assert self._next_request is not None
        self._send_service_message(self._next_request)

    def _auth_method(self) -> str | None:
        return self.authenticator.method_in_flight

    def _on_userauth_banner(self, message: UserauthBanner, events: list[object], packet: Packet | None) -> None:
        events.append(BannerReceived(message.message))

    def _on_userauth_failure(
        self, message: UserauthFailure, events: list[object], packet: Packet | None
    ) -> set[Guard] | None:
        self.methods = message.methods
        events.append(AuthenticationMethods(message.methods, message.partial_success))
        self._next_request = self.authenticator.after_failure(
            message.methods, message.partial_success, self.server_sig_algs
        )
        return {Guard.another_request} if self._next_request is not None else None

    def _on_userauth_pk_ok(self, message: UserauthPkOk, events: list[object], packet: Packet | None) -> None:
        events.append(KeyAccepted(message.algorithm, message.public_key))
        assert self.session_id is not None
        self._next_request = self.authenticator.after_pk_ok(
            message.algorithm, message.public_key, self.session_id,
            lambda *args: call_stage(self.stages, "userauth_signed_data", *args),
        )  # fmt: skip

    def _on_userauth_info_request(
        self, message: UserauthInfoRequest, events: list[object], packet: Packet | None
    ) -> None:
        events.append(QuestionsAsked(message))
        self._info_response = self.authenticator.after_info_request(message)

    def _send_userauth_info_response(self) -> None:
        self._flight.append("USERAUTH_INFO_RESPONSE")
        self._send_service_message(self._info_response)

    def _on_userauth_passwd_changereq(
        self, message: UserauthPasswdChangereq, events: list[object], packet: Packet | None
    ) -> None:
        self.authenticator.after_passwd_changereq(message.prompt)

    def _on_userauth_success(self, message: UserauthSuccess, events: list[object], packet: Packet | None) -> None:
        self.authenticator.after_success()
        events.append(AuthenticationSucceeded(tuple(self.authenticator.succeeded)))

    @property
    def authenticated(self) -> bool:
        return self.service_state is State.AUTHENTICATED

    @property
    def authentication_failed(self) -> bool:
        """Credentials were given, and the server refused every one we could try."""
        return self.authenticator.auth is not None and self.service_state is State.AUTH_METHODS_KNOWN

    @property
    def reached_user_authentication(self) -> bool:
        """The probe's goal: the server answered our ``none`` request."""
        return self.service_state in (State.AUTH_METHODS_KNOWN, State.AUTHENTICATED)
