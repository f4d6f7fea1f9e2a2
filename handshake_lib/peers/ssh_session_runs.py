"""The live runs of lesson 15 and of exercise 15: logged-in sessions with OpenSSH ``sshd`` (and one with ours).

Theory of operation
-------------------
Every run logs our client (:func:`~handshake_lib.net.ssh.ssh_connect`) in to Debian's ``sshd`` on
loopback with a key made for the process (:data:`LESSON_KEY`), AES-128-CTR and HMAC-SHA2-256
(:data:`LESSON_ALGORITHMS`: encrypt-and-MAC, so the MAC covers the clear packet and a reader must decrypt
before checking it), and records what crossed the wire with the secrets of each key exchange (the
``on_secrets`` hook).  One sshd serves the whole process unless the caller gives one (started on first
use, stopped at exit, as in ``ssh_runs``).  Nothing here decrypts by itself: :func:`open_packets` asks
``ssh.kdf`` for the keys and ``ssh.protection`` to open each packet again, with the counter block it had.

* :func:`record_session` (lesson 15): exec with stdout, stderr and an exit status; two commands on two
  channels at once; an SFTP listing and a file read; the transcript with our client's timings.
* :func:`forward_http`: ``ssh -L`` through sshd to a Python HTTP server on loopback, one GET.
* :func:`flow_control_run`: our own server (:class:`~handshake_lib.net.ssh.SSHProbeServer`, whose
  ``bytes N`` streams as fast as the window allows) against a client that never re-opens its window by
  itself: the window falls to 0, the server stops, ``consume()`` sends WINDOW_ADJUST and the bytes resume.
* :func:`rekey_run`: a transfer to ``wc -c`` with ``SSHClient(rekey_after_bytes=...)``: a new key exchange in
  the middle of CHANNEL_DATA, and the count still right.
* Exercise 15: :func:`run_learner_packet_mac` (the learner's MAC as the ``packet_mac`` stage of a live
  session: sshd says "Corrupted MAC on input" when it is wrong), :func:`captured_packet` (one packet's
  keys and wire bytes as plain data) and :func:`run_learner_reassembly` (the learner's reassembly of two
  channels' interleaved events, checked against what our session kept apart).

The learner's functions get and return plain data only (str, bytes, int, lists, dicts, tuples), so the
grader can call them in its sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConnectionTimeout, HandshakeError
from ..net.ssh import SSHProbeServer, ssh_connect
from ..net.ssh_session import ExecResult, SSHSession
from ..ssh.authentication import ClientAuth, ServerAuthPolicy
from ..ssh.channels import (
    ChannelClosed,
    ChannelData,
    ChannelEOF,
    ChannelOpened,
    ConnectionProtocol,
    ExitStatus,
)
from ..ssh.client import SSHClient
from ..ssh.connection import Algorithms, TranscriptEntry
from ..ssh.exchange_hash import ExchangeHash
from ..ssh.hostkeys import HostKeyPair
from ..ssh.kdf import derive_all
from ..ssh.kex import SharedSecret
from ..ssh.known_hosts import KnownHosts
from ..ssh.protection import CtrHmacProtection, DirectionKeys, cipher_spec, key_lengths, mac_spec, packet_mac
from ..ssh.stages import LIBRARY_STAGES
from . import BackgroundPeer
from .openssh import OpenSSHServer, openssh_server

__all__ = [
    "LESSON_ALGORITHMS",
    "LESSON_KEY",
    "TWO_COMMANDS",
    "FlowStep",
    "FlowControlRun",
    "ForwardRun",
    "LearnerMacRun",
    "OpenedPacket",
    "ReassemblyRun",
    "RekeyRun",
    "SessionRecording",
    "captured_packet",
    "event_tuples",
    "flow_control_run",
    "forward_http",
    "lesson_sshd",
    "open_packets",
    "record_session",
    "rekey_run",
    "run_learner_packet_mac",
    "run_learner_reassembly",
    "start_lesson_sshd",
]

LESSON_ALGORITHMS = Algorithms(ciphers=("aes128-ctr",), macs=("hmac-sha2-256",))
LESSON_KEY = HostKeyPair.generate("ssh-ed25519", comment="handshakes lesson 15")
# Two commands whose output alternates in time, so their CHANNEL_DATA interleave on the connection.
TWO_COMMANDS = (
    "for i in 1 2 3; do echo left $i; sleep 0.1; done",
    "sleep 0.05; for i in 1 2 3; do echo right $i >&2; echo right $i; sleep 0.1; done; exit 4",
)
Secrets = list[tuple[SharedSecret, ExchangeHash]]


def start_lesson_sshd() -> contextlib.AbstractContextManager[OpenSSHServer]:
    """sshd as these runs need it: LESSON_KEY authorized, forwarding on, OpenSSH's sftp-server; a context manager."""
    return openssh_server(
        authorized_keys=[LESSON_KEY.public_line()],
        extra_options={
            "AllowTcpForwarding": "yes",
            "Subsystem": "sftp /usr/lib/openssh/sftp-server",
            "AuthenticationMethods": "publickey",
        },
    )


