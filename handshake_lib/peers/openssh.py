"""OpenSSH as a peer: Debian's ``sshd`` on a high loopback port, and the ``ssh`` client, each with its own files.

Theory of operation
-------------------
* :func:`openssh_server` runs ``/usr/sbin/sshd -D -e -f CONFIG`` with a config of its own in a private
  temporary folder: ``ListenAddress 127.0.0.1`` on a free high port, the host keys below, ``PidFile
  none``, ``StrictModes no``, ``UsePAM no``, ``LogLevel DEBUG3`` (so a lesson can show sshd's side of
  the handshake: :attr:`OpenSSHServer.log`), and the algorithm lists when given (``KexAlgorithms``,
  ``Ciphers``, ``MACs``, ``HostKeyAlgorithms``).  It never reads ``/etc/ssh/sshd_config`` or the
  machine's host keys.  It yields an :class:`OpenSSHServer` once sshd has logged "Server listening
  on 127.0.0.1 port N", and kills sshd and every process it started (found through ``/proc``: the
  per-connection children call ``setsid()``, so a process-group kill misses them) when the block ends,
  also when it fails.
* Host keys (ed25519, ecdsa P-256, rsa 3072) are made with ``ssh-keygen`` once per process and kept in
  a folder deleted at interpreter exit: making an RSA key takes ssh-keygen a good part of a second.
* :func:`openssh_client` runs ``ssh -F /dev/null -vvv`` with its own known_hosts file,
  ``StrictHostKeyChecking=yes`` and ``BatchMode=yes``, so OpenSSH never reads the machine's config,
  the user's files or an agent, and never prompts.  Its ``-vvv`` log is parsed into an
  :class:`OpenSSHClientRun`: the negotiated algorithms, the server's KEXINIT name-lists, the methods
  the server offered ("Authentications that can continue"), and a host key verification failure.

What we found by trying (Debian's OpenSSH 9.2p1):

* As root, sshd refuses to start without its privilege separation directory ("Missing privilege
  separation directory: /run/sshd"); we create it (0755) when missing.  It also needs the unprivileged
  user ``sshd``, which openssh-server's postinst creates; without it we raise
  :class:`~handshake_lib.peers.PeerUnavailable` naming the package.
* As another user sshd runs without privilege separation and can only log that same user in, by
  public key (password checks need root); the port must be above 1023.
* sshd must be started by its absolute path (it re-executes itself for every connection).
* sshd announces ``kex-strict-s-v00@openssh.com`` (Debian backported the Terrapin fix into 9.2p1) and
  offers ``sntrup761x25519-sha512`` first (the RFC 9941 name, backported too), then its older name
  ``sntrup761x25519-sha512@openssh.com``; it has no ``mlkem768x25519-sha256``.
* With ``BatchMode=yes`` the ``ssh`` client never asks for a password, so a password login cannot be
  completed with it; a run without an accepted identity ends with "Permission denied" after the server
  listed its methods, which is enough to show user authentication was reached.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..net import DEFAULT_TIMEOUT, LOOPBACK
from . import PeerUnavailable

__all__ = [
    "OPENSSH_ALGORITHMS",
    "SSHD",
    "OpenSSHClientRun",
    "OpenSSHServer",
    "known_hosts_line",
    "openssh_client",
    "openssh_host_keys",
    "openssh_server",
]

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIRECTORY = Path("/run/sshd")

# What Debian's OpenSSH 9.2p1 supports among the algorithms the course implements (``ssh -Q kex``,
# ``-Q cipher``, ``-Q mac``, ``-Q HostKeyAlgorithms``), in its default order; the interop matrix is generated
# from these constants.  Strict kex: announced (kex-strict-s-v00@openssh.com / -c- on the client side).
OPENSSH_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "kex": (
        "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256", "diffie-hellman-group16-sha512", "diffie-hellman-group14-sha256",
    ),
    "cipher": (
        "chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr", "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ),
    "mac": ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512"),
    "host_key": ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"),
}  # fmt: skip

_KEY_TYPES = {"ed25519": ("-t", "ed25519"), "ecdsa": ("-t", "ecdsa", "-b", "256"), "rsa": ("-t", "rsa", "-b", "3072")}
_host_key_folder: Path | None = None


def _program(name: str, package: str) -> str:
    path = shutil.which(name) or (SSHD if name == "sshd" and os.access(SSHD, os.X_OK) else None)
    if path is None:
        raise PeerUnavailable(f"{name} is not installed (Debian package {package})")
    return path


def openssh_host_keys(types: Sequence[str] = ("ed25519", "ecdsa", "rsa")) -> dict[str, Path]:
    """Private host key files made by ``ssh-keygen`` for ``types``, once per process (key type -> path).

    The public key is beside each, with ``.pub``; the folder is deleted at interpreter exit.
    """
    global _host_key_folder
    keygen = _program("ssh-keygen", "openssh-client")
    if _host_key_folder is None:
        _host_key_folder = Path(tempfile.mkdtemp(prefix="handshakes-openssh-hostkeys-"))
        atexit.register(shutil.rmtree, _host_key_folder, True)
    keys: dict[str, Path] = {}
    for key_type in types:
        if key_type not in _KEY_TYPES:
            raise ValueError(f"unknown host key type {key_type!r}; choose from {sorted(_KEY_TYPES)}")
        path = _host_key_folder / f"ssh_host_{key_type}_key"
        if not path.exists():
            subprocess.run(
                [keygen, "-q", *_KEY_TYPES[key_type], "-N", "", "-C", f"handshakes-{key_type}", "-f", str(path)],
                check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
            )  # fmt: skip
        keys[key_type] = path
    return keys


def known_hosts_line(host: str, port: int, public_key: str) -> str:
    """One known_hosts line for ``public_key`` (``"ssh-ed25519 AAAA..."``), ``[host]:port`` unless port is 22."""
    name = host if port == 22 else f"[{host}]:{port}"
    key_type, blob = public_key.split()[:2]
    return f"{name} {key_type} {blob}"


@dataclass
class OpenSSHServer:
    """A running sshd from :func:`openssh_server`; only valid inside the ``with`` block."""

    host: str
    port: int
    host_keys: dict[str, str]  # key type ("ed25519"...) -> the OpenSSH public key line "ssh-ed25519 AAAA... comment"
    host_key_paths: dict[str, Path]  # key type -> the private key file (public key beside it, with .pub)
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    user: str = ""  # the user sshd would log in (the one running it unless it is root)

    @property
    def known_hosts(self) -> str:
        """A known_hosts text trusting exactly this server's host keys under ``[127.0.0.1]:PORT``."""
        return "".join(known_hosts_line(self.host, self.port, key) + "\n" for key in self.host_keys.values())

    def write_known_hosts(self, path: Path) -> Path:
        path.write_text(self.known_hosts)
        return path

    @property
    def log(self) -> str:
        """What sshd has logged so far (``-e``: its debug log, LogLevel DEBUG3, listener and connections)."""
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _check_privilege_separation() -> None:
    """Root's sshd needs the ``sshd`` user and ``/run/sshd``; make the folder, name the package for the user."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam("sshd")
    except KeyError:
        raise PeerUnavailable(
            "sshd runs as root here and needs its privilege separation user 'sshd', which is missing: "
            "install Debian's openssh-server package (its postinst creates the user)"
        ) from None
    PRIVSEP_DIRECTORY.mkdir(mode=0o755, exist_ok=True)


def _config(
    port: int,
    host_keys: dict[str, Path],
    authorized_keys_path: Path,
    *,
    kex: str | None,
    ciphers: str | None,
    macs: str | None,
    host_key_algorithms: str | None,
    password_auth: bool,
    extra_options: dict[str, str] | None,
) -> str:
    lines = [
        f"ListenAddress {LOOPBACK}",
        f"Port {port}",
        *(f"HostKey {path}" for path in host_keys.values()),
        "PidFile none",
        "StrictModes no",
        "UsePAM no",
        "LogLevel DEBUG3",
        f"AuthorizedKeysFile {authorized_keys_path}",
        "PubkeyAuthentication yes",
        f"PasswordAuthentication {'yes' if password_auth else 'no'}",
        "KbdInteractiveAuthentication no",
        f"PermitRootLogin {'yes' if password_auth else 'prohibit-password'}",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PrintMotd no",
        "MaxStartups 50",
        "LoginGraceTime 60",  # an unauthenticated connection ends by itself even if we could not kill it
    ]
    for option, value in (
        ("KexAlgorithms", kex), ("Ciphers", ciphers), ("MACs", macs), ("HostKeyAlgorithms", host_key_algorithms),
    ):  # fmt: skip
        if value is not None:
            lines.append(f"{option} {value}")
    # sshd takes the first value of an option: an extra option replaces ours rather than follow it.  Except
    # ListenAddress, which sshd adds up: an extra one (::1) listens besides ours, which _listening waits for.
    overridden = {option.lower() for option in extra_options or {}} - {"listenaddress"}
    lines = [line for line in lines if line.split()[0].lower() not in overridden]
    for option, value in (extra_options or {}).items():
        lines.append(f"{option} {value}")
    return "\n".join(lines) + "\n"


def _listening(log_path: Path, port: int) -> bool:
    return f"Server listening on {LOOPBACK} port {port}." in log_path.read_text(errors="replace")


@contextlib.contextmanager
def openssh_server(
    *,
    kex: str | Sequence[str] | None = None,
    ciphers: str | Sequence[str] | None = None,
    macs: str | Sequence[str] | None = None,
    host_key_algorithms: str | Sequence[str] | None = None,
    host_key_types: Sequence[str] = ("ed25519", "ecdsa", "rsa"),
    authorized_keys: str | Sequence[str] | None = None,
    password_auth: bool = False,
    extra_options: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[OpenSSHServer]:
    """Debian's ``sshd`` on 127.0.0.1, on a free high port, with its own config and host keys.

    >>> with openssh_server(kex="curve25519-sha256", ciphers="aes128-gcm@openssh.com") as sshd:  # doctest: +SKIP
    ...     run = openssh_client(sshd.host, sshd.port, user="root", known_hosts_file=...)

    Algorithm lists are OpenSSH's option values (a comma-separated string or a sequence of names).
    ``authorized_keys`` are OpenSSH public key lines accepted for the user (one file for every user);
    ``extra_options`` are added to the config as ``Option value`` lines, replacing ours for the same option
    (``AllowTcpForwarding yes``, ``Subsystem sftp /usr/lib/openssh/sftp-server``...).  Waits at most ``timeout`` s for
    sshd to listen (retrying once on a port taken meanwhile); raises
    :class:`~handshake_lib.peers.PeerUnavailable` when sshd is missing or will not start.
    """
    sshd = _program("sshd", "openssh-server")
    _check_privilege_separation()
    host_key_paths = openssh_host_keys(host_key_types)
    if isinstance(authorized_keys, str):
        authorized_keys = [authorized_keys]

    def joined(value: str | Sequence[str] | None) -> str | None:
        return value if value is None or isinstance(value, str) else ",".join(value)

    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="handshakes-sshd-") as folder:
        directory = Path(folder)
        authorized_keys_path = directory / "authorized_keys"
        authorized_keys_path.write_text("".join(line.strip() + "\n" for line in authorized_keys or ()))
        for attempt in range(2):  # a port the kernel gave us can be taken before sshd binds it: try another once
            port = _free_port()
            config_path = directory / "sshd_config"
            config_path.write_text(
                _config(
                    port, host_key_paths, authorized_keys_path,
                    kex=joined(kex), ciphers=joined(ciphers), macs=joined(macs),
                    host_key_algorithms=joined(host_key_algorithms), password_auth=password_auth,
                    extra_options=extra_options,
                )
            )  # fmt: skip
            log_path = directory / f"sshd-{attempt}.log"
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(
                    [sshd, "-D", "-e", "-f", str(config_path)],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
                )  # fmt: skip
            try:
                while process.poll() is None and not _listening(log_path, port) and time.monotonic() < deadline:
                    time.sleep(0.01)
                if _listening(log_path, port):
                    yield OpenSSHServer(
                        LOOPBACK, port,
                        {kind: Path(f"{path}.pub").read_text().strip() for kind, path in host_key_paths.items()},
                        host_key_paths, config_path, log_path, process,
                        pwd.getpwuid(os.geteuid()).pw_name,
                    )  # fmt: skip
                    return
            finally:
                _stop(process, timeout)
            log = log_path.read_text(errors="replace")
            if "Address already in use" not in log or attempt == 1:
                raise PeerUnavailable(f"sshd did not start (exit status {process.returncode}): {log[-2000:]}")


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Kill sshd and every process it started, then reap it.

    sshd's per-connection children call ``setsid()``, so they are not in the listener's process group;
    we find them by parent id in ``/proc``.  Each one found is stopped first (SIGSTOP), so none can fork a
    new child while we look, then all are killed.
    """
    pids = [process.pid]
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGSTOP)
    for _ in range(10):  # a few rounds: the tree is at most listener -> monitor -> privsep child
        found = [pid for pid in _children(set(pids)) if pid not in pids]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        pids += found
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


