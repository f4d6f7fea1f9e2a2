"""``handshakes ssh probe [USER@]HOST[:PORT] --known-hosts FILE``: our SSH client, up to the ``none`` request.

Theory of operation
-------------------
The command runs :func:`handshake_lib.net.ssh.ssh_probe`: TCP, the identification lines, the key
exchange, the server's host key checked against ``--known-hosts`` and its signature over H, NEWKEYS,
``ssh-userauth`` and the ``none`` authentication request, whose answer lists the methods the server
offers; then it says goodbye (DISCONNECT ``BY_APPLICATION``).  It prints, on **stdout**, what was
negotiated (kex, host key algorithm, each direction's cipher and MAC), the host key's type and SHA256
fingerprint as ``ssh-keygen -lf`` shows them, whether strict key exchange (the Terrapin countermeasure)
was on, the server's identification line, and the methods.  Errors, warnings and the host key question
go to **stderr**, as ``ssh`` writes them.

The host key, as ``ssh -o StrictHostKeyChecking=...`` decides it (``ssh.known_hosts``):

* ``--known-hosts FILE`` is read once, at most 4 MiB (``KnownHosts.parse``'s limit); a missing file is
  an empty one.  A key known for ``HOST`` (``[HOST]:PORT`` off port 22) that differs from the server's
  is refused with OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED" warning, whatever the options.
* An unknown key is refused (``StrictHostKeyChecking yes``) unless standard input is a terminal: then
  the question ``ssh`` asks is asked ("Are you sure you want to continue connecting
  (yes/no/[fingerprint])?"), and answered as OpenSSH's ``confirm()`` reads it: ``yes`` (any case) or the
  fingerprint itself accept; ``no``, an empty line or the end of input refuse; anything else asks
  again ("Please type 'yes', 'no' or the fingerprint: ").  The time a person takes to answer is not
  counted in ``--timeout`` (``ssh_probe`` pauses its deadline), but the question waits at most
  :data:`ASK_SECONDS`, sshd's own ``LoginGraceTime``: the server hangs up after that anyway.
* ``--accept-new`` adds an unknown key without asking (``StrictHostKeyChecking accept-new``).  A key
  accepted either way is appended to FILE (created 0600 if missing; its folder must exist) as ``ssh``
  appends it, a hashed host name and the key, and ``Warning: Permanently added ...`` is printed (a file
  that cannot be written is, as for ``ssh``, a warning: the connection itself succeeded).
  Unlike ``ssh``, which writes the line before it has checked the server's signature, the line is
  written only once the probe has succeeded: a server that cannot prove it holds the key is not added.

``--kex``, ``--cipher``, ``--mac`` and ``--host-key-algorithms`` take comma-separated names, first choice
first, among those the library implements (a name it does not is refused in one line that lists the
choices); they narrow what our client offers (:class:`~handshake_lib.ssh.connection.Algorithms`), so a
server that shares none is refused with the category named ("no matching cipher client to server
algorithm").

``--trace`` prints every packet of the transcript in order, on stdout before the summary (``tls get``
writes its trace to stderr to keep the page clean; here the report is all there is): the
identification lines, then each packet decrypted (the clear packet, with the MAC or tag as it
travelled), annotated field by field: ``packet_length``, ``padding_length``, the message's own fields
inside ``payload``, the padding and the MAC; then the inputs of the exchange hash H, once.  On a
failure the packets exchanged so far are printed before the error.  H's inputs include K, the shared
secret: a trace is as sensitive as a key log (which is the point for a learner, and why it is opt-in).

``--keylog FILE`` appends the session's secrets in the format of Wireshark's SSH dissector
(``ssh.keylog_file``), through :class:`handshake_lib.ssh.keylog.KeyLogWriter`.

Exit status: 0 the server answered the ``none`` request; 1 the connection was refused or failed (a
host key refused, no common algorithm, the server's disconnect, the network, a timeout); 2 the command
line was wrong.  Limits: the user name is at most :data:`MAX_USER` characters, an answer to the question
at most :data:`MAX_ANSWER` bytes; ``CheckHostIP`` is not done (a second lookup by address, which ``ssh``
skips anyway when HOST is an address).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import ipaddress
import os
import select
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    ConnectionLost,
    ConnectionTimeout,
    DecodeError,
    HandshakeError,
    HostKeyNotVerifiable,
    PeerDisconnect,
    ProtocolError,
)
from ..hostnames import check_dns_name
from ..ssh.constants import CIPHERS, HOST_KEY_ALGORITHMS, KEX_ALGORITHMS, MACS
from ..ssh.keylog import KeyLogWriter
from ..ssh.known_hosts import MAX_FILE_BYTES, HostKeyPolicy, HostKeyQuestion, KnownHosts
from ..wire import Span
from .arguments import MAX_SECONDS, append_file, seconds
from .errors import EXIT_USAGE, CommandError

if TYPE_CHECKING:  # the SSH core and the network layer are imported when the command runs
    from ..net.ssh import ProbeResult, Secrets
    from ..ssh.connection import Algorithms, TranscriptEntry
    from ..ssh.exchange_hash import ExchangeHash

__all__ = [
    "AGAIN",
    "ASK_SECONDS",
    "DEFAULT_TIMEOUT",
    "answer_accepts",
    "ask_on_terminal",
    "describe_ssh_message",
    "explain_ssh_failure",
    "packet_spans",
    "parse_destination",
    "register",
    "render_exchange_hash",
    "render_ssh_entry",
    "render_ssh_transcript",
    "run_probe",
]

DEFAULT_TIMEOUT = 10.0  # tls get's 5, doubled: group16's pow in Python and a far server's round trips
DEFAULT_PORT = 22
ASK_SECONDS = 120.0  # sshd's default LoginGraceTime: after that the server has hung up anyway
MAX_ANSWER = 1024  # an answer is "yes", "no" or a fingerprint (50 characters); more is not an answer
MAX_USER = 256
FALLBACK_USER = "handshakes"
AGAIN = "Please type 'yes', 'no' or the fingerprint: "

# The names the library offers, per option, in its order of preference: what the one-line refusal lists
# (ssh.constants: never "none", which ssh.protection also knows, for the packets before the first NEWKEYS).
_CHOICES: dict[str, tuple[str, ...]] = {
    "kex": KEX_ALGORITHMS,
    "cipher": CIPHERS,
    "mac": MACS,
    "host key": HOST_KEY_ALGORITHMS,
}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "probe", help="run our SSH client up to the 'none' authentication request", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("destination", metavar="[USER@]HOST[:PORT]", help="the server ([::1]:2222 for IPv6)")
    parser.add_argument(
        "--known-hosts", type=_known_hosts_path, required=True, metavar="FILE",
        help="known_hosts file in OpenSSH's format (a missing file is an empty one)",
    )  # fmt: skip
    parser.add_argument(
        "--accept-new", action="store_true",
        help="add an unknown host key to FILE (created if missing) without asking; a changed key is still refused",
    )  # fmt: skip
    for option, category in (
        ("--kex", "kex"), ("--cipher", "cipher"), ("--mac", "mac"), ("--host-key-algorithms", "host key"),
    ):  # fmt: skip
        parser.add_argument(
            option, type=_algorithm_list(category), metavar="LIST",
            help=f"{category} algorithms to offer, comma-separated, first choice first "
            f"(default: {','.join(_CHOICES[category])})",
        )  # fmt: skip
    parser.add_argument(
        "--trace", action="store_true", help="print every packet, decrypted and annotated, and the inputs of H"
    )
    parser.add_argument(
        "--keylog", type=append_file, metavar="FILE", help="append the session's secrets (Wireshark's SSH key log)"
    )
    parser.add_argument(
        "--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"seconds for the whole exchange (default {DEFAULT_TIMEOUT:g}, at most {MAX_SECONDS:g}); "
        "time spent answering the host key question does not count",
    )  # fmt: skip
    parser.set_defaults(command=run_probe)


# -- arguments ---------------------------------------------------------------------------------------
def _known_hosts_path(text: str) -> Path:
    """A known_hosts path: not empty, not a folder; a missing file is allowed (it reads as empty)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a known_hosts file")
    if path.exists():
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        except OSError as error:
            raise argparse.ArgumentTypeError(f"cannot read {text}: {error.strerror or error}") from None
    return path