_SHARED_SSHD: BackgroundPeer[OpenSSHServer] = BackgroundPeer(start_lesson_sshd)


def lesson_sshd() -> OpenSSHServer:
    """The process's sshd for these runs (started now if it is not running, or if it died)."""
    shared = _SHARED_SSHD.get()
    if not shared.running:
        _SHARED_SSHD.stop()
        shared = _SHARED_SSHD.get()
    return shared


@contextlib.contextmanager
def _session(
    sshd: OpenSSHServer | None, secrets: Secrets, *, timeout: float, **client_options: Any
) -> Iterator[SSHSession]:
    """Our client logged in to sshd with :data:`LESSON_KEY`, each exchange's K and H appended to ``secrets``."""
    server = sshd or lesson_sshd()
    client = SSHClient(
        server.host,
        server.port,
        user=server.user,
        auth=ClientAuth(identities=(LESSON_KEY,)),
        known_hosts=KnownHosts.parse(server.known_hosts),
        algorithms=client_options.pop("algorithms", LESSON_ALGORITHMS),
        on_secrets=lambda cookie, secret, digest: secrets.append((secret, digest)),
        **client_options,
    )
    with ssh_connect(
        server.host, server.port, user=server.user, auth=ClientAuth(), client=client, timeout=timeout
    ) as s:
        yield s


# -- packets opened again ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenedPacket:
    """One encrypted packet of a transcript, opened again with the keys of its key exchange."""

    index: int  # in the transcript
    direction: str
    name: str
    channel: int | None  # a channel message's channel, by our client's number for it
    sequence_number: int
    exchange: int  # 1 for the first key exchange's keys, 2 after a rekey...
    wire: bytes = field(repr=False)  # as it crossed the wire: ciphertext, then the MAC
    clear: bytes = field(repr=False)  # packet_length, padding_length, payload, padding
    payload: bytes = field(repr=False)
    key: bytes = field(repr=False)
    counter: bytes = field(repr=False)  # the AES-CTR counter block this packet started at
    mac_key: bytes = field(repr=False)
    mac_received: bytes = field(repr=False)
    mac_recomputed: bytes = field(repr=False)  # packet_mac(hash, mac_key, sequence_number, clear)

    @property
    def mac_ok(self) -> bool:
        return self.mac_received == self.mac_recomputed


def _keys_per_exchange(secrets: Secrets, negotiated: Any) -> list[dict[str, DirectionKeys]]:
    """Each exchange's keys, by direction, as ``ssh.kdf`` derives them (session id: the first H)."""
    out = []
    session_id = secrets[0][1].digest
    for secret, digest in secrets:
        keys = derive_all(digest.hash, secret.encoded, digest.digest, session_id, key_lengths(negotiated))
        out.append(
            {
                "client->server": DirectionKeys(
                    keys.iv_client_to_server, keys.key_client_to_server, keys.mac_client_to_server
                ),
                "server->client": DirectionKeys(
                    keys.iv_server_to_client, keys.key_server_to_client, keys.mac_server_to_client
                ),
            }
        )
    return out


