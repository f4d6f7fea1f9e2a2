"""ECDHE and DHE key exchange (RFC 8422, RFC 5246 7.4.3, RFC 7919), judged by peers nobody here wrote.

* Our client against OpenSSL servers (Python ``ssl``) for every ECDHE suite in ``SUITES`` x group x
  certificate type, and DHE with ffdhe2048: the page arrives and our master secret is the one OpenSSL wrote
  to its own key log (so both computed the same premaster secret from the ephemeral keys).
* Our server against ``openssl s_client -cipher ... -curves ...``, Python ``ssl`` clients and curl
  (``--ciphers ECDHE-... --curves X25519``), with an RSA and an ECDSA identity picked by suite.
* Negative interop: a ServerKeyExchange whose signature was flipped in transit is refused by OpenSSL's
  client with decrypt_error (RFC 5246 7.4.3 / 7.2.2), and by ours; an off-curve point, an out-of-range DH
  value, a group we did not offer, an all-zero X25519 secret: the alert RFC 8422 / 7919 and OpenSSL name.
* The RFC 7919 primes are the ones OpenSSL knows; hypothesis on the new decoders.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from conftest import require
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_parameters
from hypothesis import given, settings
from hypothesis import strategies as st
from tampering_proxy import TamperingProxy

from handshake_lib import net
from handshake_lib.errors import (
    DecodeError,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
    PeerAlert,
    ProtocolError,
    TLSAlert,
    UnexpectedMessage,
)
from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, s_server, server_context
from handshake_lib.pki.builder import CoursePKI
from handshake_lib.tls import State, TLSClient, TLSServer
from handshake_lib.tls import client as client_module
from handshake_lib.tls.connection import RSA_DEFAULT_SUITES
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite, ContentType, HandshakeType, NamedGroup
from handshake_lib.tls.key_exchange import FFDHE2048_P, FFDHE3072_P, GROUPS
from handshake_lib.tls.keylog import read_keylog
from handshake_lib.tls.messages import (
    DHClientKeyExchange,
    ECDHClientKeyExchange,
    ServerDHParams,
    ServerECDHParams,
    ServerKeyExchange,
    decode_handshake,
)
from handshake_lib.tls.record import encode_record
from handshake_lib.tls.signatures import sign
from handshake_lib.tls.states import replay
from handshake_lib.tls.suites import SUITES

PROCESS_TIMEOUT_S = 30
OPENSSL_NAME = {suite: name for name, suite in OPENSSL_NAMES.items()}
ECDHE_SUITES = [s for s, p in SUITES.items() if p.key_exchange == "ECDHE"]
DHE_SUITES = [s for s, p in SUITES.items() if p.key_exchange == "DHE"]
EC_GROUPS = {"x25519": ("X25519", NamedGroup.x25519), "secp256r1": ("prime256v1", NamedGroup.secp256r1),
             "secp384r1": ("secp384r1", NamedGroup.secp384r1)}  # fmt: skip
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def ecdsa_files(server_files, tmp_path_factory):
    """An ECDSA P-256 server certificate from the same course CA as ``server_files``' RSA one."""
    issued = server_files.pki.issue_server(("localhost", "127.0.0.1"), key_type="ecdsa-p256")
    cert_path, key_path = CoursePKI.write_issued(issued, tmp_path_factory.mktemp("ecdsa"), "ecdsa")
    return cert_path, key_path, issued


