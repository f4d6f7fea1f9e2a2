"""How long our SSH client takes to reach user authentication, beside asyncssh's, paramiko's and OpenSSH's clients.

One sample is what ``handshakes ssh probe`` does: TCP connect, version exchange, key exchange, NEWKEYS
both ways, ``ssh-userauth`` service request, the ``none`` authentication request and the server's list
of methods, then close.  Each client checks the server's host key against a known_hosts text and
verifies its signature over H.  Calls are interleaved client by client, so a busy machine slows all alike.

* **against asyncssh's server** (in a process of its own, so that it shares no GIL with a client), one fixed algorithm
  set: curve25519-sha256, aes128-gcm@openssh.com, ssh-ed25519.  Our client
  (:func:`handshake_lib.net.ssh.ssh_probe`) beside paramiko's ``Transport`` (``start_client``,
  ``auth_none``) and asyncssh's client (``connect`` without credentials: it ends at the list of methods
  with ``PermissionDenied``, on one event loop kept for the whole run).  The row is ours/paramiko's ratio
  of medians, target < 1 (the issue's "no slower than paramiko"); asyncssh's median is in the detail.
* **against OpenSSH's sshd** with OpenSSH's default offer, sntrup761x25519-sha512 (which neither asyncssh
  nor paramiko has): our client beside OpenSSH's own ``ssh`` (``BatchMode``, no identity: it stops with
  "Permission denied" after the list of methods), process start included.  The row is ours/ssh's ratio,
  target < 1.5 (the rule of the TLS rows: Python next to C).  sshd forks and re-executes itself for
  every connection, which both sides pay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from handshake_lib import net

from .report import Measurement

GROUP = "handshake"
DEFAULT_COUNT = 200  # samples per client per row: about 15 s for the group on a 2-core machine
WARMUP = 5
TIMEOUT_S = 10.0
PARAMIKO_TARGET = 1.0  # ours / paramiko's: no slower
OPENSSH_TARGET = 1.5  # ours / OpenSSH's ssh
KEX, CIPHER, HOST_KEY = "curve25519-sha256", "aes128-gcm@openssh.com", "ssh-ed25519"
USER = "bench"


def time_clients(clients: dict[str, Callable[[], object]], count: int, warmup: int = WARMUP) -> dict[str, list[float]]:
    """Time ``count`` calls of each client (milliseconds), interleaved, after ``warmup`` untimed rounds; each call
    must return something true.

    The order rotates every round: paramiko's transport thread and asyncssh's event loop finish closing
    while the next client runs, so whoever always came next would always pay for it.
    """
    for _ in range(warmup):
        for call in clients.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in clients}
    names = list(clients)
    for round_number in range(count):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            call = clients[name]
            started = time.perf_counter()
            answer = call()
            samples[name].append((time.perf_counter() - started) * 1000)
            if not answer:
                raise RuntimeError(f"{name} reached no list of methods: {answer!r}")
    return samples


def _error_row(name: str, target: float, error: BaseException) -> Measurement:
    return Measurement(GROUP, name, None, "x", target, error=f"{type(error).__name__}: {error}")


# -- the clients -------------------------------------------------------------------------------------------
def our_probe(host: str, port: int, known_hosts_text: str, algorithms: object | None) -> Callable[[], object]:
    from handshake_lib.net.ssh import ssh_probe
    from handshake_lib.ssh.known_hosts import KnownHosts

    known = KnownHosts.parse(known_hosts_text)
    return lambda: ssh_probe(host, port, user=USER, known_hosts=known, algorithms=algorithms, timeout=TIMEOUT_S).methods


def paramiko_probe(host: str, port: int, known_hosts_text: str) -> Callable[[], object]:
    import paramiko

    known = paramiko.HostKeys()
    for number, line in enumerate(known_hosts_text.splitlines(), 1):
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        if entry is not None:
            for name in entry.hostnames:
                known.add(name, entry.key.get_name(), entry.key)
    name = f"[{host}]:{port}"

    def probe() -> object:
        sock = net.connect(host, port, timeout=TIMEOUT_S)
        transport = paramiko.Transport(sock)
        try:
            options = transport.get_security_options()
            options.kex, options.ciphers, options.key_types = (KEX_PARAMIKO,), (CIPHER,), (HOST_KEY,)
            transport.start_client(timeout=TIMEOUT_S)
            if not known.check(name, transport.get_remote_server_key()):
                raise RuntimeError("paramiko: the host key is not the known one")
            try:
                transport.auth_none(USER)
            except paramiko.BadAuthenticationType as refusal:
                return refusal.allowed_types
            return None
        finally:
            transport.close()
            sock.close()

    return probe


KEX_PARAMIKO = "curve25519-sha256@libssh.org"  # paramiko knows Curve25519 only by its older name (same method)


class _Loop:
    """One asyncio event loop in a thread of its own for every asyncssh call (as an application keeps one)."""

    def __enter__(self) -> _Loop:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-asyncssh-client", daemon=True)
        self.thread.start()
        return self

    def run(self, coroutine: object) -> object:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT_S)  # type: ignore[arg-type]

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT_S)
        self.loop.close()


def asyncssh_probe(loop: _Loop, host: str, port: int, known_hosts_text: str) -> Callable[[], object]:
    import asyncssh

    known = asyncssh.import_known_hosts(known_hosts_text)

    async def attempt() -> object:
        try:
            async with asyncssh.connect(
                host, port, username=USER, known_hosts=known, client_keys=[], agent_path=None, config=None,
                password=None, kex_algs=[KEX], encryption_algs=[CIPHER], server_host_key_algs=[HOST_KEY],
                preferred_auth="publickey",
            ):  # fmt: skip
                return None  # let in without authentication: not what the server was set up to do
        except asyncssh.PermissionDenied:
            return True  # the server's list of methods arrived and offered nothing this client can use

    return lambda: loop.run(attempt())


def openssh_probe(host: str, port: int, known_hosts_file: Path) -> Callable[[], object]:
    arguments = [
        "ssh", "-F", "/dev/null", "-T", "-p", str(port), "-o", f"UserKnownHostsFile={known_hosts_file}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", "IdentityAgent=none", "-o", "IdentityFile=/dev/null", "-o", "PubkeyAuthentication=no",
        "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no", "-o", "UpdateHostKeys=no",
        "-o", "CheckHostIP=no", "-o", "ControlPath=none", f"{USER}@{host}", "true",
    ]  # fmt: skip

    def probe() -> object:
        done = subprocess.run(arguments, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_S)
        return b"Permission denied (publickey)" in done.stderr  # the list of methods, as ssh reports it

    return probe


# -- the rows ------------------------------------------------------------------------------------------------
# The asyncssh server runs in a process of its own, so that no client shares its GIL with the server (in one
# process, every send would hand the interpreter to the server's thread, and how often a client sends would
# decide how long it waits).  It prints its port and known_hosts line, then serves until its stdin closes.
_SERVER_SCRIPT = """
import sys
from handshake_lib.peers.asyncssh_peers import asyncssh_server
with asyncssh_server(host_key_types=("ed25519",), passwords={"someone": "secret"}) as server:
    print(server.port, flush=True)
    print(server.known_hosts.strip(), flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def server_process(script: str, *arguments: str, what: str = "the server") -> Iterator[tuple[str, int, str]]:
    """(host, port, known_hosts text) of the server ``script`` starts in a child process, for the ``with`` block.

    The script prints its port and its known_hosts line, then serves until its standard input closes; a
    server in its own process keeps its CPU off the client's measurements.
    """
    root = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", script, *arguments], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=environment, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        timer = threading.Timer(TIMEOUT_S, process.kill)  # a server that never says its port is killed
        timer.start()
        port_line, known_hosts = process.stdout.readline(), process.stdout.readline()
        timer.cancel()
        if not port_line.strip().isdigit():
            raise RuntimeError(f"{what} process did not start (exit status {process.poll()})")
        yield net.LOOPBACK, int(port_line), known_hosts
    finally:
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def asyncssh_server_process() -> contextlib.AbstractContextManager[tuple[str, int, str]]:
    """(host, port, known_hosts text) of an asyncssh server in a child process, for the ``with`` block."""
    return server_process(_SERVER_SCRIPT, what="the asyncssh server")


def measure_asyncssh_server(count: int) -> list[Measurement]:
    from handshake_lib.ssh.connection import Algorithms

    name = f"our client -> asyncssh server, {KEX}, {CIPHER}, {HOST_KEY}: connect to user-auth methods"
    try:
        with asyncssh_server_process() as (host, port, known_hosts), _Loop() as loop:
            ours = our_probe(host, port, known_hosts, Algorithms(kex=(KEX,), host_key=(HOST_KEY,), ciphers=(CIPHER,)))
            samples = time_clients(
                {
                    "ours": ours,
                    "paramiko": paramiko_probe(host, port, known_hosts),
                    "asyncssh": asyncssh_probe(loop, host, port, known_hosts),
                },
                count,
            )
    except Exception as error:  # noqa: BLE001 - reported as an ERROR row
        return [_error_row(name, PARAMIKO_TARGET, error)]
    medians = {client: statistics.median(values) for client, values in samples.items()}
    return [
        Measurement(
            GROUP,
            name,
            medians["ours"] / medians["paramiko"],
            "x",
            PARAMIKO_TARGET,
            detail=(
                f"median ours {medians['ours']:.2f} ms, paramiko {medians['paramiko']:.2f} ms, "
                f"asyncssh {medians['asyncssh']:.2f} ms, n={count}"
            ),
            extra={"medians_ms": medians, "samples_ms": samples},
        )  # fmt: skip
    ]


def measure_sshd(count: int) -> list[Measurement]:
    from handshake_lib.peers.openssh import openssh_server
    from handshake_lib.ssh.connection import Algorithms

    kex = "sntrup761x25519-sha512"
    name = f"our client -> OpenSSH sshd, {kex} (OpenSSH's default offer): connect to user-auth methods"
    try:
        with openssh_server(host_key_types=("ed25519",)) as sshd, tempfile.TemporaryDirectory() as folder:
            known_hosts_file = sshd.write_known_hosts(Path(folder) / "known_hosts")
            # Both clients offer OpenSSH's default lists: sntrup761x25519, chacha20-poly1305, ssh-ed25519 win.
            from handshake_lib.peers.openssh import OPENSSH_ALGORITHMS
            from handshake_lib.ssh.constants import CIPHERS, KEX_ALGORITHMS

            offer = Algorithms(
                kex=tuple(n for n in OPENSSH_ALGORITHMS["kex"] if n in KEX_ALGORITHMS),
                ciphers=tuple(n for n in OPENSSH_ALGORITHMS["cipher"] if n in CIPHERS),
            )
            samples = time_clients(
                {
                    "ours": our_probe(sshd.host, sshd.port, sshd.known_hosts, offer),
                    "ssh": openssh_probe(sshd.host, sshd.port, known_hosts_file),
                },
                count,
            )
    except Exception as error:  # noqa: BLE001 - reported as an ERROR row
        return [_error_row(name, OPENSSH_TARGET, error)]
    medians = {client: statistics.median(values) for client, values in samples.items()}
    return [
        Measurement(
            GROUP,
            name,
            medians["ours"] / medians["ssh"],
            "x",
            OPENSSH_TARGET,
            detail=f"median ours {medians['ours']:.2f} ms vs OpenSSH ssh {medians['ssh']:.2f} ms, n={count}",
            extra={"medians_ms": medians, "samples_ms": samples},
        )  # fmt: skip
    ]


def measure(count: int = DEFAULT_COUNT) -> list[Measurement]:
    try:
        import handshake_lib.net.ssh  # noqa: F401
    except Exception as error:  # noqa: BLE001 - our SSH code does not import: one ERROR row says so
        return [_error_row("import handshake_lib.net.ssh", PARAMIKO_TARGET, error)]
    return measure_asyncssh_server(count) + measure_sshd(max(count // 2, 10))
