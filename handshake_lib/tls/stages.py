"""The stages of a TLS 1.2 handshake a learner can replace, each with its exact call signature.

Theory of operation
-------------------
DESIGN rule 5: a lesson's exercise plugs the learner's own function into a real handshake, which then
succeeds or fails because of it, the way a real peer makes it fail.  :class:`Stages` names every
replaceable step once, in the order a handshake reaches it::

    client                                    server
    build_client_hello            ->          choose_cipher_suite
    check_server_key_exchange_signature       (ECDHE/DHE suites: the signature over both randoms + params)
    make_pre_master_secret
    encrypt_pre_master_secret     ->          decrypt_pre_master_secret        (RSA key exchange)
    ecdhe_premaster_secret                                                     (ECDHE: ours with theirs)
    master_secret / extended_master_secret    (both sides, over prf, over p_hash)
    key_block                                 (both sides, over prf)
    record_mac                                (both sides, CBC suites)
    verify_data                               (both sides, each Finished)
    renegotiation_info                        (both sides, RFC 5746: what a renegotiating hello carries)
    (a resumption)                ->          open_ticket                      (RFC 5077: the state in a ticket)

Each field is typed by a :class:`typing.Protocol` whose ``__call__`` is exactly how the core calls the
stage, and defaults to the library's own function, so ``Stages()`` is the library and
``Stages(prf=my_prf)`` (or ``stages.replace(prf=my_prf)``) swaps one step and nothing else.  The PRF
stages take the RFC's arguments in the order RFC 5246 writes them, then what the suite fixes
(``hash_name``, or ``params`` when sizes are needed): see :mod:`handshake_lib.tls.prf`.

The library's derivations are layered (``master_secret`` runs ``prf``, which runs ``p_hash``).  A stage
left at its default runs over the stages *below it in this object*, so replacing ``prf`` alone changes
the master secret, the key block and both Finished messages, as a wrong PRF would in a real
implementation; a replaced stage is called with its Protocol's arguments only (nothing extra for a
learner's function to absorb).  :meth:`Stages.resolved` does that wiring once per connection.

``TLSClient(..., stages=...)`` uses the client's stages, ``TLSServer(..., stages=...)`` the server's; a
field the role never reaches (``choose_cipher_suite`` on a client) is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from ..replaceable import ReplaceableFunctions
from . import key_exchange, negotiation, rsa_kx, signatures, tickets
from . import prf as prf_module
from . import record as record_module
from .messages import ClientHello
from .suites import SuiteParams

__all__ = [
    "Stages",
    "BuildClientHello",
    "ChooseCipherSuite",
    "MakePreMasterSecret",
    "EncryptPreMasterSecret",
    "DecryptPreMasterSecret",
    "EcdhePremasterSecret",
    "CheckServerKeyExchangeSignature",
    "PHash",
    "Prf",
    "MasterSecret",
    "ExtendedMasterSecret",
    "KeyBlock",
    "VerifyData",
    "RecordMac",
    "RenegotiationInfo",
    "OpenTicket",
]


class RandomBytes(Protocol):
    def __call__(self, length: int, /) -> bytes: ...


# Positional parameters are positional-only (``/``): a learner's function may name them as it likes.
class BuildClientHello(Protocol):
    """The ClientHello to send: a message, or its encoding (4-byte header + body).

    Called with keywords only; the lesson's ``build_client_hello`` and the library's
    :func:`~handshake_lib.tls.negotiation.client_hello_for` both fit.  What goes on the wire is
    exactly what this returns: the client agrees to nothing it did not offer here.
    """

    def __call__(
        self, *, client_random: bytes, suites: Sequence[int], server_name: str | None
    ) -> ClientHello | bytes: ...


class ChooseCipherSuite(Protocol):
    """The suite a server picks from the client's ``offered`` list among its ``supported`` ones."""

    def __call__(self, offered: Sequence[int], supported: Sequence[int], /, *, prefer: str) -> int: ...


class MakePreMasterSecret(Protocol):
    """client_version (2 bytes) + 46 random bytes from ``random_bytes``."""

    def __call__(self, client_version: int, random_bytes: RandomBytes, /) -> bytes: ...


class EncryptPreMasterSecret(Protocol):
    """The body of ClientKeyExchange: the pre-master secret encrypted to the server's RSA key."""

    def __call__(self, pre_master_secret: bytes, server_public_key: rsa.RSAPublicKey, /) -> bytes: ...


class DecryptPreMasterSecret(Protocol):
    """The pre-master secret from ClientKeyExchange, or a random one when anything is wrong."""

    def __call__(
        self,
        encrypted_pre_master_secret: bytes,
        server_private_key: rsa.RSAPrivateKey,
        client_version: int,
        random_bytes: RandomBytes,
        /,
    ) -> bytes: ...


EcdhePremasterSecret = key_exchange.ECDHESecret
"""``(client_private_key, server_public) -> pre-master secret``: ours (an ``X25519PrivateKey`` or an
``EllipticCurvePrivateKey``) with the server's public value from ServerKeyExchange, as sent.  The client
checks the server's value before the call and refuses an all-zero X25519 result after it."""


class CheckServerKeyExchangeSignature(Protocol):
    """Whether ServerKeyExchange's signature verifies with the server certificate's public key.

    ``params`` are the encoded ServerECDHParams/ServerDHParams as sent; the signed bytes are
    ``client_random + server_random + params`` (RFC 5246 section 7.4.3, RFC 8422 section 5.4).  True: go
    on; False: the client refuses the handshake with ``decrypt_error``.  The client has checked that
    ``signature_scheme`` is one it offered and that fits the key before calling.
    """

    def __call__(
        self,
        server_public_key: signatures.VerifyingKey,
        signature_scheme: int,
        signature: bytes,
        client_random: bytes,
        server_random: bytes,
        params: bytes,
        /,
    ) -> bool: ...


