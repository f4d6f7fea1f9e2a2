"""``handshakes tcp decode`` and ``handshakes tcp observe``: TCP from a capture, and from the kernel.

``decode`` prints one line per TCP segment of a classic pcap file (the capture bundled with the
library when no file is given)::

    #  time      source -> destination                      flags    seq (raw)             ack (raw)      ...
    1  0.000000  127.0.0.1:43918 -> 127.0.0.1:50151         SYN      0 (1201067134)        -

Sequence and acknowledgement numbers are shown relative to each direction's initial sequence number
(the SYN's), as Wireshark shows them, with the raw 32-bit value beside them: relative numbers make the
"+1" of the handshake visible, raw ones are what is on the wire.  ``--trace`` adds each frame's
annotated hex dump.  Everything goes to stdout.

``observe`` opens a real loopback connection, echoes a few bytes, and prints what the kernel's
``TCP_INFO`` says about both ends (state, negotiated options, MSS, RTT).  Linux only.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import HandshakeError
from ..net.tcp import observe_loopback
from ..tcp import CapturedSegment, Flags, TCPInfo, bundled_capture, read_pcap
from .arguments import MAX_SECONDS, input_file, seconds
from .errors import CommandError

SEQUENCE_SPACE = 1 << 32
# The most of a capture ``tcp decode`` reads (docs/limits.md): the course's captures are kilobytes, and
# every segment becomes a few objects with their spans, so a larger file is better cut with editcap.
MAX_CAPTURE_BYTES = 16 << 20


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("tcp", help="TCP segments from a capture, or a live loopback connection")
    commands = parser.add_subparsers(title="commands", metavar="{decode,observe}", required=True)
    decode = commands.add_parser("decode", help="one line per TCP segment of a pcap file", description=__doc__)
    decode.add_argument(
        "capture", nargs="?", type=input_file, default=None,
        help="a classic pcap file (default: the loopback capture bundled with the library)",
    )
    decode.add_argument("--trace", action="store_true", help="also print each frame's annotated hex dump")
    decode.set_defaults(command=run_decode)
    observe = commands.add_parser("observe", help="TCP_INFO of a live loopback connection (Linux)")
    observe.add_argument("--host", choices=("127.0.0.1", "::1"), default="127.0.0.1", help="loopback address")
    observe.add_argument(
        "--timeout", type=seconds, default=5.0, metavar="SECONDS",
        help=f"seconds before giving up (default 5, at most {MAX_SECONDS:g})",
    )
    observe.set_defaults(command=run_observe)


# -- decode ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentLine:
    """What one output line says about a segment; kept separate from printing so tests can read it."""

    number: int
    seconds: float  # since the first segment of the file
    source: str
    destination: str
    flags: str
    seq_relative: int
    seq_raw: int
    ack_relative: int | None  # None when the ACK bit is off, or the other side's ISN is unknown
    ack_raw: int | None
    window: int
    payload_length: int
    checksum: str

    def text(self) -> str:
        ack = "-" if self.ack_raw is None else (
            f"{self.ack_relative} ({self.ack_raw})" if self.ack_relative is not None else f"? ({self.ack_raw})"
        )
        return (
            f"{self.number:<3d} {self.seconds:9.6f}  {self.source} -> {self.destination}  {self.flags:<8s} "
            f"seq={self.seq_relative} ({self.seq_raw})  ack={ack}  win={self.window} len={self.payload_length}  "
            f"checksum {self.checksum}"
        )


def _endpoint(address: object, port: int) -> str:
    text = str(address)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def segment_lines(captured: list[CapturedSegment]) -> list[SegmentLine]:
    """Number, time and relative sequence numbers for each segment, per direction of each connection."""
    # The initial sequence number of each direction: the SYN's if we saw it, otherwise the first seq seen.
    initial_sequence: dict[tuple[str, int, str, int], int] = {}
    lines: list[SegmentLine] = []
    start = captured[0].timestamp if captured else 0.0
    for index, item in enumerate(captured, start=1):
        segment = item.segment
        direction = (str(item.src_ip), segment.src_port, str(item.dst_ip), segment.dst_port)
        reverse = (direction[2], direction[3], direction[0], direction[1])
        if Flags.SYN in segment.flags or direction not in initial_sequence:
            initial_sequence[direction] = segment.seq
        seq_relative = (segment.seq - initial_sequence[direction]) % SEQUENCE_SPACE
        ack_raw = segment.ack if Flags.ACK in segment.flags else None
        ack_relative = None
        if ack_raw is not None and reverse in initial_sequence:
            ack_relative = (ack_raw - initial_sequence[reverse]) % SEQUENCE_SPACE
        status = item.checksum_status()
        lines.append(
            SegmentLine(
                number=item.frame_number or index,
                seconds=item.timestamp - start,
                source=_endpoint(item.src_ip, segment.src_port),
                destination=_endpoint(item.dst_ip, segment.dst_port),
                flags=segment.flags.short,
                seq_relative=seq_relative,
                seq_raw=segment.seq,
                ack_relative=ack_relative,
                ack_raw=ack_raw,
                window=segment.window,
                payload_length=len(segment.payload),
                checksum=status.name.lower(),
            )
        )
    return lines


def _read_capture(path: Path) -> bytes:
    """At most :data:`MAX_CAPTURE_BYTES` of ``path``: /dev/zero or a runaway pipe must not fill the memory."""
    with path.open("rb") as file:
        data = file.read(MAX_CAPTURE_BYTES + 1)
    if len(data) > MAX_CAPTURE_BYTES:
        raise CommandError(
            f"{path} is larger than {MAX_CAPTURE_BYTES >> 20} MiB, the most tcp decode reads; "
            "cut it first (editcap -r capture.pcap part.pcap 1-1000)"
        )
    return data


def run_decode(args: argparse.Namespace) -> int:
    path = args.capture if args.capture is not None else bundled_capture()
    try:
        captured = read_pcap(_read_capture(path))
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    except HandshakeError as error:  # DecodeError: not a pcap file, pcapng, a header that contradicts itself
        raise CommandError(f"{path} is not a capture we can read: {error}") from None
    if args.trace:
        # Imported only when needed: handshake_lib.viz brings matplotlib and ipywidgets (about 0.3 s).
        from ..viz.hexview import render_hex_text
    print(f"{path}: {len(captured)} TCP segments (seq/ack relative to each direction's ISN, raw in brackets)")
    for line, item in zip(segment_lines(captured), captured, strict=True):
        print(line.text())
        if args.trace:
            print(render_hex_text(item.frame, item.spans))
            print()
    return 0


# -- observe -----------------------------------------------------------------------------------------
def _describe_info(role: str, address: tuple[str, int], info: TCPInfo) -> list[str]:
    options = ", ".join(sorted(info.options)) or "none"
    return [
        f"{role} {address[0]}:{address[1]}",
        f"  state          {info.state.name} (Linux state {info.linux_state})",
        f"  options        {options}",
        f"  window scale   send {info.snd_wscale}, receive {info.rcv_wscale}",
        f"  MSS            send {info.snd_mss}, receive {info.rcv_mss}, advertised {info.advmss}",
        f"  RTT            {info.rtt_us} us (variation {info.rttvar_us} us), RTO {info.rto_us} us",
        f"  cwnd           {info.snd_cwnd} segments, retransmissions {info.total_retrans}",
    ]


def run_observe(args: argparse.Namespace) -> int:
    try:
        observation = observe_loopback(args.host, timeout=args.timeout)
    except (HandshakeError, OSError) as error:
        raise CommandError(f"cannot observe a loopback connection: {error}") from None
    lines = _describe_info("client", observation.client_address, observation.client)
    lines += _describe_info("server", observation.server_address, observation.server)
    print("\n".join(lines))
    sys.stdout.flush()
    return 0
