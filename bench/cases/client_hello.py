"""Lesson 02's ClientHello builder: rebuilding the hello, explaining a field, and a live send to OpenSSL."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from handshake_lib.lessons.client_hello import (
    DEFAULT_EXTENSIONS,
    SUITE_CHOICES,
    ClientHelloBuilder,
    lesson_server,
)
from handshake_lib.peers import BackgroundPeer
from handshake_lib.peers.openssl import OpenSSLServer

# One OpenSSL server for every case here: started by the first send, stopped at interpreter exit.
SERVER: BackgroundPeer[OpenSSLServer] = BackgroundPeer(lesson_server)


def _builder() -> ClientHelloBuilder:
    # The demo random: two hellos differ only by what the timed change did, so a test can tell.
    return ClientHelloBuilder(peer=SERVER.get(), demo_random=True)


def _suites() -> Callable[[], object]:
    builder = _builder()
    choices = itertools.cycle([("AES128-GCM-SHA256",), ("AES128-SHA", "AES256-GCM-SHA384"), tuple(SUITE_CHOICES)])
    return lambda: builder.update(suites=next(choices))


def _extensions() -> Callable[[], object]:
    builder = _builder()
    flips = itertools.cycle([DEFAULT_EXTENSIONS - {"signature_algorithms"}, DEFAULT_EXTENSIONS])
    return lambda: builder.update(extensions=next(flips))


def _select() -> Callable[[], object]:
    builder = _builder()
    names = itertools.cycle(["random", "cipher_suites", "server_name_list", "client_version", "extensions"])
    return lambda: builder.select(next(names))


def _send() -> Callable[[], object]:
    builder = _builder()
    builder.send()  # the first connection warms up; the timed calls are the round trips a learner waits for
    return builder.send  # each answer differs (a fresh server random), so no cache can serve it


BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "client_hello_builder.update(suites)": _suites,
    "client_hello_builder.update(extensions)": _extensions,
    "client_hello_builder.select": _select,
    "client_hello_builder.send (live OpenSSL)": _send,
}