def _children(parents: set[int]) -> list[int]:
    """The processes whose parent is one of ``parents`` (from /proc/PID/stat)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        # "pid (command) state ppid ...": the command may hold spaces or parentheses, so split after the last ")"
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) in parents:
            children.append(int(entry.name))
    return children


# -- the ssh client ----------------------------------------------------------------------------------
class ClientRunReport:
    """What the three peers' client runs share: the six negotiated algorithms as one dict, and strict kex.

    A mixin for :class:`OpenSSHClientRun`, ``AsyncSSHClientRun`` and ``ParamikoClientRun``, which hold the
    same six attributes and the server's KEXINIT by the names their library prints
    (:attr:`KEX_LIST_NAME`).
    """

    KEX_LIST_NAME: ClassVar[str] = "KEX algorithms"
    kex: str | None
    host_key_algorithm: str | None
    cipher_client_to_server: str | None
    cipher_server_to_client: str | None
    mac_client_to_server: str | None
    mac_server_to_client: str | None
    server_kexinit: dict[str, list[str]]

    @property
    def server_strict_kex(self) -> bool:
        return "kex-strict-s-v00@openssh.com" in self.server_kexinit.get(self.KEX_LIST_NAME, [])

    @property
    def negotiated(self) -> dict[str, str | None]:
        return {
            "kex": self.kex, "host_key": self.host_key_algorithm,
            "cipher_client_to_server": self.cipher_client_to_server,
            "cipher_server_to_client": self.cipher_server_to_client,
            "mac_client_to_server": self.mac_client_to_server,
            "mac_server_to_client": self.mac_server_to_client,
        }  # fmt: skip


@dataclass
class OpenSSHClientRun(ClientRunReport):
    """What one ``ssh -vvv`` run did, from its exit status, output and debug log."""

    command: list[str]
    returncode: int | None  # None: killed at the deadline
    stdout: str
    stderr: str  # the -vvv log and OpenSSH's messages
    kex: str | None = None  # "debug1: kex: algorithm: ..."
    host_key_algorithm: str | None = None  # "debug1: kex: host key algorithm: ..."
    cipher_client_to_server: str | None = None
    mac_client_to_server: str | None = None  # "<implicit>" for AEAD ciphers
    cipher_server_to_client: str | None = None
    mac_server_to_client: str | None = None
    server_kexinit: dict[str, list[str]] = field(default_factory=dict)  # "KEX algorithms" -> names, as the server sent
    auth_methods: list[str] | None = None  # the last "Authentications that can continue: ..." list
    authenticated_with: str | None = None  # 'Authenticated to ... using "publickey".'
    host_key_verification_failed: bool = False
    no_matching: str | None = None  # "Unable to negotiate ... no matching cipher found ..." as OpenSSH said it
    timed_out: bool = False

    @property
    def reached_user_auth(self) -> bool:
        """The transport came up and the server answered a user-auth request with its methods (or accepted it)."""
        return self.auth_methods is not None or self.authenticated_with is not None




_KEX = re.compile(r"^debug1: kex: algorithm: (\S+)$", re.MULTILINE)
_HOST_KEY = re.compile(r"^debug1: kex: host key algorithm: (\S+)$", re.MULTILINE)
_CIPHER = re.compile(r"^debug1: kex: (server->client|client->server) cipher: (\S+) MAC: (\S+)", re.MULTILINE)
_METHODS = re.compile(r"^debug1: Authentications that can continue: (\S*)$", re.MULTILINE)
_AUTHENTICATED = re.compile(r'^Authenticated to .* using "([^"]+)"\.$', re.MULTILINE)
_NO_MATCHING = re.compile(r"^Unable to negotiate with .*$", re.MULTILINE)
_PEER_PROPOSAL = re.compile(r"^debug2: peer server KEXINIT proposal$((?:\ndebug2: [^:\n]+: .*$)+)", re.MULTILINE)


def parse_client_log(run: OpenSSHClientRun) -> OpenSSHClientRun:
    """Fill ``run``'s parsed fields from its ``-vvv`` log (``run.stderr``)."""
    log = run.stderr.replace("\r\n", "\n")  # ssh ends its debug lines with CR LF
    if match := _KEX.search(log):
        run.kex = match.group(1)
    if match := _HOST_KEY.search(log):
        run.host_key_algorithm = match.group(1)
    for direction, cipher, mac in _CIPHER.findall(log):
        if direction == "client->server":
            run.cipher_client_to_server, run.mac_client_to_server = cipher, mac
        else:
            run.cipher_server_to_client, run.mac_server_to_client = cipher, mac
    if methods := _METHODS.findall(log):
        run.auth_methods = [name for name in methods[-1].split(",") if name]
    if match := _AUTHENTICATED.search(log):
        run.authenticated_with = match.group(1)
    if match := _NO_MATCHING.search(log):
        run.no_matching = match.group(0)
    if match := _PEER_PROPOSAL.search(log):
        for line in match.group(1).strip().splitlines():
            name, _, value = line.removeprefix("debug2: ").partition(": ")
            run.server_kexinit.setdefault(name, [item for item in value.split(",") if item])
    run.host_key_verification_failed = "Host key verification failed." in log
    return run


