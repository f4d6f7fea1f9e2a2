"""Picking the algorithms from two KEXINITs (RFC 4253 section 7.1): plain functions a notebook can call.

Theory of operation
-------------------
Both sides send SSH_MSG_KEXINIT at once, neither waits for the other, and both then compute the same
answer from the same two messages.  For each category the rule is the same: **the first algorithm on
the client's list that is also on the server's list**.  The server's order never matters, only
its support.  The categories, in wire order: key exchange; server host key; then cipher, MAC and
compression, each once per direction (client to server, server to client: they may differ).

Corners, each as RFC 4253 and OpenSSH have them:

* **kex needs a host key.**  A key exchange method is eligible only if the two sides also share a host
  key algorithm of the kind it needs: every method we know needs a *signature-capable* one (the
  server signs H); RFC 4432's RSA key exchange needs an *encryption-capable* one (``ssh-rsa``).  When
  the kex lists overlap but no host key is shared, the failure is reported under "host key", as
  OpenSSH does.
* **AEAD ciphers bring their own MAC.**  With chacha20-poly1305@openssh.com or aes*-gcm@openssh.com the
  MAC lists are not consulted at all (OpenSSH skips them; asyncssh too): the MAC is *implicit*
  (``None`` in :class:`NegotiatedAlgorithms`), and an empty overlap of MAC lists is no failure.
  paramiko is stricter (it insists on a common MAC even then); that difference is in the tests.
* **Pseudo-algorithms are signals**: ``ext-info-c``/``-s`` and ``kex-strict-c/-s-v00@openssh.com``
  sit in the kex list but are never chosen (:func:`strict_kex`, :func:`wants_ext_info` read them).
  Only the first KEXINIT of a connection counts for them; the core enforces that.
* **Languages** are not negotiated: everyone sends empty lists, and RFC 4253 lets them be ignored.
* **A guessed packet** (``first_kex_packet_follows``): the sender guessed that its *first* kex and
  host key algorithms would be chosen and sent the first key exchange packet already.  The guess is
  right only when both sides' first choices agree and are what was negotiated
  (:func:`guess_is_right`); a wrong guess's packet is silently ignored.

:func:`negotiate` returns the choice or raises :class:`~handshake_lib.errors.NoCommonAlgorithm`
(naming the category and both lists, the way OpenSSH's "no matching ... found" does);
:func:`explain_negotiation` never raises and says, per category, who offered what, what won and why:
the lesson 12 widget draws it.  :func:`build_kexinit` makes one side's offer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import NoCommonAlgorithm
from .constants import (
    AEAD_CIPHERS,
    CIPHERS,
    COMPRESSION,
    EXT_INFO_C,
    EXT_INFO_S,
    HOST_KEY_ALGORITHMS,
    KEX_ALGORITHMS,
    KEX_STRICT_C,
    KEX_STRICT_S,
    MACS,
    PSEUDO_ALGORITHMS,
    KexFamily,
    kex_family,
)
from .messages import COOKIE_LENGTH, KexInit

__all__ = [
    "Role",
    "CATEGORIES",
    "NegotiatedAlgorithms",
    "Choice",
    "negotiate",
    "explain_negotiation",
    "guess_is_right",
    "strict_kex",
    "wants_ext_info",
    "build_kexinit",
    "host_key_capabilities",
    "kex_needs",
]

Role = Literal["client", "server"]

# (category name used in NoCommonAlgorithm and in explanations, KexInit attribute), in wire order.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("kex", "kex_algorithms"),
    ("host key", "server_host_key_algorithms"),
    ("cipher client to server", "encryption_client_to_server"),
    ("cipher server to client", "encryption_server_to_client"),
    ("MAC client to server", "mac_client_to_server"),
    ("MAC server to client", "mac_server_to_client"),
    ("compression client to server", "compression_client_to_server"),
    ("compression server to client", "compression_server_to_client"),
)

# RFC 4432: RSA key exchange encrypts the secret to the server's RSA key; nothing else we know does.
_KEX_NEEDING_ENCRYPTION = frozenset({"rsa1024-sha1", "rsa2048-sha256"})


def kex_needs(kex_name: str) -> Literal["signature", "encryption"]:
    """What kind of host key a key exchange method needs (RFC 4253 section 7.1)."""
    return "encryption" if kex_name in _KEX_NEEDING_ENCRYPTION else "signature"


def host_key_capabilities(host_key_algorithm: str) -> frozenset[str]:
    """What a host key algorithm can do: every one signs; only RSA's ``ssh-rsa`` also encrypts (RFC 4432)."""
    if host_key_algorithm == "ssh-rsa":
        return frozenset({"signature", "encryption"})
    return frozenset({"signature"})


