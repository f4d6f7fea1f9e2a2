"""Our TLS page server under load (issue 8): bursts, memory over many connections, slow clients.

The server (:class:`handshake_lib.net.tls.TLSPageServer`, with its defaults: 5 s per connection, 1,024
connections at once, a log of the last 100) runs in a child process of its own, so that its resident
memory (``VmRSS`` in ``/proc/PID/status``) is its own and its event loop does not share a GIL with the
clients.  The clients are threads in this process using Python's ``ssl`` (OpenSSL, which releases the
GIL while it works), each doing: TCP connect, full TLS 1.2 handshake (AES128-GCM-SHA256, no
resumption), ``GET /``, read the page until the server closes.

* **burst**: 500 clients released at once by a barrier; how many got the page, and the p50 and p99 of
  their times from the release to the last byte.  Target: all served, p99 under the server's 5 s.
* **memory**: the server's RSS after 5,000 connections (8 clients in a row each), against the same
  server freshly started and warmed up with 20 connections.  Target: within 10 MB.
* **slow clients**: 1,000 connections open and idle (half of them sent one byte of a record header,
  then nothing), then a normal client's GET, timed 20 times, against the same GET with no slow client.
  Target: p50 under 100 ms (one event loop serves everyone; the idle ones cost memory only).

The file-descriptor limit is raised to its hard limit (``RLIMIT_NOFILE``) first, in this process and
so in the server's.  ``--load-quick`` runs a small version (50 / 300 / 100) for a smoke test.
"""

from __future__ import annotations

import multiprocessing
import resource
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from .report import Measurement