def openssh_client(
    host: str,
    port: int,
    *,
    user: str,
    known_hosts_file: Path,
    kex: str | Sequence[str] | None = None,
    ciphers: str | Sequence[str] | None = None,
    macs: str | Sequence[str] | None = None,
    host_key_algorithms: str | Sequence[str] | None = None,
    identity: Path | None = None,
    command: str | None = None,
    batch: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> OpenSSHClientRun:
    """Run OpenSSH's ``ssh -vvv`` against ``host:port`` and report what it negotiated and how far it got.

    ``-F /dev/null``, ``known_hosts_file`` as the only known_hosts (strict checking), no agent, only
    ``identity`` as a key (none: public key auth is not tried), ``BatchMode`` (never a prompt).
    ``command`` runs on the server (``true`` when None: ssh has no "stop after authentication").
    The whole run is bounded by ``timeout``; past it ssh is killed and ``timed_out`` is set.
    ``batch=False`` allows password prompts, which have no terminal here: only for a caller that gives
    ssh one (``SSH_ASKPASS``); the run still ends at ``timeout``.
    """
    program = _program("ssh", "openssh-client")

    def joined(value: str | Sequence[str]) -> str:
        return value if isinstance(value, str) else ",".join(value)

    arguments = [
        program, "-F", "/dev/null", "-vvv", "-T", "-p", str(port),
        "-o", f"UserKnownHostsFile={known_hosts_file}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", f"BatchMode={'yes' if batch else 'no'}",
        "-o", f"ConnectTimeout={max(1, int(timeout))}", "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes",
        "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no", "-o", "ControlPath=none",
        "-o", "PasswordAuthentication=no" if batch else "PasswordAuthentication=yes",
        "-o", "KbdInteractiveAuthentication=no",
    ]  # fmt: skip
    if identity is not None:
        arguments += ["-o", f"IdentityFile={identity}"]
    else:
        arguments += ["-o", "IdentityFile=/dev/null", "-o", "PubkeyAuthentication=no"]
    for option, value in (
        ("KexAlgorithms", kex), ("Ciphers", ciphers), ("MACs", macs), ("HostKeyAlgorithms", host_key_algorithms),
    ):  # fmt: skip
        if value is not None:
            arguments += ["-o", f"{option}={joined(value)}"]
    arguments += [f"{user}@{host}", command if command is not None else "true"]
    process = subprocess.Popen(
        arguments, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        process.kill()
        stdout, stderr = process.communicate()
    run = OpenSSHClientRun(
        arguments,
        None if timed_out else process.returncode,
        stdout.decode(errors="replace"),
        stderr.decode(errors="replace"),
        timed_out=timed_out,
    )
    return parse_client_log(run)