@dataclass(frozen=True)
class NegotiatedAlgorithms:
    """What two KEXINITs agreed on.  A MAC of None is *implicit*: the direction's cipher is an AEAD."""

    kex: str
    host_key: str
    cipher_client_to_server: str
    cipher_server_to_client: str
    mac_client_to_server: str | None
    mac_server_to_client: str | None
    compression_client_to_server: str
    compression_server_to_client: str

    @property
    def kex_family(self) -> KexFamily | None:
        """``"ecdh"`` or ``"dh"``: which messages 30 and 31 are (see ``messages.decode_message``)."""
        return kex_family(self.kex)

    def describe(self) -> str:
        """One line per category, like ``ssh -v``'s "kex: ..." lines."""

        def mac(name: str | None) -> str:
            return name if name is not None else "<implicit>"

        return (
            f"kex: {self.kex}\nhost key: {self.host_key}\n"
            f"client->server: {self.cipher_client_to_server} MAC: {mac(self.mac_client_to_server)} "
            f"compression: {self.compression_client_to_server}\n"
            f"server->client: {self.cipher_server_to_client} MAC: {mac(self.mac_server_to_client)} "
            f"compression: {self.compression_server_to_client}"
        )


@dataclass(frozen=True)
class Choice:
    """One category of the negotiation, explained: both lists as sent, the winner (None: failure, or an
    implicit MAC), and a sentence saying why."""

    category: str
    client: tuple[str, ...]
    server: tuple[str, ...]
    winner: str | None
    reason: str
    implicit: bool = False  # a MAC made unnecessary by an AEAD cipher

    @property
    def failed(self) -> bool:
        return self.winner is None and not self.implicit


def _ordinal(index: int) -> str:
    number = index + 1
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _real(names: Sequence[str]) -> list[str]:
    return [name for name in names if name not in PSEUDO_ALGORITHMS]


def _first_common(
    client: Sequence[str], server: Sequence[str], eligible: Callable[[str], bool] | None = None
) -> tuple[int, str] | None:
    """(index in the client's list, name) of the first client name the server has (and ``eligible``), else None."""
    offered = set(server)
    for index, name in enumerate(client):
        if name in PSEUDO_ALGORITHMS or name not in offered:
            continue
        if eligible is None or eligible(name):
            return index, name
    return None


def _pick_reason(index: int, name: str, client: Sequence[str], skipped: str = "") -> str:
    if index == 0:
        why = f"{name} is the client's first choice, and the server offers it"
    else:
        passed = ", ".join(n for n in client[:index] if n not in PSEUDO_ALGORITHMS)
        why = f"{name} is the client's {_ordinal(index)} choice and the first the server also offers"
        if passed:
            why += f" (not offered by the server{skipped}: {passed})"
    signals = [n for n in client if n in PSEUDO_ALGORITHMS]
    if signals:
        why += f"; {', '.join(signals)} are signals, never chosen"
    return why