class PHash(Protocol):
    """P_hash(secret, seed), ``length`` bytes."""

    def __call__(self, secret: bytes, seed: bytes, length: int, hash_name: str, /) -> bytes: ...


class Prf(Protocol):
    """PRF(secret, label, seed) = P_hash(secret, label + seed), ``length`` bytes."""

    def __call__(self, secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str, /) -> bytes: ...


class MasterSecret(Protocol):
    """PRF(pre_master_secret, "master secret", client_random + server_random)[:48]."""

    def __call__(
        self, pre_master_secret: bytes, client_random: bytes, server_random: bytes, hash_name: str, /
    ) -> bytes: ...


class ExtendedMasterSecret(Protocol):
    """PRF(pre_master_secret, "extended master secret", session_hash)[:48] (RFC 7627)."""

    def __call__(self, pre_master_secret: bytes, session_hash: bytes, hash_name: str, /) -> bytes: ...


class KeyBlock(Protocol):
    """PRF(master_secret, "key expansion", server_random + client_random), cut into the six keys."""

    def __call__(
        self, master_secret: bytes, server_random: bytes, client_random: bytes, params: SuiteParams, /
    ) -> prf_module.KeyBlock: ...


class VerifyData(Protocol):
    """PRF(master_secret, label, Hash(handshake_messages))[:12]; ``label`` "client finished" or "server finished"."""

    def __call__(self, master_secret: bytes, label: str, handshake_messages: bytes, hash_name: str, /) -> bytes: ...


class RecordMac(Protocol):
    """HMAC(mac_key, seq_num + type + version + length + fragment) of one CBC record."""

    def __call__(
        self, hash_name: str, mac_key: bytes, sequence_number: int, content_type: int, version: int, fragment: bytes, /
    ) -> bytes: ...


class RenegotiationInfo(Protocol):
    """What ``sender``'s ("client" or "server") hello carries in renegotiation_info on a renegotiation.

    Called with the last handshake's Finished verify_data of both sides (RFC 5746 section 3.1): by a client
    to build its renegotiating ClientHello (``"client"``) and to check the ServerHello (``"server"``), by a
    server to check the ClientHello (``"client"``) and to build its ServerHello (``"server"``).  A hello
    that does not carry it is refused with ``handshake_failure``.  Not called on a first handshake (the
    extension is empty then, and the library checks that).
    """

    def __call__(self, sender: str, client_verify_data: bytes, server_verify_data: bytes, /) -> bytes: ...


class OpenTicket(Protocol):
    """The session state sealed in a ticket (RFC 5077 section 4's layout), or None to refuse it.

    Called by a server holding :class:`~handshake_lib.tls.tickets.TicketKeys` with the ticket a client
    offered and the AES and HMAC keys of the ticket key its ``key_name`` names (a ticket naming no key we
    have is refused before the call), the server's clock ``now`` and the tickets' ``lifetime`` in seconds.
    None: a full handshake (RFC 5077 section 3.4); a state: the session it holds is resumed.
    """

    def __call__(
        self, ticket: bytes, aes_key: bytes, hmac_key: bytes, now: float, lifetime: int, /
    ) -> bytes | None: ...


@dataclass(frozen=True)
class Stages(ReplaceableFunctions):
    """One function per replaceable stage of the handshake; the defaults are the library's own."""

    kind: ClassVar[str] = "stage"

    build_client_hello: BuildClientHello = negotiation.client_hello_for
    choose_cipher_suite: ChooseCipherSuite = negotiation.choose_cipher_suite
    make_pre_master_secret: MakePreMasterSecret = rsa_kx.make_pre_master_secret
    encrypt_pre_master_secret: EncryptPreMasterSecret = rsa_kx.encrypt_pre_master_secret
    decrypt_pre_master_secret: DecryptPreMasterSecret = rsa_kx.decrypt_pre_master_secret
    ecdhe_premaster_secret: EcdhePremasterSecret = key_exchange.ecdhe_premaster_secret
    check_server_key_exchange_signature: CheckServerKeyExchangeSignature = (
        signatures.check_server_key_exchange_signature
    )
    p_hash: PHash = prf_module.p_hash
    prf: Prf = prf_module.prf
    master_secret: MasterSecret = prf_module.master_secret
    extended_master_secret: ExtendedMasterSecret = prf_module.extended_master_secret
    key_block: KeyBlock = prf_module.key_block
    verify_data: VerifyData = prf_module.verify_data
    record_mac: RecordMac = record_module.record_mac
    renegotiation_info: RenegotiationInfo = negotiation.renegotiation_info
    open_ticket: OpenTicket = tickets.open_ticket

    def resolved(self) -> Stages:
        """These stages as a connection runs them: each library default wired to the stages below it here."""
        prf = self.prf
        if prf is prf_module.prf and self.p_hash is not prf_module.p_hash:
            prf = partial(prf_module.prf, p_hash=self.p_hash)
        if prf is prf_module.prf:
            return self  # nothing below the library's PRF was replaced: the defaults already agree

        def over_prf(stage: object, default: object) -> object:
            return partial(default, prf=prf) if stage is default else stage  # type: ignore[arg-type]

        return replace(
            self,
            prf=prf,
            master_secret=over_prf(self.master_secret, prf_module.master_secret),
            extended_master_secret=over_prf(self.extended_master_secret, prf_module.extended_master_secret),
            key_block=over_prf(self.key_block, prf_module.key_block),
            verify_data=over_prf(self.verify_data, prf_module.verify_data),
        )


LIBRARY_STAGES = Stages()
