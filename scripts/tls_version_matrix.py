"""TLS 1.2 / 1.3 version matrix: our client and server in each version configuration against OpenSSL's.

Run ``python scripts/tls_version_matrix.py > docs/tls_version_matrix.md`` to regenerate the document (a few
seconds); ``--subset`` runs only the covering subset (every way a pair can end).
``tests/test_tls_version_matrix.py`` runs every cell (the whole matrix takes about a second) and compares
each row with the committed document.

Theory of operation
-------------------
:class:`Peers` starts, once, every server a cell needs: ``openssl s_server -www`` capped at TLS 1.2
(``-tls1_2``), at TLS 1.3 (``-tls1_3``) and with both (no flag, OpenSSL 3.0's default), our
:class:`~handshake_lib.net.tls.TLSPageServer` with ``tls_versions`` ("1.2",), ("1.3",) and ("1.3", "1.2"),
and one more of ours: a TLS 1.2-only :class:`~handshake_lib.tls.server.TLSServer` that nevertheless puts
the downgrade sentinel in its random (``downgrade_sentinel=True``), as a 1.3-capable server would when it
settles on 1.2.  Each cell (:class:`Cell`) is one real connection:

* ``client`` cells: our client (:func:`~handshake_lib.net.tls.tls_get` with ``tls_version`` "1.2", "1.3",
  "auto") against s_server.  The evidence is what each side recorded: our handshake's version and suite
  (or the alert that ended it), the last 8 bytes of the ServerHello random our client saw, and the line
  s_server's ``-www`` page writes about the connection ("New, TLSv1.3, Cipher is ...").
* ``server`` cells: ``openssl s_client -msg`` (``-tls1_2``, ``-tls1_3``, default) against our server.  The
  evidence is s_client's own view: the protocol and cipher it printed (or the error it ended with) and the
  ServerHello random from its ``-msg`` hex dump, beside our server's record of the connection.

The sentinel (RFC 8446 4.1.3): a server that can speak TLS 1.3 and settles on 1.2 ends its random with
``DOWNGRD\\x01`` (444f574e47524401), and a 1.3-capable client that sees it refuses the handshake
(illegal_parameter).  Each cell states whether the random ended so (``sentinel``) and :func:`expected` says
where it must: OpenSSL sets it when it could have spoken 1.3 (no ``-tls1_2``) and settles on 1.2 because the
client offered no more; a capped ``s_server -tls1_2`` does not set it (its maximum is 1.2, so nothing was
downgraded).  The last two cells prove the check across real peers.  On OpenSSL's side: s_client, able to
speak 1.3, refuses our 1.2-only server that sends the sentinel ("inappropriate fallback", alert
illegal_parameter).  On ours: :class:`StrippingRelay`, a downgrade attacker, removes supported_versions from
our auto client's hello, so a default s_server (1.3-capable) reads a 1.2-only offer, settles on 1.2 and sends
the sentinel; our client refuses it (illegal_parameter, which s_server reports).

Nothing in a row depends on the run (no ports, randoms or times), so the test regenerates its subset and
compares the rows with the committed document.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from handshake_lib import net  # noqa: E402
from handshake_lib.errors import HandshakeError, PeerAlert, ProtocolError, TLSAlert  # noqa: E402
from handshake_lib.net.tls import ServedConnection, TLSPageServer, tls_get  # noqa: E402
from handshake_lib.peers.openssl import OpenSSLProcess, s_server  # noqa: E402
from handshake_lib.pki.builder import CoursePKI, ServerFiles  # noqa: E402
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite, ExtensionType, ProtocolVersion  # noqa: E402
from handshake_lib.tls.messages import DOWNGRADE_TLS12, ClientHello  # noqa: E402
from handshake_lib.wire import Reader  # noqa: E402

TIMEOUT = 10.0
SENTINEL = DOWNGRADE_TLS12  # b"DOWNGRD\x01"
OUR_CLIENTS = {"1.2": "1.2-only", "1.3": "1.3-only", "auto": "auto (1.3 and 1.2)"}
OPENSSL_FLAGS = {
    "-tls1_2": "-tls1_2",
    "-tls1_3": "-tls1_3",
    "both": "both (no flag)",
    "both, stripped": "both, our hello's supported_versions stripped on the way",
}
OUR_SERVERS = {
    "1.2": '("1.2",)',
    "1.3": '("1.3",)',
    "both": '("1.3", "1.2")',
    "1.2+sentinel": "1.2-only TLSServer(downgrade_sentinel=True)",
}
SERVER_VERSIONS = {"1.2": ("1.2",), "1.3": ("1.3",), "both": ("1.3", "1.2")}
VERSION_NAMES = {ProtocolVersion.TLS1_2: "TLS 1.2", ProtocolVersion.TLS1_3: "TLS 1.3"}


@dataclass(frozen=True)
class Cell:
    """One connection: ``side`` "client" (our client x s_server) or "server" (s_client x our server)."""

    side: str
    ours: str  # a key of OUR_CLIENTS or OUR_SERVERS
    openssl: str  # a key of OPENSSL_FLAGS


@dataclass
class Outcome:
    cell: Cell
    settled: str  # "TLS 1.3 TLS_AES_256_GCM_SHA384", or "refused: ..."
    sentinel: str  # "DOWNGRD\x01" or "no" (or "-" when no ServerHello was seen)
    evidence: str
    problem: str = ""  # empty when the cell matched expected()

    @property
    def ok(self) -> bool:
        return not self.problem


def full_matrix() -> list[Cell]:
    plain = [flag for flag in OPENSSL_FLAGS if flag != "both, stripped"]
    cells = [Cell("client", ours, theirs) for ours in OUR_CLIENTS for theirs in plain]
    cells += [Cell("server", ours, theirs) for ours in SERVER_VERSIONS for theirs in plain]
    # the two sentinel proofs: OpenSSL's check refuses ours, ours refuses OpenSSL's (a downgrading relay)
    return [*cells, Cell("server", "1.2+sentinel", "both"), Cell("client", "auto", "both, stripped")]


def covering_subset() -> list[Cell]:
    """Every way a pair can end: 1.3, 1.2 with and without the sentinel, refused for the version, refused for
    the sentinel, on both sides."""
    return [
        Cell("client", "auto", "both"),
        Cell("client", "auto", "-tls1_2"),
        Cell("client", "1.2", "both"),
        Cell("client", "1.3", "-tls1_2"),
        Cell("server", "both", "-tls1_2"),
        Cell("server", "both", "both"),
        Cell("server", "1.3", "-tls1_2"),
        Cell("server", "1.2+sentinel", "both"),
        Cell("client", "auto", "both, stripped"),
    ]


def expected(cell: Cell) -> tuple[str, bool]:
    """(the version the pair must settle on, "1.2", "1.3" or "refused"; whether the server random ends with the
    sentinel).  The sentinel goes with a 1.3-capable server on a 1.2 connection."""
    if cell.side == "client":
        client = {"1.2": {"1.2"}, "1.3": {"1.3"}, "auto": {"1.2", "1.3"}}[cell.ours]
        server = {"-tls1_2": {"1.2"}, "-tls1_3": {"1.3"}, "both": {"1.2", "1.3"}}[cell.openssl.split(",")[0]]
        server_can_13 = "1.3" in server
        if cell.openssl == "both, stripped":  # the server reads a hello that offers 1.2 alone
            version = max(client & {"1.2"} & server, default="refused")
            return ("refused" if "1.3" in client else version), version == "1.2"
    else:
        client = {"-tls1_2": {"1.2"}, "-tls1_3": {"1.3"}, "both": {"1.2", "1.3"}}[cell.openssl]
        server = {"1.2": {"1.2"}, "1.3": {"1.3"}, "both": {"1.2", "1.3"}, "1.2+sentinel": {"1.2"}}[cell.ours]
        server_can_13 = "1.3" in server or cell.ours == "1.2+sentinel"  # it says it could, falsely
    common = client & server
    version = max(common) if common else "refused"
    sentinel = version == "1.2" and server_can_13
    if sentinel and "1.3" in client:
        version = "refused"  # the 1.3-capable client sees the sentinel and refuses
    return version, sentinel


def _alert(error: BaseException) -> str:
    if isinstance(error, PeerAlert):
        return f"refused: their alert {TLSAlert(error.description).name}"
    if isinstance(error, ProtocolError):
        return f"refused: our alert {error.tls_alert.name} ({type(error).__name__})"
    return f"refused: our {type(error).__name__}"


class StrippingRelay:
    """A downgrade attacker on loopback: forwards one connection to ``target_port``, but first rewrites the
    client's ClientHello without its supported_versions extension, so the server reads a TLS 1.2-only offer.

    A 1.3-capable server then settles on 1.2 and ends its random with the sentinel; the client, which did
    offer 1.3, must refuse (and would fail at Finished anyway, the transcripts differing).  The first record
    must hold the whole ClientHello (ours does).  Stops on its own after ``TIMEOUT``.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = net.listen_loopback()
        self.port = self.listener.getsockname()[1]
        self.stripped = 0  # bytes removed from the hello
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        self.listener.settimeout(TIMEOUT)
        with contextlib.suppress(OSError), contextlib.ExitStack() as sockets:
            client = sockets.enter_context(self.listener.accept()[0])
            upstream = sockets.enter_context(net.connect("127.0.0.1", self.target_port))
            client.settimeout(TIMEOUT)
            first = b""
            while len(first) < 5 or len(first) < 5 + int.from_bytes(first[3:5], "big"):
                chunk = client.recv(65536)
                if not chunk:
                    return
                first += chunk
            end = 5 + int.from_bytes(first[3:5], "big")
            upstream.sendall(self._strip(first[:end]) + first[end:])
            self._relay(client, upstream, deadline)

    def _strip(self, record: bytes) -> bytes:
        hello = ClientHello.decode(Reader(record[5:]))
        assert isinstance(hello, ClientHello) and hello.extensions is not None
        hello.extensions = [e for e in hello.extensions if e.extension_type != ExtensionType.supported_versions]
        body = hello.to_bytes()
        self.stripped = len(record) - 5 - len(body)
        return record[:3] + len(body).to_bytes(2, "big") + body

    @staticmethod
    def _relay(client: socket.socket, upstream: socket.socket, deadline: float) -> None:
        open_sides = {client, upstream}
        while open_sides and time.monotonic() < deadline:
            readable, _, _ = select.select(list(open_sides), [], [], 0.05)
            for sock in readable:
                other = upstream if sock is client else client
                data = b""
                with contextlib.suppress(OSError):
                    data = sock.recv(65536)
                if not data:
                    open_sides.discard(sock)
                    with contextlib.suppress(OSError):
                        other.shutdown(socket.SHUT_WR)
                    continue
                with contextlib.suppress(OSError):
                    other.sendall(data)

    def close(self) -> None:
        self.thread.join(TIMEOUT + 1)
        self.listener.close()