@pytest.fixture(scope="module")
def ffdhe2048_pem(tmp_path_factory) -> Path:
    openssl = require("openssl")
    path = tmp_path_factory.mktemp("dh") / "ffdhe2048.pem"
    subprocess.run(
        [openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out", str(path)],
        check=True, capture_output=True, timeout=PROCESS_TIMEOUT_S,
    )  # fmt: skip
    return path


def is_ecdsa(suite: CipherSuite) -> bool:
    return "_ECDSA_" in suite.name


# -- the RFC 7919 groups are OpenSSL's ------------------------------------------------------------------
@pytest.mark.parametrize(("name", "prime"), [("ffdhe2048", FFDHE2048_P), ("ffdhe3072", FFDHE3072_P)])
def test_rfc7919_primes_are_the_ones_openssl_generates(name, prime, tmp_path) -> None:
    openssl = require("openssl")
    path = tmp_path / f"{name}.pem"
    subprocess.run(
        [openssl, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", f"group:{name}", "-out", str(path)],
        check=True, capture_output=True, timeout=PROCESS_TIMEOUT_S,
    )  # fmt: skip
    numbers = load_pem_parameters(path.read_bytes()).parameter_numbers()
    assert (numbers.p, numbers.g) == (prime, 2) == (GROUPS[NamedGroup[name]].p, GROUPS[NamedGroup[name]].g)


# -- our client against OpenSSL servers ----------------------------------------------------------------
@pytest.mark.parametrize("group", list(EC_GROUPS))
@pytest.mark.parametrize("suite", ECDHE_SUITES, ids=lambda s: OPENSSL_NAME[s])
def test_our_client_against_openssl_every_ecdhe_suite_and_group(server_files, ecdsa_files, tmp_path, suite, group):
    openssl_curve, code = EC_GROUPS[group]
    cert, key = (ecdsa_files[0], ecdsa_files[1]) if is_ecdsa(suite) else (server_files.cert_path, server_files.key_path)
    keylog = tmp_path / "openssl.log"
    context = server_context(
        cert, key, ciphers=OPENSSL_NAME[suite], maximum_version=ssl.TLSVersion.TLSv1_2, keylog_path=keylog
    )
    context.set_ecdh_curve(openssl_curve)  # OpenSSL may use only this group for the key exchange
    # The ECDSA certificate is on P-256: RFC 8422 5.1 makes supported_groups name the certificate's curve too.
    groups = [code, NamedGroup.secp256r1] if code != NamedGroup.secp256r1 else [code]
    with PythonSSLServer(context) as server:
        response = tls_get(
            f"https://localhost:{server.port}/", cafile=server_files.ca_path, cipher_suites=[suite], groups=groups
        )
    assert response.status == 200 and b"Hello from OpenSSL" in response.body
    handshake = response.handshake
    assert handshake.cipher_suite == suite and handshake.group == code
    assert server.connections[0].cipher == OPENSSL_NAME[suite]
    assert read_keylog(keylog).master_secret(handshake.client_random) == handshake.master_secret
    assert handshake.extended_master_secret  # EMS over the ECDHE transcript, as OpenSSL computed it too


def test_our_default_offer_gets_ecdhe_from_openssl_and_rsa_on_request(server_files, tmp_path) -> None:
    # Python's default server ciphers leave out RSA key exchange; this server offers both, ECDHE first.
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers="ECDHE-RSA-AES256-GCM-SHA384:AES256-GCM-SHA384",
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )  # fmt: skip
    with PythonSSLServer(context) as server:
        default = tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path)
        url = f"https://localhost:{server.port}/"
        rsa = tls_get(url, cafile=server_files.ca_path, cipher_suites=RSA_DEFAULT_SUITES)
    assert default.handshake.cipher_suite == CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    assert default.handshake.group == NamedGroup.x25519  # OpenSSL's first choice among ours
    assert rsa.handshake.cipher_suite == CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384 and rsa.handshake.group is None
    assert [c.cipher for c in server.connections] == ["ECDHE-RSA-AES256-GCM-SHA384", "AES256-GCM-SHA384"]


@pytest.mark.parametrize("suite", DHE_SUITES, ids=lambda s: OPENSSL_NAME[s])
def test_our_client_against_openssl_dhe_ffdhe2048(server_files, ffdhe2048_pem, tmp_path, suite) -> None:
    keylog = tmp_path / "openssl.log"
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers=OPENSSL_NAME[suite],
        maximum_version=ssl.TLSVersion.TLSv1_2, keylog_path=keylog,
    )  # fmt: skip
    context.load_dh_params(str(ffdhe2048_pem))
    with PythonSSLServer(context) as server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path, cipher_suites=[suite])
    handshake = response.handshake
    assert response.status == 200 and handshake.cipher_suite == suite and handshake.group == NamedGroup.ffdhe2048
    assert read_keylog(keylog).master_secret(handshake.client_random) == handshake.master_secret


def test_our_client_against_s_server_automatic_dh_parameters(server_files, tmp_path) -> None:
    """``openssl s_server`` without -dhparam (OpenSSL 3.0's automatic DH) ignores our supported_groups and sends
    RFC 3526's 2048-bit MODP group 14; our client accepts that safe prime too, and the secrets agree."""
    keylog = tmp_path / "s_server.log"
    with s_server(
        server_files, "-tls1_2", "-www", "-cipher", "DHE-RSA-AES128-GCM-SHA256", "-keylogfile", str(keylog)
    ) as peer:
        response = tls_get(
            f"https://localhost:{peer.port}/", cafile=server_files.ca_path,
            cipher_suites=[CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256], groups=[NamedGroup.ffdhe3072],
        )  # fmt: skip
    assert response.status == 200
    assert response.handshake.group is None  # not a named group: no code point for RFC 3526's primes
    assert read_keylog(keylog).master_secret(response.handshake.client_random) == response.handshake.master_secret


def test_our_client_walks_the_ephemeral_rows(server_files, tmp_path) -> None:
    context = server_context(server_files.cert_path, server_files.key_path, maximum_version=ssl.TLSVersion.TLSv1_2)
    with PythonSSLServer(context) as server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path)
    states = [s.value for s in replay("client", response.transcript)]
    assert "WAIT_SERVER_KEY_EXCHANGE" in states and states.index("WAIT_SERVER_KEY_EXCHANGE") < states.index(
        "WAIT_SERVER_HELLO_DONE"
    )
    assert states[-1] in ("CONNECTED", "CLOSED")