def open_packets(transcript: Sequence[TranscriptEntry], secrets: Secrets, negotiated: Any) -> list[OpenedPacket]:
    """Every encrypted packet of ``transcript`` opened again (AES-CTR + HMAC only: :data:`LESSON_ALGORITHMS`).

    Each direction's counter starts at its IV after that direction's NEWKEYS and advances by one per
    16-byte block of every packet after it; the MAC is recomputed with ``ssh.protection.packet_mac``.
    """
    cipher = cipher_spec(negotiated.cipher_client_to_server)
    if cipher.is_aead:
        raise ValueError("open_packets reads AES-CTR with an encrypt-and-MAC HMAC only (LESSON_ALGORITHMS)")
    mac = mac_spec(negotiated.mac_client_to_server)
    if mac.encrypt_then_mac:
        raise ValueError("open_packets reads AES-CTR with an encrypt-and-MAC HMAC only (LESSON_ALGORITHMS)")
    keys = _keys_per_exchange(secrets, negotiated)
    exchange = {"client->server": 0, "server->client": 0}
    blocks = {"client->server": 0, "server->client": 0}
    opened = []
    ours: dict[int, int] = {}  # sshd's number for a channel -> ours: every packet is shown under our number
    for index, entry in enumerate(transcript):
        packet, direction, message = entry.packet, entry.direction, entry.message
        channel = getattr(message, "recipient_channel", None)
        if entry.name == "SSH_MSG_CHANNEL_OPEN_CONFIRMATION" and direction == "server->client":
            ours[message.sender_channel] = message.recipient_channel  # type: ignore[union-attr]
        if entry.name == "SSH_MSG_CHANNEL_OPEN":
            channel = getattr(message, "sender_channel", None)
        elif channel is not None and direction == "client->server":
            channel = ours.get(channel, channel)
        if packet is not None and packet.protection != "none":
            these = keys[exchange[direction] - 1]
            protection = CtrHmacProtection(cipher, mac, these[direction])
            protection.counter += blocks[direction]
            counter = (protection.counter % (1 << 128)).to_bytes(16, "big")
            clear, received, _ = protection.open(packet.sequence_number, packet.wire)
            blocks[direction] += len(clear) // 16
            recomputed = packet_mac(mac.hash_name, these[direction].mac_key, packet.sequence_number, clear)
            opened.append(
                OpenedPacket(
                    index,
                    direction,
                    entry.name,
                    channel,
                    packet.sequence_number,
                    exchange[direction],
                    packet.wire,
                    clear,
                    packet.payload,
                    these[direction].key,
                    counter,
                    these[direction].mac_key,
                    received,
                    recomputed,
                )
            )
        if entry.name == "SSH_MSG_NEWKEYS":  # this direction's next packets use the next exchange's keys
            exchange[direction] += 1
            blocks[direction] = 0
    return opened


# -- lesson 15: one recorded session --------------------------------------------------------------------------
@dataclass
class SessionRecording:
    """One logged-in session with sshd and what it did (see :func:`record_session`)."""

    sshd_version: str
    exec_result: ExecResult
    pair: list[ExecResult]  # TWO_COMMANDS, on two channels at once
    pair_events: list[object]  # the session's events while the pair ran
    listing: list[str]  # sftp: the names in the shared folder
    file_text: bytes  # sftp: one file read back
    folder: str
    transcript: list[TranscriptEntry] = field(repr=False)
    timings: list[tuple[float, str, int]] = field(repr=False)
    events: list[object] = field(repr=False)
    secrets: Secrets = field(repr=False)
    negotiated: Any = None

    def packets(self) -> list[OpenedPacket]:
        return open_packets(self.transcript, self.secrets, self.negotiated)


