"""Renegotiation (RFC 5746) in both roles, judged by OpenSSL on both sides.

In memory: a renegotiation makes new keys while application data keeps flowing, each side's
renegotiation_info carries the last Finished messages, and every way of getting it wrong (no extension, the
SCSV, the wrong verify_data, another server certificate, too many renegotiations) ends in the right alert or
a declined renegotiation, never a crash.  Live: our client renegotiates with ``openssl s_server
-client_renegotiation`` (and is declined by a default OpenSSL 3 server) and answers s_server's HelloRequest;
``openssl s_client`` renegotiates with our server (``R``) and answers our HelloRequest, or declines it with
``-no_renegotiation``.  OpenSSL's key logs hold the master secret of every handshake, renegotiations included.
"""

from __future__ import annotations

import contextlib
import re
import time
from functools import partial

import pytest
from conftest import require
from cryptography.hazmat.primitives.serialization import Encoding

from handshake_lib.errors import (
    ConnectionStateError,
    ConnectionTimeout,
    HandshakeFailure,
    IllegalParameter,
    PeerAlert,
    TLSAlert,
)
from handshake_lib.net.tls import TLSPageServer, open_tls
from handshake_lib.peers.openssl import s_client, s_server
from handshake_lib.pki import CoursePKI
from handshake_lib.tcp.streams import SERVER_TO_CLIENT
from handshake_lib.tls.capture import decode_tls_capture
from handshake_lib.tls.client import TLSClient
from handshake_lib.tls.connection import (
    ApplicationData,
    HandshakeComplete,
    RenegotiationRefused,
    TLSConnection,
)
from handshake_lib.tls.constants import CipherSuite, ContentType, ExtensionType, HandshakeType
from handshake_lib.tls.extensions import RenegotiationInfoExtension
from handshake_lib.tls.keylog import client_random_line, parse_keylog, read_keylog
from handshake_lib.tls.messages import Alert, ClientHello
from handshake_lib.tls.negotiation import client_hello_for
from handshake_lib.tls.server import TLSServer
from handshake_lib.tls.stages import Stages
from handshake_lib.tls.states import (
    CLIENT_TRANSITIONS,
    SERVER_TRANSITIONS,
    Guard,
    Input,
    State,
    diagram_rows,
    replay,
)

TIMEOUT = 10


# -- in memory: our client and our server ---------------------------------------------------------
@pytest.fixture(scope="module")
def pki() -> CoursePKI:
    return CoursePKI.create()


@pytest.fixture(scope="module")
def identities(pki):
    """Two server certificates for the same name from the same CA (the second one for the swap test)."""
    return [pki.issue_server(("localhost",)) for _ in range(2)]


def new_pair(pki, identities, *, client_options=None, server_options=None):
    issued = identities[0]
    keylog: list[str] = []
    client = TLSClient(
        "localhost", trusted_certificates=[pki.root.certificate], keylog=keylog.append, **(client_options or {})
    )
    server = TLSServer(
        [issued.certificate.public_bytes(Encoding.DER)], issued.private_key, keylog=keylog.append,
        **(server_options or {}),
    )  # fmt: skip
    return client, server, keylog


def shuttle(client: TLSConnection, server: TLSConnection) -> tuple[list, list]:
    """Move bytes both ways until neither side has anything to say; the events each side saw."""
    client_events: list = []
    server_events: list = []
    for _ in range(16):
        to_server = client.data_to_send()
        if to_server:
            server_events += server.receive_data(to_server)
        to_client = server.data_to_send()
        if to_client:
            client_events += client.receive_data(to_client)
        if not to_server and not to_client:
            break
    return client_events, server_events


def connected(pki, identities, **options):
    client, server, keylog = new_pair(pki, identities, **options)
    client.start()
    shuttle(client, server)
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    return client, server, keylog


def data_of(events) -> list[bytes]:
    return [event.data for event in events if isinstance(event, ApplicationData)]


def completed(events) -> list[HandshakeComplete]:
    return [event for event in events if isinstance(event, HandshakeComplete)]


