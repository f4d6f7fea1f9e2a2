"""The stages a learner re-implements plug into a live connection with OpenSSL, and OpenSSL judges them.

A correct stand-in (written here independently of the library) must complete a real handshake; a
subtly wrong one must fail the way a real peer makes it fail.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import struct

import pytest

from handshake_lib import net
from handshake_lib.errors import BadRecordMac, PeerAlert, TLSAlert
from handshake_lib.net.tls import TLSPageServer, tls_get
from handshake_lib.peers.openssl import PythonSSLServer, server_context
from handshake_lib.tls import Stages
from handshake_lib.tls.constants import OPENSSL_NAMES, CipherSuite


def learners_record_mac(hash_name, mac_key, sequence_number, content_type, version, fragment) -> bytes:
    """RFC 5246 6.2.3.1, written with nothing but the standard library."""
    header = struct.pack("!QBHH", sequence_number, content_type, version, len(fragment))
    return hmac.new(mac_key, header + fragment, getattr(hashlib, hash_name)).digest()


def mac_without_sequence_number(hash_name, mac_key, sequence_number, content_type, version, fragment) -> bytes:
    return learners_record_mac(hash_name, mac_key, 0, content_type, version, fragment)


@pytest.mark.parametrize("suite_name", ["AES128-SHA256", "AES128-SHA"])
@pytest.mark.parametrize("etm", [True, False], ids=["encrypt-then-mac", "mac-then-encrypt"])
def test_a_correct_record_mac_completes_a_handshake_with_openssl(server_files, suite_name, etm) -> None:
    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path
    with PythonSSLServer(server_context(cert, key, ciphers=suite_name, maximum_version=ssl.TLSVersion.TLSv1_2)) as s:
        stages = Stages(record_mac=learners_record_mac)
        response = tls_get(f"https://localhost:{s.port}/", cafile=ca, stages=stages, encrypt_then_mac=etm)
    assert response.status == 200 and b"Hello from OpenSSL" in response.body
    assert response.handshake.encrypt_then_mac is etm


def test_a_record_mac_that_forgets_the_sequence_number_is_rejected_by_openssl(server_files) -> None:
    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path
    context = server_context(cert, key, ciphers="AES128-SHA256", maximum_version=ssl.TLSVersion.TLSv1_2)
    # Finished is record number 0 in each direction, so the handshake passes; the request (number 1)
    # must not.  OpenSSL answers with a bad_record_mac alert, itself MAC'd with sequence number 1, so
    # our side cannot authenticate it either: both ends see a bad record MAC.
    with PythonSSLServer(context) as server, pytest.raises(BadRecordMac):
        tls_get(f"https://localhost:{server.port}/", cafile=ca, stages=Stages(record_mac=mac_without_sequence_number))
    assert "BAD_RECORD_MAC" in str(server.connections[0].error).upper().replace(" ", "_")


def test_a_learners_cipher_suite_choice_is_what_openssl_gets(server_files) -> None:
    ca, issued = server_files.ca_path, server_files.issued

    def client_preference(offered, supported, prefer="server"):
        return next(suite for suite in offered if suite in supported)

    client = ssl.create_default_context(cafile=str(ca))
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("AES128-SHA:AES256-GCM-SHA384")  # OpenSSL offers them in this order
    server = TLSPageServer([issued.der], issued.private_key, stages=Stages(choose_cipher_suite=client_preference))
    with (
        server,
        net.connect(server.host, server.port) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        chosen = tls.cipher()[0]
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b"200 OK" in tls.recv(4096)
    assert chosen == "AES128-SHA"
    assert server.connections[0].handshake.cipher_suite == OPENSSL_NAMES["AES128-SHA"]


def test_a_choice_the_client_never_offered_ends_in_handshake_failure(server_files) -> None:
    ca, issued = server_files.ca_path, server_files.issued

    def always_cbc_sha256(offered, supported, prefer="server"):
        return CipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA256

    client = ssl.create_default_context(cafile=str(ca))
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("AES128-GCM-SHA256")
    server = TLSPageServer([issued.der], issued.private_key, stages=Stages(choose_cipher_suite=always_cbc_sha256))
    with server, net.connect(server.host, server.port) as raw, pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        client.wrap_socket(raw, server_hostname="localhost")
    assert "chooser picked" in str(server.connections[0].error)


def learners_finished(master_secret, label, handshake_messages, hash_name) -> bytes:
    """verify_data = PRF(master_secret, label, Hash(handshake_messages))[:12], with hashlib and hmac only."""
    digest = getattr(hashlib, hash_name)
    seed = label.encode() + digest(handshake_messages).digest()
    output, a = b"", seed
    while len(output) < 12:
        a = hmac.new(master_secret, a, digest).digest()
        output += hmac.new(master_secret, a + seed, digest).digest()
    return output[:12]


@pytest.mark.parametrize("suite_name", ["AES128-GCM-SHA256", "AES256-GCM-SHA384"])
def test_a_correct_finished_completes_a_handshake_with_openssl(server_files, suite_name) -> None:
    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path
    calls = []

    def recording(master_secret, label, handshake_messages, hash_name):
        calls.append((label, handshake_messages[0], hash_name))
        return learners_finished(master_secret, label, handshake_messages, hash_name)

    context = server_context(cert, key, ciphers=suite_name, maximum_version=ssl.TLSVersion.TLSv1_2)
    with PythonSSLServer(context) as server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=ca, stages=Stages(verify_data=recording))
    assert response.status == 200
    # The client computes its own Finished, then checks the server's; both start at the ClientHello (type 1).
    assert [(label, first) for label, first, _ in calls] == [("client finished", 1), ("server finished", 1)]
    assert {hash_name for *_, hash_name in calls} == {"sha384" if suite_name.endswith("SHA384") else "sha256"}


def test_a_finished_over_the_wrong_messages_gets_decrypt_error_from_openssl(server_files) -> None:
    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path

    def forgets_the_client_hello(master_secret, label, handshake_messages, hash_name):
        length = int.from_bytes(handshake_messages[1:4], "big")
        return learners_finished(master_secret, label, handshake_messages[4 + length :], hash_name)

    context = server_context(cert, key, ciphers="AES128-GCM-SHA256", maximum_version=ssl.TLSVersion.TLSv1_2)
    with PythonSSLServer(context) as server, pytest.raises(PeerAlert) as caught:
        tls_get(f"https://localhost:{server.port}/", cafile=ca, stages=Stages(verify_data=forgets_the_client_hello))
    assert caught.value.description == TLSAlert.decrypt_error


def test_a_pre_master_with_rolled_back_version_bytes_fails_at_finished_with_openssl(server_files) -> None:
    """RFC 5246 7.4.7.1: OpenSSL says nothing about the version; it continues with a random secret."""
    from handshake_lib.tls import rsa_kx

    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path

    def rolled_back(client_version, random_bytes):
        return rsa_kx.make_pre_master_secret(0x0301, random_bytes)

    context = server_context(cert, key, ciphers="AES128-GCM-SHA256", maximum_version=ssl.TLSVersion.TLSv1_2)
    with PythonSSLServer(context) as server:
        with pytest.raises(PeerAlert) as caught:
            tls_get(f"https://localhost:{server.port}/", cafile=ca, stages=Stages(make_pre_master_secret=rolled_back))
        library = Stages(make_pre_master_secret=rsa_kx.make_pre_master_secret)
        response = tls_get(f"https://localhost:{server.port}/", cafile=ca, stages=library)
    assert caught.value.description == TLSAlert.bad_record_mac
    assert response.status == 200


def learners_prf(secret, label, seed, length, hash_name="sha256") -> bytes:
    """PRF(secret, label, seed) = P_hash(secret, label + seed), exercise 06's signature, stdlib only."""
    digest, output, a = getattr(hashlib, hash_name), b"", label + seed
    while len(output) < length:
        a = hmac.new(secret, a, digest).digest()
        output += hmac.new(secret, a + label + seed, digest).digest()
    return output[:length]


