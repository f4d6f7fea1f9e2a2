"""Negotiation: version, cipher suite and ServerHello extensions, checked against what OpenSSL 3 picks.

Real peer: OpenSSL through Python's ``ssl`` (memory BIOs for the comparisons, a loopback socket for
the ClientHellos built by ``client_hello_for``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import ssl
import sys
import threading
from pathlib import Path

import pytest

from handshake_lib.errors import DecodeError, HandshakeFailure, ProtocolVersionError
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite, ContentType, ExtensionType, ProtocolVersion
from handshake_lib.tls.extensions import (
    ECPointFormatsExtension,
    EncryptThenMacExtension,
    ExtendedMasterSecretExtension,
    RenegotiationInfoExtension,
    SupportedVersionsExtension,
    UnknownExtension,
    decode_extensions,
    encode_extensions,
)
from handshake_lib.tls.messages import (
    ClientHello,
    ServerHello,
    decode_handshake,
    split_handshake_messages,
)
from handshake_lib.tls.negotiation import (
    choose_cipher_suite,
    choose_version,
    client_hello_for,
    server_extensions,
    suite_allowed_in,
)
from handshake_lib.tls.record import HandshakeReassembler, RecordReader, encode_record
from handshake_lib.wire import Reader, Writer

DATA = Path(__file__).parent / "data" / "tls"
_spec = importlib.util.spec_from_file_location("tls_capture", DATA / "capture.py")
assert _spec is not None and _spec.loader is not None
if "tls_capture" not in sys.modules:  # shared with test_tls_messages.py; dataclasses need the module registered
    sys.modules["tls_capture"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["tls_capture"])
capture = sys.modules["tls_capture"]

S = CipherSuite
RSA_SUITES = [
    S.TLS_RSA_WITH_AES_128_CBC_SHA256,
    S.TLS_RSA_WITH_AES_128_CBC_SHA,
    S.TLS_RSA_WITH_AES_128_GCM_SHA256,
    S.TLS_RSA_WITH_AES_256_GCM_SHA384,
]
IANA_TO_OPENSSL = {suite: name for name, suite in OPENSSL_NAMES.items()}


@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return capture.write_throwaway_rsa_cert(tmp_path_factory.mktemp("tls-cert"))


def _hello(**kwargs: object) -> ClientHello:
    return client_hello_for("localhost", RSA_SUITES, client_random=bytes(range(32)), **kwargs)  # type: ignore[arg-type]


# -- version -----------------------------------------------------------------------------------------
def test_choose_version_with_supported_versions() -> None:
    hello = _hello()
    hello.extensions = [*(hello.extensions or ()), SupportedVersionsExtension([0x3A3A, 0x0304, 0x0303])]
    assert choose_version(hello, [ProtocolVersion.TLS1_2]) == ProtocolVersion.TLS1_2
    assert choose_version(hello, [ProtocolVersion.TLS1_2, ProtocolVersion.TLS1_3]) == ProtocolVersion.TLS1_3
    hello.legacy_version = 0x0301  # ignored when the extension is present
    assert choose_version(hello, [ProtocolVersion.TLS1_2]) == ProtocolVersion.TLS1_2
    hello.extensions[-1] = SupportedVersionsExtension([0x0304, 0x3A3A])
    with pytest.raises(ProtocolVersionError):
        choose_version(hello, [ProtocolVersion.TLS1_2])


@pytest.mark.parametrize(
    "legacy, server, expected",
    [
        (0x0303, [0x0301, 0x0302, 0x0303], 0x0303),
        (0x0302, [0x0301, 0x0302, 0x0303], 0x0302),
        (0x0301, [0x0301, 0x0303], 0x0301),
        (0x0304, [0x0303, 0x0304], 0x0303),  # 1.3 needs supported_versions (RFC 8446 4.2.1)
        (0x0305, [0x0303], 0x0303),  # a future version: the server answers with its best
        (0x0302, [0x0303], None),
        (0x0200, [0x0300, 0x0303], None),
    ],
)
def test_choose_version_from_legacy_version(legacy: int, server: list[int], expected: int | None) -> None:
    hello = _hello()
    hello.legacy_version = legacy
    if expected is None:
        with pytest.raises(ProtocolVersionError):
            choose_version(hello, server)
    else:
        assert choose_version(hello, server) == expected


def test_choose_version_on_captured_openssl_hellos() -> None:
    for name, with_13 in [("openssl_client_hello_tls12.hex", 0x0303), ("openssl_client_hello_tls13.hex", 0x0304)]:
        (record,) = RecordReader().feed(bytes.fromhex((DATA / name).read_text()))
        hello, _ = decode_handshake(record.fragment)
        assert isinstance(hello, ClientHello)
        assert choose_version(hello, [0x0303]) == 0x0303
        assert choose_version(hello, [0x0303, 0x0304]) == with_13


# -- cipher suite --------------------------------------------------------------------------------------
def test_choose_cipher_suite_preferences() -> None:
    offered = [
        S.TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
        0x1A1A,
        S.TLS_RSA_WITH_AES_128_CBC_SHA,
        S.TLS_RSA_WITH_AES_256_GCM_SHA384,
    ]
    supported = [S.TLS_RSA_WITH_AES_256_GCM_SHA384, S.TLS_RSA_WITH_AES_128_CBC_SHA]
    assert choose_cipher_suite(offered, supported) == S.TLS_RSA_WITH_AES_256_GCM_SHA384
    assert choose_cipher_suite(offered, supported, prefer="client") == S.TLS_RSA_WITH_AES_128_CBC_SHA
    # SCSV is never chosen, even if a careless server list contains it.
    assert (
        choose_cipher_suite(offered, [S.TLS_EMPTY_RENEGOTIATION_INFO_SCSV, S.TLS_RSA_WITH_AES_128_CBC_SHA])
        == S.TLS_RSA_WITH_AES_128_CBC_SHA
    )
    with pytest.raises(HandshakeFailure):
        choose_cipher_suite([S.TLS_EMPTY_RENEGOTIATION_INFO_SCSV, S.TLS_RSA_WITH_AES_128_CBC_SHA256], supported)
    # A TLS 1.3 suite cannot be picked for TLS 1.2, nor a SHA-256 suite for TLS 1.1.
    with pytest.raises(HandshakeFailure):
        choose_cipher_suite([S.TLS_AES_128_GCM_SHA256], [S.TLS_AES_128_GCM_SHA256], version=ProtocolVersion.TLS1_2)
    assert not suite_allowed_in(S.TLS_RSA_WITH_AES_128_GCM_SHA256, ProtocolVersion.TLS1_1)
    assert suite_allowed_in(S.TLS_RSA_WITH_AES_128_CBC_SHA, ProtocolVersion.TLS1_0)
    with pytest.raises(ValueError):
        choose_cipher_suite(offered, supported, prefer="random")  # type: ignore[arg-type]


def _openssl_server_hello(server_ctx: ssl.SSLContext, hello: ClientHello) -> ServerHello:
    answer = capture.server_answer(server_ctx, encode_record(ContentType.handshake, 0x0301, hello.to_bytes()))
    records = RecordReader().feed(answer)
    assert records[0].content_type == ContentType.handshake, f"OpenSSL refused: {records[0]}"
    message, _ = decode_handshake(split_handshake_messages(records[0].fragment)[0])
    assert isinstance(message, ServerHello)
    return message


def _server_order(ctx: ssl.SSLContext) -> list[int]:
    """The server's TLS 1.2 suites in its order of preference, as OpenSSL reports them."""
    return [c["id"] & 0xFFFF for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]