def _algorithm_list(category: str) -> Callable[[str], tuple[str, ...]]:
    choices = _CHOICES[category]

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(","))
        if not text.strip() or any(not name for name in names):
            raise argparse.ArgumentTypeError(f"expected comma-separated {category} algorithms, not {text!r}")
        for name in names:
            if name not in choices:
                shown = name if len(name) <= 64 else name[:64] + "..."
                raise argparse.ArgumentTypeError(
                    f"{category} algorithm {shown!r} is not one we implement; choose from {','.join(choices)}"
                )
        if len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"a {category} algorithm appears twice in {text!r}")
        return names

    parse.__name__ = f"{category} list"
    return parse


def _check_port(text: str, destination: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise CommandError(f"bad port {text!r} in {destination!r}: expected 1 to 65535", EXIT_USAGE)
    return int(text)


def parse_destination(destination: str) -> tuple[str | None, str, int]:
    """``[USER@]HOST[:PORT]`` -> (user or None, host, port), as ``ssh`` reads it; CommandError (exit 2).

    The user ends at the *last* ``@`` (ssh's ``strrchr``); an IPv6 address with a port goes in brackets
    (``[::1]:2222``); a bare IPv6 address (two colons or more) has no port.
    """
    usage = "expected [USER@]HOST[:PORT], like root@127.0.0.1:2222 or [::1]:2222"
    user, at, rest = destination.rpartition("@")
    if at and not user:
        raise CommandError(f"empty user name in {destination!r}: {usage}", EXIT_USAGE)
    if at and (len(user) > MAX_USER or not user.isprintable() or any(char.isspace() for char in user)):
        raise CommandError(
            f"bad user name in {destination!r}: at most {MAX_USER} printable characters, no spaces", EXIT_USAGE
        )
    port = DEFAULT_PORT
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise CommandError(f"no ']' after the address in {destination!r}: {usage}", EXIT_USAGE)
        if after:
            if not after.startswith(":"):
                raise CommandError(f"unexpected {after!r} after ']' in {destination!r}: {usage}", EXIT_USAGE)
            port = _check_port(after[1:], destination)
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = _check_port(port_text, destination)
    else:
        host = rest
    if not host:
        raise CommandError(f"no host in {destination!r}: {usage}", EXIT_USAGE)
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if ":" in host:
            raise CommandError(f"{host!r} is not an IPv6 address: {usage}", EXIT_USAGE) from None
        try:
            host = check_dns_name(host)
        except ValueError as error:
            raise CommandError(f"bad host in {destination!r}: {error}", EXIT_USAGE) from None
    return (user if at else None), host, port


def _local_user() -> str:
    """The local user name, as ``ssh`` defaults to it; ``handshakes`` when the system cannot say."""
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - KeyError before Python 3.13, OSError since: no name either way
        return FALLBACK_USER
    return name if name and name.isprintable() and len(name) <= MAX_USER else FALLBACK_USER


def _read_known_hosts(path: Path) -> KnownHosts:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # one byte over the limit is enough to refuse /dev/zero
    except FileNotFoundError:
        return KnownHosts.parse(b"", str(path))
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return KnownHosts.parse(data, str(path))
    except DecodeError as error:
        raise CommandError(f"{path}: {error}") from None


def _check_writable(path: Path) -> None:
    """``--accept-new`` will append to ``path``: refuse now, in one line, what would fail after the probe."""
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise CommandError(f"cannot write {path}: the folder {folder} {what}", EXIT_USAGE)
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise CommandError(f"cannot write {path}: permission denied", EXIT_USAGE)


def _append_known_host(path: Path, known: KnownHosts, new_text: str) -> str | None:
    """Append what ``new_text`` adds to the file we read (the new line, after a newline if one was missing).

    Returns None, or why the file could not be written: like ``ssh``, a key accepted but not saved is a
    warning ("Failed to add the host to the list of known hosts"), not a failed connection.
    """
    suffix = new_text[len(known.text) :] if new_text.startswith(known.text) else new_text
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as file:
            file.write(suffix)
    except OSError as error:
        return error.strerror or str(error)
    return None


# -- the host key question ---------------------------------------------------------------------------
def answer_accepts(answer: str, fingerprint: str) -> bool | None:
    """OpenSSH's ``confirm()``: True for yes or the fingerprint, False for no or nothing, None: ask again."""
    word = answer.lstrip(" \t")
    for index, char in enumerate(word):
        if char in " \t\r\n":
            word = word[:index]
            break
    if not word or word.lower() == "no":
        return False
    if word.lower() == "yes" or word == fingerprint:
        return True
    return None


def _read_answer(deadline: float) -> str | None:
    """One line from standard input (a terminal), waiting until ``deadline``; None at the end of input."""
    fd = sys.stdin.fileno()
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None  # nobody answered while the server would still have waited
        chunk = os.read(fd, MAX_ANSWER)
        if not chunk:
            return None if not data else data.decode("utf-8", "replace")
        data += chunk
        if len(data) > MAX_ANSWER:
            return ""  # not an answer: read as "no", as a line ssh could not parse would not be yes
    return data.decode("utf-8", "replace")


def ask_on_terminal(question: HostKeyQuestion) -> bool:
    """Ask ``question`` on stderr and read the answer from the terminal on stdin, as ``ssh`` does."""
    deadline = time.monotonic() + ASK_SECONDS
    prompt = question.prompt
    while True:
        print(prompt, end="", file=sys.stderr, flush=True)
        answer = _read_answer(deadline)
        if answer is None:
            print(file=sys.stderr)
            return False
        verdict = answer_accepts(answer, question.fingerprint)
        if verdict is not None:
            return verdict
        prompt = AGAIN


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):  # no stdin at all, or a test's replacement without a descriptor
        return False