# -- our server against OpenSSL clients and curl --------------------------------------------------------
def our_server(server_files, ecdsa_files, keylog: Path, **options) -> TLSPageServer:
    issued = server_files.issued
    ecdsa = ecdsa_files[2]
    return TLSPageServer(
        [issued.certificate], issued.private_key, keylog_path=keylog,
        identities=[([ecdsa.certificate.public_bytes(Encoding.DER)], ecdsa.private_key)], **options,
    )  # fmt: skip


def run_s_client(port: int, files, keylog: Path, *options: str) -> subprocess.CompletedProcess:
    openssl = require("openssl")
    command = [
        openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(files.ca_path),
        "-verify_return_error", "-servername", "localhost", "-keylogfile", str(keylog), "-ign_eof", *options,
    ]  # fmt: skip
    return subprocess.run(command, input=REQUEST.decode(), capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)


@pytest.mark.parametrize(
    ("cipher", "curve", "group", "key_type"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", "X25519", NamedGroup.x25519, "RSA"),
        ("ECDHE-RSA-AES256-GCM-SHA384", "P-384", NamedGroup.secp384r1, "RSA"),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", "P-256", NamedGroup.secp256r1, "ECDSA"),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", "X25519:P-256", NamedGroup.x25519, "ECDSA"),
    ],
)
def test_s_client_against_our_server(server_files, ecdsa_files, tmp_path, cipher, curve, group, key_type) -> None:
    client_log = tmp_path / "s_client.log"
    with our_server(server_files, ecdsa_files, tmp_path / "server.log") as server:
        result = run_s_client(server.port, server_files, client_log, "-cipher", cipher, "-curves", curve)
    assert result.returncode == 0, result.stderr
    assert f"Cipher is {cipher}" in result.stdout and "Verify return code: 0 (ok)" in result.stdout
    assert "Hello from the Handshakes TLS server" in result.stdout
    # s_client names the ephemeral key it was sent: "Server Temp Key: X25519, 253 bits" / "ECDH, prime256v1".
    temp_key = {"x25519": "X25519", "secp256r1": "prime256v1", "secp384r1": "secp384r1"}[group.name]
    assert f"Server Temp Key: {'X25519' if temp_key == 'X25519' else 'ECDH, ' + temp_key}" in result.stdout
    assert f"Peer signature type: {'ECDSA' if key_type == 'ECDSA' else 'RSA-PSS'}" in result.stdout
    (served,) = server.connections
    assert served.handshake.group == group
    client_random = served.handshake.client_random
    ours = read_keylog(tmp_path / "server.log").master_secret(client_random)
    assert ours == read_keylog(client_log).master_secret(client_random) == served.handshake.master_secret


