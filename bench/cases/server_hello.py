"""Lesson 03's widgets: the negotiation explorer (OpenSSL in memory) and the certificate explorer."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.server_hello import CertificateExplorer, NegotiationExplorer
from handshake_lib.pki import CoursePKI


def _negotiation() -> Callable[[], object]:
    explorer = NegotiationExplorer()
    orders = itertools.cycle(itertools.permutations(["AES128-SHA", "AES128-GCM-SHA256", "AES256-SHA256"]))
    prefers = itertools.cycle(["server", "client", "client", "server", "server"])
    return lambda: explorer.update(offered=list(next(orders)), prefer=next(prefers))


def _certificate_select() -> Callable[[], object]:
    explorer = CertificateExplorer(CoursePKI.create().issue_server(("localhost", "127.0.0.1")).der)
    fields = itertools.cycle(["validity", "subject", "issuer", "subjectPublicKeyInfo", "extensions", "signatureValue"])
    return lambda: explorer.select(next(fields))


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "negotiation_explorer.update (live OpenSSL)": _negotiation,
    "certificate_explorer.select": _certificate_select,
}
