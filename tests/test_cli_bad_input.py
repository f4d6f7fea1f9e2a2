"""Bad command lines: every one gets exit status 1 or 2 and one error line, never a traceback (issue 8, item 11).

Each case ran into a traceback, a late failure or a misleading message before: ``https://[::1/``
(ValueError), ``--timeout inf`` (OverflowError), ``--timeout 0`` ("Operation now in progress"),
``--hostname ""`` (ValueError), a ``--keylog`` in a missing folder (the server started, then failed
every handshake with internal_error), a ``--cafile`` that is a folder ("does not exist").  The cases
are checked in process through ``main(argv)``; one runs as a real process with bytes that are not UTF-8.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from handshake_lib.__main__ import main
from handshake_lib.cli.arguments import MAX_SECONDS
from handshake_lib.cli.tcp import MAX_CAPTURE_BYTES
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.ssh.known_hosts import MAX_FILE_BYTES as MAX_KNOWN_HOSTS_BYTES

URL = "https://localhost:1/"
TEXT_FILE = "{tmp}/notes.txt"  # exists, but is not PEM
BAD_PEM = "{tmp}/bad.pem"  # PEM markers around bytes that are no certificate
HUGE_PEM = "{tmp}/huge.pem"  # a PEM marker, then more than a MiB of nothing
MISSING_FOLDER_FILE = "{tmp}/no-such-folder/keys.log"


SSH_PROBE = ["ssh", "probe", "127.0.0.1:1", "--known-hosts", "{tmp}/known_hosts"]


def _probe(destination: str, *extra: str) -> list[str]:
    return ["ssh", "probe", destination, "--known-hosts", "{tmp}/known_hosts", *extra]


def _serve(*extra: str) -> list[str]:
    return ["tls", "serve", "--port", "0", "--cert", "{cert}", "--key", "{key}", *extra]


# (argv, exit status, words the one error line must hold); {tmp}, {cert}, {key}, {ca} are filled in.
BAD_COMMAND_LINES = [
    # URLs
    (["tls", "get", "https://[::1/"], 2, "Invalid IPv6 URL"),
    (["tls", "get", ""], 2, "expected a URL like https://"),
    (["tls", "get", "https://localhost:70000/"], 2, "Port out of range"),
    (["tls", "get", "https://localhost:-1/"], 2, "expected a URL"),
    (["tls", "get", "https://./"], 2, "is empty"),
    (["tls", "get", "https://a..b/"], 2, "empty label"),
    (["tls", "get", "https://" + "a" * 64 + ".example/"], 2, "at most 63"),
    (["tls", "get", "https://localhost:1/a b"], 2, "percent-encode"),
    (["tls", "get", "https://localhost:1/x\r\nHost: evil"], 2, "control"),
    (["tls", "get", "https://h\u00e9.example/"], 2, "non-ASCII"),
    # seconds: finite, more than 0, at most an hour, for every command that takes a timeout
    *[
        ([*command, f"--timeout={value}"], 2, "expected seconds")
        for command in (["tls", "get", URL], ["tcp", "observe"], SSH_PROBE)
        for value in ("inf", "-inf", "1e300", "nan", "0", "-1", "", "soon", str(MAX_SECONDS + 1))
    ],
    # ports
    (_serve()[:3] + ["70000"] + _serve()[4:], 2, "port from 0 to 65535"),
    (_serve()[:3] + ["-1"] + _serve()[4:], 2, "port from 0 to 65535"),
    (_serve()[:3] + ["99999999999999999999999"] + _serve()[4:], 2, "port from 0 to 65535"),
    # addresses to bind
    (_serve("--host", ""), 2, "host name '' is empty"),
    (_serve("--host", "local host"), 2, "only letters"),
    (_serve("--host", "a..b"), 2, "empty label"),
    # paths: missing, empty, a folder, not PEM
    (["tls", "get", URL, "--cafile", "{tmp}"], 2, "is a folder; expected a file"),
    (["tls", "get", URL, "--cafile", "{tmp}/missing.pem"], 2, "does not exist"),
    (["tls", "get", URL, "--cafile", ""], 2, "empty string"),
    (["tls", "get", URL, "--cafile", TEXT_FILE], 2, "is not a PEM file"),
    (["tls", "serve", "--port", "0", "--cert", "{tmp}", "--key", "{key}"], 2, "is a folder"),
    (["tls", "serve", "--port", "0", "--cert", "{cert}", "--key", "{tmp}/missing.key"], 2, "does not exist"),
    (["tls", "serve", "--port", "0", "--cert", "{cert}", "--key", TEXT_FILE], 2, "is not a PEM file"),
    (["tls", "serve", "--port", "0", "--cert", "", "--key", "{key}"], 2, "empty string"),
    (["tls", "get", URL, "--cafile", "{key}"], 2, "holds no certificate we can read"),
    (["tls", "get", URL, "--cafile", "/dev/zero"], 2, "is not a regular file"),
    # (a sparse file stands for /dev/zero, which the code before this check read until the memory ran out)
    (["tls", "serve", "--port", "0", "--cert", HUGE_PEM, "--key", "{key}"], 1, "larger than 1 MiB"),
    (["tls", "serve", "--port", "0", "--cert", "{cert}", "--key", HUGE_PEM], 1, "larger than 1 MiB"),
    (["tls", "get", URL, "--cafile", BAD_PEM], 2, "holds no certificate we can read"),
    (["tls", "serve", "--port", "0", "--cert", "{key}", "--key", "{key}"], 1, "holds no certificate"),
    (["tls", "serve", "--port", "0", "--cert", BAD_PEM, "--key", "{key}"], 1, "holds no certificate"),
    (["tls", "serve", "--port", "0", "--cert", "{cert}", "--key", "{cert}"], 1, "holds no private key"),
    (["tcp", "decode", "{tmp}"], 2, "is a folder; expected a file"),
    (["tcp", "decode", ""], 2, "empty string"),
    (["tcp", "decode", "{tmp}/missing.pcap"], 2, "does not exist"),
    (["tcp", "decode", TEXT_FILE], 1, "not a capture we can read"),
    (["tcp", "decode", "{tmp}/huge.pcap"], 1, "larger than 16 MiB"),  # (/dev/zero used to fill the memory)
    # --cipher, --groups and a second identity (issue 12): one line, exit 2, before anything listens
    (["tls", "get", URL, "--cipher", "NOPE"], 2, "unknown cipher suite 'NOPE'; known: AES128-SHA,"),
    (_serve("--cipher", "ECDHE-ECDSA-AES128-CCM"), 2, "known: AES128-SHA,"),
    (_serve("--cipher", "TLS_AES_128_GCM_SHA256"), 2, "is not a suite our TLS 1.2 code runs"),  # TLS 1.3's
    (["tls", "get", URL, "--groups", "x448"], 2, "unknown group 'x448': use x25519, secp256r1, secp384r1, ffdhe"),
    (_serve("--groups", "secp256r1,secp521r1"), 2, "unknown group 'secp521r1'"),
    (_serve("--groups", ""), 2, "unknown group ''"),
    (_serve("--groups", "x25519,X25519"), 2, "a group appears twice"),
    (_serve("--cert", "{cert}"), 2, "2 --cert but 1 --key"),
    (_serve("--key", "{key}"), 2, "1 --cert but 2 --key"),
    (_serve("--cert", "{cert}", "--key", "{tmp}/ecdsa.key"), 2, "is not the private key of the certificate"),
    (_serve("--cert", "{cert}", "--key", "{key}"), 2, "two RSA identities"),
    (["tls", "serve", "--port", "0", "--cert", "{cert}", "--key", "{tmp}/ed25519.key"], 2, "RSA or ECDSA P-256/P-384"),
    # --keylog: checked at start-up, for both commands that take it
    (["tls", "get", URL, "--keylog", MISSING_FOLDER_FILE], 2, "does not exist"),
    (["tls", "get", URL, "--keylog", "{tmp}"], 2, "is a folder; expected a file to append to"),
    (["tls", "get", URL, "--keylog", TEXT_FILE + "/keys.log"], 2, "is not a folder"),
    (_serve("--keylog", MISSING_FOLDER_FILE), 2, "does not exist"),
    (_serve("--keylog", "{tmp}"), 2, "is a folder"),
    (_serve("--keylog", "{tmp}/fifo"), 2, "cannot append to"),  # a FIFO nobody reads: refused, not waited on
    # pki demo: host names by handshake_lib.hostnames, and the output folder
    (["pki", "demo", "{tmp}/pki", "--hostname", ""], 2, "is empty"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "."], 2, "is empty"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "a b"], 2, "only letters, digits"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "a..b"], 2, "empty label"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "x" * 300], 2, "at most 253"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "x" * 64 + ".example"], 2, "at most 63"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "h\u00e9.example"], 2, "xn-- form"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "bad-.example"], 2, "inner hyphens"),
    (["pki", "demo", "{tmp}/pki", "--hostname", "*"], 2, "only letters"),
    (["pki", "demo", ""], 2, "empty string"),
    (["pki", "demo", TEXT_FILE], 2, "is a file; expected a folder"),
    (["pki", "demo", TEXT_FILE + "/pki"], 1, "cannot write"),
    # pki demo --variant: a name from handshake_lib.pki.variants, a folder, nothing that does not apply
    (["pki", "demo", "{tmp}/pki", "--variant", "nope"], 2, "no variant 'nope' (--variant list names them)"),
    (["pki", "demo", "{tmp}/pki", "--variant", ""], 2, "no variant ''"),
    (["pki", "demo", "{tmp}/pki", "--variant", "x" * 5000], 2, "no variant 'xxxxxxxx"),
    (["pki", "demo", "--variant", "expired"], 2, "needs a DIR"),
    (["pki", "demo"], 2, "needs a DIR"),
    (["pki", "demo", "{tmp}/pki", "--variant", "expired", "--hostname", "a.example"], 2, "do not apply"),
    (["pki", "demo", "{tmp}/pki", "--variant", "expired", "--key-type", "ecdsa-p256"], 2, "do not apply"),
    (["pki", "demo", TEXT_FILE + "/pki", "--variant", "expired"], 1, "cannot write"),
    # ssh probe: [USER@]HOST[:PORT] as ssh reads it, algorithm names the library implements, a known_hosts file
    (_probe("127.0.0.1:70000"), 2, "bad port '70000'"),
    (_probe("127.0.0.1:0"), 2, "bad port '0'"),
    (_probe("127.0.0.1:"), 2, "bad port ''"),
    (_probe("root@"), 2, "no host"),
    (_probe("@127.0.0.1"), 2, "empty user name"),
    (_probe("a b@127.0.0.1"), 2, "bad user name"),
    (_probe("[::1"), 2, "no ']'"),
    (_probe("[::1]2222"), 2, "unexpected '2222' after ']'"),
    (_probe("[]:22"), 2, "no host"),
    (_probe("1::2::3"), 2, "is not an IPv6 address"),
    (_probe("a..b"), 2, "empty label"),
    (_probe("h\u00e9.example"), 2, "xn-- form"),
    (_probe("127.0.0.1", "--kex", "diffie-hellman-group1-sha1"), 2, "algorithm 'diffie-hellman-group1-sha1' is not"),
    (_probe("127.0.0.1", "--cipher", "aes192-ctr"), 2, "choose from chacha20-poly1305@openssh.com,"),
    (_probe("127.0.0.1", "--mac", "hmac-sha1"), 2, "mac algorithm 'hmac-sha1' is not one we implement"),
    (_probe("127.0.0.1", "--host-key-algorithms", "ssh-rsa"), 2, "host key algorithm 'ssh-rsa' is not"),
    (_probe("127.0.0.1", "--cipher", "aes128-ctr,,aes256-ctr"), 2, "expected comma-separated cipher"),
    (_probe("127.0.0.1", "--cipher", ""), 2, "expected comma-separated cipher"),
    (_probe("127.0.0.1", "--mac", "hmac-sha2-256,hmac-sha2-256"), 2, "appears twice"),
    (["ssh", "probe", "127.0.0.1"], 2, "the following arguments are required: --known-hosts"),
    (["ssh", "probe", "127.0.0.1", "--known-hosts", ""], 2, "empty string"),
    (["ssh", "probe", "127.0.0.1", "--known-hosts", "{tmp}"], 2, "is a folder"),
    (["ssh", "probe", "127.0.0.1:1", "--known-hosts", MISSING_FOLDER_FILE, "--accept-new"], 2, "does not exist"),
    (["ssh", "probe", "127.0.0.1:1", "--known-hosts", "{tmp}/huge_known_hosts"], 1, "larger than 4194304"),
    (_probe("127.0.0.1:1", "--keylog", MISSING_FOLDER_FILE), 2, "does not exist"),
]


def _main_or_give_up(argv: list[str], seconds: float = 10) -> int:
    """``main(argv)``; a command that starts (``tls serve`` runs until stopped) instead of refusing fails, not hangs."""

    def give_up(signum: int, frame: object) -> None:
        raise TimeoutError(f"{argv[:2]} started instead of refusing its arguments")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return main(argv)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(("argv", "status", "words"), BAD_COMMAND_LINES, ids=lambda value: repr(value)[:60])
def test_a_bad_command_line_gets_one_error_line(
    argv: list[str],
    status: int,
    words: str,
    server_files: ServerFiles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "notes.txt").write_text("not PEM, not a capture\n")
    os.mkfifo(tmp_path / "fifo")
    with open(tmp_path / "huge.pcap", "wb") as huge:
        huge.truncate(MAX_CAPTURE_BYTES + 1)  # sparse: a byte over the limit, no disk used
    with open(tmp_path / "huge.pem", "wb") as huge:
        huge.write(b"-----BEGIN CERTIFICATE-----\n")
        huge.truncate(2 << 20)
    with open(tmp_path / "huge_known_hosts", "wb") as huge:
        huge.truncate(MAX_KNOWN_HOSTS_BYTES + 1)  # (/dev/zero would be read up to the limit, no further)
    keys = {"ecdsa.key": ec.generate_private_key(ec.SECP256R1()), "ed25519.key": Ed25519PrivateKey.generate()}
    for name, key in keys.items():
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        (tmp_path / name).write_bytes(pem)  # keys of no certificate here: mismatched and unsupported pairs
    (tmp_path / "bad.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    paths = {"tmp": str(tmp_path), "cert": str(server_files.cert_path), "key": str(server_files.key_path)}
    assert _main_or_give_up([part.format(**paths) for part in argv]) == status
    captured = capsys.readouterr()
    error_lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, captured.err
    assert words in error_lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "pki").exists()  # refused before anything was written


def test_a_keylog_in_an_existing_folder_is_created_at_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check opens the key log for appending, as the run will: a missing file in an existing folder is fine."""
    keylog = tmp_path / "keys.log"
    # Port 1 refuses at once: the command fails later, for the network, not for its key log.
    assert main(["tls", "get", URL, "--keylog", str(keylog), "--timeout", "2"]) == 1
    assert "connection refused" in capsys.readouterr().err
    assert keylog.is_file() and keylog.stat().st_mode & 0o077 == 0  # a key log holds secrets: owner only