@pytest.mark.parametrize("who", ["client", "server"])
def test_a_renegotiation_makes_new_keys_while_data_keeps_flowing(pki, identities, who) -> None:
    client, server, keylog = connected(pki, identities)
    assert client.secure_renegotiation and server.secure_renegotiation  # both sent renegotiation_info
    first = client.handshake
    assert first is not None
    (server if who == "server" else client).renegotiate()
    # Data goes out both ways under the current keys while the new handshake is under way.
    client.send_application_data(b"from the client, during")
    server.send_application_data(b"from the server, during")
    client_events, server_events = shuttle(client, server)
    assert data_of(client_events) == [b"from the server, during"]
    assert data_of(server_events) == [b"from the client, during"]
    [client_done], [server_done] = completed(client_events), completed(server_events)
    assert client_done.renegotiation == server_done.renegotiation == 1
    assert [h.renegotiation for h in client.handshakes] == [0, 1]
    # A new key exchange: new randoms, a new master secret and key block, the same on both sides.
    assert client_done.master_secret == server_done.master_secret != first.master_secret
    assert client_done.client_random != first.client_random and client_done.key_block != first.key_block
    # One key log line per handshake, each with its own client random (Wireshark opens both halves).
    assert len(keylog) == 4 and len({line.split()[1] for line in keylog}) == 2
    # The renegotiating ClientHello was encrypted under the first handshake's keys.
    hellos = [
        entry
        for entry in client.transcript
        if entry.content_type == ContentType.handshake
        and any(m.handshake_type == HandshakeType.client_hello for m in entry.messages)
    ]
    assert [entry.encrypted for entry in hellos] == [False, True]
    renegotiating = hellos[1].messages[0]
    assert renegotiating.extension(ExtensionType.renegotiation_info).renegotiated_connection == first_client_finished(
        client, first
    )
    # After: both ways work under the new keys.
    client.send_application_data(b"after")
    server.send_application_data(b"after, too")
    client_events, server_events = shuttle(client, server)
    assert data_of(server_events) == [b"after"] and data_of(client_events) == [b"after, too"]


def first_client_finished(client: TLSClient, first: HandshakeComplete) -> bytes:
    """The verify_data of the client's Finished in the first handshake, read back from the transcript."""
    finished = [
        m
        for entry in client.transcript
        if entry.direction == "client->server" and entry.content_type == ContentType.handshake
        for m in entry.messages
        if m.handshake_type == HandshakeType.finished
    ]
    return finished[0].verify_data


def test_the_server_hello_of_a_renegotiation_carries_both_finished_messages(pki, identities) -> None:
    client, server, _ = connected(pki, identities)
    client_verify, server_verify = client.client_verify_data, client.server_verify_data
    assert client_verify == server.client_verify_data and server_verify == server.server_verify_data
    client.renegotiate()
    shuttle(client, server)
    extension = server.server_hello.extension(ExtensionType.renegotiation_info)
    assert extension.renegotiated_connection == client_verify + server_verify  # RFC 5746 section 3.7


def test_a_renegotiation_over_the_limit_is_declined_and_the_connection_goes_on(pki, identities) -> None:
    client, server, _ = connected(pki, identities, server_options={"max_renegotiations": 1})
    client.renegotiate()
    shuttle(client, server)
    assert len(server.handshakes) == 2 and server.peer_renegotiations == 1
    client.renegotiate()
    client_events, _ = shuttle(client, server)
    assert [type(e) for e in client_events] == [RenegotiationRefused]  # the warning no_renegotiation, a row
    assert client.state is State.CONNECTED and server.state is State.CONNECTED
    assert server.transcript[-1].messages == [Alert(1, TLSAlert.no_renegotiation)]
    client.send_application_data(b"still here")  # under the second handshake's keys, which stay
    _, server_events = shuttle(client, server)
    assert data_of(server_events) == [b"still here"]
    # Our own HelloRequest does not count against the client's limit.
    server.renegotiate()
    client_events, _ = shuttle(client, server)
    assert completed(client_events)[0].renegotiation == 2


def test_a_client_that_allows_none_declines_a_hello_request(pki, identities) -> None:
    client, server, _ = connected(pki, identities, client_options={"max_renegotiations": 0})
    server.renegotiate()
    _, server_events = shuttle(client, server)
    assert [type(e) for e in server_events] == [RenegotiationRefused]
    assert Guard.hello_request_sent not in server.guards()
    assert len(client.handshakes) == len(server.handshakes) == 1


def without_renegotiation_info() -> Stages:
    """A client from before RFC 5746: no renegotiation_info, no SCSV."""
    return Stages(build_client_hello=partial(client_hello_for, secure_renegotiation=False))