def record_session(sshd: OpenSSHServer | None = None, *, timeout: float = 10.0) -> SessionRecording:
    """Exec, two channels at once, an SFTP listing and read: one connection to sshd, recorded."""
    secrets: Secrets = []
    with tempfile.TemporaryDirectory(prefix="handshakes-l15-") as folder:
        root = Path(folder)
        (root / "notes.txt").write_text("Channels share one encrypted connection.\n")
        (root / "numbers.csv").write_text("n,square\n1,1\n2,4\n3,9\n")
        with _session(sshd, secrets, timeout=timeout) as session:
            first = session.exec("echo hello from $(uname -s); echo 'a line on stderr' >&2; exit 3")
            before = len(session.events)
            pair = session.exec_many(list(TWO_COMMANDS))
            pair_events = session.events[before:]
            with session.sftp() as sftp:
                listing = sorted(name.filename for name in sftp.listdir(folder) if not name.filename.startswith("."))
                text = sftp.read_file(f"{folder}/notes.txt")
            version = session.login.server_identification
            recording = SessionRecording(
                version,
                first,
                pair,
                pair_events,
                listing,
                text,
                folder,
                list(session.client.transcript),
                list(session.driver.timings),
                list(session.events),
                secrets,
                session.client.negotiated,
            )
    return recording