@pytest.mark.parametrize("suite_name", ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA"])
def test_a_learners_prf_runs_the_whole_key_schedule_with_openssl(server_files, suite_name) -> None:
    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path
    labels = []

    def recording(secret, label, seed, length, hash_name):  # exactly the Prf stage's arguments, nothing else
        labels.append(label)
        return learners_prf(secret, label, seed, length, hash_name)

    context = server_context(cert, key, ciphers=suite_name, maximum_version=ssl.TLSVersion.TLSv1_2)
    with PythonSSLServer(context) as server:
        suite = OPENSSL_NAMES[suite_name]
        response = tls_get(
            f"https://localhost:{server.port}/", cafile=ca, cipher_suites=[suite], stages=Stages(prf=recording)
        )
    assert response.status == 200
    # The library's master secret, key block and both Finished ran over the learner's PRF.
    assert labels == [b"extended master secret", b"key expansion", b"client finished", b"server finished"]


def test_a_learners_p_hash_reaches_the_handshake_and_a_wrong_one_gets_bad_record_mac(server_files) -> None:
    ca, cert, key = server_files.ca_path, server_files.cert_path, server_files.key_path
    used = []

    def learners_p_hash(secret, seed, length, hash_name):
        used.append(hash_name)
        return learners_prf(secret, b"", seed, length, hash_name)

    def forgot_the_seed(secret, seed, length, hash_name):
        digest, output, a = getattr(hashlib, hash_name), b"", seed
        while len(output) < length:
            a = hmac.new(secret, a, digest).digest()
            output += hmac.new(secret, a, digest).digest()  # the slip: A(i) alone, without the seed
        return output[:length]

    context = server_context(cert, key, ciphers="AES128-GCM-SHA256", maximum_version=ssl.TLSVersion.TLSv1_2)
    with PythonSSLServer(context) as server:
        response = tls_get(f"https://localhost:{server.port}/", cafile=ca, stages=Stages(p_hash=learners_p_hash))
        with pytest.raises(PeerAlert) as caught:
            tls_get(f"https://localhost:{server.port}/", cafile=ca, stages=Stages(p_hash=forgot_the_seed))
    assert response.status == 200 and used == ["sha256"] * 4
    # Wrong keys: OpenSSL cannot open our Finished record, and says so.
    assert caught.value.description == TLSAlert.bad_record_mac


# -- the Stages object itself ---------------------------------------------------------------------------
def test_stages_default_to_the_library_and_replace_one_at_a_time() -> None:
    from handshake_lib.tls import prf as prf_module

    library = Stages()
    assert library.replaced() == [] and library.resolved() is library
    mine = library.replace(prf=learners_prf)
    assert mine.prf is learners_prf and mine.replaced() == ["prf"] and library.prf is prf_module.prf
    with pytest.raises(AttributeError):
        mine.prf = prf_module.prf  # frozen: a connection's stages cannot change under it
    with pytest.raises(TypeError, match="stage prf must be a function"):
        Stages(prf=b"not a function")
    with pytest.raises(TypeError, match="stages must be a Stages object"):
        tls_get("https://localhost:1/", stages={"prf": learners_prf})


def test_library_stages_run_over_a_replaced_prf_but_a_replaced_stage_gets_only_its_arguments() -> None:
    from handshake_lib.tls import prf as prf_module
    from handshake_lib.tls.suites import suite_params

    params = suite_params(CipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384)
    wired = Stages(prf=learners_prf).resolved()
    # learners_prf is correct, so the wired library stages agree with the library's own.
    assert wired.master_secret(bytes(48), bytes(32), bytes(32), "sha384") == prf_module.master_secret(
        bytes(48), bytes(32), bytes(32), "sha384"
    )
    broken = Stages(prf=lambda secret, label, seed, length, hash_name: bytes(length)).resolved()
    assert broken.key_block(bytes(48), bytes(32), bytes(32), params).client_write_key == bytes(32)
    assert broken.verify_data(bytes(48), "client finished", b"messages", "sha384") == bytes(12)
    # A stage the learner replaced is left alone (it gets no prf= keyword to absorb).
    own_finished = Stages(prf=learners_prf, verify_data=learners_finished).resolved()
    assert own_finished.verify_data is learners_finished


def test_no_solution_wraps_a_learners_stage_in_an_adapter() -> None:
    """Each stage's Protocol is the learner's signature: nothing like ``your_prf(..., **unused)`` is needed."""
    import json
    import re
    from pathlib import Path

    solutions = sorted((Path(__file__).resolve().parent.parent / "solutions").glob("*.ipynb"))
    assert len(solutions) >= 7
    catch_all = re.compile(r"def \w+\([^)]*\*\*\w+")
    for path in solutions:
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code":
                assert not catch_all.search(source), f"{path.name}: a stage takes **keywords it does not use"
