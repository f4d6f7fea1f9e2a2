"""Resumption over sockets: ``tls_get(session_store=...)`` and :class:`TLSPageServer`'s defaults.

Judged by peers nobody here wrote:

* our client fetching three times with one store from Python ``ssl`` (OpenSSL 3.0), tickets on and off:
  OpenSSL's own ``session_reused`` agrees with our ``resumed_by``, and OpenSSL's key log holds, under each of
  our client randoms, the master secret our key log wrote for that handshake (one line per handshake);
* ``openssl s_client -reconnect`` (tickets, then ``-no_ticket``) and ``-sess_out``/``-sess_in`` against a
  ``TLSPageServer`` with nothing configured: "Reused, TLSv1.2", and the server's records say how;
* curl fetching two URLs in one command: ``curl -v`` says "SSL re-using session ID" (curl 7.88 asks for
  no ticket), and our server saw a full handshake then a resumption by session ID;
* each recorded connection (``record_to=``), resumed ones included, decrypted with our key log by
  ``handshakes tls decode`` and by tshark (Wireshark), which show the page.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from dataclasses import replace

import pytest
from conftest import require

from handshake_lib.__main__ import main
from handshake_lib.errors import HandshakeFailure
from handshake_lib.net.tls import TLSPageServer, session_key, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, http_page_handler, server_context
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.sessions import ClientSessionStore, SessionCache

TIMEOUT = 10
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def page_server(server_files):
    """One TLSPageServer for the module, resumption left at its defaults."""
    issued = server_files.issued
    with TLSPageServer([issued.certificate], issued.private_key, timeout=TIMEOUT) as server:
        yield server


def served_since(server: TLSPageServer, before: int) -> list:
    """The records of the connections accepted after the first ``before`` (all finished: the clients are done)."""
    return [record for record in server.connections if record.number > before]


# -- our client, OpenSSL's server ----------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1.2", "auto"])
@pytest.mark.parametrize("tickets", [True, False], ids=["ticket", "session-id"])
def test_three_fetches_with_one_store_resume_twice_as_openssl_sees_it(server_files, tmp_path, tickets, version) -> None:
    """With ``tls_version="auto"`` the one hello offering 1.3 and 1.2 carries the 1.2 session too (its ID as
    legacy_session_id, or its ticket), and the 1.2 client that takes over when OpenSSL picks 1.2 resumes it."""
    theirs, ours = tmp_path / "openssl.log", tmp_path / "ours.log"
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers="ECDHE-RSA-AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2, keylog_path=theirs,
    )  # fmt: skip
    if not tickets:
        context.options |= ssl.OP_NO_TICKET  # by session ID: OpenSSL's server-side cache
    reused: list[bool] = []
    page = http_page_handler()

    def handler(tls: ssl.SSLSocket) -> None:
        reused.append(tls.session_reused)  # OpenSSL's own view of each handshake
        page(tls)
        with contextlib.suppress(OSError, ssl.SSLError):
            tls.unwrap()  # a session not shut down cleanly is dropped from OpenSSL's cache

    store = ClientSessionStore()
    with PythonSSLServer(context, handler) as server:
        url = f"https://localhost:{server.port}/"
        responses = [
            tls_get(url, cafile=server_files.ca_path, session_store=store, session_ticket=True, keylog_path=ours,
                    tls_version=version)  # fmt: skip
            for _ in range(3)
        ]
    how = "ticket" if tickets else "session ID"
    assert [r.resumed_by for r in responses] == [None, how, how]
    assert reused == [False, True, True]
    assert all(r.status == 200 for r in responses)
    assert [name for name, _ in store] == [session_key("localhost", server.port)]
    # One key log line per handshake, resumed ones included; OpenSSL logged the same secret for each.
    our_log, their_log = read_keylog(ours), read_keylog(theirs)
    randoms = [r.handshake.client_random for r in responses]
    assert len(our_log.entries) == 3 and len(set(randoms)) == 3
    master = responses[0].handshake.master_secret
    assert {our_log.master_secret(random) for random in randoms} == {master}
    assert {their_log.master_secret(random) for random in randoms} == {master}


# -- OpenSSL's clients, our server's defaults ------------------------------------------------------------
def s_client(server_files, port: int, *options: str) -> str:
    openssl = require("openssl")
    command = [
        openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(server_files.ca_path),
        "-verify_return_error", "-servername", "localhost", "-ign_eof", *options,
    ]  # fmt: skip
    result = subprocess.run(command, input=REQUEST, capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode("utf-8", "replace")


def outcomes(output: str) -> list[str]:
    return [line.split(",")[0] for line in output.splitlines() if line.startswith(("New, TLSv1.2", "Reused, "))]


@pytest.mark.parametrize(("options", "how"), [((), "ticket"), (("-no_ticket",), "session ID")])
def test_s_client_reconnect_resumes_with_a_default_page_server(server_files, page_server, options, how) -> None:
    before = page_server.accepted
    output = s_client(server_files, page_server.port, "-reconnect", *options)
    assert outcomes(output) == ["New"] + ["Reused"] * 5
    records = served_since(page_server, before)
    assert [r.resumed_by for r in records] == [None] + [how] * 5
    if how == "ticket":
        assert "TLS session ticket lifetime hint: 7200 (seconds)" in output  # TicketKeys' default lifetime


def test_s_client_sess_out_then_sess_in_resumes(server_files, page_server, tmp_path) -> None:
    saved = tmp_path / "session.pem"
    first = s_client(server_files, page_server.port, "-sess_out", str(saved))
    second = s_client(server_files, page_server.port, "-sess_in", str(saved))
    assert "New, TLSv1.2" in first and "HTTP/1.1 200 OK" in first
    assert "Reused, TLSv1.2" in second and "HTTP/1.1 200 OK" in second
    assert page_server.connections[-1].resumed_by == "ticket"  # s_client saved the ticket with the session


def test_curl_fetching_twice_resumes_by_session_id(server_files, page_server) -> None:
    curl = require("curl")
    url = f"https://localhost:{page_server.port}/"
    before = page_server.accepted
    result = subprocess.run(
        [curl, "-v", "--silent", "--show-error", "--cacert", str(server_files.ca_path), "--tlsv1.2",
         "--tls-max", "1.2", url, url, "-o", "/dev/null", "-o", "/dev/null"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("SSL re-using session ID") == 1  # curl's word for it, on its second connection
    assert [r.resumed_by for r in served_since(page_server, before)] == [None, "session ID"]


def test_a_server_without_resumption_gives_full_handshakes(server_files) -> None:
    issued = server_files.issued
    with TLSPageServer([issued.certificate], issued.private_key, timeout=TIMEOUT, resumption=False) as server:
        output = s_client(server_files, server.port, "-reconnect")
        assert server.session_cache is None and server.ticket_keys is None
    assert outcomes(output) == ["New"] * 6
    with pytest.raises(ValueError, match="resumption=False"):
        TLSPageServer([issued.certificate], issued.private_key, resumption=False, session_cache=SessionCache())


# -- the key log lines, read back from recordings -----------------------------------------------------
def test_each_recorded_connection_decrypts_with_its_key_log_line(server_files, page_server, tmp_path, capsys) -> None:
    keylog = tmp_path / "keys.log"
    store = ClientSessionStore()
    url = f"https://localhost:{page_server.port}/"
    pcaps = [tmp_path / f"fetch{n}.pcap" for n in range(3)]
    responses = [
        tls_get(url, cafile=server_files.ca_path, session_store=store, session_ticket=True, keylog_path=keylog,
                record_to=pcap)
        for pcap in pcaps
    ]  # fmt: skip
    assert [r.resumed_by for r in responses] == [None, "ticket", "ticket"]
    assert len(keylog.read_text().splitlines()) == 3
    for pcap in pcaps:
        assert main(["tls", "decode", str(pcap), "--keylog", str(keylog)]) == 0
        out = capsys.readouterr().out
        assert "1 TLS connection(s), 1 decrypted" in out and "Hello from the Handshakes TLS server" in out
    # Wireshark agrees on the abbreviated handshake: ClientHello, ServerHello + NewSessionTicket, and the
    # response decrypted with the same key log.
    tshark = require("tshark")
    # The server's port is whatever the kernel gave it: tell tshark it is TLS, or a port some other dissector
    # claims makes the run fail now and then.
    as_tls = ["-d", f"tcp.port=={page_server.port},tls"]
    fields = subprocess.run(
        [tshark, "-r", str(pcaps[2]), *as_tls, "-o", f"tls.keylog_file:{keylog}", "-Y", "http.response", "-T",
         "fields", "-e", "http.response.code"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert fields.stdout.split() == ["200"], fields.stderr
    types = subprocess.run(
        [tshark, "-r", str(pcaps[2]), *as_tls, "-Y", "tls.handshake", "-T", "fields", "-e", "tls.handshake.type"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert types.stdout.split() == ["1", "2,4"]  # no Certificate, no key exchange


def test_a_failed_resumption_forgets_the_session(server_files, page_server) -> None:
    store = ClientSessionStore()
    url = f"https://localhost:{page_server.port}/"
    tls_get(url, cafile=server_files.ca_path, session_store=store, session_ticket=True)
    key = session_key("localhost", page_server.port)
    kept = store.get(key)
    assert kept is not None and kept.extended_master_secret
    # A kept session that disagrees with what the server resumes (RFC 7627 5.3): our client aborts...
    store.store(key, replace(kept, extended_master_secret=False))
    with pytest.raises(HandshakeFailure, match="RFC 7627"):
        tls_get(url, cafile=server_files.ca_path, session_store=store)
    # ...and a session ended by a fatal alert is not offered again (RFC 5246 7.2.2): the next one is full.
    assert store.get(key) is None
    assert tls_get(url, cafile=server_files.ca_path, session_store=store).resumed_by is None


def test_resumed_connections_in_a_capture_decrypt_with_only_the_server_key(server_files, page_server, tmp_path):
    """A tcpdump capture of ``s_client -reconnect`` (RSA key exchange): the decoder opens the full handshake
    with the server's key and, as Wireshark does, each resumption with the secret of the session it names."""
    from conftest import require_loopback_capture

    from handshake_lib.tcp.streams import SERVER_TO_CLIENT
    from handshake_lib.tls.capture import EARLIER_ID, EARLIER_TICKET, SERVER_KEY, decode_tls_capture

    tcpdump = require_loopback_capture("captures s_client's connections").tcpdump
    for options, source in (((), EARLIER_TICKET), (("-no_ticket",), EARLIER_ID)):
        pcap = tmp_path / f"reconnect{len(options)}.pcap"
        with tcpdump(pcap, page_server.port):
            output = s_client(server_files, page_server.port, "-reconnect", "-cipher", "AES128-GCM-SHA256", *options)
        assert outcomes(output) == ["New"] + ["Reused"] * 5
        connections = decode_tls_capture(pcap, server_key=server_files.issued.private_key)
        assert [c.problem for c in connections] == [""] * 6
        assert [c.key_source for c in connections] == [SERVER_KEY] + [source] * 5
        assert b"HTTP/1.1 200 OK" in connections[-1].application_data(SERVER_TO_CLIENT)


def test_a_server_asking_for_client_certificates_does_not_resume_unless_told(server_files, tmp_path) -> None:
    """A Session does not carry the client's certificate yet: resuming would lose who connected."""
    from handshake_lib.pki.builder import CoursePKI

    pki, issued = server_files.pki, server_files.issued
    cert_path, key_path = CoursePKI.write_issued(pki.issue_client("alice"), tmp_path, "alice")
    mutual = {"client_ca": [pki.root.certificate], "require_client_certificate": True}
    with TLSPageServer([issued.certificate], issued.private_key, timeout=TIMEOUT, **mutual) as server:
        output = s_client(server_files, server.port, "-reconnect", "-cert", str(cert_path), "-key", str(key_path))
        assert not server.resumption
    assert outcomes(output) == ["New"] * 6
    assert [r.client_subject for r in server.connections] == ["CN=alice,O=Handshakes course"] * 6
    with TLSPageServer([issued.certificate], issued.private_key, timeout=TIMEOUT, resumption=True, **mutual) as server:
        output = s_client(server_files, server.port, "-reconnect", "-cert", str(cert_path), "-key", str(key_path))
    assert outcomes(output) == ["New"] + ["Reused"] * 5