def _sentinel(random: bytes | None) -> str:
    if random is None:
        return "-"
    return "DOWNGRD\\x01" if random.endswith(SENTINEL) else "no"


class Peers:
    """Every server the cells need, started once; :meth:`run` makes one cell's connection."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.s_servers: dict[str, int] = {}
        self.s_servers_run: dict[str, OpenSSLProcess] = {}
        self.ours: dict[str, TLSPageServer] = {}

    def __enter__(self) -> Peers:
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="tls-version-matrix-")))
        self.files: ServerFiles = CoursePKI.create().write_server_files(folder, ("localhost", "127.0.0.1"))
        for flag in ("-tls1_2", "-tls1_3", "both"):
            options = ("-www",) if flag == "both" else (flag, "-www")
            self.s_servers_run[flag] = self._stack.enter_context(s_server(self.files, *options))
            self.s_servers[flag] = self.s_servers_run[flag].port
        chain, key = [self.files.issued.der], self.files.issued.private_key
        for name, versions in SERVER_VERSIONS.items():
            self.ours[name] = self._stack.enter_context(TLSPageServer(chain, key, tls_versions=versions))
        self.ours["1.2+sentinel"] = self._stack.enter_context(TLSPageServer(chain, key, downgrade_sentinel=True))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def run(self, cell: Cell) -> Outcome:
        outcome = self._client(cell) if cell.side == "client" else self._server(cell)
        version, sentinel = expected(cell)
        settled = outcome.settled.split()[1] if outcome.settled.startswith("TLS ") else "refused"
        problems = []
        if settled != version:
            problems.append(f"expected {version}")
        if outcome.sentinel != "-" and (outcome.sentinel != "no") != sentinel:
            problems.append(f"expected {'the' if sentinel else 'no'} sentinel")
        outcome.problem = "; ".join(problems)
        return outcome

    # -- our client against s_server ------------------------------------------------------------------
    def _client(self, cell: Cell) -> Outcome:
        port = self.s_servers[cell.openssl.split(",")[0]]
        relay = StrippingRelay(port) if cell.openssl == "both, stripped" else None
        url = f"https://localhost:{relay.port if relay is not None else port}/"
        try:
            response = tls_get(url, cafile=self.files.ca_path, tls_version=cell.ours, timeout=TIMEOUT)  # type: ignore[arg-type]
        except HandshakeError as error:
            hello = _server_hello_random(error)
            said = "s_server: no page (the handshake failed)"
            if relay is not None:
                printed = self.s_servers_run["both"].read_output(re.compile(rb"SSL alert number \d+"), wait=TIMEOUT)
                reasons = re.findall(rb"SSL routines:\w+:([^:]+):", printed)  # the last is this connection's
                heard = reasons[-1].decode() if reasons else "nothing"
                said = f'the relay removed supported_versions ({relay.stripped} B); s_server: "{heard}"'

            return Outcome(cell, _alert(error), _sentinel(hello), said)
        finally:
            if relay is not None:
                relay.close()
        handshake = response.handshake
        page = re.search(rb"(New|Reused), (TLSv1\.[23]), Cipher is (\S+)", response.body)
        account = page.group(0).decode() if page else "no account on its page"
        settled = f"{VERSION_NAMES[handshake.version]} {CipherSuite(handshake.cipher_suite).name}"
        return Outcome(cell, settled, _sentinel(handshake.server_random), f's_server\'s page: "{account}"')

    # -- s_client against our server ------------------------------------------------------------------
    def _server(self, cell: Cell) -> Outcome:
        server = self.ours[cell.ours]
        before = server.accepted
        command = [
            "openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", "localhost",
            "-CAfile", str(self.files.ca_path), "-msg", "-ign_eof",
            *(() if cell.openssl == "both" else (cell.openssl,)),
        ]  # fmt: skip
        run = subprocess.run(command, input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=TIMEOUT)
        printed = run.stdout.decode("latin-1") + run.stderr.decode("latin-1")
        record = _served(server, before)
        random = _dumped_server_random(printed)
        cipher = re.search(r"(New|Reused), (TLSv1\.[23]), Cipher is (\S+)", printed)
        if run.returncode == 0 and cipher and cipher.group(3) != "(NONE)":
            protocol = re.search(r"Protocol\s*: (TLSv1\.[23])", printed)
            version = (protocol.group(1) if protocol else cipher.group(2)).replace("TLSv", "TLS ")
            settled = f"{version} {_iana(cipher.group(3))}"
            said = f's_client: "{cipher.group(0)}"'
        else:
            reason = re.search(r"SSL routines:\w+:([^:]+):", printed)
            number = re.search(r"SSL alert number (\d+)", printed)
            sent = re.search(r">>> TLS 1\.\d, Alert \[length 0002\], fatal (\w+)", printed)
            if number:
                settled = f"refused: our alert {TLSAlert(int(number.group(1))).name}"
            else:
                settled = f"refused: their alert {sent.group(1) if sent else '?'}"
            said = f's_client: "{reason.group(1) if reason else printed[-200:]}"'
        ours = f"our server: {_record_outcome(record)}"
        return Outcome(cell, settled, _sentinel(random), f"{said}; {ours}")


def _server_hello_random(error: HandshakeError) -> bytes | None:
    """The ServerHello random our client saw before it failed, from the error's transcript (None: no hello)."""
    exchange = getattr(error, "exchange", None)
    for entry in exchange.transcript if exchange is not None else []:
        for message in getattr(entry, "messages", []):
            if type(message).__name__ == "ServerHello":
                return message.random  # type: ignore[no-any-return]
    return None