def test_without_secure_renegotiation_neither_side_may_start_one(pki, identities) -> None:
    client, server, _ = connected(pki, identities, client_options={"stages": without_renegotiation_info()})
    assert not client.secure_renegotiation and not server.secure_renegotiation
    for side in (client, server):
        with pytest.raises(ConnectionStateError, match="did not agree to secure renegotiation"):
            side.renegotiate()
    assert client.state is State.CONNECTED and server.state is State.CONNECTED


def test_the_scsv_alone_agrees_to_secure_renegotiation(pki, identities) -> None:
    def scsv_hello(*args, **kwargs) -> ClientHello:
        hello = client_hello_for(*args, secure_renegotiation=False, **kwargs)
        hello.cipher_suites.append(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
        return hello

    client, server, _ = connected(pki, identities, client_options={"stages": Stages(build_client_hello=scsv_hello)})
    assert server.secure_renegotiation and client.secure_renegotiation  # the server answered the signal
    client.renegotiate()
    client_events, _ = shuttle(client, server)
    assert completed(client_events)[0].renegotiation == 1
    assert CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV not in client.client_hello.cipher_suites  # not again


def test_an_insecure_client_that_renegotiates_anyway_is_declined(pki, identities) -> None:
    """The 2009 attack needs a server that accepts a renegotiation not bound to the first handshake."""
    client, server, _ = connected(pki, identities, client_options={"stages": without_renegotiation_info()})
    client.secure_renegotiation = True  # a hostile client: it sends a new ClientHello all the same
    client.renegotiate()
    client_events, _ = shuttle(client, server)
    assert [type(e) for e in client_events] == [RenegotiationRefused]
    assert server.state is State.CONNECTED and len(server.handshakes) == 1


def tamper_renegotiating_hello(client: TLSClient, change) -> None:
    original = client._renegotiating_hello
    client._renegotiating_hello = lambda hello: change(original(hello))  # type: ignore[method-assign]


def with_extensions(hello: ClientHello, info: RenegotiationInfoExtension | None) -> ClientHello:
    kept = [e for e in hello.extensions if e.extension_type != ExtensionType.renegotiation_info]
    hello.extensions = kept + ([info] if info is not None else [])
    return hello


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda h: with_extensions(h, None), "without renegotiation_info"),
        (lambda h: with_extensions(h, RenegotiationInfoExtension(bytes(12))), "does not carry the client's last"),
        (lambda h: with_extensions(h, RenegotiationInfoExtension(b"")), "does not carry the client's last"),
        (
            lambda h: (h.cipher_suites.append(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV), h)[1],
            "must not carry the SCSV",
        ),
    ],
    ids=["no-extension", "wrong-verify-data", "empty", "scsv"],
)
def test_a_renegotiating_hello_not_bound_to_the_first_handshake_is_refused(pki, identities, change, says) -> None:
    client, server, _ = connected(pki, identities)
    tamper_renegotiating_hello(client, change)
    client.renegotiate()
    with pytest.raises(HandshakeFailure, match=says):
        server.receive_data(client.data_to_send())
    with pytest.raises(PeerAlert) as alert:
        client.receive_data(server.data_to_send())
    assert alert.value.description == TLSAlert.handshake_failure


def test_our_client_refuses_a_server_hello_not_bound_to_the_first_handshake(pki, identities) -> None:
    client, server, _ = connected(pki, identities)
    server.server_verify_data = bytes(12)  # as if another server had finished the first handshake
    client.renegotiate()
    server.receive_data(client.data_to_send())
    with pytest.raises(HandshakeFailure, match="does not carry both Finished"):
        client.receive_data(server.data_to_send())


def test_our_client_refuses_another_server_certificate_in_a_renegotiation(pki, identities) -> None:
    client, server, _ = connected(pki, identities)
    other = identities[1]  # valid for the same name, from the same CA: the triple handshake's swap
    server.identities["RSA"] = ([other.certificate.public_bytes(Encoding.DER)], other.private_key)
    client.renegotiate()
    server.receive_data(client.data_to_send())
    with pytest.raises(IllegalParameter, match="another certificate"):
        client.receive_data(server.data_to_send())


