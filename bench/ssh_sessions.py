"""Logged-in SSH sessions: a command, and a 16 MiB SFTP read, our client and server beside the real ones.

Every sample is a whole session, as a user would run it: TCP connect, key exchange, publickey login
(an ed25519 key, signed), then the work, then goodbye.  Clients are interleaved sample by sample (the
order rotating every round, :func:`bench.ssh_handshakes.time_clients`), so a busy machine slows all
alike.  Every client runs one fixed algorithm set: curve25519-sha256, aes128-gcm@openssh.com,
ssh-ed25519 (so no row compares one cipher with another).  Every server runs in a process of its own,
so that no client shares a GIL with it.

* **exec** against asyncssh's server (``peers.asyncssh_peers.asyncssh_server``: its session handler
  writes the command's text back on stdout, exit status 0): our client (``ssh_connect`` +
  ``SSHSession.exec("echo ...")``), paramiko's (``Transport``: ``start_client``, ``auth_publickey``,
  ``open_session``, ``exec_command``, stdout to EOF, ``recv_exit_status``) and asyncssh's
  (``connect(client_keys=...)`` + ``run``, one event loop for the whole run).  Each call checks stdout
  and the exit status.  The row is ours/paramiko's ratio of medians, target < 1 (the issue's "no slower
  than paramiko"); asyncssh's median is in the detail.  Our client logs in as OpenSSH's ``ssh`` does:
  ``none`` (for the list of methods), an unsigned publickey query, then the signed request; paramiko
  signs in its first request.  That is two round trips more (six after NEWKEYS against four), each
  waiting on asyncssh's event loop in its process, so the ratio moves with the machine's load more
  than the CPU each client spends (about 3-4 ms a session for ours, 2.6-2.9 ms for paramiko's, here).
* **SFTP read** of a 16 MiB file of random bytes, from OpenSSH's ``sshd`` (``Subsystem sftp
  /usr/lib/openssh/sftp-server``) and from our server (``SSHProbeServer(sftp_root=...)``): our client
  (``ssh_connect`` + ``SSHSession.sftp().read_file``, 64 READs of 32 KiB in flight) beside OpenSSH's
  ``sftp`` (``-b`` batch with one ``get``, ``-F /dev/null``, its own key file and known_hosts; 64
  requests of 32 KiB in flight too, its defaults), process start included.  Ours keeps the file in
  memory, ``sftp`` writes it to a temporary folder (the page cache: no disk wait).  Each call checks
  the size it got; ``tests/test_bench_cases_ssh.py`` checks the bytes.  One row per server: ours/sftp's
  ratio of medians, target < 1.5 (the rule of the TLS rows: Python next to C), both clients' MiB/s in
  the detail.  A third row compares the servers: ``sftp``'s time from our server over its time from sshd,
  target < 1.5.  sshd logs at ``VERBOSE`` instead of the peer's ``DEBUG3``: enough for the test to read
  who logged in and which subsystem started, without a debug line for every channel message.
* **The read alone**: each client also runs the same session without the read (ours: ``realpath(".")``;
  sftp: a batch of one ``pwd``).  The detail's MiB/s is the file's size over the difference of the two
  medians: sshd takes about 0.2 s to start a session here, which would otherwise hide the transfer.
"""

from __future__ import annotations

import contextlib
import io
import random
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from handshake_lib import net

from .report import Measurement
from .ssh_handshakes import CIPHER, HOST_KEY, KEX, KEX_PARAMIKO, TIMEOUT_S, _Loop, time_clients
from .ssh_handshakes import server_process as child_server

GROUP = "session"
DEFAULT_EXEC_COUNT = 100  # sessions per client: about 10 s for the three clients
DEFAULT_SFTP_COUNT = 5  # sessions per client per server, with and without the read: about 15 s for the eight
SFTP_WARMUP = 1  # untimed rounds before the SFTP sessions (the exec sessions take time_clients' default)
SFTP_SIZE = 16 * 1024 * 1024
PARAMIKO_TARGET = 1.0  # ours / paramiko's: no slower
OPENSSH_TARGET = 1.5  # ours / OpenSSH's sftp, and our server / sshd
USER = "bench"
COMMAND = "echo handshakes"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens and the known_hosts text that trusts it."""

    host: str
    port: int
    known_hosts: str


def _error_row(name: str, target: float, error: BaseException) -> Measurement:
    return Measurement(GROUP, name, None, "x", target, error=f"{type(error).__name__}: {error}")


def _user_key() -> object:
    from handshake_lib.ssh.hostkeys import HostKeyPair

    return HostKeyPair.generate("ssh-ed25519", comment="handshakes bench")


def _algorithms() -> object:
    from handshake_lib.ssh.connection import Algorithms

    return Algorithms(kex=(KEX,), host_key=(HOST_KEY,), ciphers=(CIPHER,))


# -- servers in processes of their own ---------------------------------------------------------------------
# Each script prints its port and its known_hosts text on one line each, then serves until its stdin closes.
_ASYNCSSH_SCRIPT = """
import sys
from handshake_lib.peers.asyncssh_peers import asyncssh_server
with asyncssh_server(host_key_types=("ed25519",), authorized_keys={sys.argv[1]: [sys.argv[2]]}) as server:
    print(server.port, flush=True)
    print(server.known_hosts.strip(), flush=True)
    sys.stdin.read()
