"""tls.session and the transcript around it: timings, failures that carry the transcript, where
TLSPageServer listens, lazily computed spans, and the errors that moved to ``errors.py``.

Peers: a real OpenSSL server (``PythonSSLServer``) and Python's ``ssl`` client.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

from handshake_lib import errors, net
from handshake_lib.errors import CertificateError, ConnectionTimeout, PeerAlert, TLSAlert
from handshake_lib.net import tls as session
from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.pki import IssuedCertificate
from handshake_lib.pki.builder import ServerFiles
from handshake_lib.tls import connection
from handshake_lib.tls.client import TLSClient
from handshake_lib.tls.connection import TranscriptEntry, record_spans
from handshake_lib.tls.messages import Alert, ClientHello, ClientKeyExchange, ServerHelloDone


def python_ssl_server(files: ServerFiles, ciphers: str = "AES128-SHA256") -> PythonSSLServer:
    context = server_context(files.cert_path, files.key_path, ciphers=ciphers, maximum_version=ssl.TLSVersion.TLSv1_2)
    return PythonSSLServer(context)


def _index_of(transcript: list[TranscriptEntry], message_type: type) -> int:
    return next(i for i, entry in enumerate(transcript) if any(isinstance(m, message_type) for m in entry.messages))


# -- timings: sent when sent, received when received ---------------------------------------------------
def test_every_record_of_a_real_handshake_is_stamped_once_and_answers_after_the_work(
    server_files: ServerFiles,
) -> None:
    # The real clock: exact stamping (received when recv returns, sent when sendall returns) is checked
    # deterministically with a scripted core and a fake clock in test_net_and_pki.py.
    with python_ssl_server(server_files) as server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path)
    transcript, timings = response.transcript, response.timings
    when = {index: at for at, _, index in timings}
    assert len(timings) == len(transcript) and sorted(when) == list(range(len(transcript)))  # each once
    assert [at for at, _, _ in timings] == sorted(at for at, _, _ in timings)  # listed in the order they happened
    assert all(direction == transcript[index].direction for _, direction, index in timings)
    done, key_exchange = _index_of(transcript, ServerHelloDone), _index_of(transcript, ClientKeyExchange)
    # The client's answer is built while ServerHelloDone is handled (an RSA encryption, the PRF, Finished:
    # far longer than the clock's nanosecond resolution) and leaves only after that work.
    assert when[key_exchange] > when[done]
    assert 0 <= when[_index_of(transcript, ClientHello)] < when[_index_of(transcript, ServerHelloDone)]


# -- failures carry the transcript so far -------------------------------------------------------------
def test_a_certificate_failure_carries_the_transcript_up_to_our_alert(
    server_files: ServerFiles, untrusted_ca_file: Path
) -> None:
    with python_ssl_server(server_files) as server, pytest.raises(CertificateError) as caught:
        tls_get(f"https://localhost:{server.port}/", cafile=untrusted_ca_file)
    exchange = caught.value.exchange
    assert exchange is not None and caught.value.transcript is exchange.transcript
    transcript = exchange.transcript
    assert isinstance(transcript[0].messages[0], ClientHello)
    last = transcript[-1]
    assert last.direction == "client->server"
    assert last.messages == [Alert(2, TLSAlert.unknown_ca)]
    assert {index for _, _, index in exchange.timings} == set(range(len(transcript)))  # the alert went out


def test_a_peer_alert_carries_the_transcript_up_to_the_peers_alert(server_files: ServerFiles) -> None:
    with python_ssl_server(server_files, "AES128-GCM-SHA256") as server, pytest.raises(PeerAlert) as caught:
        tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path, cipher_suites=[0x002F])  # AES128-SHA
    transcript = caught.value.transcript
    assert transcript is not None and isinstance(transcript[0].messages[0], ClientHello)
    assert transcript[-1].direction == "server->client"
    assert transcript[-1].messages == [Alert(2, TLSAlert.handshake_failure)]


def test_a_timeout_carries_the_transcript_so_far(server_files: ServerFiles) -> None:
    with net.listen_loopback() as silent:  # accepts (in the kernel) and never answers
        port = silent.getsockname()[1]
        with pytest.raises(ConnectionTimeout) as caught:
            tls_get(f"https://127.0.0.1:{port}/", cafile=server_files.ca_path, timeout=0.3)
    assert caught.value.exchange is not None
    transcript = caught.value.exchange.transcript
    assert len(transcript) == 1 and isinstance(transcript[0].messages[0], ClientHello)


def test_a_refused_connection_is_the_plain_oserror_with_nothing_attached() -> None:
    with net.listen_loopback() as closed:
        port = closed.getsockname()[1]
    with pytest.raises(ConnectionRefusedError) as caught:
        tls_get(f"https://127.0.0.1:{port}/", verify=False, timeout=2)
    assert not isinstance(caught.value, errors.HandshakeError)
    assert not hasattr(caught.value, "exchange") and not hasattr(caught.value, "transcript")


def test_a_network_error_under_a_running_connection_becomes_connection_lost() -> None:
    client = TLSClient("localhost", verify=False)
    client.start()
    lost = session._with_exchange(BrokenPipeError(32, "Broken pipe"), client, None)
    assert isinstance(lost, errors.ConnectionLost) and isinstance(lost, OSError)
    assert lost.errno == 32 and lost.strerror == "Broken pipe"
    assert lost.exchange == errors.Exchange(client.transcript, [])
    # A library error keeps the first exchange it was given (the innermost runner saw the most).
    first = errors.Exchange([], [])
    timeout = errors.ConnectionTimeout("late")
    timeout.exchange = first
    assert session._with_exchange(timeout, client, None) is timeout and timeout.exchange is first


# -- TLSPageServer: where it listens ------------------------------------------------------------------
def test_page_server_listens_on_the_port_it_is_given(server_files: ServerFiles) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    with net.listen_loopback() as probe:
        port = probe.getsockname()[1]
    # The port was free a moment ago; a fixed port is what `tls serve --port` needs.
    with TLSPageServer([issued.der], issued.private_key, port=port) as server:
        assert (server.host, server.port) == ("127.0.0.1", port)
        response = tls_get(f"https://localhost:{port}/", cafile=ca)
    assert response.status == 200 and response.body == session.PAGE


def test_page_server_on_localhost_by_name_and_a_free_port(server_files: ServerFiles) -> None:
    ca, issued = server_files.ca_path, server_files.issued
    with TLSPageServer([issued.der], issued.private_key, host="localhost") as server:
        assert server.port != 0
        assert tls_get(f"https://localhost:{server.port}/", cafile=ca).status == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "example.com"])
def test_page_server_refuses_a_public_address_unless_allowed(server_certificate: IssuedCertificate, host: str) -> None:
    issued = server_certificate
    with pytest.raises(ValueError, match="not loopback"):
        TLSPageServer([issued.der], issued.private_key, host=host)
    # Explicitly allowed, it is accepted (not entered here: nothing is bound to a real network).
    server = TLSPageServer([issued.der], issued.private_key, host=host, allow_public=True)
    assert server.host == host and server._listener is None


@pytest.mark.parametrize("port", [-1, 65536])
def test_page_server_refuses_a_port_out_of_range(server_certificate: IssuedCertificate, port: int) -> None:
    issued = server_certificate
    with pytest.raises(ValueError, match="out of range"):
        TLSPageServer([issued.der], issued.private_key, port=port)


def test_page_server_on_ipv6_loopback(server_certificate: IssuedCertificate) -> None:
    issued = server_certificate
    try:
        socket.socket(socket.AF_INET6).close()
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with TLSPageServer([issued.der], issued.private_key, host="::1") as server:
        assert server.host == "::1"
        # The course certificate names 127.0.0.1 and localhost; skip the name check, keep the chain check.
        client = TLSClient(None, verify=False)
        sock = net.connect("::1", server.port, timeout=2)
        with sock:
            driver = net.SocketDriver(client, sock)
            client.start()
            driver.flush()
            deadline = time.monotonic() + 5
            while client.handshake is None:
                driver.receive(deadline)
        assert client.handshake.cipher_suite is not None
    assert server.connections and server.connections[0].handshake is not None


# -- transcript spans are computed when asked for ------------------------------------------------------
def test_transcript_spans_are_computed_on_first_access_and_kept(server_files: ServerFiles) -> None:
    client = TLSClient("localhost", cafile=server_files.ca_path, client_random=bytes(32))
    client.start()
    entry = client.transcript[0]
    assert "spans" not in vars(entry)  # nothing computed yet
    spans = entry.spans
    assert spans == record_spans(entry.record, encrypted=False)
    assert entry.spans is spans  # cached
    assert any(span.field.endswith("cipher_suite") for span in spans)
    given = TranscriptEntry("client->server", 22, entry.record, entry.plaintext, entry.messages, [], False)
    assert given.spans == [] and given == entry  # explicit spans are kept; equality ignores them


# -- errors moved to errors.py, still importable from tls.connection -----------------------------------
@pytest.mark.parametrize(
    ("name", "alert"),
    [
        ("UnexpectedEOF", TLSAlert.unexpected_message),
        ("UnsupportedExtension", TLSAlert.unsupported_extension),
        ("InternalError", TLSAlert.internal_error),
    ],
)
def test_protocol_errors_live_in_errors_and_keep_their_alerts(name: str, alert: TLSAlert) -> None:
    cls = getattr(errors, name)
    assert getattr(connection, name) is cls
    assert issubclass(cls, errors.ProtocolError) and cls.tls_alert is alert


def test_connection_state_error_is_a_runtime_error_and_not_a_protocol_error() -> None:
    assert connection.ConnectionStateError is errors.ConnectionStateError
    assert issubclass(errors.ConnectionStateError, RuntimeError)
    assert issubclass(errors.ConnectionStateError, errors.HandshakeError)
    assert not issubclass(errors.ConnectionStateError, errors.ProtocolError)
    client = TLSClient("localhost", verify=False)
    client.start()
    with pytest.raises(errors.ConnectionStateError):
        client.start()


def test_plaintext_spans_explain_a_decrypted_fragment_from_its_first_byte() -> None:
    """What --trace and lessons 07/08 show inside a protected record: offsets and depths of the fragment itself."""
    from handshake_lib.tls.connection import plaintext_spans
    from handshake_lib.tls.messages import Finished

    finished = Finished(bytes(range(12))).to_bytes()
    spans = {(span.field, span.offset, span.length, span.depth) for span in plaintext_spans(22, finished)}
    assert ("finished", 0, 16, 0) in spans  # the whole message, top level: no record header around it
    assert ("finished.body.verify_data", 4, 12, 2) in spans
    assert {(span.field, span.offset, span.depth) for span in plaintext_spans(21, b"\x01\x00")} == {
        ("alert", 0, 0),
        ("alert.level", 0, 1),
        ("alert.description", 1, 1),
    }
