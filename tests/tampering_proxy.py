"""Loopback men in the middle: one flips a bit of a TLS record, the other runs the Terrapin attack on SSH.

:class:`TamperingProxy` (TLS) is used by the negative interop tests in both directions: OpenSSL's records
tampered on their way to our client, and our server's records tampered on their way to an OpenSSL client.
:class:`TerrapinProxy` (SSH, CVE-2023-48795) sits between an SSH client and server and does the prefix
truncation of Baeumer, Brinkmann and Schwenk: it injects SSH_MSG_IGNORE into the server's unencrypted
flight just before the server's NEWKEYS (the client's receive sequence number moves one ahead), then
deletes the server's first encrypted packet (it moves back into step).  The proxy forwards whole
records only (so it knows where each one ends), records what the client sent (to see the alert it
answered with), passes a close on to the other side, and gives up after a few seconds: it never outlives
its test.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

from handshake_lib import net
from handshake_lib.ssh.messages import Ignore
from handshake_lib.ssh.packet import PacketEncoder
from handshake_lib.tls.constants import ContentType

RECORD_HEADER = 5
PROXY_LIFETIME_S = 5.0
POLL_S = 0.1

# should_flip(record, earlier_records_from_the_server) -> flip this one?
FlipRule = Callable[[bytes, list[bytes]], bool]


def first_application_data(record: bytes, earlier: list[bytes]) -> bool:
    return record[0] == ContentType.application_data and all(r[0] != ContentType.application_data for r in earlier)


def first_protected_handshake(record: bytes, earlier: list[bytes]) -> bool:
    """The server's Finished: its first handshake record after its ChangeCipherSpec."""
    after_ccs = any(r[0] == ContentType.change_cipher_spec for r in earlier)
    return after_ccs and record[0] == ContentType.handshake