# -- --trace --------------------------------------------------------------------------------------------
_ARROWS = {"client->server": "client -> server", "server->client": "server -> client"}
_PAYLOAD_OFFSET = 5  # packet_length (4 bytes) and padding_length (1) come before the payload


def describe_ssh_message(message: object) -> str:
    """A one-line summary of a decoded SSH message; the hex dump underneath has every field."""
    from ..ssh.messages import (
        Disconnect,
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
        UserauthRequest,
    )
    from ..ssh.version import Identification

    if isinstance(message, Identification):
        return f"identification: {message.line.decode('ascii', 'backslashreplace')}"
    name = getattr(message, "name", type(message).__name__)
    if isinstance(message, KexInit):
        return (
            f"{name}: kex {','.join(message.kex_algorithms)}; host key {','.join(message.server_host_key_algorithms)}; "
            f"ciphers {','.join(message.encryption_client_to_server)}"
        )
    if isinstance(message, KexECDHInit | KexDHInit):
        return f"{name}: the client's ephemeral public value"
    if isinstance(message, KexECDHReply | KexDHReply):
        return f"{name}: the server's host key ({len(message.host_key)} bytes), public value, signature over H"
    if isinstance(message, ServiceRequest | ServiceAccept):
        return f"{name}: {message.service}"
    if isinstance(message, ExtInfo):
        return f"{name}: {', '.join(key for key, _ in message.extensions) or 'no extensions'}"
    if isinstance(message, UserauthRequest):
        return f"{name}: user {message.user!r}, service {message.service}, method {message.method}"
    if isinstance(message, UserauthFailure):
        return f"{name}: methods that can continue: {','.join(message.methods) or '(none)'}"
    if isinstance(message, UserauthBanner):
        return f"{name}: {message.message[:60]!r}"
    if isinstance(message, Disconnect):
        return f"{name}: {message.reason_name}: {message.description[:100]!r}"
    return _describe_channel_message(message, str(name))