@pytest.mark.parametrize(
    ("server_groups", "expected"),
    [(None, NamedGroup.ffdhe2048), ([NamedGroup.x25519, NamedGroup.ffdhe3072], NamedGroup.ffdhe3072)],
    ids=["ffdhe2048", "ffdhe3072"],
)
def test_s_client_dhe_against_our_server(server_files, ecdsa_files, tmp_path, server_groups, expected) -> None:
    """OpenSSL 3.0's TLS 1.2 client offering only DHE sends no supported_groups at all (checked: its
    ClientHello, printed by -msg, has none; -groups ffdhe3072 changes nothing), so RFC 7919 section 4 lets our
    server use its own first ffdhe group; s_client checks the prime it got is safe and finishes."""
    client_log = tmp_path / "s_client.log"
    options = {"groups": server_groups} if server_groups else {}
    with our_server(server_files, ecdsa_files, tmp_path / "server.log", **options) as server:
        result = run_s_client(
            server.port, server_files, client_log, "-cipher", "DHE-RSA-AES128-GCM-SHA256", "-groups", "ffdhe3072"
        )
    assert result.returncode == 0, result.stderr
    assert "Cipher is DHE-RSA-AES128-GCM-SHA256" in result.stdout
    bits = 3072 if expected == NamedGroup.ffdhe3072 else 2048
    assert f"Server Temp Key: DH, {bits} bits" in result.stdout
    (served,) = server.connections
    assert served.handshake.group == expected
    assert read_keylog(client_log).master_secret(served.handshake.client_random) == served.handshake.master_secret


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"])
def test_python_ssl_client_against_our_server_picks_the_identity_by_suite(server_files, ecdsa_files, tmp_path, cipher):
    keylog = tmp_path / "client.log"
    context = ssl.create_default_context(cafile=str(server_files.ca_path))
    context.set_ciphers(cipher)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.keylog_filename = str(keylog)
    with (
        our_server(server_files, ecdsa_files, tmp_path / "server.log") as server,
        net.connect("127.0.0.1", server.port) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
        tls.sendall(REQUEST)
        response = b""
        while chunk := tls.recv(4096):
            response += chunk
        negotiated = tls.cipher()[0]
    assert response.startswith(b"HTTP/1.1 200 OK") and negotiated == cipher
    ecdsa_der = ecdsa_files[2].certificate.public_bytes(Encoding.DER)
    assert (certificate == ecdsa_der) is ("ECDSA" in cipher)  # the certificate the suite needs
    (served,) = server.connections
    assert read_keylog(keylog).master_secret(served.handshake.client_random) == served.handshake.master_secret


def test_curl_x25519_against_our_server(server_files, ecdsa_files, tmp_path) -> None:
    curl = require("curl")
    with our_server(server_files, ecdsa_files, tmp_path / "server.log") as server:
        completed = subprocess.run(
            [curl, "--silent", "--show-error", "--cacert", str(server_files.ca_path), "--tlsv1.2", "--tls-max", "1.2",
             "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256", "--curves", "X25519", "--max-time", "20",
             f"https://localhost:{server.port}/"],
            capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S,
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "Hello from the Handshakes TLS server" in completed.stdout
    (served,) = server.connections
    assert served.handshake.cipher_suite == CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    assert served.handshake.group == NamedGroup.x25519


def test_no_common_group_means_no_ecdhe_suite(server_files, ecdsa_files, tmp_path) -> None:
    """RFC 8422 5.1: ECDHE only with a group both support; s_client offering only P-521 gets handshake_failure."""
    with our_server(server_files, ecdsa_files, tmp_path / "server.log", groups=[NamedGroup.x25519]) as server:
        result = run_s_client(
            server.port, server_files, tmp_path / "c.log", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-curves", "P-384"
        )
    assert result.returncode != 0 and "handshake failure" in result.stderr
    assert isinstance(server.connections[0].error, HandshakeFailure)


# -- negative interop: tampered ServerKeyExchange signatures --------------------------------------------
def server_key_exchange_record(record: bytes, earlier: list[bytes]) -> bool:
    return record[0] == ContentType.handshake and record[5] == HandshakeType.server_key_exchange


def test_openssl_refuses_our_tampered_server_key_exchange_with_decrypt_error(server_files, ecdsa_files, tmp_path):
    context = ssl.create_default_context(cafile=str(server_files.ca_path))
    context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        our_server(server_files, ecdsa_files, tmp_path / "server.log") as server,
        TamperingProxy(server.port, server_key_exchange_record) as proxy,
        pytest.raises(ssl.SSLError, match="BAD_SIGNATURE|bad signature"),
        net.connect("127.0.0.1", proxy.port) as raw,
        context.wrap_socket(raw, server_hostname="localhost"),
    ):
        pass
    assert proxy.flipped is not None and proxy.flipped[5] == HandshakeType.server_key_exchange
    error = server.connections[0].error
    # RFC 5246 7.2.2: a signature that does not verify is decrypt_error; that is the alert OpenSSL sent us.
    assert isinstance(error, PeerAlert) and error.description == TLSAlert.decrypt_error


def test_our_client_refuses_openssls_tampered_server_key_exchange(server_files, tmp_path) -> None:
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers="ECDHE-RSA-AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )  # fmt: skip
    with PythonSSLServer(context) as server, TamperingProxy(server.port, server_key_exchange_record) as proxy:
        with pytest.raises(DecryptError, match="ServerKeyExchange"):
            tls_get(f"https://localhost:{proxy.port}/", cafile=server_files.ca_path)
        assert proxy.flipped is not None
    # OpenSSL heard our decrypt_error alert: its own words for it.
    assert "decrypt error" in str(server.connections[0].error).lower()


# -- bad values, in memory: our client and server, one message rewritten --------------------------------
def pair(server_files, ecdsa_files, *, client_groups=None, suites=None, server_groups=None):
    issued = server_files.issued
    client = TLSClient(
        "localhost", cafile=server_files.ca_path,
        cipher_suites=suites or [CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256],
        **({"groups": client_groups} if client_groups else {}),
    )  # fmt: skip
    server = TLSServer(
        [issued.certificate.public_bytes(Encoding.DER)], issued.private_key,
        **({"groups": server_groups} if server_groups else {}),
    )  # fmt: skip
    return client, server


def resigned_flight(server: TLSServer, flight: bytes, params) -> bytes:
    """The server's flight with its ServerKeyExchange params replaced and signed again with its real key."""
    original = server.server_key_exchange
    message = ServerKeyExchange(params, original.signature_algorithm, b"")
    signed = server.client_random + server.server_random + message.params_bytes()
    message.signature = sign(server.private_key, original.signature_algorithm, signed)
    old, new = encode_record(ContentType.handshake, 0x0303, original.to_bytes()), None
    new = encode_record(ContentType.handshake, 0x0303, message.to_bytes())
    assert old in flight
    return flight.replace(old, new)


def client_error_for(server_files, ecdsa_files, params_for, **options):
    client, server = pair(server_files, ecdsa_files, **options)
    client.start()
    server.receive_data(client.data_to_send())
    flight = resigned_flight(server, server.data_to_send(), params_for(server))
    with pytest.raises(ProtocolError) as caught:
        client.receive_data(flight)
    assert client.state is State.ERROR
    return caught.value, client.data_to_send()


def test_client_refuses_an_off_curve_point(server_files, ecdsa_files) -> None:
    point = b"\x04" + (1).to_bytes(32, "big") + (1).to_bytes(32, "big")  # (1, 1) is not on P-256
    error, alert = client_error_for(
        server_files, ecdsa_files, lambda s: ServerECDHParams(NamedGroup.secp256r1, point),
        client_groups=[NamedGroup.secp256r1],
    )  # fmt: skip
    assert isinstance(error, IllegalParameter) and alert.endswith(bytes([2, TLSAlert.illegal_parameter]))


def test_client_refuses_a_compressed_point(server_files, ecdsa_files) -> None:
    point = GROUPS[NamedGroup.secp256r1].generate(lambda n: bytes([7]) * n).public
    compressed = bytes([2 + point[-1] % 2]) + point[1:33]
    error, _ = client_error_for(
        server_files, ecdsa_files, lambda s: ServerECDHParams(NamedGroup.secp256r1, compressed),
        client_groups=[NamedGroup.secp256r1],
    )  # fmt: skip
    assert isinstance(error, IllegalParameter) and "uncompressed" in str(error)


def test_client_refuses_a_group_it_did_not_offer(server_files, ecdsa_files) -> None:
    point = GROUPS[NamedGroup.secp384r1].generate(lambda n: bytes([9]) * n).public
    error, alert = client_error_for(
        server_files, ecdsa_files, lambda s: ServerECDHParams(NamedGroup.secp384r1, point),
        client_groups=[NamedGroup.x25519, NamedGroup.secp256r1],
    )  # fmt: skip
    assert isinstance(error, IllegalParameter) and alert.endswith(bytes([2, TLSAlert.illegal_parameter]))


@pytest.mark.parametrize("y", [0, 1, FFDHE2048_P - 1, FFDHE2048_P])
def test_client_refuses_an_out_of_range_dh_value(server_files, ecdsa_files, y) -> None:
    params = ServerDHParams(FFDHE2048_P.to_bytes(256, "big"), b"\x02", y.to_bytes(257, "big").lstrip(b"\0") or b"\0")
    error, alert = client_error_for(
        server_files, ecdsa_files, lambda s: params, suites=[CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256]
    )
    # RFC 7919 section 3: 1 < dh_Ys < p - 1, else handshake_failure.
    assert isinstance(error, HandshakeFailure) and alert.endswith(bytes([2, TLSAlert.handshake_failure]))


def test_client_refuses_a_dh_group_that_is_not_rfc7919(server_files, ecdsa_files) -> None:
    p = (FFDHE2048_P - 2).to_bytes(256, "big")
    error, _ = client_error_for(
        server_files, ecdsa_files, lambda s: ServerDHParams(p, b"\x02", b"\x05"),
        suites=[CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256],
    )  # fmt: skip
    assert isinstance(error, HandshakeFailure)


def test_x25519_low_order_point_gives_an_all_zero_secret_and_is_refused() -> None:
    key = GROUPS[NamedGroup.x25519].generate(lambda n: bytes(range(1, n + 1)))
    with pytest.raises(IllegalParameter, match="all zeros"):
        key.shared_secret(bytes(32))  # the point 0 has order 4: every scalar gives 0


def server_error_for(server_files, ecdsa_files, client_key_exchange, suite, client_groups=None):
    client, server = pair(server_files, ecdsa_files, suites=[suite], client_groups=client_groups)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert server.state is State.WAIT_CLIENT_KEY_EXCHANGE
    record = encode_record(ContentType.handshake, 0x0303, client_key_exchange.to_bytes())
    with pytest.raises(ProtocolError) as caught:
        server.receive_data(record)
    return caught.value, server.data_to_send()


def test_server_refuses_an_off_curve_client_point(server_files, ecdsa_files) -> None:
    error, alert = server_error_for(
        server_files, ecdsa_files, ECDHClientKeyExchange(b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x01"),
        CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    )  # fmt: skip
    # x25519 is first in both lists, so a 65-byte "point" is the wrong length for it: decode_error.
    assert isinstance(error, DecodeError) and alert.endswith(bytes([2, TLSAlert.decode_error]))


def test_server_refuses_an_out_of_range_client_dh_value(server_files, ecdsa_files) -> None:
    error, alert = server_error_for(
        server_files, ecdsa_files, DHClientKeyExchange((FFDHE2048_P - 1).to_bytes(256, "big")),
        CipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
    )  # fmt: skip
    assert isinstance(error, HandshakeFailure) and alert.endswith(bytes([2, TLSAlert.handshake_failure]))


def test_a_server_key_exchange_in_an_rsa_handshake_is_unexpected(server_files, ecdsa_files) -> None:
    client, server = pair(server_files, ecdsa_files, suites=[CipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256])
    client.start()
    server.receive_data(client.data_to_send())
    flight = server.data_to_send()
    # Our RSA server sends no ServerKeyExchange; put one in, after Certificate, where ECDHE has it.
    fake = ServerKeyExchange(ServerECDHParams(NamedGroup.x25519, bytes(range(32))), 0x0804, b"\x01")
    done = encode_record(ContentType.handshake, 0x0303, b"\x0e\x00\x00\x00")
    flight = flight.replace(done, encode_record(ContentType.handshake, 0x0303, fake.to_bytes()) + done)
    with pytest.raises(UnexpectedMessage):
        client.receive_data(flight)


def test_in_memory_ecdhe_pair_with_both_identities_and_every_group(server_files, ecdsa_files) -> None:
    ecdsa = ecdsa_files[2]
    for suite in ECDHE_SUITES + DHE_SUITES:
        for group in GROUPS:
            if (GROUPS[group].kind == "dhe") != (suite in DHE_SUITES):
                continue
            # An ECDSA suite needs the certificate's curve (P-256) in supported_groups too (RFC 8422 5.1).
            groups = [group] if group == NamedGroup.secp256r1 or not is_ecdsa(suite) else [group, NamedGroup.secp256r1]
            client = TLSClient("localhost", cafile=server_files.ca_path, cipher_suites=[suite], groups=groups)
            server = TLSServer(
                [server_files.issued.certificate.public_bytes(Encoding.DER)], server_files.issued.private_key,
                identities=[([ecdsa.certificate.public_bytes(Encoding.DER)], ecdsa.private_key)], groups=[group],
            )  # fmt: skip
            client.start()
            for _ in range(3):
                server.receive_data(client.data_to_send())
                client.receive_data(server.data_to_send())
            assert client.handshake is not None and server.handshake is not None, (suite, group)
            assert client.handshake.master_secret == server.handshake.master_secret
            assert client.handshake.group == server.handshake.group == group
            assert [s.value for s in replay("server", server.transcript)][-1] == "CONNECTED"


# -- the decoders ------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([None, "ECDHE", "DHE", "RSA"]))
def test_key_exchange_decoders_refuse_bad_bytes_with_protocol_errors(body, key_exchange) -> None:
    for msg_type in (HandshakeType.server_key_exchange, HandshakeType.client_key_exchange):
        data = bytes([msg_type]) + len(body).to_bytes(3, "big") + body
        try:
            message, spans = decode_handshake(data, key_exchange=key_exchange)
        except ProtocolError:
            continue
        assert message.to_bytes() == data  # mirrored: whatever decodes encodes to the same bytes
        assert spans and all(s.offset >= 0 and s.offset + s.length <= len(data) for s in spans)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(list(GROUPS)),
    st.binary(min_size=1, max_size=300),
    st.sampled_from([0x0403, 0x0804, 0x0401]),
    st.binary(min_size=1, max_size=300),
)
def test_server_key_exchange_round_trips(group, public, algorithm, signature) -> None:
    if GROUPS[group].kind == "ecdhe":
        params = ServerECDHParams(group, public[:255])
        key_exchange = "ECDHE"
    else:
        params = ServerDHParams(GROUPS[group].p.to_bytes(GROUPS[group].public_length, "big"), b"\x02", public)
        key_exchange = "DHE"
    message = ServerKeyExchange(params, algorithm, signature)
    decoded, spans = decode_handshake(message.to_bytes(), key_exchange=key_exchange)
    assert decoded == message
    fields = {s.field.rsplit(".", 1)[-1] for s in spans}
    assert "signature" in fields and ({"named_curve", "point"} <= fields or {"dh_p", "dh_g", "dh_Ys"} <= fields)


# -- the guards combine: stapling and mutual TLS with ECDHE ------------------------------------------------
def test_ecdhe_with_stapling_and_a_client_certificate_in_memory(server_files) -> None:
    """Every guard at once on the server (client certificate requested, OCSP response to staple, ECDHE):
    the flight is RFC 5246 / 6066's order, and both tables walk the transcript to CONNECTED."""
    import datetime as dt

    from handshake_lib.pki.issue import Authority
    from handshake_lib.pki.revocation_data import ocsp_response

    pki, issued = server_files.pki, server_files.issued
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    response = ocsp_response(
        issued.certificate, Authority(pki.root.certificate, pki.root.private_key), "good",
        this_update=now - dt.timedelta(hours=1), next_update=now + dt.timedelta(days=1),
    )  # fmt: skip
    alice = pki.issue_client("alice-ecdhe")
    client = TLSClient(
        "localhost", cafile=server_files.ca_path, request_ocsp_status=True,
        client_certificate_chain=[alice.certificate], client_private_key=alice.private_key,
    )  # fmt: skip
    server = TLSServer(
        [issued.certificate.public_bytes(Encoding.DER)], issued.private_key, ocsp_response=response,
        client_ca=[pki.root.certificate],
    )  # fmt: skip
    client.start()
    for _ in range(3):
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    assert client.handshake is not None and server.handshake is not None
    # The default offer's first suite this RSA-only server can serve: ECDHE-RSA with AES-256.
    assert client.handshake.cipher_suite == CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    flight = [type(m).__name__ for e in server.transcript if e.direction == "server->client" for m in e.messages]
    assert flight[:6] == [
        "ServerHello", "Certificate", "CertificateStatus", "ServerKeyExchange", "CertificateRequest", "ServerHelloDone"
    ]  # fmt: skip
    sent = [type(m).__name__ for e in client.transcript if e.direction == "client->server" for m in e.messages]
    assert sent[1:4] == ["Certificate", "ECDHClientKeyExchange", "CertificateVerify"]
    assert server.handshake.client_subject is not None and "alice-ecdhe" in server.handshake.client_subject
    assert client.handshake.stapled_ocsp_response == response
    assert [s.value for s in replay("client", client.transcript)][-1] == "CONNECTED"
    assert [s.value for s in replay("server", server.transcript)][-1] == "CONNECTED"


def test_openssl_verifies_our_certificate_verify_over_an_ecdhe_transcript(server_files, tmp_path) -> None:
    """Mutual TLS with ECDHE against OpenSSL (CERT_REQUIRED): our CertificateVerify signs a transcript that
    holds ServerKeyExchange and our ECDH ClientKeyExchange; OpenSSL accepts it and logs the same master secret."""
    keylog = tmp_path / "openssl.log"
    bob = server_files.pki.issue_client("bob-ecdhe")
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers="ECDHE-RSA-AES128-GCM-SHA256",
        maximum_version=ssl.TLSVersion.TLSv1_2, keylog_path=keylog,
    )  # fmt: skip
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(server_files.ca_path)
    with PythonSSLServer(context) as server:
        response = tls_get(
            f"https://localhost:{server.port}/", cafile=server_files.ca_path,
            client_certificate_chain=[bob.certificate], client_private_key=bob.private_key,
        )  # fmt: skip
    assert response.status == 200 and server.connections[0].error is None
    assert response.handshake.cipher_suite == CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    assert read_keylog(keylog).master_secret(response.handshake.client_random) == response.handshake.master_secret