def test_renegotiate_needs_an_open_connection_with_no_handshake_under_way(pki, identities) -> None:
    client, server, _ = new_pair(pki, identities)
    client.start()
    with pytest.raises(ConnectionStateError, match="WAIT_SERVER_HELLO"):
        client.renegotiate()
    shuttle(client, server)
    client.renegotiate()
    with pytest.raises(ConnectionStateError, match="no handshake under way"):
        client.renegotiate()
    with pytest.raises(ValueError, match="max_renegotiations"):
        TLSClient("localhost", verify=False, max_renegotiations=-1)


def test_the_renegotiation_rows_are_made_from_the_first_handshakes() -> None:
    hello_rows = [
        r for r in SERVER_TRANSITIONS if r.source is State.WAIT_CLIENT_HELLO and r.received is Input.client_hello
    ]
    renegotiating = [
        r
        for r in SERVER_TRANSITIONS
        if r.source is State.CONNECTED and r.received is Input.client_hello and r.when is not None
    ]
    assert sorted((r.target.value, r.send) for r in renegotiating) == sorted(
        (r.target.value, r.send) for r in hello_rows
    )
    assert all({Guard.secure_renegotiation, Guard.renegotiation_allowed} <= r.needs for r in renegotiating)
    # Data may arrive during a renegotiation in every state before the peer's ChangeCipherSpec, never after it.
    for table in (CLIENT_TRANSITIONS, SERVER_TRANSITIONS):
        loops = {r.source for r in table if r.received is Input.application_data and r.when is Guard.renegotiating}
        assert State.WAIT_CHANGE_CIPHER_SPEC in loops and State.WAIT_FINISHED not in loops


# -- our client, OpenSSL's server -----------------------------------------------------------------
def keylog_secrets(path) -> dict[bytes, bytes]:
    return {e.client_random: e.secret for e in read_keylog(path).entries if e.label == "CLIENT_RANDOM"}


OPENSSL_NAMES = {
    "ECDHE-RSA-AES128-GCM-SHA256": [CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256],
    "AES128-SHA256": [CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256],  # RSA key exchange, CBC with encrypt-then-MAC
}


@pytest.mark.parametrize("cipher", OPENSSL_NAMES)
def test_our_client_renegotiates_with_s_server_which_logs_both_handshakes(server_files, tmp_path, cipher) -> None:
    require("openssl")
    keylog = tmp_path / "s_server.log"
    options = ("-tls1_2", "-www", "-client_renegotiation", "-cipher", cipher, "-keylogfile", str(keylog))
    with s_server(server_files, *options) as peer, open_tls(
        peer.host, peer.port, "localhost", cafile=server_files.ca_path, timeout=TIMEOUT,
        keylog_path=tmp_path / "ours.log", cipher_suites=OPENSSL_NAMES[cipher],
    ) as stream:  # fmt: skip
        first = stream.handshake
        second = stream.renegotiate()
        stream.send(b"GET / HTTP/1.0\r\n\r\n")
        page = b""
        while chunk := stream.recv():
            page += chunk
    assert second is not None and second.renegotiation == 1 and second.cipher_suite == first.cipher_suite
    assert b"200 ok" in page.lower()
    # s_server logged the master secret of each handshake under its client random, as we did.
    logged = keylog_secrets(keylog)
    assert logged[first.client_random] == first.master_secret
    assert logged[second.client_random] == second.master_secret != first.master_secret
    assert keylog_secrets(tmp_path / "ours.log") == {
        first.client_random: first.master_secret,
        second.client_random: second.master_secret,
    }


def test_a_default_openssl_3_server_declines_our_renegotiation_and_still_serves(server_files) -> None:
    require("openssl")
    with (
        s_server(server_files, "-tls1_2", "-www") as peer,  # OpenSSL 3: no client-initiated renegotiation
        open_tls(peer.host, peer.port, "localhost", cafile=server_files.ca_path, timeout=TIMEOUT) as stream,
    ):
        assert stream.renegotiate() is None  # its warning no_renegotiation
        stream.send(b"GET / HTTP/1.0\r\n\r\n")
        page = stream.recv()
        assert stream.client.handshakes == [stream.handshake]
    assert page.lower().startswith(b"http/1.0 200 ok")