"""

_OUR_SERVER_SCRIPT = """
import sys
from pathlib import Path
from handshake_lib.net.ssh import SSHProbeServer
from handshake_lib.peers.openssh import known_hosts_line
from handshake_lib.ssh.authentication import ServerAuthPolicy
from handshake_lib.ssh.authorized_keys import AuthorizedKeys
from handshake_lib.ssh.hostkeys import HostKeyPair
host_key = HostKeyPair.generate("ssh-ed25519")
policy = ServerAuthPolicy(authorized_keys=AuthorizedKeys.parse(sys.argv[2]))
with SSHProbeServer([host_key], auth=policy, sftp_root=Path(sys.argv[1]), timeout=float(sys.argv[3])) as server:
    print(server.port, flush=True)
    print(known_hosts_line(server.host, server.port, host_key.public_line()), flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def server_process(script: str, *arguments: str) -> Iterator[Endpoint]:
    """The server ``script`` starts, in a child process, for the ``with`` block (``ssh_handshakes.server_process``)."""
    with child_server(script, *arguments) as (host, port, known_hosts):
        yield Endpoint(host, port, known_hosts)


# -- exec: the clients -----------------------------------------------------------------------------------------
def our_exec(server: Endpoint, key: object, command: str = COMMAND) -> Callable[[], bytes]:
    """Our client: log in, run ``command`` on a channel, its stdout (checked: exit status 0)."""
    from handshake_lib.net.ssh import ssh_connect
    from handshake_lib.ssh.authentication import ClientAuth
    from handshake_lib.ssh.known_hosts import KnownHosts

    known, auth, algorithms = KnownHosts.parse(server.known_hosts), ClientAuth(identities=(key,)), _algorithms()

    def run() -> bytes:
        with ssh_connect(
            server.host, server.port, user=USER, auth=auth, known_hosts=known, algorithms=algorithms, timeout=TIMEOUT_S
        ) as session:  # fmt: skip
            result = session.exec(command, timeout=TIMEOUT_S)
        if result.exit_status != 0:
            raise RuntimeError(f"our client: {command!r} ended with {result.exit_status} ({result.refused})")
        return result.stdout

    return run


def paramiko_exec(server: Endpoint, key: object, command: str = COMMAND) -> Callable[[], bytes]:
    """paramiko's ``Transport``: log in, ``exec_command``, stdout to EOF (checked: exit status 0)."""
    import paramiko

    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(key.private_bytes().decode()))  # type: ignore[attr-defined]
    known = paramiko.HostKeys()
    for number, line in enumerate(server.known_hosts.splitlines(), 1):
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        if entry is not None:
            for name in entry.hostnames:
                known.add(name, entry.key.get_name(), entry.key)
    name = f"[{server.host}]:{server.port}"

    def run() -> bytes:
        sock = net.connect(server.host, server.port, timeout=TIMEOUT_S)
        transport = paramiko.Transport(sock)
        try:
            options = transport.get_security_options()
            options.kex, options.ciphers, options.key_types = (KEX_PARAMIKO,), (CIPHER,), (HOST_KEY,)
            transport.start_client(timeout=TIMEOUT_S)
            if not known.check(name, transport.get_remote_server_key()):
                raise RuntimeError("paramiko: the host key is not the known one")
            transport.auth_publickey(USER, pkey)
            channel = transport.open_session(timeout=TIMEOUT_S)
            channel.settimeout(TIMEOUT_S)
            channel.exec_command(command)
            chunks = []
            while chunk := channel.recv(65536):
                chunks.append(chunk)
            if channel.recv_exit_status() != 0:
                raise RuntimeError(f"paramiko: {command!r} did not exit 0")
            return b"".join(chunks)
        finally:
            transport.close()
            sock.close()

    return run


