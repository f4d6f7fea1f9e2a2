"""``handshakes tls get`` and ``handshakes tls serve``: our TLS 1.2 and 1.3 client and server on the command line.

``tls get URL`` fetches one page with our client (:func:`handshake_lib.net.tls.tls_get`) and
writes the response body to **stdout**.  Everything else goes to **stderr**: the one-line summary
(version, cipher suite, HTTP status), warnings, errors, and with ``--trace`` the annotated handshake
record by record.  So ``handshakes tls get ... --trace > page.html`` keeps the page clean, as
``curl -v`` does.

TLS versions: ``tls get --tls auto`` (the default) offers TLS 1.3 and 1.2 in one ClientHello and the
server's answer decides (:mod:`handshake_lib.tls.negotiate_version`, the downgrade sentinel checked);
``--tls 1.3`` or ``--tls 1.2`` pins one.  ``tls serve --tls both`` (the default) answers either; its log
names each connection's version.  TLS 1.3 on ``tls get``: ``--reconnect N`` resumes with the tickets the
server sent (one ClientSessionStore across the connections, each ticket offered once) and prints a
``connection K: TLS 1.3, <suite>, group <g>, resumed yes|no, HRR yes|no`` line each; ``--early-data`` sends
the request as 0-RTT data on the resumed ones (``early data accepted|rejected``); ``--key-update`` sends
KeyUpdate (update_requested) before the request; ``--ciphersuites`` names 1.3's suites (``--cipher`` stays
1.2's, as in OpenSSL); our first ClientHello carries key shares for X25519MLKEM768 and x25519, so a server
wanting P-256 answers with HelloRetryRequest (the summary and ``--trace`` say so), and ``--groups`` puts the
first group listed in the first hello instead.  ``tls serve --early-data BYTES`` accepts 0-RTT data behind
a replay window.  An option of one version only given with the other (``--renegotiate``, ``--status``,
``--no-tickets``, ``--ocsp-response`` need ``--tls 1.2``; ``--early-data``, ``--key-update`` TLS 1.3): one
line, exit 2.

``--cipher`` takes IANA names (``TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256``) or OpenSSL's
(``ECDHE-ECDSA-CHACHA20-POLY1305``) of every suite the library runs (RSA, ECDHE and DHE key exchange),
repeated or comma-separated, in order of preference.  ``--groups x25519,secp256r1`` names the ECDHE/DHE
groups, in order of preference (OpenSSL's ``P-256``/``P-384`` spellings too); the summary line names the
group a handshake used (for DHE, the prime the server sent).  Certificate checking is on; ``--insecure``
turns it off, loudly.

``tls serve --cert A --key A --cert B --key B``: an RSA and an ECDSA identity (paired by order), the
server picking by suite (``*-ECDSA-*`` suites the ECDSA one); a key that is not its certificate's, or
two of one kind, is refused at start-up.

Mutual TLS: ``tls get --cert FILE --key FILE`` gives our client a certificate chain (leaf first, its
intermediates after: all are sent) and its private key (RSA, ECDSA P-256 or Ed25519), used if the server
asks; ``tls serve --client-ca FILE`` asks every client for a certificate issued by a CA in FILE, and
``--require-client-cert`` refuses a client that sends none.  The serve log names the client
certificate's subject.

OCSP stapling (RFC 6066 section 8): ``tls get --status`` asks the server to staple an OCSP response (as
``openssl s_client -status`` does) and says whether one came, with the certificate status it holds (good,
revoked or unknown, thisUpdate, nextUpdate), read with ``cryptography``; the TLS client's validator
has already judged it (a revoked answer ends the handshake; with ``--insecure`` nothing is judged);
``tls serve --ocsp-response FILE`` staples that DER response (``openssl ocsp -respout``,
``handshakes pki demo``'s ``ocsp.der``) to every client that asks.

Renegotiation (RFC 5746): ``tls get URL --renegotiate`` runs a second handshake over the open connection
before its request (new randoms, a new key exchange, new keys from the new ChangeCipherSpec) and prints
``handshake 1: full`` then ``handshake 2: renegotiated``, or ``renegotiation declined by the server`` (OpenSSL 3
servers decline unless started with ``-client_renegotiation``); ``--keylog`` gets a line for each.  ``tls serve
--renegotiate`` sends every client a HelloRequest once its request is in and answers after the new
handshake (or after the client declines); its log says ``renegotiated (1)``.  A client may start at most
3 renegotiations per connection on ``tls serve``.

Resumption: ``tls get URL --reconnect N`` fetches URL, then connects N more times offering the session the
last handshake ended with (a session ticket if the server gave one, else its session ID; ``--no-tickets``
does not ask for tickets, so only the session ID can resume), and prints one line per handshake on stderr:
``handshake 1: full``, ``handshake 2: resumed (ticket)`` or ``resumed (session ID)``, or ``full`` again when
the server declined.  Every connection sends the GET (the resumed keys carry a real request and response);
the summary line and the page written to stdout are the last fetch's, and ``--timeout`` applies to each
connection.  ``--keylog`` gets one line per handshake, resumed ones included.  ``tls serve`` resumes by
default, by session ID (1024 sessions cached for 300 s) and by ticket (a new ticket key every hour, tickets
good for 7200 s); ``--no-resumption`` makes every client do a full handshake, and so does ``--client-ca``
(a resumed session does not carry the client's certificate yet).  Its log says which connections resumed
and how.

``tls serve`` runs our TLS server (:class:`handshake_lib.net.tls.TLSPageServer`) with a small page
until Ctrl-C or SIGTERM.  It binds 127.0.0.1 unless told otherwise, and refuses an address that is not
loopback unless ``--public`` is given: a teaching server has no business on a network by accident.

Exit status: 0 success; 1 the handshake or the connection failed (the message names the cause and the
alert); 2 the command line was wrong (including an unknown cipher suite name).

``tls decode CAPTURE.pcap (--keylog FILE | --server-key KEY.pem)`` reads every TLS 1.2 and TLS 1.3
connection of a classic pcap (``tcpdump -w``, or ``tls_get(record_to=...)``) with
:func:`handshake_lib.tls.capture.decode_tls_capture` and prints, as Wireshark does with a key log, each
connection's records annotated (``--trace``'s renderer: the handshake messages decoded, every protected
record decrypted: for TLS 1.3 the encrypted handshake too, with the key log's traffic secrets), then the
application data of each direction as text.  With ``--server-key`` it decrypts RSA key-exchange sessions
and says why it cannot decrypt an ECDHE, DHE or TLS 1.3 one.  Exit 0 when every TLS connection was
decrypted, 1 when one was not (the reason is printed for each) or the capture holds none or cannot be read,
2 for a usage error.
"""