def test_our_client_answers_s_servers_hello_request(server_files, tmp_path) -> None:
    require("openssl")
    keylog = tmp_path / "s_server.log"
    with (
        s_server(server_files, "-tls1_2", "-keylogfile", str(keylog), stdin=True) as peer,
        open_tls(peer.host, peer.port, "localhost", cafile=server_files.ca_path, timeout=TIMEOUT) as stream,
    ):
        first = stream.handshake
        peer.write(b"r\n")  # s_server: SSL_renegotiate, then a HelloRequest to us; it waits for our answer
        deadline = time.monotonic() + TIMEOUT
        while stream.handshake.renegotiation == 0:  # recv() answers the HelloRequest while it waits for data
            with contextlib.suppress(ConnectionTimeout):
                stream.recv(deadline=min(deadline, time.monotonic() + 0.2))
            assert time.monotonic() < deadline, "no renegotiation in time"
        # Typed only now: s_server reads it as a line to send, not as its "r" command.
        peer.write(b"after the renegotiation\n")
        assert stream.recv(deadline=deadline) == b"after the renegotiation\n"  # under the new keys
        second = stream.handshake
    assert second.renegotiation == 1 and second.master_secret != first.master_secret
    assert keylog_secrets(keylog) == {
        first.client_random: first.master_secret,
        second.client_random: second.master_secret,
    }


# -- OpenSSL's client, our server -----------------------------------------------------------------
def s_client_options(server_files, keylog) -> tuple[str, ...]:
    return (
        "-tls1_2", "-CAfile", str(server_files.ca_path), "-verify_return_error", "-servername", "localhost",
        "-keylogfile", str(keylog),
    )  # fmt: skip


def page_server(server_files, **options) -> TLSPageServer:
    issued = server_files.issued
    return TLSPageServer([issued.certificate], issued.private_key, timeout=TIMEOUT, **options)


def wait_until_finished(server: TLSPageServer) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not (server.connections and server.connections[-1].finished) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_s_client_renegotiates_with_our_server(server_files, tmp_path) -> None:
    require("openssl")
    keylog = tmp_path / "s_client.log"
    with page_server(server_files) as server:
        with s_client(server.port, *s_client_options(server_files, keylog)) as peer:
            peer.read_output(re.compile(rb"Verify return code: 0"), wait=TIMEOUT)
            peer.write(b"R\n")  # s_client: SSL_renegotiate (client-initiated, RFC 5746)
            peer.read_output(re.compile(rb"RENEGOTIATING"), wait=TIMEOUT)
            peer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            output = peer.read_output(re.compile(rb"</html>"), wait=TIMEOUT)
        wait_until_finished(server)
        record = server.connections[-1]
    assert b"This page came over a TLS connection" in output
    assert record.status == 200 and record.handshake is not None and record.handshake.renegotiation == 1
    assert len(keylog_secrets(keylog)) == 2  # s_client logged both handshakes
    assert keylog_secrets(keylog)[record.handshake.client_random] == record.handshake.master_secret


@pytest.mark.parametrize("declines", [False, True], ids=["answers", "declines"])
def test_our_hello_request_to_s_client(server_files, tmp_path, declines) -> None:
    require("openssl")
    keylog = tmp_path / "s_client.log"
    options = s_client_options(server_files, keylog) + (("-no_renegotiation",) if declines else ())
    with page_server(server_files, renegotiate=True) as server:
        with s_client(server.port, *options) as peer:
            peer.read_output(re.compile(rb"Verify return code: 0"), wait=TIMEOUT)
            peer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            output = peer.read_output(re.compile(rb"</html>"), wait=TIMEOUT)
        wait_until_finished(server)
        record = server.connections[-1]
    assert b"This page came over a TLS connection" in output and record.status == 200
    assert record.handshake is not None
    if declines:
        assert record.handshake.renegotiation == 0 and "declined to renegotiate" in record.outcome
        assert len(keylog_secrets(keylog)) == 1
    else:
        assert record.handshake.renegotiation == 1 and "declined" not in record.outcome
        assert keylog_secrets(keylog)[record.handshake.client_random] == record.handshake.master_secret


