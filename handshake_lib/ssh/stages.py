"""The SSH transport's stages a learner can replace: negotiation, the exchange hash, keys A..F, the host key check.

DESIGN rule 6 ("learner code in the loop") for lessons 12 and 13, as :mod:`handshake_lib.tls.stages` is for
TLS: one frozen :class:`SSHStages` object names each replaceable function once, with the library's own as
the defaults (:data:`LIBRARY_STAGES`)::

    stages = LIBRARY_STAGES.replace(exchange_hash=my_exchange_hash)
    ssh_probe("127.0.0.1", port, known_hosts=..., stages=stages)        # SSHClient(..., stages=stages)

Each stage is called exactly as the core calls the library's function (same arguments, same result
type), so a learner's function decides for real: a wrong ``negotiate`` picks what the server did not, and
the server's next packet does not open; a wrong ``exchange_hash`` makes the server's signature fail
(BadHostKeySignature) or, on our server, OpenSSH's client say "incorrect signature"; wrong keys end in a
MAC error; a wrong host key check lets a changed key through or refuses a good one.  A stage that raises
anything but one of our errors becomes :class:`~handshake_lib.errors.InternalError` naming the stage,
never a crash of the connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import HandshakeError, InternalError
from ..replaceable import ReplaceableFunctions
from .exchange_hash import exchange_hash
from .kdf import derive_all
from .known_hosts import check_host_key
from .negotiation import negotiate
from .protection import packet_mac
from .userauth import publickey_signed_data

__all__ = ["SSHStages", "LIBRARY_STAGES", "call_stage"]


@dataclass(frozen=True)
class SSHStages(ReplaceableFunctions):
    """``negotiate(client_kexinit, server_kexinit)``, ``exchange_hash(method, *, client_version, ...)``,
    ``derive_keys(hash_name, encoded_k, exchange_hash, session_id, lengths)``, ``check_host_key(known_hosts,
    host, port, key, policy, *, ask, random)``, ``userauth_signed_data(session_id, user, service, algorithm,
    public_key) -> bytes`` (the blob a publickey signature covers, RFC 4252 section 7), ``packet_mac(hash_name,
    mac_key, sequence_number, data) -> bytes`` (an HMAC-SHA2 packet's MAC, both directions): the library's
    signatures (see each function's docstring)."""

    kind: ClassVar[str] = "stage"

    negotiate: Callable[..., Any] = negotiate
    exchange_hash: Callable[..., Any] = exchange_hash
    derive_keys: Callable[..., Any] = derive_all
    check_host_key: Callable[..., Any] = check_host_key
    userauth_signed_data: Callable[..., Any] = publickey_signed_data
    packet_mac: Callable[..., Any] = packet_mac


LIBRARY_STAGES = SSHStages()


def call_stage(stages: SSHStages, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call stage ``name``; anything it raises that is not one of our errors becomes InternalError."""
    function = getattr(stages, name)
    try:
        return function(*args, **kwargs)
    except HandshakeError:
        raise
    except Exception as error:  # noqa: BLE001 - a learner's function must not crash the connection
        whose = "your" if name in stages.replaced() else "the library's"
        raise InternalError(f"{whose} {name} raised {type(error).__name__}: {error}") from error