from __future__ import annotations

import argparse
import ipaddress
import queue
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from ..errors import CertificateError, ConnectionTimeout, HandshakeError, HTTPResponseError, PeerAlert, ProtocolError
from ..hostnames import check_dns_name
from ..net import is_loopback
from ..tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT
from ..tls.capture import TLSCaptureConnection, UndecryptedRecord, decode_tls_capture
from ..tls.connection import RUNNABLE_SUITES, TranscriptEntry
from ..tls.constants import CipherSuite, ExtensionType, NamedGroup, ProtocolVersion, name_of
from ..tls.key_exchange import GROUPS, ffdhe_group_for
from ..tls.key_share13 import KEY_SHARE_GROUPS13
from ..tls.keylog import KeyLog, parse_keylog
from ..tls.messages import ClientHello, ServerDHParams, ServerKeyExchange, cipher_suite_name
from ..tls.record import MAX_PLAINTEXT_LENGTH
from ..tls.record13 import SUITES13
from ..tls.sessions import ClientSessionStore
from ..tls.suites import openssl_name, parse_suite_name
from .arguments import MAX_SECONDS, append_file, host, input_file, pem_file, port, seconds
from .errors import EXIT_FAILURE, EXIT_USAGE, CommandError
from .trace import render_entry, render_transcript

if TYPE_CHECKING:
    from ..net.tls import TLSResponse

