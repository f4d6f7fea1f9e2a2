#!/usr/bin/env bash
# Record the real loopback captures shipped with the TCP lesson (maintainer tool).
#
# What it records
#   handshake_lib/data/loopback_handshakes.pcap   tcpdump -i lo   (link type 1, Ethernet with zero MACs)
#   handshake_lib/data/any_handshakes.pcap        tcpdump -i any  (link type 276, Linux cooked SLL2)
# Each capture holds three short connections made by Python sockets on the loopback interface:
#   1. IPv4 127.0.0.1: three-way handshake, a request and a reply, then a FIN close from each side;
#   2. IPv6 ::1: the same;
#   3. IPv4 to a port nobody listens on: SYN answered by RST,ACK ("connection refused").
# Only the ports of these connections are captured (a BPF filter), so other loopback traffic on the
# machine stays out of the files.
#
# Requirements: Linux, root (or CAP_NET_RAW), tcpdump, python3.  Usage, from the repository root:
#   sudo scripts/record_capture.sh            # writes both files
#   sudo scripts/record_capture.sh OUTDIR     # writes them somewhere else (the live test does this)
#
# Note for teachers: on the loopback interface Linux does not compute TCP checksums (the segment never
# leaves the machine, "checksum offload" to a device that needs none).  tcpdump therefore records the
# partial checksum (the pseudo-header sum only); Wireshark shows "[unverified]" or "incorrect".  The
# lesson explains this, and the tests check our checksum code on segments we build and on the
# kernel's pseudo-header sums (see tests/test_tcp_capture.py).
set -euo pipefail

OUTDIR="${1:-$(cd "$(dirname "$0")/.." && pwd)/handshake_lib/data}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUTDIR"

"$PYTHON" - "$OUTDIR" <<'PY'
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

outdir = Path(sys.argv[1])


def free_port(family: int, host: str) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def serve_once(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(5)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = conn.recv(1024)
        conn.sendall(b"hello " + request.split(b"\r\n", 1)[0] + b"\r\n")
        # Wait for the client's FIN before closing our side: FIN_WAIT/CLOSE_WAIT/LAST_ACK in order.
        while conn.recv(1024):
            pass


def exchange(family: int, host: str, port: int) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        listener.settimeout(5)
        server = threading.Thread(target=serve_once, args=(listener,))
        server.start()
        with socket.create_connection((host, port), timeout=5) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            client.recv(1024)
            client.shutdown(socket.SHUT_WR)
            client.recv(1024)  # the server's FIN
        server.join(5)


def refused(port: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return
    raise SystemExit(f"port {port} unexpectedly accepted a connection")


ports = [
    free_port(socket.AF_INET, "127.0.0.1"),
    free_port(socket.AF_INET6, "::1"),
    free_port(socket.AF_INET, "127.0.0.1"),
]
bpf = "tcp and (" + " or ".join(f"port {port}" for port in ports) + ")"
targets = [("lo", "EN10MB", "loopback_handshakes.pcap"), ("any", "LINUX_SLL2", "any_handshakes.pcap")]
dumps = []
for interface, link_type, name in targets:
    dump = subprocess.Popen(
        ["tcpdump", "-i", interface, "-y", link_type, "-U", "--immediate-mode", "-w", str(outdir / name), bpf],
        stderr=subprocess.PIPE,
        text=True,
    )
    # tcpdump says "listening on ..." once its capture is open; connecting earlier would lose packets.
    # (With -y it first prints "data link type ...".)
    line = ""
    while "listening" not in line:
        line = dump.stderr.readline()
        if not line:
            raise SystemExit(f"tcpdump could not capture on {interface} (are you root?)")
    dumps.append(dump)

exchange(socket.AF_INET, "127.0.0.1", ports[0])
exchange(socket.AF_INET6, "::1", ports[1])
refused(ports[2])
# Stop tcpdump only once it has written everything: a SIGTERM ends its loop at once, and packets still
# waiting in the kernel for a busy tcpdump (a loaded machine: the test suite) would be lost, the FINs and
# the RST last of all.  So wait until neither file has grown for a second (at most 15 s).
deadline = time.monotonic() + 15
sizes, quiet_since = None, time.monotonic()
while time.monotonic() < deadline:
    time.sleep(0.1)
    now = [(outdir / name).stat().st_size for _, _, name in targets]
    if now != sizes:
        sizes, quiet_since = now, time.monotonic()
    elif time.monotonic() - quiet_since >= 1.0:
        break
for dump in dumps:
    dump.terminate()
    dump.wait(5)
    print(dump.stderr.read().strip(), file=sys.stderr)
for _, _, name in targets:
    print(f"wrote {outdir / name} ({(outdir / name).stat().st_size} bytes)")
PY