def explain_negotiation(client: KexInit, server: KexInit) -> list[Choice]:
    """Every category's choice with both lists and the reason; never raises (a failure has winner None)."""
    choices: list[Choice] = []
    server_host_keys = set(server.server_host_key_algorithms)
    common_host_keys = [name for name in _real(client.server_host_key_algorithms) if name in server_host_keys]

    def kex_eligible(name: str) -> bool:
        need = kex_needs(name)
        return any(need in host_key_capabilities(key) for key in common_host_keys)

    # kex: the first common method for which a suitable host key algorithm is shared.
    client_kex, server_kex = client.kex_algorithms, server.kex_algorithms
    plain = _first_common(client_kex, server_kex)
    picked = _first_common(client_kex, server_kex, kex_eligible)
    if picked is not None:
        index, name = picked
        reason = _pick_reason(index, name, client_kex)
        if plain is not None and plain[1] != name:
            reason += f"; {plain[1]} is shared too but needs an {kex_needs(plain[1])}-capable host key neither shares"
        else:
            reason += f", and both sides share a {kex_needs(name)}-capable host key algorithm"
        choices.append(Choice("kex", client_kex, server_kex, name, reason))
    elif plain is not None:
        choices.append(
            Choice(
                "kex",
                client_kex,
                server_kex,
                None,
                "the kex lists share methods, but no host key algorithm both sides support can serve them",
            )
        )
    else:
        choices.append(Choice("kex", client_kex, server_kex, None, "no key exchange method is on both lists"))

    client_keys, server_keys = client.server_host_key_algorithms, server.server_host_key_algorithms
    chosen_kex = choices[0].winner
    host_eligible = (lambda key: kex_needs(chosen_kex) in host_key_capabilities(key)) if chosen_kex else None
    picked = _first_common(client_keys, server_keys, host_eligible)
    if picked is not None:
        choices.append(Choice("host key", client_keys, server_keys, picked[1], _pick_reason(*picked, client_keys)))
    else:
        choices.append(Choice("host key", client_keys, server_keys, None, "no host key algorithm is on both lists"))

    ciphers: dict[str, str | None] = {}
    for category, attribute in CATEGORIES[2:4]:
        choices.append(_simple(category, getattr(client, attribute), getattr(server, attribute)))
        ciphers[category.removeprefix("cipher ")] = choices[-1].winner
    for category, attribute in CATEGORIES[4:6]:
        cipher = ciphers[category.removeprefix("MAC ")]
        client_list, server_list = getattr(client, attribute), getattr(server, attribute)
        if cipher in AEAD_CIPHERS:
            reason = f"implicit: {cipher} authenticates every packet itself (an AEAD), so the MAC lists are not used"
            choices.append(Choice(category, client_list, server_list, None, reason, implicit=True))
        else:
            choices.append(_simple(category, client_list, server_list))
    for category, attribute in CATEGORIES[6:]:
        choices.append(_simple(category, getattr(client, attribute), getattr(server, attribute)))
    return choices


def _simple(category: str, client_list: tuple[str, ...], server_list: tuple[str, ...]) -> Choice:
    picked = _first_common(client_list, server_list)
    if picked is None:
        return Choice(category, client_list, server_list, None, f"no {category} algorithm is on both lists")
    return Choice(category, client_list, server_list, picked[1], _pick_reason(*picked, client_list))


def negotiate(client: KexInit, server: KexInit) -> NegotiatedAlgorithms:
    """The algorithms two KEXINITs agree on (RFC 4253 section 7.1); NoCommonAlgorithm for the first category
    that has none, in wire order (kex, host key, ciphers, MACs, compression)."""
    choices = explain_negotiation(client, server)
    for choice in choices:
        if choice.failed:
            if choice.category == "kex" and _first_common(client.kex_algorithms, server.kex_algorithms):
                # The kex lists overlap: what is missing is a host key algorithm (OpenSSH says the same).
                host = choices[1]
                raise NoCommonAlgorithm("host key", list(host.client), list(host.server))
            raise NoCommonAlgorithm(choice.category, list(choice.client), list(choice.server))
    winners = [choice.winner for choice in choices]
    kex, host_key, cipher_cs, cipher_sc, mac_cs, mac_sc, compression_cs, compression_sc = winners
    assert kex and host_key and cipher_cs and cipher_sc and compression_cs and compression_sc
    return NegotiatedAlgorithms(kex, host_key, cipher_cs, cipher_sc, mac_cs, mac_sc, compression_cs, compression_sc)