def _describe_channel_message(message: object, name: str) -> str:
    """Messages 80-100 (RFC 4254): which channel, and what each says in a few words."""
    from ..ssh import channel_messages as cm

    if isinstance(message, cm.ChannelOpen):
        return f"{name}: {message.channel_type}, our channel {message.sender_channel}, window {message.initial_window}"
    if isinstance(message, cm.ChannelOpenConfirmation):
        return (
            f"{name}: channel {message.recipient_channel} is the peer's {message.sender_channel}, "
            f"window {message.initial_window}"
        )
    if isinstance(message, cm.ChannelOpenFailure):
        return f"{name}: channel {message.recipient_channel}: {message.description[:100]!r}"
    if isinstance(message, cm.ChannelRequest):
        fields = ""
        with contextlib.suppress(DecodeError):
            typed = cm.request_fields(message)
            if typed is not None:
                fields = " " + ", ".join(f"{key}={value!r}"[:80] for key, value in typed.describe().items())
        return f"{name}: channel {message.recipient_channel}, {message.request_type}{fields}"
    if isinstance(message, cm.ChannelData | cm.ChannelExtendedData):
        stream = " (stderr)" if isinstance(message, cm.ChannelExtendedData) else ""
        return f"{name}: channel {message.recipient_channel}, {len(message.data)} bytes{stream}"
    if isinstance(message, cm.ChannelWindowAdjust):
        return f"{name}: channel {message.recipient_channel}, {message.bytes_to_add} more bytes may come"
    if isinstance(message, cm.ChannelEOF | cm.ChannelClose | cm.ChannelSuccess | cm.ChannelFailure):
        return f"{name}: channel {message.recipient_channel}"
    if isinstance(message, cm.GlobalRequest):
        return f"{name}: {message.request_name}"
    return name