# -- bad client key shares: OpenSSL's server and ours, the same bytes ------------------------------------
P256_OFF_CURVE = b"\x04" + (1).to_bytes(32, "big") * 2
BAD_SHARES = {
    # name: (suite, group, ClientKeyExchange class, public value, OpenSSL's alert, ours)
    "p256-off-curve": (0xC02F, NamedGroup.secp256r1, "ECDHClientKeyExchange", P256_OFF_CURVE,
                       TLSAlert.illegal_parameter, TLSAlert.illegal_parameter),
    "p256-compressed": (0xC02F, NamedGroup.secp256r1, "ECDHClientKeyExchange", b"\x02" + (1).to_bytes(32, "big"),
                        TLSAlert.illegal_parameter, TLSAlert.illegal_parameter),
    "x25519-all-zero-secret": (0xC02F, NamedGroup.x25519, "ECDHClientKeyExchange", bytes(32),
                               TLSAlert.illegal_parameter, TLSAlert.illegal_parameter),
    # RFC 7919 section 4 names handshake_failure for dh_Yc out of range; OpenSSL 3.0 sends illegal_parameter
    # (SSL_R_BAD_KEY_SHARE). Where the RFC names the alert we follow it: a known difference, checked here.
    "dh-one": (0x9E, NamedGroup.ffdhe2048, "DHClientKeyExchange", (1).to_bytes(256, "big"),
               TLSAlert.illegal_parameter, TLSAlert.handshake_failure),
    "dh-p-minus-one": (0x9E, NamedGroup.ffdhe2048, "DHClientKeyExchange", (FFDHE2048_P - 1).to_bytes(256, "big"),
                       TLSAlert.illegal_parameter, TLSAlert.handshake_failure),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_SHARES))