def event_tuples(events: Sequence[object]) -> list[tuple[Any, ...]]:
    """Channel events as plain tuples (what exercise 15's reassembly reads): ``("data", channel, bytes)``,
    ``("stderr", channel, bytes)``, ``("exit-status", channel, n)``, ``("eof", channel)``, ``("close", channel)``."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, ChannelData):
            out.append(("stderr" if event.stderr else "data", event.channel, bytes(event.data)))
        elif isinstance(event, ExitStatus):
            out.append(("exit-status", event.channel, event.status))
        elif isinstance(event, ChannelEOF):
            out.append(("eof", event.channel))
        elif isinstance(event, ChannelClosed):
            out.append(("close", event.channel))
        elif isinstance(event, ChannelOpened):
            out.append(("open", event.channel))
    return out


# -- ssh -L carrying HTTP ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForwardRun:
    """One HTTP GET through ``ssh -L`` (our client, sshd, a Python HTTP server on loopback)."""

    local_port: int
    target_port: int
    status: int
    body: bytes
    served_paths: tuple[str, ...]  # what the HTTP server says it was asked (it saw sshd, not us)
    channel_messages: tuple[str, ...]  # the channel messages of the forward, in order, with direction


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    asked: list[str]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        self.asked.append(self.path)


def forward_http(sshd: OpenSSHServer | None = None, *, timeout: float = 10.0) -> ForwardRun:
    """A local port forward through sshd to an HTTP server on 127.0.0.1, carrying one GET."""
    secrets: Secrets = []
    asked: list[str] = []
    with tempfile.TemporaryDirectory(prefix="handshakes-l15-http-") as folder:
        Path(folder, "hello.txt").write_text("Hello through an SSH tunnel.\n")
        handler = type("Handler", (_QuietHandler,), {"asked": asked})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=folder))
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            target = httpd.server_address[1]
            with _session(sshd, secrets, timeout=timeout) as session:
                start = len(session.client.transcript)
                with session.forward_local("127.0.0.1", target) as port:
                    answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=timeout)
                    with answer:
                        status, body = answer.status, answer.read()
                messages = tuple(
                    f"{'->' if e.direction == 'client->server' else '<-'} {e.name.removeprefix('SSH_MSG_')}"
                    for e in session.client.transcript[start:]
                    if e.name.startswith("SSH_MSG_CHANNEL")
                )
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout)
    return ForwardRun(port, target, status, body, tuple(asked), messages)


# -- flow control with our own server -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowStep:
    """One moment of the download: ``what`` happened, ``received`` so far, the window we still grant."""

    moment: float  # seconds since the exec
    what: str
    received: int
    window: int


@dataclass(frozen=True)
class FlowControlRun:
    window: int
    size: int
    steps: tuple[FlowStep, ...]
    stalled: bool  # the server sent nothing while the window was 0
    received: int
    adjusts: int  # WINDOW_ADJUST messages we sent

    def lines(self) -> list[str]:
        return [
            f"{s.moment * 1000:8.1f} ms  {s.what:<40} received {s.received:>8}  window {s.window:>7}"
            for s in self.steps
        ]


def flow_control_run(
    window: int = 64 * 1024, size: int = 256 * 1024, *, stall: float = 0.2, timeout: float = 10.0
) -> FlowControlRun:
    """``bytes size`` from our server to a client granting ``window`` bytes, re-opened only by ``consume()``.

    Each time the window reaches 0 the client waits ``stall`` seconds (the server must send nothing:
    ``stalled``), then consumes what it holds, which sends a WINDOW_ADJUST.
    """
    host_key = HostKeyPair.generate("ssh-ed25519")
    policy = ServerAuthPolicy(passwords={"learner": "lesson-15"})
    with SSHProbeServer([host_key], auth=policy, timeout=timeout) as server:
        known = KnownHosts.parse(f"[{server.host}]:{server.port} {host_key.public_line()}\n")
        protocol = ConnectionProtocol("client", window=window, auto_window=False)
        client = SSHClient(
            server.host,
            server.port,
            user="learner",
            auth=ClientAuth(password="lesson-15"),
            known_hosts=known,
            channels=protocol,
        )
        with ssh_connect(
            server.host, server.port, user="learner", auth=ClientAuth(), client=client, timeout=timeout
        ) as s:
            steps: list[FlowStep] = []
            received, stalled, adjusts, closed = 0, True, 0, False
            channel = protocol.open_session()
            started = time.monotonic()

            def note(what: str) -> None:
                left = protocol.channel_info(channel)["window"] if channel in protocol.channels else 0
                steps.append(FlowStep(time.monotonic() - started, what, received, left))

            while not closed:
                events = s._collect()
                for event in events:
                    if isinstance(event, ChannelOpened):
                        protocol.exec(channel, f"bytes {size}")
                        note(f"exec 'bytes {size}'")
                    elif isinstance(event, ChannelData):
                        received += len(event.data)
                        note(f"CHANNEL_DATA {len(event.data)} B")
                    elif isinstance(event, ChannelClosed):
                        closed = True
                        note("CHANNEL_CLOSE")
                if closed:
                    break
                info = protocol.channel_info(channel)
                if info["window"] == 0:
                    note("window 0: the server must stop")
                    try:
                        s.pump(lambda: any(isinstance(e, ChannelData) for e in s._new), timeout=stall)
                        stalled = False  # bytes came although we granted none: a broken server
                    except ConnectionTimeout:
                        note(f"nothing for {stall * 1000:.0f} ms")
                    protocol.consume(channel, info["unconsumed"])
                    adjusts += 1
                    note(f"consume({info['unconsumed']}) -> WINDOW_ADJUST")
                    continue
                s.pump(lambda: bool(s._new))
            return FlowControlRun(window, size, tuple(steps), stalled, received, adjusts)


# -- rekeying during a transfer ---------------------------------------------------------------------------------
@dataclass
class RekeyRun:
    sent: int
    rekey_after_bytes: int
    counted: bytes  # wc -c's answer
    exchanges: int
    transcript: list[TranscriptEntry] = field(repr=False)
    timings: list[tuple[float, str, int]] = field(repr=False)

    def around_rekey(self, before: int = 3, after: int = 3) -> list[tuple[int, str, str]]:
        """The transcript around the second KEXINIT: (index, direction, message name)."""
        kexinits = [i for i, e in enumerate(self.transcript) if e.name == "SSH_MSG_KEXINIT"]
        if len(kexinits) < 3:
            return []
        first = kexinits[2]
        last = [i for i, e in enumerate(self.transcript) if e.name == "SSH_MSG_NEWKEYS" and i > first][1]
        window = self.transcript[max(first - before, 0) : last + after + 1]
        return [
            (max(first - before, 0) + n, e.direction, e.name.removeprefix("SSH_MSG_")) for n, e in enumerate(window)
        ]


def rekey_run(
    sshd: OpenSSHServer | None = None, *, size: int = 300_000, rekey_after_bytes: int = 150_000, timeout: float = 10.0
) -> RekeyRun:
    """``size`` bytes sent to ``wc -c`` on sshd by a client that starts a key exchange after ``rekey_after_bytes``."""
    secrets: Secrets = []
    with _session(sshd, secrets, timeout=timeout, rekey_after_bytes=rekey_after_bytes) as session:
        result = session.exec("wc -c", stdin=bytes(range(256)) * (size // 256) + bytes(size % 256))
        return RekeyRun(
            size,
            rekey_after_bytes,
            result.stdout.strip(),
            session.client.exchanges,
            list(session.client.transcript),
            list(session.driver.timings),
        )


# -- exercise 15 --------------------------------------------------------------------------------------------------
def captured_packet(
    recording: SessionRecording, index: int = 0, *, name: str = "SSH_MSG_CHANNEL_DATA"
) -> dict[str, Any]:
    """The ``index``-th packet named ``name`` sent by sshd, as exercise 15 gives it: plain bytes and ints."""
    chosen = [p for p in recording.packets() if p.direction == "server->client" and p.name == name][index]
    return {
        "key": chosen.key,
        "counter": chosen.counter,
        "mac_key": chosen.mac_key,
        "sequence_number": chosen.sequence_number,
        "wire": chosen.wire,
        "payload": chosen.payload,
    }


@dataclass(frozen=True)
class LearnerMacRun:
    """The learner's ``packet_mac`` in a live session with sshd: did ``echo`` come back, and who noticed."""

    went_through: bool
    output: bytes
    error: str  # our client's error, if any ("BadPacketMac: ..."; "" when it went through)
    sshd_says: tuple[str, ...]  # sshd's own log lines about the connection (e.g. "Corrupted MAC on input")

    def summary(self) -> str:
        if self.went_through:
            return f"sshd accepted every packet your MAC signed, and ran the command: {self.output!r}"
        said = "; ".join(self.sshd_says) or "nothing"
        return f"the session failed: our client: {self.error or 'no error'}; sshd said: {said}"