def _typed_field_spans(message: object) -> list[Span]:
    """A channel open or request's type-specific fields (``exec``'s command...), offsets into the payload;
    none for a type ``ssh.channel_messages`` does not decode or bytes that do not parse."""
    from ..ssh import channel_messages as cm

    decoders = {
        cm.ChannelOpen: cm.open_fields,
        cm.ChannelRequest: cm.request_fields,
        cm.GlobalRequest: cm.global_fields,
    }
    decoder = decoders.get(type(message))
    if decoder is None:
        return []
    try:
        fields = decoder(message)  # type: ignore[operator]
    except DecodeError:
        return []
    return list(fields.spans) if fields is not None else []


def packet_spans(entry: TranscriptEntry) -> list[Span]:
    """The clear packet's spans with the message's fields nested inside ``payload`` (offsets into the packet);
    a channel open or request's ``type_data`` has its own fields nested inside it in turn."""
    packet = entry.packet
    assert packet is not None
    message_spans: list[Span] = []
    typed = _typed_field_spans(entry.message)
    for span in entry.message_spans:
        is_raw_fields = typed and span.field.rsplit(".", 1)[-1] in ("type_data", "data") and not span.is_group
        message_spans.append(
            replace(
                span,
                offset=span.offset + _PAYLOAD_OFFSET,
                depth=span.depth + 1,
                is_group=span.is_group or bool(is_raw_fields),
            )
        )
        if is_raw_fields:
            message_spans.extend(
                replace(inner, offset=inner.offset + _PAYLOAD_OFFSET, depth=span.depth + 2 + inner.depth)
                for inner in typed
            )
            typed = []
    spans: list[Span] = []
    for span in packet.spans:
        if span.field == "packet.payload":
            spans.append(replace(span, is_group=True))
            spans.extend(message_spans)
        else:
            spans.append(span)
    return spans