def test_bad_client_key_shares_openssls_alert_and_ours(server_files, ecdsa_files, ffdhe2048_pem, monkeypatch, case):
    suite, group, class_name, public, openssl_alert, our_alert = BAD_SHARES[case]
    # OpenSSL's server receives the bad value from our client (whose ClientKeyExchange is swapped for it).
    real = getattr(client_module, class_name)
    monkeypatch.setattr(client_module, class_name, lambda _public: real(public))
    context = server_context(
        server_files.cert_path, server_files.key_path, ciphers=OPENSSL_NAME[CipherSuite(suite)],
        maximum_version=ssl.TLSVersion.TLSv1_2,
    )  # fmt: skip
    context.load_dh_params(str(ffdhe2048_pem))
    with PythonSSLServer(context) as server, pytest.raises(PeerAlert) as caught:
        tls_get(f"https://localhost:{server.port}/", cafile=server_files.ca_path, cipher_suites=[suite], groups=[group])
    assert caught.value.description == openssl_alert
    assert "BAD_KEY_SHARE" in str(server.connections[0].error)
    monkeypatch.undo()
    # Our server, the same bytes.
    error, alert = server_error_for(server_files, ecdsa_files, real(public), CipherSuite(suite), client_groups=[group])
    assert error.tls_alert == our_alert and alert.endswith(bytes([2, our_alert]))


