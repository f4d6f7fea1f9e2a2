"""Widget benchmarks of lesson 12 (``handshake_lib.lessons.ssh_key_exchange``); conventions in bench/README.md.

Each setup builds its widget once (or takes one, so a test can watch what the callback changes) and
returns the zero-argument callback to time, which varies its input on every call.  The inputs are the
library's own KEXINITs and the course's demo key exchange: no peer is needed to time a widget.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.ssh_key_exchange import (
    KeyDerivationExplorer,
    NegotiationLab,
    curve25519_steps,
    key_derivation_explorer,
    negotiation_lab,
)
from handshake_lib.ssh.constants import AEAD_CIPHERS, CIPHERS, KEX_ALGORITHMS, MACS
from handshake_lib.ssh.exchange_hash import exchange_hash


def bench_negotiation(lab: NegotiationLab | None = None) -> Callable[[], object]:
    """A learner moving each kex method to the front of the client's list, then dropping server ciphers."""
    lab = lab or negotiation_lab()
    orders = [[name, *(other for other in KEX_ALGORITHMS if other != name)] for name in KEX_ALGORITHMS]
    server_ciphers = [list(CIPHERS[i:]) for i in range(len(CIPHERS) + 1)]  # the last: none, a failure
    moves = itertools.cycle(zip(itertools.cycle(orders), server_ciphers, strict=False))

    def step() -> object:
        client_kex, ciphers = next(moves)
        return lab.update(client_kex=client_kex, server_ciphers=ciphers)

    return step


def demo_key_derivation(**settings: object) -> KeyDerivationExplorer:
    """The keys widget over the demo key exchange's K and an H of demo inputs."""
    steps = curve25519_steps()
    h = exchange_hash(
        "curve25519-sha256", client_version="SSH-2.0-HandshakesSSH_0.1", server_version="SSH-2.0-OpenSSH_9.2p1",
        client_kexinit=b"\x14" + bytes(16), server_kexinit=b"\x14" + bytes(16), host_key_blob=b"host key",
        client_public=steps.client_public, server_public=steps.server_public, shared_secret=steps.encoded_k,
    )  # fmt: skip
    return key_derivation_explorer(h.hash, steps.encoded_k, h.digest, h.digest, **settings)


def bench_key_derivation(explorer: KeyDerivationExplorer | None = None) -> Callable[[], object]:
    """A learner going through every cipher, and every MAC where one is used (an AEAD cipher has its own tag)."""
    explorer = explorer or demo_key_derivation()
    combinations = [(cipher, mac) for cipher in CIPHERS for mac in (MACS[:1] if cipher in AEAD_CIPHERS else MACS)]
    choices = itertools.cycle(combinations)

    def step() -> object:
        cipher, mac = next(choices)
        return explorer.update(cipher=cipher, mac=mac)

    return step


# Read by `python -m bench` (bench/widgets.py): name -> setup returning the callback to time.
BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "negotiation_lab.update(client_kex, server_ciphers)": bench_negotiation,
    "key_derivation_explorer.update(cipher, mac)": bench_key_derivation,
}
