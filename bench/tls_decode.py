"""``tls decode`` on a 10 MB capture: how long the library call takes (issue 12: under 10 s).

The capture is made in memory, no network and no root: our client and server complete a real TLS 1.2
handshake against each other (:func:`handshake_lib.tls.pair.handshake_in_memory`, RSA key exchange,
AES-128-GCM), then exchange many small application data records (a 200-byte request, a 2 KB answer, over
and over: several thousand records each way), and :func:`handshake_lib.tcp.streams.write_pcap` writes
it all as a pcap.  What is timed is :func:`handshake_lib.tls.capture.decode_tls_capture` on those bytes
with the server's RSA key: reading the pcap, reassembling TCP, splitting records, decoding the
handshake, decrypting the pre-master secret and every record.
"""

from __future__ import annotations

import time

from handshake_lib.tcp.streams import CLIENT_TO_SERVER, SERVER_TO_CLIENT, write_pcap
from handshake_lib.tls.capture import decode_tls_capture
from handshake_lib.tls.pair import PairKeys, handshake_in_memory

from .report import Measurement

GROUP = "decode"
CAPTURE_BYTES = 10 << 20
TARGET_SECONDS = 10.0
REQUEST = b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n".ljust(200, b" ")
ANSWER = b"HTTP/1.1 200 OK\r\n\r\n".ljust(2048, b"x")


def build_capture(size: int = CAPTURE_BYTES) -> tuple[bytes, PairKeys, int]:
    """(pcap bytes of about ``size``, the keys that open it, application data records in it)."""
    keys = PairKeys.fresh()
    run = handshake_in_memory(keys)
    if not run.completed:
        raise RuntimeError(f"the in-memory handshake failed: {run.client_error or run.server_error}")
    chunks = [(entry.direction, entry.record) for entry in run.client.transcript]
    total, records = sum(len(data) for _, data in chunks), 0
    while total < size:
        for core, direction, data in ((run.client, CLIENT_TO_SERVER, REQUEST), (run.server, SERVER_TO_CLIENT, ANSWER)):
            core.send_application_data(data)
            wire = core.data_to_send()
            chunks.append((direction, wire))
            total += len(wire)
            records += 1
    return write_pcap(chunks), keys, records


def measure() -> list[Measurement]:
    name = "tls decode: a 10 MB capture, every record decrypted"
    try:
        capture, keys, records = build_capture()
        started = time.perf_counter()
        [connection] = decode_tls_capture(capture, server_key=keys.private_key)
        elapsed = time.perf_counter() - started
    except Exception as error:  # noqa: BLE001 - reported as an ERROR row, as every bench group does
        return [Measurement(GROUP, name, None, "s", TARGET_SECONDS, error=f"{type(error).__name__}: {error}")]
    if not connection.decrypted:
        return [Measurement(GROUP, name, None, "s", TARGET_SECONDS, error=connection.problem)]
    detail = f"{len(capture) / 1e6:.1f} MB, {records} application data records, {len(connection.entries)} in all"
    return [Measurement(GROUP, name, elapsed, "s", TARGET_SECONDS, detail=detail, extra={"records": records})]