# -- Chromium's normal offer -------------------------------------------------------------------------------
@pytest.mark.parametrize("identities", ["rsa", "rsa+ecdsa"])
def test_chromium_gets_ecdhe_from_our_server_with_its_normal_offer(server_files, ecdsa_files, tmp_path, identities):
    """Headless Chromium, no cipher restriction, against our server's defaults: an ECDHE suite over x25519 (the
    ECDSA certificate when we hold one: Chromium lists ECDSA suites first), and Chromium's own key log
    (SSLKEYLOGFILE) holds the master secret our server derived."""
    import base64
    import hashlib
    import os

    from cryptography.hazmat.primitives.serialization import PublicFormat

    chromium = require("chromium")
    leaves = [server_files.issued] + ([ecdsa_files[2]] if identities == "rsa+ecdsa" else [])
    pins = ",".join(
        base64.b64encode(
            hashlib.sha256(
                leaf.certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            ).digest()
        ).decode()
        for leaf in leaves
    )
    extra = {"identities": [([ecdsa_files[2].der], ecdsa_files[2].private_key)]} if identities == "rsa+ecdsa" else {}
    chromium_log = tmp_path / "chromium.keylog"
    with TLSPageServer([server_files.issued.der], server_files.issued.private_key, **extra) as server:
        completed = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'p'}",
             f"--ignore-certificate-errors-spki-list={pins}", "--dump-dom", f"https://localhost:{server.port}/"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "SSLKEYLOGFILE": str(chromium_log)},
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Hello from the Handshakes TLS server" in completed.stdout
    handshakes = [c.handshake for c in server.connections if c.handshake is not None]
    expected = (
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        if identities == "rsa+ecdsa"
        else CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    )
    assert handshakes and {h.cipher_suite for h in handshakes} == {expected}
    # Chromium may resume its session on a second connection (our server resumes by default): no key exchange.
    assert {h.group for h in handshakes if not h.resumed} == {NamedGroup.x25519}
    assert all(h.group is None for h in handshakes if h.resumed)
    chromium_secrets = read_keylog(chromium_log)
    assert all(chromium_secrets.master_secret(h.client_random) == h.master_secret for h in handshakes)