DEFAULT_TIMEOUT = 5.0
MAX_RECONNECT = 100  # tls get --reconnect: enough to measure resumption, too few to hammer a server
MAX_PEM_BYTES = 1 << 20  # the most of a --cafile, --cert or --key read (docs/limits.md); a chain is kilobytes
MAX_EARLY_DATA = 1 << 20  # tls serve --early-data: a request fits in far less; the record layer bounds each record
# tls serve's page: net.tls.PAGE's heading, without its claim that the connection was TLS 1.2.
SERVE_PAGE = (
    b"<!doctype html><html><head><title>Handshakes</title></head>"
    b"<body><h1>Hello from the Handshakes TLS server</h1>"
    b"<p>This page came over a TLS connection run by the course's own server code (its log says which version)."
    b"</p></body></html>"
)
TLS_GET_VERSIONS = ("1.2", "1.3", "auto")
TLS_SERVE_VERSIONS = ("1.2", "1.3", "both")


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("tls", help="TLS 1.2 and 1.3 with our client and server")
    commands = parser.add_subparsers(title="commands", metavar="{get,serve,decode}", required=True)

    get = commands.add_parser(
        "get", help="fetch https://HOST:PORT/PATH with our TLS client", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    get.add_argument("url", help="https://HOST[:PORT]/PATH")
    get.add_argument("--cafile", type=pem_file, help="PEM file of the CA(s) to trust")
    get.add_argument(
        "--tls", choices=TLS_GET_VERSIONS, default="auto",
        help="protocol version: 1.2, 1.3, or auto (the default: offer 1.3, accept 1.2 if the server wants it)",
    )
    get.add_argument(
        "--cipher", action="append", default=[], metavar="NAME",
        help="TLS 1.2 cipher suite to offer, IANA or OpenSSL name (repeatable or comma-separated)",
    )
    get.add_argument(
        "--ciphersuites", action="append", default=[], metavar="NAME",
        help="TLS 1.3 cipher suite to offer, as OpenSSL's -ciphersuites names them (TLS_AES_128_GCM_SHA256...)",
    )
    _add_groups(get, "offer")
    get.add_argument(
        "--trace", action="store_true", help="print the annotated handshake, record by record, to stderr"
    )
    get.add_argument(
        "--keylog", type=append_file, metavar="FILE", help="append the NSS key log line (for Wireshark)"
    )
    get.add_argument("--insecure", action="store_true", help="do NOT verify the server's certificate")
    get.add_argument(
        "--cert", type=pem_file, metavar="FILE",
        help="PEM client certificate chain, leaf first, sent if the server asks (mutual TLS; needs --key)",
    )
    get.add_argument("--key", type=pem_file, metavar="FILE", help="PEM private key of --cert (RSA, ECDSA P-256)")
    get.add_argument(
        "--status", action="store_true",
        help="ask the server to staple an OCSP response (status_request) and print what it holds",
    )
    get.add_argument(
        "--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"seconds for the whole exchange (default {DEFAULT_TIMEOUT:g}, at most {MAX_SECONDS:g})",
    )
    _add_fragment_size(get)
    get.add_argument(
        "--max-body", type=_max_body, default=None, metavar="BYTES",
        help="refuse a response body longer than this (default 16 MiB: 16777216)",
    )
    get.add_argument(
        "--reconnect", type=_reconnect, default=0, metavar="N",
        help="after the first fetch, fetch N more times resuming the session (TLS 1.3: with a ticket the server "
        "sent; TLS 1.2: by ticket if the server gave one, else by session ID); prints one line per connection "
        "on stderr (version, suite, group, resumed, HelloRetryRequest)",
    )
    get.add_argument(
        "--early-data", action="store_true",
        help="TLS 1.3, with --reconnect: send the request as 0-RTT early data on the resumed connections "
        "(prints whether the server accepted it)",
    )
    get.add_argument(
        "--key-update", action="store_true",
        help="TLS 1.3: send KeyUpdate (update_requested) before the request, so both directions change keys",
    )
    get.add_argument(
        "--no-tickets", action="store_true",
        help="with --reconnect: do not ask for a session ticket, so only the session ID can resume",
    )
    get.add_argument(
        "--renegotiate", action="store_true",
        help="renegotiate once (RFC 5746) on the open connection before the request; prints "
        "'handshake K: renegotiated' (or 'declined by the server') on stderr",
    )
    get.set_defaults(command=run_get)

    serve = commands.add_parser("serve", help="serve a small page with our TLS server (loopback by default)")
    serve.add_argument("--port", type=port, required=True, help="TCP port (0: let the kernel choose)")
    serve.add_argument(
        "--cert", type=pem_file, action="append", required=True, metavar="FILE",
        help="PEM certificate chain, leaf first; give --cert/--key twice for an RSA and an ECDSA identity "
        "(picked by suite: *-ECDSA-* suites use the ECDSA one)",
    )
    serve.add_argument(
        "--key", type=pem_file, action="append", required=True, metavar="FILE",
        help="PEM private key of the --cert in the same position (RSA or ECDSA P-256/P-384)",
    )
    serve.add_argument("--host", type=host, default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--public", action="store_true", help="allow binding an address that is not loopback")
    serve.add_argument(
        "--tls", choices=TLS_SERVE_VERSIONS, default="both",
        help="protocol versions to answer: 1.2, 1.3, or both (the default: the client's hello decides)",
    )
    serve.add_argument(
        "--early-data", type=_early_data_size, default=0, metavar="BYTES",
        help="TLS 1.3: accept up to BYTES of 0-RTT early data on resumed connections (with a replay window "
        "that refuses a ClientHello seen before)",
    )
    serve.add_argument(
        "--cipher", action="append", default=[], metavar="NAME",
        help="TLS 1.2 cipher suite to accept, IANA or OpenSSL name (repeatable or comma-separated)",
    )
    serve.add_argument(
        "--ciphersuites", action="append", default=[], metavar="NAME",
        help="TLS 1.3 cipher suite to accept (TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, ...)",
    )
    _add_groups(serve, "accept")
    serve.add_argument(
        "--keylog", type=append_file, metavar="FILE", help="append NSS key log lines (for Wireshark)"
    )
    serve.add_argument(
        "--client-ca", type=pem_file, metavar="FILE",
        help="ask clients for a certificate issued by a CA in this PEM file (mutual TLS)",
    )
    serve.add_argument(
        "--require-client-cert", action="store_true",
        help="refuse a client without a certificate (needs --client-ca)",
    )
    serve.add_argument(
        "--renegotiate", action="store_true",
        help="ask each client to renegotiate (HelloRequest, RFC 5746) before answering its request",
    )
    serve.add_argument(
        "--ocsp-response", type=input_file, metavar="FILE",
        help="DER OCSP response to staple for clients that ask (status_request, RFC 6066)",
    )
    serve.add_argument(
        "--no-resumption", action="store_true",
        help="no session cache and no tickets: every client does a full handshake (by default clients resume "
        "by session ID, 1024 kept for 300 s, or by ticket, a new ticket key every hour)",
    )
    _add_fragment_size(serve)
    serve.set_defaults(command=run_serve)

    decode = commands.add_parser(
        "decode", help="the TLS records of a pcap file, decrypted with a key log (1.2 and 1.3) or the server's RSA key",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    decode.add_argument("capture", type=input_file, help="a classic pcap file (tcpdump -w)")
    secrets = decode.add_mutually_exclusive_group(required=True)
    secrets.add_argument(
        "--keylog", type=input_file, metavar="FILE", help="NSS key log (SSLKEYLOGFILE, tls get --keylog)"
    )
    secrets.add_argument(
        "--server-key", type=pem_file, metavar="KEY.pem", help="the server's RSA private key (RSA key exchange only)"
    )
    decode.set_defaults(command=run_decode)


# -- shared helpers ------------------------------------------------------------------------------------
def _fragment_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PLAINTEXT_LENGTH:
        raise argparse.ArgumentTypeError(f"must be a whole number of bytes from 1 to {MAX_PLAINTEXT_LENGTH}")
    return size


def _reconnect(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_RECONNECT:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of reconnections from 1 to {MAX_RECONNECT}, not {text!r}"
        )
    return int(text)


def handshake_kind(resumed_by: str | None) -> str:
    """``full``, ``resumed (ticket)`` or ``resumed (session ID)``: what a ``handshake K:`` line says."""
    return "full" if resumed_by is None else f"resumed ({resumed_by})"


def _max_body(text: str) -> int:
    if not (text.isascii() and text.isdigit()):  # digits only: no sign, no fraction, no exponent
        raise argparse.ArgumentTypeError("must be a whole number of bytes (0 or more)")
    return int(text)


def _add_fragment_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fragment-size", type=_fragment_size, default=MAX_PLAINTEXT_LENGTH, metavar="BYTES",
        help=f"most plaintext per record we send (default {MAX_PLAINTEXT_LENGTH}); smaller cuts handshake "
        "messages across records, which the peer must reassemble (see it with --trace)",
    )


def parse_cipher_options(values: list[str]) -> list[CipherSuite]:
    """``["ECDHE-RSA-AES128-GCM-SHA256,AES128-SHA256", ...]`` -> suites in order; CommandError (exit 2).

    Every suite our TLS 1.2 cores run (``RUNNABLE_SUITES``: the ``tls/suites.py`` table) is accepted, by
    OpenSSL or IANA name; an unknown name gets one line listing OpenSSL's names for them.
    """
    def known() -> str:
        return ", ".join(openssl_name(suite) for suite in RUNNABLE_SUITES)

    suites: list[CipherSuite] = []
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            try:
                suite = parse_suite_name(name)
            except ValueError:
                raise CommandError(f"unknown cipher suite {name!r}; known: {known()}", EXIT_USAGE) from None
            if suite not in RUNNABLE_SUITES:
                raise CommandError(f"{suite.name} is not a suite our TLS 1.2 code runs: {known()}", EXIT_USAGE)
            if suite not in suites:
                suites.append(suite)
    return suites


# Every group name --groups takes, as OpenSSL spells them (its -groups and -curves lists), lower-cased.
_GROUP_ALIASES = {"p-256": "secp256r1", "prime256v1": "secp256r1", "p-384": "secp384r1"}
GROUP_NAMES: dict[str, NamedGroup] = {
    code.name.lower(): code for code in (*GROUPS, *(g for g in KEY_SHARE_GROUPS13 if g not in GROUPS))
}


def _groups(text: str) -> tuple[NamedGroup, ...]:
    """``--groups X25519MLKEM768,x25519,P-256`` (OpenSSL's spellings, any case), in preference order.

    Which version can use which group is checked later, once ``--tls`` is known (:func:`groups_for`)."""
    groups: list[NamedGroup] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        code = GROUP_NAMES.get(_GROUP_ALIASES.get(name, name))
        if code is None:
            known = ", ".join(g.name for g in GROUP_NAMES.values())
            raise argparse.ArgumentTypeError(f"unknown group {raw.strip()!r}: use {known}")
        if code in groups:
            raise argparse.ArgumentTypeError(f"a group appears twice in {text!r}")
        groups.append(code)
    return tuple(groups)


def groups_for(groups: tuple[NamedGroup, ...], version: str) -> tuple[NamedGroup, ...]:
    """The ``--groups`` a ``--tls`` version can use; CommandError (exit 2) for one it cannot.

    TLS 1.2's table (ECDHE and DHE, tls/key_exchange.py) and TLS 1.3's (key shares, tls/key_share13.py)
    overlap but differ: the post-quantum hybrid is 1.3's only, ffdhe3072 1.2's only.  With ``auto`` every
    group must be one of either, and each version takes the ones it knows (net.tls._make_client)."""
    for code in groups:
        in12, in13 = code in GROUPS, code in KEY_SHARE_GROUPS13
        if version == "1.2" and not in12:
            raise CommandError(f"{code.name} is a TLS 1.3 group: use it with --tls 1.3 or auto", EXIT_USAGE)
        if version == "1.3" and not in13:
            known = ", ".join(g.name for g in KEY_SHARE_GROUPS13)
            raise CommandError(f"{code.name} is not a TLS 1.3 group we run: use {known}", EXIT_USAGE)
    return groups


def _add_groups(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument(
        "--groups", type=_groups, metavar="LIST",
        help=f"key exchange groups to {role}, comma-separated in preference order, as OpenSSL names them "
        f"(from {', '.join(g.name for g in GROUP_NAMES.values())}; P-256, P-384 too)",
    )


def parse_ciphersuites13(values: list[str]) -> list[int]:
    """``--ciphersuites TLS_AES_128_GCM_SHA256,...`` -> TLS 1.3 suite codes in order; CommandError (exit 2)."""
    by_name = {suite.name.lower(): code for code, suite in SUITES13.items()}
    suites: list[int] = []
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            code = by_name.get(name.lower())
            if code is None:
                known = ", ".join(suite.name for suite in SUITES13.values())
                raise CommandError(f"unknown TLS 1.3 cipher suite {name!r}; known: {known}", EXIT_USAGE)
            if code not in suites:
                suites.append(code)
    return suites


def _early_data_size(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_EARLY_DATA:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes from 1 to {MAX_EARLY_DATA}, not {text!r}")
    return int(text)


def explain_failure(error: BaseException, peer: str = "server") -> str:
    """One line: what went wrong, and which alert ended the handshake (sent by us or by the ``peer``)."""
    if isinstance(error, CertificateError):
        return f"certificate verification failed: {error} (we sent alert {error.tls_alert.name})"
    if isinstance(error, PeerAlert):
        return f"the {peer} ended the handshake: {error}"
    if isinstance(error, ProtocolError):
        return f"handshake failed: {error} (we sent alert {error.tls_alert.name})"
    if isinstance(error, ConnectionTimeout):
        return f"timed out: {error}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: is the server running on that port?"
    if isinstance(error, OSError):
        return f"network error: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


# -- tls get -----------------------------------------------------------------------------------------
def _check_url(url: str) -> None:
    """Refuse, in one line, a URL ``tls_get`` could not use: checked before any connection is made."""
    example = "expected a URL like https://localhost:8443/"
    if not url.isascii() or any(character.isspace() or not character.isprintable() for character in url):
        # A space or CR LF in the path would end up in the request line; curl refuses them too.
        raise CommandError(
            f"{example}: {url!r} holds spaces, control or non-ASCII characters (percent-encode them: %20)",
            EXIT_USAGE,
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as error:  # "Invalid IPv6 URL" for https://[::1/, "Port out of range 0-65535"
        raise CommandError(f"{example}, not {url!r} ({error})", EXIT_USAGE) from None
    if parts.scheme != "https" or not parts.hostname:
        raise CommandError(f"{example}, not {url!r}", EXIT_USAGE)
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        try:
            check_dns_name(parts.hostname)
        except ValueError as error:
            raise CommandError(f"bad host in the URL: {error}", EXIT_USAGE) from None


def _check_version_options(args: argparse.Namespace) -> None:
    """Refuse, in one line (exit 2), an option the chosen ``--tls`` cannot honour, before connecting.

    TLS 1.2's own features (renegotiation, OCSP stapling as we run it, session IDs, its cipher suite names)
    do not exist in TLS 1.3, and 1.3's (KeyUpdate, 0-RTT) not in 1.2.  With ``auto`` the server picks the
    version: TLS 1.2's options are refused (name the version you mean), TLS 1.3's are kept (0-RTT needs a 1.3
    ticket anyway; KeyUpdate on a connection the server made 1.2 fails in one line, exit 1)."""
    only12 = [flag for flag, given in (
        ("--renegotiate", args.renegotiate), ("--status", args.status), ("--no-tickets", args.no_tickets),
    ) if given]  # fmt: skip
    if only12 and args.tls != "1.2":
        raise CommandError(f"{only12[0]} is TLS 1.2's (TLS 1.3 has no such thing{_instead(only12[0])}): "
                           f"add --tls 1.2", EXIT_USAGE)  # fmt: skip
    if args.cipher and args.tls == "1.3":
        raise CommandError("--cipher names TLS 1.2 suites; TLS 1.3's are chosen with --ciphersuites", EXIT_USAGE)
    if args.ciphersuites and args.tls == "1.2":
        raise CommandError("--ciphersuites names TLS 1.3 suites; TLS 1.2's are chosen with --cipher", EXIT_USAGE)
    only13 = [flag for flag, given in (("--early-data", args.early_data), ("--key-update", args.key_update)) if given]
    if only13 and args.tls == "1.2":
        raise CommandError(f"{only13[0]} is TLS 1.3's: use --tls 1.3 or auto", EXIT_USAGE)
    if args.early_data and not args.reconnect:
        raise CommandError(
            "--early-data needs --reconnect N: 0-RTT data is sent with a ticket from an earlier connection", EXIT_USAGE
        )


def _instead(flag: str) -> str:
    return {"--renegotiate": "; --key-update renews its keys"}.get(flag, "")


def run_get(args: argparse.Namespace) -> int:
    _check_url(args.url)
    if args.no_tickets and not args.reconnect:
        raise CommandError("--no-tickets needs --reconnect: it says how the reconnections resume", EXIT_USAGE)
    _check_version_options(args)
    suites = parse_cipher_options(args.cipher)
    suites13 = parse_ciphersuites13(args.ciphersuites)
    if (args.cert is None) != (args.key is None):
        raise CommandError("--cert and --key go together: the client certificate chain and its private key", EXIT_USAGE)
    identity = load_client_identity(args.cert, args.key) if args.cert is not None else None
    if args.cafile is not None:
        if not args.cafile.is_file():  # tls_get opens it again by name: a pipe would be empty by then
            raise CommandError(f"{args.cafile} is not a regular file; --cafile takes a PEM file", EXIT_USAGE)
        load_certificates(args.cafile, EXIT_USAGE)  # a CA file with no certificate: said before connecting
    if args.insecure:
        print(
            "handshakes: warning: --insecure: the server's certificate is NOT checked; "
            "anyone on the path could be answering",
            file=sys.stderr,
        )
    options: dict[str, object] = {"fragment_size": args.fragment_size, "tls_version": args.tls}
    if suites:
        options["cipher_suites"] = suites
    if suites13:
        options["cipher_suites" if args.tls == "1.3" else "tls13_cipher_suites"] = suites13
    if args.max_body is not None:
        options["max_body_bytes"] = args.max_body
    if identity is not None:
        options["client_certificate_chain"], options["client_private_key"] = identity
    if args.status:
        options["request_ocsp_status"] = True
    if args.groups is not None:
        options["groups"] = groups_for(args.groups, args.tls)
        if args.tls != "1.2":
            options["key_share_groups"] = first_key_shares(args.groups)
    if args.renegotiate:
        options["renegotiate"] = True
    if args.early_data:
        options["early_data"] = True
    if args.key_update:
        options["key_update"] = True
    # One URL, one server: the store keeps its latest session (TLS 1.2) or ticket (TLS 1.3, each offered once).
    store = ClientSessionStore(max_entries=1) if args.reconnect else None
    if args.reconnect and args.tls == "1.2":
        options["session_ticket"] = not args.no_tickets
    number = 0
    for connection in range(1, args.reconnect + 2):
        response = _fetch(args, options, session_store=store)
        if args.reconnect or args.renegotiate:
            # Every handshake of the connection: its first (full or resumed), then each renegotiation, ours
            # or one the server asked for.
            for handshake in response.handshakes:
                number += 1
                kind = "renegotiated" if handshake.renegotiation else handshake_kind(response.resumed_by)
                print(f"handshake {number}: {kind}", file=sys.stderr, flush=True)
        if args.reconnect or args.early_data or args.key_update:
            print(f"connection {connection}: {connection_summary(response, args)}", file=sys.stderr, flush=True)
        if args.renegotiate and not response.renegotiated:
            print("renegotiation declined by the server (no_renegotiation): the keys stay", file=sys.stderr, flush=True)
    handshake = response.handshake
    sent = f", client certificate {handshake.client_subject}" if handshake.client_subject else ""
    suite = cipher_suite_name(handshake.cipher_suite) + _group_text(handshake.group, response.transcript)
    if handshake.hello_retry_request:
        suite += " (after a HelloRetryRequest)"
    print(f"* {version_name(handshake.version)}, {suite}{sent}, HTTP {response.status}", file=sys.stderr)
    if args.status:
        print(f"* {stapled_summary(handshake.stapled_ocsp_response)}", file=sys.stderr)
    sys.stdout.write(response.body.decode("utf-8", errors="replace"))
    if not response.body.endswith(b"\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def first_key_shares(groups: Sequence[NamedGroup]) -> list[NamedGroup]:
    """The key shares of the first ClientHello for ``--groups``: one for the first TLS 1.3 group listed, as
    OpenSSL's s_client sends; the hybrid X25519MLKEM768 brings x25519's along when the list has it (as browsers
    send both: a server without ML-KEM then needs no HelloRetryRequest).  Any other group listed can still be
    asked for with HelloRetryRequest."""
    usable = [g for g in groups if g in KEY_SHARE_GROUPS13]
    if not usable:
        return []
    shares = usable[:1]
    if shares[0] == NamedGroup.X25519MLKEM768 and NamedGroup.x25519 in usable:
        shares.append(NamedGroup.x25519)
    return shares


def version_name(version: int) -> str:
    """``TLS 1.3`` for 0x0304, ``TLS 1.2`` for 0x0303."""
    return {0x0304: "TLS 1.3", 0x0303: "TLS 1.2"}.get(version, f"version 0x{version:04x}")


def connection_summary(response: TLSResponse, args: argparse.Namespace) -> str:
    """One connection of ``--reconnect``: version, suite, group, resumed, HelloRetryRequest (and 0-RTT)."""
    handshake = response.handshake
    parts = [
        version_name(handshake.version),
        cipher_suite_name(handshake.cipher_suite),
        _group_text(handshake.group, response.transcript).removeprefix(", ") or "no group (RSA key exchange)",
        f"resumed {'yes (' + response.resumed_by + ')' if response.resumed_by else 'no'}",
    ]
    if handshake.version == ProtocolVersion.TLS1_3:
        parts.append(f"HRR {'yes' if handshake.hello_retry_request else 'no'}")
        if args.early_data:
            parts.append(f"early data {handshake.early_data or 'not sent'}")
        if args.key_update:
            parts.append("KeyUpdate sent (update_requested)")
    return ", ".join(parts)


def _fetch(
    args: argparse.Namespace, options: dict[str, object], session_store: ClientSessionStore | None = None
) -> TLSResponse:
    """One ``tls_get`` with the command's options (offering and keeping ``session_store``'s session); with
    ``--trace`` its records on stderr; CommandError (exit 1, one line naming the cause) when it fails."""
    from ..net.tls import tls_get  # imported here so `tcp` and `pki` work even if tls is broken

    try:
        response = tls_get(
            args.url, cafile=args.cafile, verify=not args.insecure, keylog_path=args.keylog,
            timeout=args.timeout, session_store=session_store, **options,
        )
    except (HandshakeError, OSError) as error:
        exchange = error.exchange if isinstance(error, HandshakeError) else None
        if args.trace and exchange is not None and exchange.transcript:
            print(render_transcript(exchange.transcript), file=sys.stderr)
        if isinstance(error, HTTPResponseError):  # the TLS was fine; the page was not (too long, cut short...)
            raise CommandError(f"bad HTTP response: {error}") from None
        raise CommandError(explain_failure(error)) from None
    except ValueError as error:  # an option tls_get refused (a CA file that is not PEM, ...)
        raise CommandError(str(error), EXIT_USAGE) from None
    if args.trace:
        print(render_transcript(response.transcript), file=sys.stderr)
        for note in trace_notes(response):
            print(f"* {note}", file=sys.stderr)
        print(file=sys.stderr)
    return response


def trace_notes(response: TLSResponse) -> list[str]:
    """What ``--trace`` adds under a TLS 1.3 transcript: why there were two ClientHellos, what became of 0-RTT."""
    handshake = response.handshake
    if handshake.version != ProtocolVersion.TLS1_3:
        return []
    notes = []
    if handshake.hello_retry_request:
        offered = [name_of(NamedGroup, g) for g in _first_key_shares(response.transcript)]
        notes.append(
            f"HelloRetryRequest: our first ClientHello carried key shares for {', '.join(offered) or 'no group'}; "
            f"the server wanted {name_of(NamedGroup, handshake.group)}, so a second ClientHello sent a share for it "
            "(one more round trip)"
        )
    if handshake.early_data is not None:
        notes.append(f"0-RTT: the request went as early data, which the server {handshake.early_data}"
                     + ("" if handshake.early_data == "accepted" else "; it was sent again after the handshake"))
    notes.append("TLS 1.3: every record after ServerHello is encrypted; the plaintext under each is what our "
                 "client decrypted (handshake keys, then application keys)")
    return notes


def _first_key_shares(transcript: Sequence[TranscriptEntry]) -> list[int]:
    for entry in transcript:
        for message in entry.messages:
            if isinstance(message, ClientHello):
                shares = message.extension(ExtensionType.key_share)
                return [entry.group for entry in getattr(shares, "client_shares", [])]
    return []


def _group_text(group: int | None, transcript: Sequence[TranscriptEntry] = ()) -> str:
    """``", group x25519"`` for an ECDHE/DHE handshake, nothing for RSA key exchange (no ephemeral group).

    A DHE server may send a prime with no code point (OpenSSL 3.0 sends RFC 3526's group 14 when the
    client names no RFC 7919 group it has): the ServerKeyExchange in the ``transcript`` says which.
    """
    if group is not None:
        return f", group {name_of(NamedGroup, group)}"
    for entry in transcript:
        for message in entry.messages:
            if isinstance(message, ServerKeyExchange) and isinstance(message.params, ServerDHParams):
                params = message.params
                found = ffdhe_group_for(int.from_bytes(params.p, "big"), int.from_bytes(params.g, "big"))
                return f", group {found.name if found else f'unnamed {len(params.p) * 8}-bit DH prime'}"
    return ""


def stapled_summary(der: bytes | None) -> str:
    """One line on a stapled OCSP response: what it says, read with ``cryptography`` (not validated)."""
    if der is None:
        return "OCSP: no response stapled"
    return f"OCSP: a response was stapled ({len(der)} bytes): {_ocsp_reading(der)}"


def _ocsp_reading(der: bytes) -> str:
    from cryptography.x509 import ocsp

    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        return "it does not parse as an OCSP response"
    status = response.response_status.name.lower()
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"OCSP Response Status {status}, no certificate status"
    next_update = response.next_update_utc.isoformat() if response.next_update_utc else "none"
    revoked = (
        f", revoked at {response.revocation_time_utc.isoformat()}" if response.revocation_time_utc is not None else ""
    )
    return (
        f"OCSP Response Status {status}, cert status {response.certificate_status.name.lower()}{revoked}, "
        f"thisUpdate {response.this_update_utc.isoformat()}, nextUpdate {next_update}"
    )


# -- tls serve ---------------------------------------------------------------------------------------
def _read_pem(path: Path, exit_status: int = EXIT_FAILURE) -> bytes:
    """At most :data:`MAX_PEM_BYTES` of ``path``: a chain or a key is kilobytes, and /dev/zero never ends."""
    with path.open("rb") as file:
        data = file.read(MAX_PEM_BYTES + 1)
    if len(data) > MAX_PEM_BYTES:
        raise CommandError(
            f"{path} is larger than {MAX_PEM_BYTES >> 20} MiB: not a PEM certificate or key", exit_status
        )
    return data


def load_certificates(path: Path, exit_status: int = EXIT_FAILURE) -> list[x509.Certificate]:
    """The certificates of a PEM file, in order; CommandError naming the file when there are none to read."""
    try:
        return x509.load_pem_x509_certificates(_read_pem(path, exit_status))
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}", exit_status) from None
    except ValueError:  # cryptography's text names its FAQ, not the file; one line that names the file
        raise CommandError(
            f"{path} holds no certificate we can read (expected PEM: -----BEGIN CERTIFICATE-----)", exit_status
        ) from None


def _load_private_key(key_path: Path) -> object:
    try:
        return serialization.load_pem_private_key(_read_pem(key_path), password=None)
    except OSError as error:
        raise CommandError(f"cannot read {key_path}: {error.strerror or error}") from None
    except TypeError:  # "Password was not given but private key is encrypted"
        raise CommandError(f"{key_path} is encrypted; give the key without a passphrase") from None
    except ValueError:
        raise CommandError(
            f"{key_path} holds no private key we can read (expected PEM: -----BEGIN PRIVATE KEY-----)"
        ) from None


def _public_der(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_client_identity(cert_path: Path, key_path: Path) -> tuple[list[x509.Certificate], object]:
    """The client's chain (leaf first) and private key for mutual TLS; CommandError when they do not load
    or do not belong together."""
    chain = load_certificates(cert_path, EXIT_USAGE)
    private_key = _load_private_key(key_path)
    signs = (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)
    if not isinstance(private_key, signs) and not (
        isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(private_key.curve, ec.SECP256R1)
    ):
        raise CommandError(
            f"{key_path} holds {_key_kind(private_key)} key; a client certificate's key must be RSA, "
            "ECDSA P-256 or Ed25519",
            EXIT_USAGE,
        )
    if _public_der(chain[0]) != _public_der(private_key):
        raise CommandError(f"{key_path} is not the private key of the certificate in {cert_path}", EXIT_USAGE)
    return chain, private_key


def load_server_identity(cert_path: Path, key_path: Path) -> tuple[list[bytes], object]:
    """The DER chain (leaf first) and private key from PEM files; CommandError when they do not load, the
    key is neither RSA nor ECDSA (P-256, P-384), or it is not the certificate's key (exit 2: a usage error)."""
    chain = load_certificates(cert_path)
    private_key = _load_private_key(key_path)
    if not isinstance(private_key, rsa.RSAPrivateKey) and not (
        isinstance(private_key, ec.EllipticCurvePrivateKey)
        and isinstance(private_key.curve, ec.SECP256R1 | ec.SECP384R1)
    ):
        # Checked before anything compares keys: RSA key exchange and *_RSA_* signatures need an RSA key,
        # *_ECDSA_* suites an ECDSA one on a curve we also do ECDHE with.
        raise CommandError(
            f"{key_path} holds {_key_kind(private_key)} key; a server key must be RSA or ECDSA P-256/P-384",
            EXIT_USAGE,
        )
    if _public_der(chain[0]) != _public_der(private_key):
        raise CommandError(f"{key_path} is not the private key of the certificate in {cert_path}", EXIT_USAGE)
    return [certificate.public_bytes(serialization.Encoding.DER) for certificate in chain], private_key


def load_server_identities(certs: list[Path], keys: list[Path]) -> list[tuple[list[bytes], object]]:
    """``--cert A --key A --cert B --key B`` -> the identities, paired by position; at most one RSA and one
    ECDSA (the server picks by suite: one of each kind is all it can choose between)."""
    if len(certs) != len(keys):
        raise CommandError(
            f"{len(certs)} --cert but {len(keys)} --key: give each certificate chain its private key, in order",
            EXIT_USAGE,
        )
    if len(certs) > 2:
        raise CommandError("at most two --cert/--key pairs: one RSA and one ECDSA identity", EXIT_USAGE)
    identities = [load_server_identity(cert, key) for cert, key in zip(certs, keys, strict=True)]
    kinds = [isinstance(key, rsa.RSAPrivateKey) for _, key in identities]
    if len(kinds) == 2 and kinds[0] == kinds[1]:
        kind = "RSA" if kinds[0] else "ECDSA"
        raise CommandError(f"two {kind} identities: the second --cert/--key must be the other kind of key", EXIT_USAGE)
    return identities


def _key_kind(private_key: object) -> str:
    for kind, key_type in (
        ("an EC", ec.EllipticCurvePrivateKey),
        ("an Ed25519", ed25519.Ed25519PrivateKey),
        ("an Ed448", ed448.Ed448PrivateKey),
        ("a DSA", dsa.DSAPrivateKey),
    ):
        if isinstance(private_key, key_type):
            return kind
    return "a non-RSA"


def _report_connections(finished: queue.SimpleQueue) -> None:
    """Print one line for each connection that has finished since the last call, whatever its outcome.

    The server hands each record over once its connection is over (``on_finished``), so no connection
    can hold back the ones after it: one that closes after the handshake, or sends a request head over
    the limit, gets its own line like every other.
    """
    while True:
        try:
            record = finished.get_nowait()
        except queue.Empty:
            return
        if record.error is not None:
            print(f"connection {record.number}: failed: {explain_failure(record.error, 'client')}", flush=True)
        else:
            handshake = record.handshake
            if handshake is None:
                suite = "no handshake"
            else:
                suite = f"{version_name(handshake.version)}, {cipher_suite_name(handshake.cipher_suite)}"
                suite += _group_text(handshake.group)
                if handshake.hello_retry_request:
                    suite += " (after a HelloRetryRequest)"
            if record.resumed_by is not None:
                suite += f", {handshake_kind(record.resumed_by)}"
            if handshake is not None and handshake.early_data is not None:
                suite += f", early data {handshake.early_data}"
            if handshake is not None and handshake.renegotiation:
                suite += f", renegotiated ({handshake.renegotiation})"
            client = f", client certificate {record.client_subject}" if record.client_subject else ""
            if record.handshake is not None and record.handshake.stapled_ocsp_response is not None:
                client += ", OCSP response stapled"
            print(f"connection {record.number}: {suite}{client}: {record.outcome}", flush=True)


def load_ocsp_response(path: Path) -> bytes:
    """The DER OCSP response in ``path`` (at most what a CertificateStatus carries); CommandError (exit 2)
    when it cannot be read, is too large, or does not parse as an OCSP response."""
    from cryptography.x509 import ocsp

    from ..tls.messages import MAX_STAPLED_OCSP_RESPONSE

    try:
        with path.open("rb") as file:
            der = file.read(MAX_STAPLED_OCSP_RESPONSE + 1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None
    if len(der) > MAX_STAPLED_OCSP_RESPONSE:
        raise CommandError(
            f"{path} is larger than {MAX_STAPLED_OCSP_RESPONSE} bytes, the most a CertificateStatus carries "
            "(OpenSSL's clients refuse more)",
            EXIT_USAGE,
        )
    try:
        ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise CommandError(
            f"{path} is not a DER OCSP response (openssl ocsp -respout writes one)", EXIT_USAGE
        ) from None
    return der


def _check_serve_versions(args: argparse.Namespace) -> None:
    """One line (exit 2) for a ``tls serve`` option the chosen ``--tls`` cannot honour."""
    if args.tls != "1.2":
        for flag, given, why in (
            ("--renegotiate", args.renegotiate, "TLS 1.3 has no renegotiation"),
            ("--ocsp-response", args.ocsp_response is not None, "our TLS 1.3 server does not staple yet"),
        ):
            if given:
                raise CommandError(f"{flag} is TLS 1.2's ({why}): add --tls 1.2", EXIT_USAGE)
    if args.cipher and args.tls == "1.3":
        raise CommandError("--cipher names TLS 1.2 suites; TLS 1.3's are chosen with --ciphersuites", EXIT_USAGE)
    if args.ciphersuites and args.tls == "1.2":
        raise CommandError("--ciphersuites names TLS 1.3 suites; TLS 1.2's are chosen with --cipher", EXIT_USAGE)
    if args.early_data and args.tls == "1.2":
        raise CommandError("--early-data is TLS 1.3's 0-RTT: use --tls 1.3 or both", EXIT_USAGE)
    if args.early_data and args.no_resumption:
        raise CommandError("--early-data needs resumption: 0-RTT comes with a ticket from an earlier connection",
                           EXIT_USAGE)  # fmt: skip


def run_serve(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.public:
        raise CommandError(
            f"refusing to serve on {args.host}, which is not a loopback address; add --public if you mean it",
            EXIT_USAGE,
        )
    _check_serve_versions(args)
    suites = parse_cipher_options(args.cipher)  # --port was checked by its argument type (arguments.port)
    suites13 = parse_ciphersuites13(args.ciphersuites)
    if args.require_client_cert and args.client_ca is None:
        raise CommandError("--require-client-cert needs --client-ca: the CAs a client certificate must come from",
                           EXIT_USAGE)
    identities = load_server_identities(args.cert, args.key)
    chain, private_key = identities[0]
    versions = {"1.2": ("1.2",), "1.3": ("1.3",), "both": ("1.3", "1.2")}[args.tls]
    options: dict[str, object] = {
        "keylog_path": args.keylog, "fragment_size": args.fragment_size, "tls_versions": versions,
    }  # fmt: skip
    if len(identities) > 1:
        options["identities"] = identities[1:]
    if args.groups is not None:
        groups = groups_for(args.groups, "auto" if args.tls == "both" else args.tls)
        # Each version takes the groups it runs; a version left with none would fail every handshake.
        for version, table, key in (("1.2", GROUPS, "groups"), ("1.3", KEY_SHARE_GROUPS13, "groups13")):
            if version in versions:
                options[key] = [g for g in groups if g in table]
                if not options[key]:
                    raise CommandError(f"--groups names no TLS {version} group: add one, or serve the other "
                                       "version only (--tls)", EXIT_USAGE)  # fmt: skip
    if suites13:
        options["tls13_cipher_suites"] = suites13
    if args.early_data:
        options["max_early_data_size"] = args.early_data
    if args.client_ca is not None:
        # Parsed here, once: a file with no certificate is a one-line error before the server starts.
        options["client_ca"] = load_certificates(args.client_ca, EXIT_USAGE)
        options["require_client_certificate"] = args.require_client_cert
    if suites:
        options["cipher_suites"] = suites
    if args.no_resumption:
        options["resumption"] = False
    if args.renegotiate:
        options["renegotiate"] = True
    stapled = ""
    if args.ocsp_response is not None:
        der = load_ocsp_response(args.ocsp_response)
        options["ocsp_response"] = der
        stapled = f"stapling {args.ocsp_response} for clients that ask: {_ocsp_reading(der)}"
    from ..net.tls import TLSPageServer  # imported here so `tcp` and `pki` work even if tls is broken

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    finished: queue.SimpleQueue = queue.SimpleQueue()  # records of finished connections, from the server's thread
    try:
        server = TLSPageServer(
            chain, private_key, host=args.host, port=args.port, allow_public=args.public,
            on_finished=finished.put, page=SERVE_PAGE, **options,  # type: ignore[arg-type]
        )
        with server:
            shown_host = "localhost" if args.host == "127.0.0.1" else args.host
            # Nothing after the URL has a colon: scripts take the port from the last one.
            if not server.resumption:
                resumes = "no session resumption"
            elif args.tls == "1.3":
                resumes = "sessions resume with tickets"
            else:
                resumes = "sessions resume by ID and by ticket"
            served = " and ".join(f"TLS {v}" for v in versions)
            zero_rtt = f", 0-RTT up to {args.early_data} bytes behind a replay window" if args.early_data else ""
            print(
                f"serving https://{shown_host}:{server.port}/ with our TLS server ({served}; {resumes}{zero_rtt}; "
                "Ctrl-C to stop)",
                flush=True,
            )
            if stapled:
                print(stapled, flush=True)
            while not stop.wait(0.2):
                _report_connections(finished)
        _report_connections(finished)  # the connections that ended while the server stopped
    except ValueError as error:  # the server core refused its options (a key that is not RSA, ...)
        raise CommandError(f"cannot serve: {error}", EXIT_USAGE) from None
    except OSError as error:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {error.strerror or error}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0


# -- tls decode --------------------------------------------------------------------------------------
MAX_CAPTURE_BYTES = 64 << 20  # the most of a capture tls decode reads (docs/limits.md)
MAX_KEYLOG_BYTES = 16 << 20


def _read_capture(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CAPTURE_BYTES + 1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_CAPTURE_BYTES:
        raise CommandError(
            f"{path} is larger than {MAX_CAPTURE_BYTES >> 20} MiB, the most tls decode reads "
            "(cut it first: editcap -r capture.pcap part.pcap 1-1000)"
        )
    return data


def _decode_keylog(path: Path) -> KeyLog:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_KEYLOG_BYTES + 1)
    except OSError as error:
        raise CommandError(f"cannot read the key log {path}: {error.strerror or error}") from None
    if len(raw) > MAX_KEYLOG_BYTES:
        raise CommandError(f"{path} is larger than {MAX_KEYLOG_BYTES >> 20} MiB: not a key log")
    log = parse_keylog(raw.decode("ascii", errors="replace"))
    if log.skipped:
        first_line, reason = log.skipped[0]
        more = f" (and {len(log.skipped) - 1} more)" if len(log.skipped) > 1 else ""
        print(f"handshakes: {path}: line {first_line} skipped: {reason}{more}", file=sys.stderr)
    if not log.entries:
        raise CommandError(
            f"{path} holds no key log line we can read (expected CLIENT_RANDOM <hex> <hex>, or a TLS 1.3 label "
            "such as CLIENT_HANDSHAKE_TRAFFIC_SECRET <hex> <hex>)"
        )
    return log


def render_capture_connection(index: int, connection: TLSCaptureConnection) -> str:
    """One connection: who, which suite, decrypted or why not, its records, its application data as text."""
    client, server = connection.client, connection.server
    lines = [f"connection {index}: client {client[0]}:{client[1]} -> server {server[0]}:{server[1]}, "
             f"{connection.suite_name}"]  # fmt: skip
    if connection.decrypted and connection.tls13:
        hrr = ", after a HelloRetryRequest" if connection.hello_retry_request else ""
        lines.append(f"  decrypted: TLS 1.3{hrr}, with {', '.join(connection.secrets_used)} from the key log")
    elif connection.decrypted:
        ems = ", extended master secret" if connection.extended_master_secret else ""
        lines.append(f"  decrypted: master secret from {connection.key_source}{ems}")
    else:
        lines.append(f"  NOT decrypted: {connection.problem}")
    lines += [f"  note: {note}" for note in connection.notes]
    for number, entry in enumerate(connection.entries, start=1):
        lines.append("")
        if isinstance(entry, UndecryptedRecord):
            # The record as it travelled (header, opaque ciphertext), without the plaintext section it lacks.
            text = render_entry(number, entry).split("\n--- decrypted with", 1)[0]
            lines.append(text.replace("  [encrypted]", "  [encrypted, not decrypted]", 1))
        else:
            lines.append(render_entry(number, entry))
    for direction, arrow in ((CLIENT_TO_SERVER, "client -> server"), (SERVER_TO_CLIENT, "server -> client")):
        data = connection.application_data(direction)
        if data:
            lines.append("")
            lines.append(f"--- application data, {arrow} ({len(data)} bytes, as text):")
            lines.append(data.decode("utf-8", errors="backslashreplace"))
    return "\n".join(lines)


def run_decode(args: argparse.Namespace) -> int:
    keylog = _decode_keylog(args.keylog) if args.keylog is not None else None
    server_key = None
    if args.server_key is not None:
        server_key = _load_private_key(args.server_key)
        if not isinstance(server_key, rsa.RSAPrivateKey):
            raise CommandError(
                f"{args.server_key} holds {_key_kind(server_key)} key: only an RSA key decrypts a pre-master secret",
                EXIT_USAGE,
            )
    data = _read_capture(args.capture)
    try:
        connections = decode_tls_capture(data, keylog=keylog, server_key=server_key)
    except HandshakeError as error:  # DecodeError: not a pcap file, pcapng, a header that contradicts itself
        raise CommandError(f"{args.capture} is not a capture we can read: {error}") from None
    if not connections:
        raise CommandError(f"{args.capture} holds no TLS connection")
    undecrypted = [index for index, c in enumerate(connections, start=1) if not c.decrypted]
    print(f"{args.capture}: {len(connections)} TLS connection(s), {len(connections) - len(undecrypted)} decrypted")
    for index, connection in enumerate(connections, start=1):
        print()
        print(render_capture_connection(index, connection))
    for index in undecrypted:
        print(f"handshakes: connection {index} not decrypted: {connections[index - 1].problem}", file=sys.stderr)
    return EXIT_FAILURE if undecrypted else 0