def test_a_recorded_renegotiation_decodes_with_the_key_log_and_says_what_it_cannot_open(
    server_files, tmp_path
) -> None:
    """The capture decoder follows the new keys from each direction's next ChangeCipherSpec, as Wireshark does."""
    require("openssl")
    capture, keylog = tmp_path / "renegotiated.pcap", tmp_path / "ours.log"
    with (
        s_server(server_files, "-tls1_2", "-www", "-client_renegotiation") as peer,
        open_tls(
            "127.0.0.1", peer.port, "localhost", cafile=server_files.ca_path, timeout=TIMEOUT,
            keylog_path=keylog, record_to=capture,
        ) as stream,
    ):  # fmt: skip
        first, second = stream.handshake, stream.renegotiate()
        stream.send(b"GET / HTTP/1.0\r\n\r\n")
        page = b""
        while chunk := stream.recv():
            page += chunk
    assert second is not None
    [connection] = decode_tls_capture(capture, keylog=read_keylog(keylog))
    assert connection.problem == "" and connection.renegotiations == 1
    assert connection.renegotiation_randoms == [second.client_random]
    assert connection.application_data(SERVER_TO_CLIENT) == page  # every byte of the page, under the new keys
    # Only the first handshake's line: the renegotiation's records stay encrypted, and the problem says why.
    only_first = parse_keylog(client_random_line(first.client_random, first.master_secret))
    [partial_view] = decode_tls_capture(capture, keylog=only_first)
    assert partial_view.problem.startswith("renegotiation 1: no CLIENT_RANDOM line")
    assert partial_view.application_data(SERVER_TO_CLIENT) == b""


@pytest.mark.parametrize("who", ["client", "server", "declined"])
def test_replay_walks_a_renegotiated_transcript_through_the_tables(pki, identities, who) -> None:
    options = {"server_options": {"max_renegotiations": 0}} if who == "declined" else {}
    client, server, _ = connected(pki, identities, **options)
    (server if who == "server" else client).renegotiate()
    client.send_application_data(b"during")
    shuttle(client, server)
    client.send_application_data(b"after")
    shuttle(client, server)
    for role, connection in (("client", client), ("server", server)):
        states = replay(role, connection.transcript)
        assert State.ERROR not in states and states[-1] is State.CONNECTED
        # The renegotiation left CONNECTED and came back (a declined one never left it on the server).
        left = [s for s in states[states.index(State.CONNECTED) :] if s is not State.CONNECTED]
        assert bool(left) == (who != "declined" or role == "client")


def test_sending_between_our_change_cipher_spec_and_the_end_waits_for_the_handshake(server_files) -> None:
    """RFC 5246 7.4.9: no data between ChangeCipherSpec and Finished; TLSStream.send finishes the handshake."""
    require("openssl")
    with (
        s_server(server_files, "-tls1_2", "-www", "-client_renegotiation") as peer,
        open_tls(peer.host, peer.port, "localhost", cafile=server_files.ca_path, timeout=TIMEOUT) as stream,
    ):
        stream.client.renegotiate()  # the core, not stream.renegotiate(): we stop half way
        deadline = time.monotonic() + TIMEOUT
        while stream.client.state is not State.WAIT_CHANGE_CIPHER_SPEC:  # our CCS and Finished are out
            stream._driver.receive(deadline)
        assert not stream.client.can_send_application_data
        with pytest.raises(ConnectionStateError):
            stream.client.send_application_data(b"too early")  # the core refuses
        stream.send(b"GET / HTTP/1.0\r\n\r\n")  # the stream finishes the handshake first
        page = stream.recv()
        assert stream.handshake.renegotiation == 1
    assert page.lower().startswith(b"http/1.0 200 ok")


def test_the_diagrams_draw_renegotiation_only_when_asked() -> None:
    """Lessons 06 and 08 draw one handshake; the renegotiation arrows would crowd it (and overlapped)."""
    assert not [row for row in diagram_rows("client") if row[0] == "CONNECTED"]
    [(_, label, _)] = [row for row in diagram_rows("client", renegotiation=True) if row[0] == "CONNECTED"]
    assert "renegotiate() [renegotiation_info agreed] / ClientHello" in label.splitlines()
    assert "HelloRequest [renegotiation_info agreed; within the renegotiation limit] / ClientHello" in label
    rows = diagram_rows("server", renegotiation=True)
    server_targets = {target for source, _, target in rows if source == "CONNECTED"}
    assert server_targets == {"WAIT_CLIENT_KEY_EXCHANGE", "WAIT_CLIENT_CERTIFICATE", "WAIT_CHANGE_CIPHER_SPEC"}
    assert not [row for row in diagram_rows("server") if row[0] == "CONNECTED"]