def guess_is_right(client: KexInit, server: KexInit, negotiated: NegotiatedAlgorithms) -> bool:
    """Is a guessed first key exchange packet (``first_kex_packet_follows``) usable? (RFC 4253 section 7)

    The guess is the sender's first kex and host key algorithm.  RFC 4253: "The guess is wrong if the
    kex algorithm and/or the host key algorithm is guessed wrong (server and client have different
    preferred algorithm), or if any of the other algorithms cannot be agreed upon" (then ``negotiate``
    has already failed).  So: right when both sides' first kex and first host key algorithms are the
    negotiated ones.  OpenSSH's ``proposals_match`` compares the same first entries.  asyncssh 2.24.1 is
    laxer (it drops the guessed packet only when the chosen kex is not the guesser's first, and ignores
    the host key), so a guess that is wrong here may still be answered there: a client should guess
    only when it knows the server's first choices (the tests show both behaviours against asyncssh).
    """

    def first(names: Sequence[str]) -> str | None:
        return names[0] if names else None

    return (
        first(client.kex_algorithms) == first(server.kex_algorithms) == negotiated.kex
        and first(client.server_host_key_algorithms) == first(server.server_host_key_algorithms) == negotiated.host_key
    )


def strict_kex(client: KexInit, server: KexInit) -> bool:
    """Strict key exchange is on when the client offers kex-strict-c-v00 and the server kex-strict-s-v00.

    Only the KEXINITs of the first key exchange count (markers in later ones are ignored).  With it,
    sequence numbers restart at 0 after each NEWKEYS and any message other than the key exchange's own
    during the first exchange ends the connection: the Terrapin countermeasure.
    """
    return KEX_STRICT_C in client.kex_algorithms and KEX_STRICT_S in server.kex_algorithms


def wants_ext_info(kexinit: KexInit, role: Role) -> bool:
    """Does the side that sent ``kexinit`` (as ``role``) accept SSH_MSG_EXT_INFO from the other side?

    A client says so with ``ext-info-c`` (then the server may send EXT_INFO after its first NEWKEYS,
    with ``server-sig-algs``), a server with ``ext-info-s`` (RFC 8308 section 2.1).  Only the first
    KEXINIT of a connection counts.
    """
    if role not in ("client", "server"):
        raise ValueError(f"role must be 'client' or 'server', not {role!r}")
    return (EXT_INFO_C if role == "client" else EXT_INFO_S) in kexinit.kex_algorithms


def build_kexinit(
    role: Role,
    *,
    kex_algorithms: Sequence[str] = KEX_ALGORITHMS,
    host_key_algorithms: Sequence[str] = HOST_KEY_ALGORITHMS,
    ciphers: Sequence[str] = CIPHERS,
    macs: Sequence[str] = MACS,
    compression: Sequence[str] = COMPRESSION,
    ext_info: bool = True,
    strict: bool = True,
    first_kex_packet_follows: bool = False,
    random: Callable[[int], bytes] = os.urandom,
) -> KexInit:
    """One side's KEXINIT: the same lists in both directions, plus the role's signals at the end of the kex
    list (``ext-info-c``/``-s``, ``kex-strict-c``/``-s-v00@openssh.com``: where OpenSSH puts them)."""
    if role not in ("client", "server"):
        raise ValueError(f"role must be 'client' or 'server', not {role!r}")
    signals: list[str] = []
    if ext_info:
        signals.append(EXT_INFO_C if role == "client" else EXT_INFO_S)
    if strict:
        signals.append(KEX_STRICT_C if role == "client" else KEX_STRICT_S)
    return KexInit(
        random(COOKIE_LENGTH),
        (*kex_algorithms, *signals),
        tuple(host_key_algorithms),
        tuple(ciphers),
        tuple(ciphers),
        tuple(macs),
        tuple(macs),
        tuple(compression),
        tuple(compression),
        first_kex_packet_follows=first_kex_packet_follows,
    )