@pytest.mark.parametrize("server_preference", [True, False])
@pytest.mark.parametrize(
    "server_ciphers, offered",
    [
        ("AES256-GCM-SHA384:AES128-GCM-SHA256:AES128-SHA", RSA_SUITES),
        ("AES128-SHA:AES128-SHA256", RSA_SUITES),
        ("AES128-SHA256:AES256-GCM-SHA384:AES128-GCM-SHA256:AES128-SHA", list(reversed(RSA_SUITES))),
        (
            "ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256",
            [S.TLS_RSA_WITH_AES_128_GCM_SHA256, S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256],
        ),
    ],
)
def test_cipher_choice_matches_openssl(
    rsa_cert: tuple[Path, Path], server_ciphers: str, offered: list[int], server_preference: bool
) -> None:
    ctx = capture.server_context(*rsa_cert, server_ciphers, server_preference=server_preference)
    hello = client_hello_for("localhost", offered)
    theirs = _openssl_server_hello(ctx, hello).cipher_suite
    ours = choose_cipher_suite(
        hello.cipher_suites, _server_order(ctx), prefer="server" if server_preference else "client", version=0x0303
    )
    assert ours == theirs


# -- extensions ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "server_ciphers, suites, options",
    [
        ("AES128-GCM-SHA256", RSA_SUITES, {}),
        ("AES128-GCM-SHA256", RSA_SUITES, {"session_ticket": True}),
        ("AES128-GCM-SHA256", RSA_SUITES, {"extended_master_secret": False}),
        ("AES128-GCM-SHA256", [*RSA_SUITES, S.TLS_EMPTY_RENEGOTIATION_INFO_SCSV], {"secure_renegotiation": False}),
        ("AES128-GCM-SHA256", RSA_SUITES, {"secure_renegotiation": False}),
        ("AES128-SHA256", RSA_SUITES, {"encrypt_then_mac": True}),  # CBC: OpenSSL echoes EtM
        ("AES128-SHA", RSA_SUITES, {"encrypt_then_mac": True, "extended_master_secret": False}),
        ("AES128-GCM-SHA256", RSA_SUITES, {"encrypt_then_mac": True}),  # AEAD: it must not
        ("ECDHE-RSA-AES128-GCM-SHA256", [S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], {"session_ticket": True}),
        (
            "ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256",
            [S.TLS_RSA_WITH_AES_128_GCM_SHA256, S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256],
            {},
        ),
    ],
)
def test_server_extensions_match_openssl(
    rsa_cert: tuple[Path, Path], server_ciphers: str, suites: list[int], options: dict[str, bool]
) -> None:
    """OpenSSL's server (tickets on, EMS on) echoes exactly the extensions we predict, in the same order."""
    ctx = capture.server_context(*rsa_cert, server_ciphers)
    hello = client_hello_for("localhost", suites, **options)
    server_hello = _openssl_server_hello(ctx, hello)
    # OpenSSL 3 lists all three point formats (RFC 8422 deprecates the compressed two); say so to compare bytes.
    ours = server_extensions(
        hello, cipher_suite=server_hello.cipher_suite, session_tickets=True, ec_point_formats=(0, 1, 2)
    )
    theirs_bytes, ours_bytes = Writer(), Writer()
    encode_extensions(theirs_bytes, server_hello.extensions or [], "server_hello")
    encode_extensions(ours_bytes, ours, "server_hello")
    assert [e.extension_type for e in ours] == [e.extension_type for e in server_hello.extensions or []]
    assert ours_bytes.getvalue() == theirs_bytes.getvalue()