def render_ssh_entry(number: int, entry: TranscriptEntry) -> str:
    """One identification line or packet: a header line, the message's summary, the annotated hex dump."""
    from ..ssh.version import Identification
    from ..viz.hexview import render_hex_text  # matplotlib and ipywidgets: only when a trace is asked for

    direction = _ARROWS.get(entry.direction, entry.direction)
    message = entry.message
    packet = entry.packet
    if packet is None:
        assert isinstance(message, Identification)
        line = message.encode()
        header = f"=== {number}: {direction}  identification line, {len(line)} bytes"
        spans = Identification.decode(message.line).spans  # at offset 0, whatever came before it
        return "\n".join([header, f"    {describe_ssh_message(message)}", render_hex_text(line, spans)])
    protected = packet.protection != "none"
    lock = f"  [encrypted: {packet.protection}]" if protected else ""
    header = (
        f"=== {number}: {direction}  {entry.name}, sequence number {packet.sequence_number}, "
        f"{len(packet.wire)} bytes{lock}"
    )
    lines = [header, f"    {describe_ssh_message(message)}"]
    if protected:
        lines.append("--- decrypted with this session's keys (the MAC or tag as it travelled):")
    lines.append(render_hex_text(packet.packet + packet.mac, packet_spans(entry)))
    return "\n".join(lines)


def render_ssh_transcript(entries: Iterable[TranscriptEntry]) -> str:
    return "\n\n".join(render_ssh_entry(number, entry) for number, entry in enumerate(entries, start=1))


def render_exchange_hash(exchange_hash: ExchangeHash) -> str:
    """The inputs of H, each annotated, and H itself."""
    from ..viz.hexview import render_hex_text

    data = exchange_hash.data
    names = ", ".join(item.name for item in exchange_hash.fields)
    return "\n".join(
        [
            f"=== the exchange hash H = {exchange_hash.hash}({names}), "
            f"{len(data)} bytes hashed ({exchange_hash.method}):",
            render_hex_text(data, exchange_hash.spans()),
            f"H = {exchange_hash.digest.hex()}",
        ]
    )


# -- the command -----------------------------------------------------------------------------------------
def _algorithms(args: argparse.Namespace) -> Algorithms | None:
    from ..ssh.connection import Algorithms

    chosen = {
        field: value
        for field, value in (
            ("kex", args.kex),
            ("ciphers", args.cipher),
            ("macs", args.mac),
            ("host_key", args.host_key_algorithms),
        )  # fmt: skip
        if value is not None
    }
    return Algorithms(**chosen) if chosen else None


def _key_logger(path: Path | None) -> Secrets | None:
    return KeyLogWriter(path) if path is not None else None


def explain_ssh_failure(error: BaseException) -> str:
    """One line: what ended the probe."""
    if isinstance(error, PeerDisconnect):
        return f"the server ended the connection: {error}"
    if isinstance(error, ProtocolError):
        return f"{error} (we sent SSH_MSG_DISCONNECT {error.ssh_disconnect.name})"
    if isinstance(error, ConnectionTimeout):
        return f"timed out: {error}"
    # ssh_probe hands socket errors over as ConnectionLost, with the socket's error as the cause.
    cause = error.__cause__ if isinstance(error, ConnectionLost) and error.__cause__ is not None else error
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused: is an SSH server running on that port?"
    if isinstance(cause, socket.gaierror):
        return f"cannot find the server's address: {cause.strerror or cause}"
    if isinstance(error, ConnectionLost):
        return f"the connection was lost: {error.strerror or error}"
    if isinstance(error, OSError):
        return f"network error: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