def _dumped_server_random(printed: str) -> bytes | None:
    """The random in s_client's ``-msg`` hex dump of the ServerHello: type(1) length(3) version(2) random(32)."""
    match = re.search(r"<<< TLS 1\.\d, Handshake \[length [0-9a-f]+\], ServerHello\n((?:    [0-9a-f ]+\n)+)", printed)
    if not match:
        return None
    body = bytes.fromhex("".join(match.group(1).split()))
    return body[6:38]


def _iana(openssl_name: str) -> str:
    """OpenSSL's name of a suite as IANA's (TLS 1.3 suites have the same name in both)."""
    suite = OPENSSL_NAMES.get(openssl_name)
    return suite.name if suite is not None else openssl_name


def _served(server: TLSPageServer, before: int) -> ServedConnection | None:
    """Our server's record of the connection accepted after ``before``, once it has finished."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done = [c for c in server.connections if c.number > before and c.finished]
        if done:
            return done[0]
        time.sleep(0.01)
    return None


def _record_outcome(record: ServedConnection | None) -> str:
    if record is None:
        return "no record"
    if record.handshake is None:
        error = record.error
        if isinstance(error, PeerAlert):
            return f"their alert {TLSAlert(error.description).name}"
        return f"{type(error).__name__}" if error is not None else record.outcome
    version = VERSION_NAMES[record.handshake.version]
    return f"{version} {CipherSuite(record.handshake.cipher_suite).name}, {record.outcome}"


# -- the command line ---------------------------------------------------------------------------------------
def markdown(outcomes: Sequence[Outcome]) -> str:
    sections = [
        ("client", "## Our client -> `openssl s_server -www`", "our client", "s_server"),
        ("server", "## `openssl s_client -msg` -> our server", "our server (tls_versions)", "s_client"),
    ]
    lines: list[str] = []
    for side, title, ours, theirs in sections:
        lines += [title, "", f"| {ours} | {theirs} | settled on | server random ends with DOWNGRD\\x01 | evidence |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for outcome in (o for o in outcomes if o.cell.side == side):
            cell = outcome.cell
            label = OUR_CLIENTS[cell.ours] if side == "client" else OUR_SERVERS[cell.ours]
            evidence = outcome.evidence.replace("|", "\\|").replace("\n", " ")
            settled = outcome.settled if outcome.ok else f"{outcome.settled} (**{outcome.problem}**)"
            lines.append(f"| {label} | {OPENSSL_FLAGS[cell.openssl]} | {settled} | {outcome.sentinel} | {evidence} |")
        lines.append("")
    return "\n".join(lines)


def rows(text: str) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """The table rows of a document this script wrote: (section, ours, openssl) -> the other columns."""
    found: dict[tuple[str, str, str], tuple[str, ...]] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = "client" if "s_server" in line.split("->")[1] else "server"
        elif line.startswith("| ") and not line.startswith("| our "):
            columns = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            found[(section, columns[0], columns[1])] = tuple(columns[2:])
    return found


def header(subset: bool) -> str:
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=TIMEOUT).stdout.strip()
    return (
        "# TLS 1.2 / 1.3 version matrix\n\n"
        f"Generated by `python scripts/tls_version_matrix.py{' --subset' if subset else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {version}; Python {sys.version.split()[0]}); regenerate it rather than "
        "edit it.  Each row is one real connection between one of our version configurations and one of "
        "OpenSSL's: the version and suite the pair settled on (or who refused, with which alert), whether the "
        "ServerHello random ended with the downgrade sentinel `DOWNGRD\\x01` (444f574e47524401, RFC 8446 4.1.3) "
        "as the client saw it, and what the peer itself recorded.  A 1.3-capable server that settles on 1.2 "
        "sets the sentinel; `s_server -tls1_2` does not (its maximum is 1.2: nothing was downgraded), so our "
        "auto client falls back to 1.2 with it, and our 1.2-only client, which does not check the sentinel "
        "(RFC 8446 4.1.3 asks it of 1.3-capable clients only), sees OpenSSL's on a default s_server.  The last "
        "row of each table checks the sentinel across real peers: s_client refuses our 1.2-only server that sends "
        "it, and our auto client refuses OpenSSL's when a relay (a downgrade attacker) strips supported_versions "
        "from our hello, so that s_server, able to speak 1.3, reads a 1.2-only offer.  "
        "`tests/test_tls_version_matrix.py` runs every cell again and compares its rows with this document.\n\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", action="store_true", help="only the covering subset the tests run")
    args = parser.parse_args(argv)
    cells = covering_subset() if args.subset else full_matrix()
    print(f"{len(cells)} cells ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    with Peers() as peers:
        outcomes = [peers.run(cell) for cell in cells]
    passed = sum(o.ok for o in outcomes)
    print(header(args.subset) + markdown(outcomes))
    print(f"**{passed} of {len(outcomes)} cells as expected** in {time.monotonic() - started:.0f} s.")
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