def test_server_extensions_never_answer_what_was_not_asked() -> None:
    hello = ClientHello(random=bytes(32), cipher_suites=[S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], extensions=None)
    assert server_extensions(hello, cipher_suite=S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, session_tickets=True) == []
    hello.cipher_suites.append(S.TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
    assert server_extensions(hello, cipher_suite=S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) == [
        RenegotiationInfoExtension(b"")
    ]
    full = client_hello_for("example.com", [S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], session_ticket=True)
    answer = server_extensions(full, cipher_suite=S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, extended_master_secret=False)
    assert ExtendedMasterSecretExtension() not in answer and ECPointFormatsExtension([0]) in answer
    assert {e.extension_type for e in answer} <= {e.extension_type for e in full.extensions or []}


# -- encrypt_then_mac (RFC 7366) -------------------------------------------------------------------------
def test_encrypt_then_mac_is_offered_last_and_only_with_a_cbc_suite() -> None:
    cbc = client_hello_for("localhost", RSA_SUITES, client_random=bytes(32), encrypt_then_mac=True)
    assert cbc.extensions is not None and cbc.extensions[-1] == EncryptThenMacExtension()
    # The exact bytes the client sent before the typed extension existed: the same hello plus an
    # UnknownExtension(22, b"") appended last.
    plain = client_hello_for("localhost", RSA_SUITES, client_random=bytes(32))
    plain.extensions = [*(plain.extensions or []), UnknownExtension(ExtensionType.encrypt_then_mac, b"")]
    assert cbc.to_bytes() == plain.to_bytes()
    assert cbc.to_bytes().endswith(bytes.fromhex("0016 0000"))  # type 22, empty data
    gcm_only = client_hello_for("localhost", [S.TLS_RSA_WITH_AES_128_GCM_SHA256], encrypt_then_mac=True)
    assert gcm_only.extension(ExtensionType.encrypt_then_mac) is None
    assert client_hello_for("localhost", RSA_SUITES).extension(ExtensionType.encrypt_then_mac) is None  # off by default


def test_encrypt_then_mac_decodes_as_the_typed_extension_in_both_hellos() -> None:
    for context in ("client_hello", "server_hello"):
        decoded = decode_extensions(Reader(bytes.fromhex("0004 0016 0000")), context)  # type: ignore[arg-type]
        assert decoded == [EncryptThenMacExtension()]
        with pytest.raises(DecodeError, match="encrypt_then_mac"):
            decode_extensions(Reader(bytes.fromhex("0005 0016 0001 00")), context)  # type: ignore[arg-type]


def test_server_answers_encrypt_then_mac_only_for_cbc_and_only_if_asked() -> None:
    offer = client_hello_for("localhost", RSA_SUITES, encrypt_then_mac=True)
    cbc = server_extensions(offer, cipher_suite=S.TLS_RSA_WITH_AES_128_CBC_SHA256)
    # OpenSSL's order: renegotiation_info, encrypt_then_mac, extended_master_secret.
    expected = [RenegotiationInfoExtension, EncryptThenMacExtension, ExtendedMasterSecretExtension]
    assert [type(e) for e in cbc] == expected
    assert EncryptThenMacExtension() not in server_extensions(offer, cipher_suite=S.TLS_RSA_WITH_AES_128_GCM_SHA256)
    refused = server_extensions(offer, cipher_suite=S.TLS_RSA_WITH_AES_128_CBC_SHA256, encrypt_then_mac=False)
    assert EncryptThenMacExtension() not in refused
    unasked = client_hello_for("localhost", RSA_SUITES)
    assert EncryptThenMacExtension() not in server_extensions(unasked, cipher_suite=S.TLS_RSA_WITH_AES_128_CBC_SHA)


def test_client_hello_for_contents() -> None:
    hello = client_hello_for("example.com.", [S.TLS_RSA_WITH_AES_128_GCM_SHA256])
    assert hello.legacy_version == ProtocolVersion.TLS1_2 and len(hello.random) == 32
    assert hello.extension(ExtensionType.server_name).host_name == "example.com"  # type: ignore[union-attr]
    assert hello.extension(ExtensionType.signature_algorithms) is not None
    assert hello.extension(ExtensionType.supported_groups) is None  # no ECDHE offered
    assert client_hello_for("127.0.0.1", RSA_SUITES).extension(ExtensionType.server_name) is None
    assert client_hello_for("::1", RSA_SUITES).extension(ExtensionType.server_name) is None
    assert client_hello_for(None, RSA_SUITES).random != client_hello_for(None, RSA_SUITES).random
    ecdhe = client_hello_for(None, [S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256])
    assert ecdhe.extension(ExtensionType.supported_groups) is not None
    # It round-trips through our own decoder.
    assert decode_handshake(hello.to_bytes())[0] == hello
    with pytest.raises(ValueError):
        client_hello_for("example.com", [])


def test_openssl_needs_signature_algorithms(rsa_cert: tuple[Path, Path]) -> None:
    """Why client_hello_for always sends signature_algorithms: OpenSSL 3 (security level >= 1) refuses without."""
    hello = client_hello_for("localhost", [S.TLS_RSA_WITH_AES_128_GCM_SHA256])
    hello.extensions = [e for e in hello.extensions or () if e.extension_type != ExtensionType.signature_algorithms]
    answer = capture.server_answer(
        capture.server_context(*rsa_cert), encode_record(ContentType.handshake, 0x0301, hello.to_bytes())
    )
    records = RecordReader().feed(answer)
    assert records[0].content_type == ContentType.alert and records[0].fragment == b"\x02\x28"  # handshake_failure
    # At security level 0 OpenSSL falls back to SHA-1 signatures (RFC 5246 7.4.1.4.1) and answers.
    assert _openssl_server_hello(capture.server_context(*rsa_cert, seclevel=0), hello).cipher_suite == 0x009C


# -- over a real socket: each of the course's four suites ----------------------------------------------
def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def _read_server_hello(sock: socket.socket) -> ServerHello:
    reader, reassembler = RecordReader(), HandshakeReassembler()  # the record layer's own framing
    while True:
        header = _recv_exactly(sock, 5)
        (record,) = reader.feed(header + _recv_exactly(sock, int.from_bytes(header[3:5], "big")))
        assert record.content_type == ContentType.handshake, f"server sent {record}"
        messages = reassembler.feed(record.fragment)
        if messages:
            message, _ = decode_handshake(messages[0].raw)
            assert isinstance(message, ServerHello)
            return message


@pytest.mark.parametrize("suite", RSA_SUITES, ids=lambda s: s.name)
def test_client_hello_for_gets_a_server_hello_over_a_socket(rsa_cert: tuple[Path, Path], suite: CipherSuite) -> None:
    # Default security level: Debian's OpenSSL 3.0 accepts all four suites, AES128-SHA included.
    ctx = capture.server_context(*rsa_cert, IANA_TO_OPENSSL[suite])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    server_error: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(10)
            # The handshake cannot finish (we stop after ServerHello), so an error here is expected.
            with contextlib.suppress(ssl.SSLError, OSError), ctx.wrap_socket(conn, server_side=True):
                pass
        except BaseException as exc:  # noqa: BLE001 - e.g. accept timed out: reported below
            server_error.append(exc)
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    # Offer all four, the wanted one last, so the server has to search for it.
    offered = [s for s in RSA_SUITES if s != suite] + [suite]
    hello = client_hello_for("localhost", offered)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(encode_record(ContentType.handshake, 0x0301, hello.to_bytes()))
        server_hello = _read_server_hello(sock)
    thread.join(timeout=15)
    assert not server_error, server_error
    assert server_hello.cipher_suite == suite
    assert server_hello.legacy_version == choose_version(hello, [ProtocolVersion.TLS1_2]) == ProtocolVersion.TLS1_2
    assert choose_cipher_suite(hello.cipher_suites, [suite]) == suite
    assert server_hello.random != bytes(32) and server_hello.compression_method == 0