def test_pki_demo_takes_wildcards_ip_addresses_and_long_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography import x509

    long_name = ".".join(["a" * 63] * 3) + ".example"  # 199 characters: a DNS name, too long for a commonName
    argv = ["pki", "demo", str(tmp_path), "--hostname", long_name, "--hostname", "*.example.org", "--hostname", "::1"]
    assert main(argv) == 0
    leaf = x509.load_pem_x509_certificates((tmp_path / "server.pem").read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [long_name, "*.example.org"]
    assert [str(address) for address in names.get_values_for_type(x509.IPAddress)] == ["::1"]
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv",
    [
        [b"tls", b"get", b"https://localhost:1/caf\xe9"],
        [b"pki", b"demo", b"/nonexistent-folder", b"--hostname", b"caf\xe9.example"],
        [b"ssh", b"probe", b"caf\xe9.example:22", b"--known-hosts", b"/nonexistent-folder/known_hosts"],
    ],
    ids=["url", "hostname", "ssh-destination"],
)
def test_arguments_that_are_not_utf8_get_one_error_line(argv: list[bytes]) -> None:
    """As a real process: the bytes reach Python as surrogates, and the message shows them escaped."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    completed = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"handshake_lib", *argv],
        capture_output=True, timeout=30, env=environment, cwd=ROOT,
    )  # fmt: skip
    err = completed.stderr.decode("utf-8", errors="replace")
    assert completed.returncode == 2, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert "non-ASCII" in err or "xn-- form" in err


def _run_with_stdout(argv: list[str], stdout: int) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "handshake_lib", *argv],
        stdout=stdout, stderr=subprocess.PIPE, timeout=30, env=environment, cwd=ROOT,
    )  # fmt: skip


def test_a_reader_that_went_away_is_no_traceback() -> None:
    """``handshakes tcp decode --trace | head -1``: the pipe's reader is gone before we write (no race)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        completed = _run_with_stdout(["tcp", "decode", "--trace"], write_end)
    finally:
        os.close(write_end)
    assert completed.returncode == 1
    assert completed.stderr == b""  # nobody is left to read the output: nothing to explain either


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full is Linux's")
def test_output_that_cannot_be_written_is_one_line() -> None:
    with open("/dev/full", "wb") as full:
        completed = _run_with_stdout(["tcp", "decode"], full.fileno())
    assert completed.returncode == 1
    assert completed.stderr.decode().splitlines() == ["handshakes: error: No space left on device"]