def asyncssh_exec(loop: _Loop, server: Endpoint, key: object, command: str = COMMAND) -> Callable[[], bytes]:
    """asyncssh's client: ``connect`` with the key, ``run(command)`` (checked: exit status 0)."""
    import asyncssh

    known = asyncssh.import_known_hosts(server.known_hosts)
    client_key = asyncssh.import_private_key(key.private_bytes())  # type: ignore[attr-defined]

    async def attempt() -> bytes:
        async with asyncssh.connect(
            server.host, server.port, username=USER, known_hosts=known, client_keys=[client_key], agent_path=None,
            config=None, password=None, kex_algs=[KEX], encryption_algs=[CIPHER], server_host_key_algs=[HOST_KEY],
            preferred_auth="publickey",
        ) as conn:  # fmt: skip
            completed = await conn.run(command, encoding=None)
        if completed.exit_status != 0:
            raise RuntimeError(f"asyncssh: {command!r} ended with {completed.exit_status}")
        return bytes(completed.stdout or b"")

    return lambda: loop.run(attempt())  # type: ignore[return-value]


def exec_clients(loop: _Loop, server: Endpoint, key: object) -> dict[str, Callable[[], bytes]]:
    return {
        "ours": our_exec(server, key),
        "paramiko": paramiko_exec(server, key),
        "asyncssh": asyncssh_exec(loop, server, key),
    }


def _checked(call: Callable[[], bytes], expected: bytes, who: str) -> Callable[[], bool]:
    def run() -> bool:
        got = call()
        if got != expected:
            raise RuntimeError(f"{who} got {got[:60]!r}, not {expected!r}")
        return True

    return run


def measure_exec(count: int = DEFAULT_EXEC_COUNT) -> list[Measurement]:
    name = f"our client -> asyncssh server, {KEX}, {CIPHER}: connect + publickey + exec {COMMAND!r}"
    try:
        key = _user_key()
        with server_process(_ASYNCSSH_SCRIPT, USER, key.public_line()) as server, _Loop() as loop:  # type: ignore[attr-defined]
            # asyncssh's session handler writes the command's text back, without a newline
            expected = COMMAND.encode()
            clients = {who: _checked(call, expected, who) for who, call in exec_clients(loop, server, key).items()}
            samples = time_clients(clients, count)
    except Exception as error:  # noqa: BLE001 - reported as an ERROR row
        return [_error_row(name, PARAMIKO_TARGET, error)]
    medians = {client: statistics.median(values) for client, values in samples.items()}
    return [
        Measurement(
            GROUP, name, medians["ours"] / medians["paramiko"], "x", PARAMIKO_TARGET,
            detail=(
                f"median ours {medians['ours']:.2f} ms, paramiko {medians['paramiko']:.2f} ms, "
                f"asyncssh {medians['asyncssh']:.2f} ms, n={count}"
            ),
            extra={"medians_ms": medians, "samples_ms": samples},
        )  # fmt: skip
    ]


# -- SFTP: the clients -----------------------------------------------------------------------------------------
def our_sftp_read(server: Endpoint, key: object, user: str, path: str | None) -> Callable[[], bytes]:
    """Our client: log in, open the sftp subsystem, ``read_file(path)``; the bytes.  ``path`` None: the same
    session with no read (one REALPATH of ".", as ``sftp`` asks at its start): the cost of the session alone."""
    from handshake_lib.net.ssh import ssh_connect
    from handshake_lib.ssh.authentication import ClientAuth
    from handshake_lib.ssh.known_hosts import KnownHosts

    known, auth, algorithms = KnownHosts.parse(server.known_hosts), ClientAuth(identities=(key,)), _algorithms()

    def run() -> bytes:
        with ssh_connect(
            server.host, server.port, user=user, auth=auth, known_hosts=known, algorithms=algorithms, timeout=TIMEOUT_S
        ) as session, session.sftp(timeout=TIMEOUT_S) as sftp:  # fmt: skip
            if path is None:
                sftp.realpath(".")
                return b""
            return sftp.read_file(path)

    return run


