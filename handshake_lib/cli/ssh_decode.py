"""``handshakes ssh decode CAPTURE.pcap [--keylog FILE] [--trace]``: the SSH sessions of a capture, decrypted.

For every SSH connection in a classic pcap file (what ``tcpdump -w`` writes), one line per key
exchange saying what was negotiated and where the secret came from, then one line per packet::

    #   direction          seq  message
    12  client -> server     1  SSH_MSG_USERAUTH_REQUEST  [decrypted]
          user_name = 'handshakes'   the user to log in as (UTF-8)

with the message's fields indented under it (the spans its decoder recorded: the same ones the
notebooks' hex views draw).  ``--trace`` adds each packet's annotated hex dump, as ``tcp decode
--trace`` and ``tls get --trace`` do.  The key log is the file :class:`~handshake_lib.ssh.keylog.KeyLogWriter`
writes (``ssh probe --keylog``), in any of the forms Wireshark reads; without it, or without a line for
a session, the packets after NEWKEYS are shown as encrypted with the reason.

Exit status: 0 when at least one SSH connection was decoded, 1 when the capture cannot be read or holds
no SSH, 2 for a usage error.  Lines of the key log that cannot be read are named on stderr, then skipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import HandshakeError
from ..ssh.capture import CLIENT_TO_SERVER, DecodedPacket, SSHCaptureConnection, decode_ssh_capture
from ..ssh.keylog import SSHKeyLog, read_keylog
from ..ssh.version import Identification
from ..wire import Span
from .arguments import input_file
from .errors import CommandError

__all__ = ["register", "field_lines", "packet_line", "render_connection", "run_decode"]

# The most of a capture ``ssh decode`` reads (docs/limits.md), as ``tcp decode``.
MAX_CAPTURE_BYTES = 16 << 20
_ARROWS = {CLIENT_TO_SERVER: "client -> server"}
_VALUE_BYTES = 32  # a field longer than this is shown cut, with its length


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "decode", help="the SSH packets of a pcap file, decrypted with a key log", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("capture", type=input_file, help="a classic pcap file (tcpdump -w)")
    parser.add_argument("--keylog", type=input_file, metavar="FILE", help="the session secrets (ssh probe --keylog)")
    parser.add_argument("--trace", action="store_true", help="also print each packet's annotated hex dump")
    parser.set_defaults(command=run_decode)


def _value(data: bytes) -> str:
    if data and all(32 <= byte < 127 for byte in data):
        text = data.decode("ascii")
        return repr(text if len(text) <= 80 else text[:80] + "...")
    shown = data[:_VALUE_BYTES].hex(" ")
    return f"{shown} ... ({len(data)} bytes)" if len(data) > _VALUE_BYTES else shown or "(empty)"


def field_lines(data: bytes, spans: Sequence[Span], indent: str = "      ") -> list[str]:
    """One line per field (leaf span): its name without the message prefix, its value, its meaning."""
    lines = []
    for span in spans:
        if span.is_group or span.depth == 0 and "." not in span.field:
            continue  # the message as a whole: the packet line already names it
        name = span.field.split(".", 1)[1] if "." in span.field else span.field
        if name.endswith("_length") or name == "message_number":
            continue  # the length prefixes and the number say nothing the value and the packet line do not
        value = _value(data[span.offset : span.offset + span.length])
        lines.append(f"{indent}{name} = {value}   {span.meaning}".rstrip())
    return lines


def packet_line(number: int, packet: DecodedPacket) -> str:
    direction = _ARROWS.get(packet.direction, "server -> client")
    seq = "-" if packet.sequence_number is None else str(packet.sequence_number)
    if isinstance(packet.message, Identification):
        text = f"identification  {packet.message.line.decode('ascii', 'backslashreplace')}"
    elif packet.message is not None:
        text = packet.message.name + ("  [decrypted]" if packet.decrypted else "")
    else:
        text = f"[encrypted, {len(packet.wire)} bytes]"
    note = f"  ({packet.note})" if packet.note else ""
    return f"{number:<3d} {direction}  {seq:>4s}  {text}{note}"


def _exchange_lines(connection: SSHCaptureConnection) -> list[str]:
    lines = []
    for exchange in connection.exchanges:
        negotiated = exchange.negotiated
        if negotiated is None:
            why = exchange.problem or "one KEXINIT missing"
            lines.append(f"  key exchange {exchange.number}: not negotiated ({why})")
            continue
        mac = negotiated.mac_client_to_server or "implicit (AEAD)"
        what = (
            f"{negotiated.kex}, host key {negotiated.host_key}, {negotiated.cipher_client_to_server} / "
            f"{negotiated.cipher_server_to_client}, MAC {mac}{', strict kex' if exchange.strict else ''}"
        )
        if exchange.problem:
            verdict = f"keys unknown: {exchange.problem}"
        else:
            verdict = f"K from the key log ({exchange.keylog}); the server's signature over H verifies"
        lines.append(f"  key exchange {exchange.number}: {what}")
        lines.append(f"    {verdict}")
    return lines


def render_connection(index: int, connection: SSHCaptureConnection, *, trace: bool = False) -> str:
    client, server = connection.client, connection.server
    lines = [f"connection {index}: client {client[0]}:{client[1]} -> server {server[0]}:{server[1]}"]
    lines += _exchange_lines(connection)
    lines += [f"  note: {note}" for note in connection.notes]
    lines.append("#   direction          seq  message")
    for number, packet in enumerate(connection.packets, start=1):
        lines.append(packet_line(number, packet))
        message = packet.message
        if message is not None and not isinstance(message, Identification) and packet.packet is not None:
            lines += field_lines(packet.packet.payload, message.spans)
        if trace:
            from ..viz.hexview import render_hex_text  # matplotlib and ipywidgets: only when asked for

            if packet.packet is not None:
                lines.append(render_hex_text(packet.packet.packet + packet.packet.mac, packet.packet.spans))
            elif packet.wire:
                lines.append(render_hex_text(packet.wire, []))
    return "\n".join(lines)


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CAPTURE_BYTES + 1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > MAX_CAPTURE_BYTES:
        raise CommandError(f"{path} is larger than {MAX_CAPTURE_BYTES >> 20} MiB, the most ssh decode reads {what}")
    return data


def _keylog(path: Path | None) -> SSHKeyLog | None:
    if path is None:
        return None
    try:
        log = read_keylog(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read the key log {path}: {getattr(error, 'strerror', None) or error}") from None
    if log.skipped:
        first_line, reason = log.skipped[0]
        more = f" (and {len(log.skipped) - 1} more)" if len(log.skipped) > 1 else ""
        print(f"handshakes: {path}: line {first_line} skipped: {reason}{more}", file=sys.stderr)
    return log


def run_decode(args: argparse.Namespace) -> int:
    keylog = _keylog(args.keylog)
    data = _read(args.capture, "(cut it first: editcap -r capture.pcap part.pcap 1-1000)")
    try:
        connections = decode_ssh_capture(data, keylog)
    except HandshakeError as error:  # DecodeError: not a pcap file, pcapng, a header that contradicts itself
        raise CommandError(f"{args.capture} is not a capture we can read: {error}") from None
    if not connections:
        raise CommandError(f"{args.capture} holds no SSH connection")
    print(f"{args.capture}: {len(connections)} SSH connection(s)")
    for index, connection in enumerate(connections, start=1):
        print()
        print(render_connection(index, connection, trace=args.trace))
    return 0