# -- signature schemes: PKCS#1 v1.5, RSA-PSS, both directions ---------------------------------------------
@pytest.mark.parametrize(
    ("sigalgs", "scheme"), [("RSA+SHA256", 0x0401), ("RSA-PSS+SHA384", 0x0805), ("RSA+SHA512", 0x0601)]
)
def test_our_client_verifies_openssls_server_key_exchange_in_each_scheme(server_files, sigalgs, scheme) -> None:
    with s_server(server_files, "-tls1_2", "-www", "-sigalgs", sigalgs) as peer:
        response = tls_get(f"https://localhost:{peer.port}/", cafile=server_files.ca_path)
    (signed,) = [m for e in response.transcript for m in e.messages if isinstance(m, ServerKeyExchange)]
    assert response.status == 200 and signed.signature_algorithm == scheme


@pytest.mark.parametrize(
    ("sigalgs", "openssl_says"),
    [("RSA+SHA256", "RSA"), ("RSA+SHA384", "RSA"), ("RSA-PSS+SHA256", "RSA-PSS"), ("RSA-PSS+SHA512", "RSA-PSS")],
)
def test_our_server_signs_with_a_scheme_s_client_offered(server_files, ecdsa_files, tmp_path, sigalgs, openssl_says):
    with our_server(server_files, ecdsa_files, tmp_path / "server.log") as server:
        result = run_s_client(
            server.port, server_files, tmp_path / "c.log", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-sigalgs", sigalgs
        )
    assert result.returncode == 0, result.stderr
    assert f"Peer signature type: {openssl_says}\n" in result.stdout
    digest = sigalgs.split("+")[1]
    assert f"Peer signing digest: {digest}" in result.stdout