def openssh_sftp_read(
    server: Endpoint, key: object, user: str, path: str | None, folder: Path
) -> Callable[[], Path | None]:
    """OpenSSH's ``sftp -b``: one ``get path`` into ``folder``; the file it wrote (not read back by the timed
    call: that is not sftp's work).  ``path`` None: a batch of one ``pwd``, the session alone."""
    tag = f"{server.port}_{'get' if path else 'pwd'}"
    key_file, known_hosts_file = folder / f"id_{tag}", folder / f"known_hosts_{tag}"
    key_file.write_bytes(key.private_bytes())  # type: ignore[attr-defined]
    key_file.chmod(0o600)
    known_hosts_file.write_text(server.known_hosts)
    target, batch = folder / f"got_{tag}", folder / f"batch_{tag}"
    batch.write_text(f'get "{path}" "{target}"\n' if path is not None else "pwd\n")
    arguments = [
        "sftp", "-b", str(batch), "-F", "/dev/null", "-P", str(server.port), "-i", str(key_file),
        "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", f"UserKnownHostsFile={known_hosts_file}",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no", "-o", "ControlPath=none",
        "-o", f"KexAlgorithms={KEX}", "-o", f"Ciphers={CIPHER}", "-o", f"HostKeyAlgorithms={HOST_KEY}",
        f"{user}@{server.host}",
    ]  # fmt: skip

    def run() -> Path | None:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        done = subprocess.run(arguments, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_S * 6)
        if done.returncode != 0:
            raise RuntimeError(f"sftp exited {done.returncode}: {done.stderr.decode(errors='replace').strip()[-200:]}")
        return target if path is not None else None

    return run


def _sized(call: Callable[[], bytes | Path | None], size: int, who: str) -> Callable[[], bool]:
    """``call`` checked by the size of what it read (bytes in memory, the file ``sftp`` wrote; 0 for None)."""

    def run() -> bool:
        got = call()
        length = got.stat().st_size if isinstance(got, Path) else len(got or b"")
        if length != size:
            raise RuntimeError(f"{who} read {length} bytes, not {size}")
        return True

    return run


@dataclass(frozen=True)
class SFTPPeers:
    """The servers of the SFTP rows, for the ``with`` block of :func:`sftp_servers`."""

    servers: dict[str, tuple[Endpoint, str, str]]  # "sshd" / "ours" -> (endpoint, user, the file's path there)
    folder: Path  # scratch space: sftp's key, known_hosts, batch files and the files it writes
    content: bytes  # what the file holds
    sshd: object  # peers.openssh.OpenSSHServer (its log says who logged in and what sftp-server was asked)


def sftp_content(size: int) -> bytes:
    """The file every client reads: ``size`` random bytes, the same every run."""
    return random.Random(16).randbytes(size)


@contextlib.contextmanager
def sftp_servers(key: object, size: int) -> Iterator[SFTPPeers]:
    """sshd and our server (each in a process of its own), both serving a file of ``size`` bytes."""
    from handshake_lib.peers.openssh import openssh_server

    content = sftp_content(size)
    with tempfile.TemporaryDirectory(prefix="handshakes-bench-sftp-") as scratch:
        folder = Path(scratch)
        root = folder / "root"
        root.mkdir()
        (root / "big.bin").write_bytes(content)
        with openssh_server(
            host_key_types=("ed25519",), authorized_keys=[key.public_line()],  # type: ignore[attr-defined]
            extra_options={
                "Subsystem": f"sftp {SFTP_SERVER}", "AuthenticationMethods": "publickey", "LogLevel": "VERBOSE",
            },
        ) as sshd, server_process(_OUR_SERVER_SCRIPT, str(root), key.public_line(), str(TIMEOUT_S * 6)) as ours:  # type: ignore[attr-defined]  # fmt: skip
            yield SFTPPeers(
                {
                    "sshd": (Endpoint(sshd.host, sshd.port, sshd.known_hosts), sshd.user, str(root / "big.bin")),
                    "ours": (ours, USER, "big.bin"),  # our server's paths are inside its root
                },
                folder,
                content,
                sshd,
            )


def sftp_clients(
    servers: dict[str, tuple[Endpoint, str, str]], key: object, folder: Path
) -> dict[str, tuple[Callable[[], bytes | Path | None], bool]]:
    """``"{client}->{server}"`` (client ours or sftp, server sshd or ours) -> (call, whether it reads the
    file): each client reads it, and runs the same session without the read (``"{client}-session->..."``).
    A call returns the bytes it read (ours), the file it wrote (sftp), or None (a session alone)."""
    clients: dict[str, tuple[Callable[[], bytes | Path | None], bool]] = {}
    for server_name, (endpoint, user, path) in servers.items():
        clients[f"ours->{server_name}"] = our_sftp_read(endpoint, key, user, path), True
        clients[f"sftp->{server_name}"] = openssh_sftp_read(endpoint, key, user, path, folder), True
        clients[f"ours-session->{server_name}"] = our_sftp_read(endpoint, key, user, None), False
        clients[f"sftp-session->{server_name}"] = openssh_sftp_read(endpoint, key, user, None, folder), False
    return clients


