"""Record an SSH session of ours with OpenSSH on loopback, with its key log (maintainer tool, and the tests' helper).

What it records
    handshake_lib/data/ssh_session.pcap     tcpdump -i lo: our client (ssh_probe) against OpenSSH's sshd,
                                            curve25519-sha256, aes128-gcm@openssh.com, up to the server's
                                            answer to the ``none`` authentication request, then goodbye
    handshake_lib/data/ssh_session.keylog   the lines our KeyLogWriter wrote for it

aes128-gcm because Debian 12's tshark 4.0.17 decrypts it (not chacha20-poly1305 under strict kex, see
handshake_lib/ssh/keylog.py), so the test can compare our decryption of the shipped file with tshark's.

Requirements: Linux, root (or CAP_NET_RAW) for tcpdump, OpenSSH's sshd.  From the repository root:
    sudo .venv/bin/python scripts/record_ssh_capture.py [OUTDIR]
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handshake_lib.net.ssh import SSHProbeServer, ssh_probe  # noqa: E402
from handshake_lib.peers.openssh import openssh_client, openssh_server  # noqa: E402
from handshake_lib.ssh.connection import Algorithms  # noqa: E402
from handshake_lib.ssh.hostkeys import HostKeyPair  # noqa: E402
from handshake_lib.ssh.keylog import KeyLogWriter  # noqa: E402
from handshake_lib.ssh.known_hosts import KnownHosts, known_hosts_line  # noqa: E402

CAPTURE_SECONDS = 20.0


@contextmanager
def tcpdump(path: Path, port: int) -> Iterator[None]:
    """Capture loopback TCP on ``port`` into ``path`` while the block runs, and until the file stops growing."""
    dump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-w", str(path), "tcp", "port", str(port)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = ""
        while "listening" not in line:  # connecting before this line would lose the SYN
            line = dump.stderr.readline() if dump.stderr else ""
            if not line:
                raise RuntimeError("tcpdump could not capture on lo (root or CAP_NET_RAW is needed)")
        yield
        # tcpdump may still hold packets the kernel gave it: wait for the file to stay the same size.
        deadline, last = time.monotonic() + 10, -1
        while time.monotonic() < deadline:
            time.sleep(0.2)
            size = path.stat().st_size if path.exists() else 0
            if size == last:
                break
            last = size
    finally:
        dump.send_signal(signal.SIGINT)
        try:
            dump.wait(5)
        except subprocess.TimeoutExpired:
            dump.kill()
            dump.wait(5)


def our_client_against_sshd(
    pcap: Path, keylog: Path, *, kex: str, cipher: str, mac: str | None = None
) -> tuple[int, object]:
    """Our client (with a KeyLogWriter) against a fresh sshd, captured; (the server's port, the probe result)."""
    writer = KeyLogWriter(keylog)
    macs = (mac,) if mac else Algorithms().macs
    with openssh_server() as sshd, tcpdump(pcap, sshd.port):
        result = ssh_probe(
            sshd.host, sshd.port, known_hosts=KnownHosts.parse(sshd.known_hosts),
            algorithms=Algorithms(kex=(kex,), ciphers=(cipher,), macs=macs), timeout=CAPTURE_SECONDS,
            on_secrets=writer,
        )  # fmt: skip
        return sshd.port, result


def openssh_client_against_ours(
    pcap: Path, keylog: Path, known_hosts: Path, *, kex: str, cipher: str, mac: str | None = None,
    host_keys: list[HostKeyPair] | None = None,
) -> tuple[int, object]:  # fmt: skip
    """OpenSSH's ``ssh`` against our server (with a KeyLogWriter), captured; (our port, ssh's run)."""
    keys = host_keys or [HostKeyPair.generate("ssh-ed25519")]
    writer = KeyLogWriter(keylog)
    with SSHProbeServer(keys, on_secrets=writer) as server, tcpdump(pcap, server.port):
        known_hosts.write_text("".join(known_hosts_line(server.host, server.port, k.host_key) + "\n" for k in keys))
        run = openssh_client(
            server.host, server.port, user="alice", known_hosts_file=known_hosts, kex=kex, ciphers=cipher,
            macs=mac, timeout=CAPTURE_SECONDS,
        )  # fmt: skip
        return server.port, run


def main(outdir: Path, run: Callable[..., tuple[int, object]] = our_client_against_sshd) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    pcap, keylog = outdir / "ssh_session.pcap", outdir / "ssh_session.keylog"
    for stale in (pcap, keylog):
        stale.unlink(missing_ok=True)
    run(pcap, keylog, kex="curve25519-sha256", cipher="aes128-gcm@openssh.com")
    keylog.chmod(0o644)  # shipped with the package: a throwaway session's secret, for teaching
    print(f"wrote {pcap} and {keylog}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "handshake_lib" / "data")