class TamperingProxy:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port``; flip bit 7 of the third-last byte of the
    first server record ``should_flip`` picks (the GCM tag, the MAC under encrypt-then-MAC, or the last
    CBC block under MAC-then-encrypt: every construction must notice)."""

    def __init__(self, target_port: int, should_flip: FlipRule = first_application_data) -> None:
        self.target_port = target_port
        self.should_flip = should_flip
        self.listener = net.listen_loopback()
        self.port = self.listener.getsockname()[1]
        self.to_server = bytearray()
        self.flipped: bytes | None = None  # the record as the server sent it, before the flip
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + PROXY_LIFETIME_S
        self.listener.settimeout(PROXY_LIFETIME_S)
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        with contextlib.ExitStack() as sockets:
            sockets.enter_context(client)
            try:
                upstream = sockets.enter_context(net.connect("127.0.0.1", self.target_port))
            except OSError:
                return
            self._relay(client, upstream, deadline)

    def _relay(self, client: socket.socket, upstream: socket.socket, deadline: float) -> None:
        from_server = bytearray()
        forwarded: list[bytes] = []
        open_sides = {client, upstream}
        while client in open_sides and time.monotonic() < deadline:
            readable, _, _ = select.select(list(open_sides), [], [], POLL_S)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    # Pass the close on, and keep listening to the other side (its alert).
                    open_sides.discard(sock)
                    with contextlib.suppress(OSError):
                        (upstream if sock is client else client).shutdown(socket.SHUT_WR)
                    continue
                if sock is client:
                    self.to_server += data
                    with contextlib.suppress(OSError):
                        upstream.sendall(data)
                    continue
                from_server += data
                while (end := _whole_record_end(from_server)) is not None:
                    record = bytes(from_server[:end])
                    del from_server[:end]
                    if self.flipped is None and self.should_flip(record, forwarded):
                        self.flipped = record
                        tampered = bytearray(record)
                        tampered[-3] ^= 0x80
                        record = bytes(tampered)
                    forwarded.append(record)
                    with contextlib.suppress(OSError):
                        client.sendall(record)

    def close(self) -> None:
        """Wait for the relay to end (it always does, by its deadline): only then are its records complete."""
        self.thread.join(PROXY_LIFETIME_S + 2)
        self.listener.close()
        assert not self.thread.is_alive(), "the tampering proxy did not stop"

    def __enter__(self) -> TamperingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _whole_record_end(buffer: bytearray) -> int | None:
    if len(buffer) < RECORD_HEADER:
        return None
    end = RECORD_HEADER + int.from_bytes(buffer[3:5], "big")
    return end if len(buffer) >= end else None


def record_types(stream: bytes) -> list[int]:
    """The content type of each record in ``stream``, in order."""
    types, position = [], 0
    while position + RECORD_HEADER <= len(stream):
        types.append(stream[position])
        position += RECORD_HEADER + int.from_bytes(stream[position + 3 : position + 5], "big")
    return types


# -- SSH: the Terrapin attack -------------------------------------------------------------------------
SSH_NEWKEYS = 21
SSH_MAX_CLEAR_PACKET = 256 * 1024


class _SSHStream:
    """One direction of an SSH connection as the proxy sees it, tampered with as it was told.

    It reads the identification line and the packets in clear (their lengths are in clear until NEWKEYS).
    Right before the sender's NEWKEYS it may insert an SSH_MSG_IGNORE (``inject``); right after it, it may
    drop the next ``delete`` bytes (the first encrypted packet, whose length the caller learnt from a clean
    run: chacha20-poly1305 encrypts the length, and an attacker knows it the same way) or flip the low
    bit of the ``flip``-th byte after NEWKEYS.  Everything else passes untouched.
    """

    def __init__(self, *, inject: bool = False, delete: int = 0, flip: int | None = None) -> None:
        self.inject, self.delete, self.flip = inject, delete, flip
        self.clear: list[int] = []  # the message numbers sent in clear
        self.injected = False
        self.deleted = b""
        self.flipped = False
        self._phase = "identification"  # then "clear", then "after" (NEWKEYS seen), then "through"
        self._pending = bytearray()
        self._after = 0  # bytes seen after NEWKEYS

    def feed(self, data: bytes) -> bytes:
        """Bytes from the sender; what to forward now (the rest waits for its packet to be complete)."""
        self._pending += data
        out = bytearray()
        while self._pending:
            if self._phase == "identification":
                end = self._pending.find(b"\n")
                if end < 0:
                    break
                line = bytes(self._pending[: end + 1])
                del self._pending[: end + 1]
                out += line
                if line.startswith(b"SSH-"):
                    self._phase = "clear"
            elif self._phase == "clear":
                if len(self._pending) < 6:
                    break
                length = int.from_bytes(self._pending[:4], "big")
                if not 5 <= length <= SSH_MAX_CLEAR_PACKET:
                    self._phase = "through"  # not a packet we understand: stop attacking
                    continue
                if len(self._pending) < 4 + length:
                    break
                packet = bytes(self._pending[: 4 + length])
                del self._pending[: 4 + length]
                self.clear.append(packet[5])
                if packet[5] == SSH_NEWKEYS:
                    if self.inject:
                        # Its sequence number is never checked in clear: no MAC yet.
                        out += PacketEncoder().encode(Ignore(b"").to_bytes())
                        self.injected = True
                    self._phase = "after"
                out += packet
            elif self._phase == "after":
                if len(self.deleted) < self.delete:
                    take = min(self.delete - len(self.deleted), len(self._pending))
                    self.deleted += bytes(self._pending[:take])
                    del self._pending[:take]
                    continue
                chunk = bytearray(self._pending)
                self._pending.clear()
                if self.flip is not None and not self.flipped and self._after + len(chunk) > self.flip:
                    chunk[self.flip - self._after] ^= 0x01
                    self.flipped = True
                self._after += len(chunk)
                out += chunk
            else:
                out += self._pending
                self._pending.clear()
        return bytes(out)


class TerrapinProxy:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port``, tampering with one direction's SSH packets.

    ``inject``, ``delete`` and ``flip`` are :class:`_SSHStream`'s, applied to the server's packets
    (``attacked="server"``: the Terrapin attack on the client) or the client's (``"client"``).
    ``server_clear`` and ``client_clear`` list the message numbers each side sent in clear; ``to_server``
    and ``to_client`` are what crossed each way (after tampering).  It gives up after ``lifetime``
    seconds, and passes a close on to the other side.
    """

    def __init__(
        self,
        target_port: int,
        *,
        inject: bool = True,
        delete: int = 0,
        flip: int | None = None,
        attacked: str = "server",
        lifetime: float = 8.0,
    ) -> None:
        if attacked not in ("server", "client"):
            raise ValueError("attacked: 'server' (its packets to the client are tampered) or 'client'")
        self.target_port = target_port
        self.lifetime = lifetime
        tampered = _SSHStream(inject=inject, delete=delete, flip=flip)
        self.from_server = tampered if attacked == "server" else _SSHStream()
        self.from_client = tampered if attacked == "client" else _SSHStream()
        self.listener = net.listen_loopback()
        self.port = self.listener.getsockname()[1]
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def server_clear(self) -> list[int]:
        return self.from_server.clear

    @property
    def client_clear(self) -> list[int]:
        return self.from_client.clear

    @property
    def injected(self) -> bool:
        return self.from_server.injected or self.from_client.injected

    @property
    def deleted(self) -> bytes:
        return self.from_server.deleted or self.from_client.deleted

    @property
    def flipped(self) -> bool:
        return self.from_server.flipped or self.from_client.flipped

    def _run(self) -> None:
        deadline = time.monotonic() + self.lifetime
        self.listener.settimeout(self.lifetime)
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        with contextlib.ExitStack() as sockets:
            sockets.enter_context(client)
            try:
                upstream = sockets.enter_context(net.connect("127.0.0.1", self.target_port))
            except OSError:
                return
            self._relay(client, upstream, deadline)

    def _relay(self, client: socket.socket, upstream: socket.socket, deadline: float) -> None:
        open_sides = {client, upstream}
        while client in open_sides and time.monotonic() < deadline:
            readable, _, _ = select.select(list(open_sides), [], [], POLL_S)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                peer = upstream if sock is client else client
                if not data:
                    open_sides.discard(sock)
                    with contextlib.suppress(OSError):
                        peer.shutdown(socket.SHUT_WR)
                    continue
                stream, log = (
                    (self.from_client, self.to_server) if sock is client else (self.from_server, self.to_client)
                )
                out = stream.feed(data)
                log += out
                with contextlib.suppress(OSError):
                    peer.sendall(out)

    def close(self) -> None:
        """Wait for the relay to end (it always does, by its deadline)."""
        self.thread.join(self.lifetime + 2)
        self.listener.close()
        assert not self.thread.is_alive(), "the Terrapin proxy did not stop"

    def __enter__(self) -> TerrapinProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