def transfer_speed(size: int, with_read_ms: float, session_ms: float) -> float | None:
    """MiB/s of the read alone: ``size`` over the median session with the read minus the median without
    (None when the difference is not positive: a file too small to tell from the noise)."""
    transfer_ms = with_read_ms - session_ms
    return size / MIB / (transfer_ms / 1000) if transfer_ms > 0 else None


def _speed_text(speed: float | None) -> str:
    return f"{speed:.0f} MiB/s" if speed is not None else "? MiB/s"


def measure_sftp(count: int = DEFAULT_SFTP_COUNT, size: int = SFTP_SIZE) -> list[Measurement]:
    mib = size / MIB
    names = {
        "sshd": f"our client -> OpenSSH sshd + sftp-server, {CIPHER}: SFTP session reading {mib:g} MiB, beside sftp",
        "ours": f"OpenSSH sftp -> our server (SSHProbeServer), {CIPHER}: SFTP session reading {mib:g} MiB, "
        "beside our client",
        "servers": f"OpenSSH sftp: SFTP session reading {mib:g} MiB from our server beside from sshd",
    }
    try:
        key = _user_key()
        with sftp_servers(key, size) as peers:
            clients = {
                who: _sized(call, size if reads else 0, who)
                for who, (call, reads) in sftp_clients(peers.servers, key, peers.folder).items()
            }
            samples = time_clients(clients, count, warmup=SFTP_WARMUP)
    except Exception as error:  # noqa: BLE001 - reported as an ERROR row
        return [_error_row(name, OPENSSH_TARGET, error) for name in names.values()]
    medians = {who: statistics.median(values) for who, values in samples.items()}
    speeds = {
        who: transfer_speed(size, medians[who], medians[who.replace("->", "-session->")])
        for who in medians
        if "-session" not in who
    }
    rows = []
    for server in ("sshd", "ours"):
        ours, theirs = f"ours->{server}", f"sftp->{server}"
        rows.append(
            Measurement(
                GROUP, names[server], medians[ours] / medians[theirs], "x", OPENSSH_TARGET,
                detail=(
                    f"session ours {medians[ours]:.0f} ms, sftp {medians[theirs]:.0f} ms; the read alone: ours "
                    f"{_speed_text(speeds[ours])}, sftp {_speed_text(speeds[theirs])}; n={count}"
                ),
                extra={
                    "transfer_mib_per_s": {"ours": speeds[ours], "sftp": speeds[theirs]},
                    "medians_ms": {"ours": medians[ours], "sftp": medians[theirs]},
                    "session_only_medians_ms": {
                        "ours": medians[f"ours-session->{server}"], "sftp": medians[f"sftp-session->{server}"],
                    },
                    "samples_ms": {"ours": samples[ours], "sftp": samples[theirs]},
                    "bytes": size,
                },
            )  # fmt: skip
        )
    rows.append(
        Measurement(
            GROUP, names["servers"], medians["sftp->ours"] / medians["sftp->sshd"], "x", OPENSSH_TARGET,
            detail=(
                f"session from our server {medians['sftp->ours']:.0f} ms, from sshd {medians['sftp->sshd']:.0f} ms; "
                f"the read alone: {_speed_text(speeds['sftp->ours'])} and {_speed_text(speeds['sftp->sshd'])}; "
                f"n={count}"
            ),
            extra={
                "transfer_mib_per_s": {"ours": speeds["sftp->ours"], "sshd": speeds["sftp->sshd"]},
                "medians_ms": {"ours": medians["sftp->ours"], "sshd": medians["sftp->sshd"]},
                "session_only_medians_ms": {
                    "ours": medians["sftp-session->ours"], "sshd": medians["sftp-session->sshd"],
                },
                "bytes": size,
            },
        )  # fmt: skip
    )
    return rows


def measure(
    exec_count: int = DEFAULT_EXEC_COUNT, sftp_count: int = DEFAULT_SFTP_COUNT, size: int = SFTP_SIZE
) -> list[Measurement]:
    try:
        import handshake_lib.net.ssh  # noqa: F401
    except Exception as error:  # noqa: BLE001 - our SSH code does not import: one ERROR row says so
        return [_error_row("import handshake_lib.net.ssh", PARAMIKO_TARGET, error)]
    return measure_exec(exec_count) + measure_sftp(sftp_count, size)