def _facts(result: ProbeResult, user: str, known_hosts: Path) -> list[tuple[str, str]]:
    completed = result.key_exchange
    negotiated = completed.negotiated
    host_key = result.host_key

    def mac(name: str | None, cipher: str) -> str:
        return name if name is not None else f"(implicit: {cipher} authenticates each packet)"

    if result.authenticated:
        methods = f"none needed: the server let {user!r} in without authentication"
    else:
        methods = ",".join(result.methods) or "(none)"
    decision = result.host_key_decision
    if decision.added_line is not None:
        trust = f"new, accepted for {known_hosts}" + (" (you answered yes)" if decision.asked else " (--accept-new)")
    else:
        found = decision.lookup.found
        trust = f"known: {decision.lookup.path}:{found.number}" if found is not None else "known"
    return [
        ("server", result.server_identification),
        ("kex", negotiated.kex),
        ("strict kex", "yes (Terrapin countermeasure: sequence numbers reset at NEWKEYS)" if completed.strict
         else "no (the server did not offer kex-strict-s-v00@openssh.com)"),
        ("host key", negotiated.host_key),
        ("fingerprint", host_key.fingerprint_line(decision.lookup.name)),
        ("known_hosts", trust),
        ("cipher c->s", negotiated.cipher_client_to_server),
        ("mac c->s", mac(negotiated.mac_client_to_server, negotiated.cipher_client_to_server)),
        ("cipher s->c", negotiated.cipher_server_to_client),
        ("mac s->c", mac(negotiated.mac_server_to_client, negotiated.cipher_server_to_client)),
        ("compression", negotiated.compression_client_to_server),
        ("user", user),
        ("methods", methods),
        *([("banner", repr(result.banner.rstrip()))] if result.banner else []),
    ]  # fmt: skip


def _print_facts(facts: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in facts)
    for name, value in facts:
        print(f"{name + ':':<{width + 2}}{value}")


def run_probe(args: argparse.Namespace) -> int:
    user, host, port = parse_destination(args.destination)
    user = user if user is not None else _local_user()
    known = _read_known_hosts(args.known_hosts)
    asking = not args.accept_new and _stdin_is_terminal()
    if args.accept_new:
        _check_writable(args.known_hosts)  # asked for in so many words: a file we cannot write is refused now
    algorithms = _algorithms(args)
    on_secrets = _key_logger(args.keylog)
    from ..net.ssh import ssh_probe  # imported here so the other commands work even if ssh is broken

    policy = HostKeyPolicy.ACCEPT_NEW if args.accept_new else HostKeyPolicy.ASK if asking else HostKeyPolicy.STRICT
    try:
        result = ssh_probe(
            host, port, user=user, known_hosts=known, host_key_policy=policy,
            ask=ask_on_terminal if asking else None, algorithms=algorithms, timeout=args.timeout,
            on_secrets=on_secrets,
        )  # fmt: skip
    except (HandshakeError, OSError) as error:
        exchange = error.exchange if isinstance(error, HandshakeError) else None
        if args.trace and exchange is not None and exchange.transcript:
            print(render_ssh_transcript(exchange.transcript), flush=True)
        if isinstance(error, HostKeyNotVerifiable):
            # ssh's own words (the "REMOTE HOST IDENTIFICATION HAS CHANGED" block for a changed key); the last
            # line, "Host key verification failed.", is the error line.
            lines = str(error).splitlines()
            for line in lines[:-1]:
                print(line, file=sys.stderr)
            if policy is HostKeyPolicy.STRICT and type(error).__name__ == "UnknownHostKey":
                print(
                    "(standard input is not a terminal, so nobody could be asked: --accept-new adds a new key)",
                    file=sys.stderr,
                )
            raise CommandError(lines[-1] if lines else "Host key verification failed.") from None
        raise CommandError(explain_ssh_failure(error)) from None
    decision = result.host_key_decision
    if decision.new_text is not None:
        problem = _append_known_host(args.known_hosts, known, decision.new_text)
        if problem is None:
            print(decision.message, file=sys.stderr)
        else:
            print(f"Failed to add the host to the list of known hosts ({args.known_hosts}): {problem}", file=sys.stderr)
    if args.trace:
        print(render_ssh_transcript(result.transcript))
        print()
        print(render_exchange_hash(result.key_exchange.exchange_hash))
        print()
    _print_facts(_facts(result, user, args.known_hosts))
    return 0