GROUP = "load"
BURST = 500
CONNECTIONS = 5_000
SLOW_CLIENTS = 1_000
QUICK = {"burst": 50, "connections": 300, "slow": 100}
WARMUP = 20
NORMAL_SAMPLES = 20
MEMORY_TARGET_MB = 10.0
CLIENT_TIMEOUT_S = 30.0
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the server, in its own process -----------------------------------------------------------------
def _serve(certificate_der: bytes, key_pem: bytes, pipe: Connection) -> None:
    """Child process: run TLSPageServer with its defaults until the parent says stop."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from handshake_lib.net.tls import TLSPageServer

    key = load_pem_private_key(key_pem, None)
    with TLSPageServer([certificate_der], key) as server:  # type: ignore[arg-type]
        pipe.send(server.port)
        pipe.recv()  # "stop"
    pipe.send("stopped")


class ServerProcess:
    def __init__(self, certificate_der: bytes, key_pem: bytes) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(certificate_der, key_pem, child_end), daemon=True)

    def __enter__(self) -> ServerProcess:
        self.process.start()
        if not self._pipe.poll(30):
            raise RuntimeError("the server process did not start within 30 s")
        self.port: int = self._pipe.recv()
        assert self.process.pid is not None
        self.pid: int = self.process.pid
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._pipe.send("stop")
            self._pipe.poll(15)
        finally:
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)


# -- clients ----------------------------------------------------------------------------------------
def client_context(ca_path: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_path))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("AES128-GCM-SHA256")
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    return context


def fetch(context: ssl.SSLContext, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_S) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(REQUEST)
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
    if b"</html>" not in response:
        raise RuntimeError(f"not the page: {response[:80]!r}")
    return response


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def burst(context: ssl.SSLContext, port: int, count: int) -> tuple[list[float], list[str]]:
    """``count`` clients released together; (seconds each served one took, errors of the others)."""
    barrier = threading.Barrier(count + 1)
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            fetch(context, port)
        except Exception as error:  # noqa: BLE001 - counted, not raised
            with lock:
                errors.append(f"{type(error).__name__}: {error}")
            return
        with lock:
            times.append(time.perf_counter() - started)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join(CLIENT_TIMEOUT_S + 5)
    return times, errors


def many(context: ssl.SSLContext, port: int, count: int, workers: int = 8) -> int:
    """``count`` fetches by ``workers`` threads in a row each; returns how many failed."""
    failures = [0] * workers

    def worker(index: int) -> None:
        for _ in range(count // workers):
            try:
                fetch(context, port)
            except Exception:  # noqa: BLE001 - counted
                failures[index] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(failures)


def timed(call: Callable[[], object], samples: int) -> list[float]:
    result = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        result.append((time.perf_counter() - started) * 1000)
    return result


# -- the measurement --------------------------------------------------------------------------------
def measure(quick: bool = False) -> list[Measurement]:
    sizes = QUICK if quick else {"burst": BURST, "connections": CONNECTIONS, "slow": SLOW_CLIENTS}
    try:
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        from handshake_lib.pki import CoursePKI
    except Exception as error:  # noqa: BLE001 - one ERROR row says so
        return [Measurement(GROUP, "import handshake_lib", None, "", 1, error=f"{type(error).__name__}: {error}")]
    fd_limit = raise_fd_limit()
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="handshakes-load-") as folder:
        files = CoursePKI.create().write_server_files(Path(folder))
        key_pem = files.issued.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        context = client_context(files.ca_path)
        with ServerProcess(files.issued.der, key_pem) as server:
            # 1. A burst of simultaneous handshakes.
            count = sizes["burst"]
            name = f"{count} simultaneous handshakes + GET"
            times, errors = burst(context, server.port, count)
            served = len(times)
            detail = f"served {served}/{count}"
            if errors:
                detail += f"; first error: {errors[0]}"
            rows.append(Measurement(GROUP, f"{name}: clients not served", count - served, "", 1, detail=detail))
            if times:
                p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
                rows.append(Measurement(GROUP, f"{name}: p50", p50, "s", 5.0, detail=f"n={served}"))
                rows.append(Measurement(GROUP, f"{name}: p99", p99, "s", 5.0, detail=f"max {max(times):.2f} s"))

        with ServerProcess(files.issued.der, key_pem) as server:
            # 2. Memory after many connections, against the same server fresh.
            many(context, server.port, WARMUP, workers=4)
            time.sleep(0.5)
            fresh = rss_mb(server.pid)
            total = sizes["connections"]
            failed = many(context, server.port, total)
            time.sleep(1.0)  # the last connections' close grace
            after = rss_mb(server.pid)
            rows.append(
                Measurement(
                    GROUP, f"server RSS growth after {total} connections", after - fresh, "MB", MEMORY_TARGET_MB,
                    detail=f"fresh {fresh:.1f} MB, after {after:.1f} MB, {failed} failed",
                    extra={"fresh_mb": fresh, "after_mb": after, "failed": failed},
                )
            )  # fmt: skip

            # 3. A normal client while many slow ones are connected.
            baseline = timed(lambda: fetch(context, server.port), NORMAL_SAMPLES)
            slow: list[socket.socket] = []
            try:
                for number in range(sizes["slow"]):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT_S)
                    if number % 2:
                        sock.sendall(b"\x16")  # the first byte of a record header, and nothing more
                    slow.append(sock)
                loaded = timed(lambda: fetch(context, server.port), NORMAL_SAMPLES)
                with_slow_rss = rss_mb(server.pid)
            finally:
                for sock in slow:
                    sock.close()
            rows.append(
                Measurement(
                    GROUP, f"GET p50 with {len(slow)} slow connections open", statistics.median(loaded), "ms", 100.0,
                    detail=(
                        f"max {max(loaded):.1f} ms; without them p50 {statistics.median(baseline):.1f} ms; "
                        f"server RSS {with_slow_rss:.1f} MB; fd limit {fd_limit}"
                    ),
                    extra={"loaded_ms": loaded, "baseline_ms": baseline, "rss_mb": with_slow_rss},
                )
            )  # fmt: skip
    return rows


if __name__ == "__main__":  # python -m bench.load [--quick]
    import sys

    from .report import format_table

    print(format_table(measure(quick="--quick" in sys.argv)))