def run_learner_packet_mac(
    learner_mac: Callable[[str, bytes, int, bytes], bytes], sshd: OpenSSHServer | None = None, *, timeout: float = 10.0
) -> LearnerMacRun:
    """A session with sshd whose MACs, both ways, are computed by ``learner_mac(hash_name, key, seq, data)``."""
    server = sshd or lesson_sshd()
    start = len(server.log)
    secrets: Secrets = []
    stages = LIBRARY_STAGES.replace(packet_mac=learner_mac)
    try:
        with _session(server, secrets, timeout=timeout, stages=stages) as session:
            result = session.exec("echo your MAC works")
        return LearnerMacRun(result.exit_status == 0, result.stdout, "", ())
    except (HandshakeError, OSError) as error:
        deadline = time.monotonic() + 2.0
        said: list[str] = []
        while time.monotonic() < deadline and not said:
            said = [
                line.strip()
                for line in server.log[start:].splitlines()
                if not line.startswith("debug") and ("MAC" in line or "Bad packet" in line)
            ]
            time.sleep(0.05)
        return LearnerMacRun(False, b"", f"{type(error).__name__}: {error}", tuple(said))


@dataclass(frozen=True)
class ReassemblyRun:
    """The learner's reassembly of a live two-channel run, beside what our session kept apart."""

    commands: tuple[str, ...]
    events: tuple[tuple[Any, ...], ...]
    expected: dict[int, dict[str, Any]]
    yours: Any

    @property
    def agrees(self) -> bool:
        return self.yours == self.expected

    def summary(self) -> str:
        lines = [f"{len(self.events)} events on {len(self.expected)} channels, interleaved"]
        for number, want in self.expected.items():
            got = self.yours.get(number) if isinstance(self.yours, dict) else None
            mark = "ok" if got == want else f"yours: {got!r}"
            lines.append(f"channel {number}: stdout {want['stdout']!r}, exit {want['exit_status']}  {mark}")
        return "\n".join(lines)


def run_learner_reassembly(
    reassemble: Callable[[list[tuple[Any, ...]]], Any],
    sshd: OpenSSHServer | None = None,
    *,
    commands: Sequence[str] = TWO_COMMANDS,
    timeout: float = 10.0,
) -> ReassemblyRun:
    """Run ``commands`` on as many channels of one sshd session, and give the learner the interleaved events."""
    secrets: Secrets = []
    with _session(sshd, secrets, timeout=timeout) as session:
        results = session.exec_many(list(commands))
        events = event_tuples(session.events)
    expected = {r.channel: {"stdout": r.stdout, "stderr": r.stderr, "exit_status": r.exit_status} for r in results}
    return ReassemblyRun(tuple(commands), tuple(events), expected, reassemble(list(events)))
