"""Lesson 08's widgets and glue, on live handshakes with OpenSSL and on the recorded Finished vectors."""

from __future__ import annotations

import dataclasses
import hashlib
import re

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from handshake_lib.errors import PeerAlert, TLSAlert  # noqa: E402
from handshake_lib.lessons import finished as lesson  # noqa: E402
from handshake_lib.net.tls import tls_get  # noqa: E402
from handshake_lib.peers.openssl import openssl_server  # noqa: E402
from handshake_lib.tls import Stages  # noqa: E402
from handshake_lib.tls import prf as prf_module  # noqa: E402
from handshake_lib.tls.states import diagram_rows  # noqa: E402
from handshake_lib.tls.suites import parse_suite_name, suite_params  # noqa: E402


@pytest.fixture(scope="module")
def session() -> lesson.LiveSession:
    # The lesson's own session: a ticket makes OpenSSL's flight cross ours, the densest diagram.
    return lesson.capture_session("AES128-GCM-SHA256", session_ticket=True)


@pytest.mark.parametrize("suite", sorted(lesson.RECORDED_FINISHED))
def test_recorded_finished_messages_match_the_prf(suite: str) -> None:
    recorded = lesson.RECORDED_FINISHED[suite]
    params = suite_params(parse_suite_name(suite))
    assert recorded.hash_name == params.prf_hash

    def verify(label: str, messages: bytes) -> bytes:
        # RFC 5246 7.4.9 written out (hash, then PRF), so the library's verify_data is not its own judge.
        digest = hashlib.new(params.prf_hash, messages).digest()
        return prf_module.prf(recorded.master_secret, label.encode(), digest, 12, params.prf_hash)

    assert verify("client finished", recorded.handshake_messages) == recorded.client_verify_data
    both = recorded.handshake_messages + recorded.client_finished  # the server's hash includes our Finished
    assert verify("server finished", both) == recorded.server_verify_data
    assert verify("server finished", recorded.handshake_messages) != recorded.server_verify_data


def test_finished_recomputed_from_openssls_master_secret_with_a_ticket(session) -> None:
    check = lesson.finished_inputs(session)
    assert check.both_match and "(same)" in check.summary() and "DIFFERENT" not in check.summary()
    assert [n.split()[1] for n in check.client_inputs] == [
        "ClientHello", "ServerHello", "Certificate", "ServerHelloDone", "ClientKeyExchange",
    ]  # fmt: skip
    names = [n.split()[1] for n in check.server_inputs]
    assert names[-2:] == ["Finished", "NewSessionTicket"] and "NewSessionTicket" not in str(check.client_inputs)
    assert check.server_inputs[-2].startswith("client->server")


def test_downgrade_changes_what_the_server_expects(session) -> None:
    text = lesson.downgrade_check(session)
    assert "different: the server answers decrypt_error" in text
    assert "TLS_RSA_WITH_AES_256_GCM_SHA384" in text.splitlines()[0]


def test_sequence_diagram_has_one_arrow_per_flight_in_client_time(session) -> None:
    response = session.response
    arrows = lesson.handshake_arrows(response.transcript, response.timings)
    assert arrows[1].label == "ServerHello, Certificate, ServerHelloDone"
    assert arrows[2].label == "ClientKeyExchange, ChangeCipherSpec, {Finished}"
    assert arrows[3].label == "NewSessionTicket, ChangeCipherSpec, {Finished}"
    stamps = {index: time for time, _, index in response.timings}
    assert arrows[0].sent_at == stamps[0] and arrows[1].received_at == stamps[1]
    assert all(a.sent_at <= a.received_at for a in arrows)
    with pytest.raises(ValueError):
        lesson.handshake_arrows(response.transcript, [])


def test_sequence_diagram_labels_never_overlap_and_times_read_in_ms(session) -> None:
    figure = lesson.handshake_sequence(session.response)
    ax = figure.axes[0]
    gids = [p.get_gid() or "" for p in ax.patches]
    arrows = lesson.handshake_arrows(session.response.transcript, session.response.timings)
    assert sum(g.startswith("transmission:") for g in gids) == len(arrows)
    renderer = figure.canvas.get_renderer()
    texts = [t for t in ax.texts if (t.get_gid() or "").startswith(("label:", "state:"))]
    labels = [t for t in texts if t.get_gid().startswith("label:")]
    assert len(labels) == len(arrows) and len(texts) > len(labels)
    boxes = [(t.get_gid(), t.get_window_extent(renderer)) for t in texts]
    for number, (name, box) in enumerate(boxes):
        for other_name, other in boxes[number + 1 :]:
            assert not box.overlaps(other), f"{name} overlaps {other_name}"
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks and len(set(ticks)) == len(ticks)
    for text in ticks:
        assert re.fullmatch(r"\d+(\.\d{1,3})?", text), text  # no 3.44196
    assert ax.get_ylabel() == "time (ms)"


def test_state_machine_picture_highlights_the_path(session) -> None:
    figure = lesson.state_machine_picture("server", session.transcript)
    boxes = {p.get_gid() for p in figure.axes[0].patches if (p.get_gid() or "").startswith("state:")}
    assert boxes == {f"state:{s}" for row in diagram_rows("server") for s in (row[0], row[2])}


def test_page_view_sandboxes_and_escapes(session) -> None:
    view = lesson.page_view(session.response)
    assert 'sandbox=""' in view.value and "Hello from OpenSSL" in view.value
    hostile = dataclasses.replace(session.response, body=b'<script>alert(1)</script><img src=x onerror="x()">')
    value = lesson.page_view(hostile).value
    assert "<script>" not in value and "<img" not in value and "&lt;script&gt;" in value


def test_stepper_walks_the_records() -> None:
    response = lesson.capture_session("AES128-SHA256").response
    stepper = lesson.handshake_stepper(response)
    assert stepper.index == 0 and stepper.previous_button.disabled
    assert stepper.hexview.data == response.transcript[0].record and stepper.plain_view is None
    for _ in range(6):
        stepper.next()
    entry = response.transcript[6]
    assert entry.encrypted and stepper.hexview.data == entry.record
    assert stepper.plain_view.data == entry.plaintext  # the decrypted Finished, no made-up record header
    assert "finished" in " ".join(s.field for s in stepper.plain_view.spans)
    assert "client WAIT_CHANGE_CIPHER_SPEC, server CONNECTED" in stepper.status_text
    stepper.show(len(response.transcript) - 1)
    assert stepper.next_button.disabled and stepper.next() == len(response.transcript) - 1
    assert stepper.show(99) == len(response.transcript) - 1 and "no record number 99" in stepper.position.value
    stepper.previous_button.click()
    assert stepper.index == len(response.transcript) - 2


def test_a_learners_finished_completes_a_handshake_and_a_wrong_one_gets_decrypt_error() -> None:
    seen = []

    def learners(master_secret, label, handshake_messages, hash_name="sha256"):
        seen.append((label, handshake_messages, hash_name))
        digest = hashlib.new(hash_name, handshake_messages).digest()
        return prf_module.prf(master_secret, label, digest, 12, hash_name)

    def hashes_a_record_header_too(master_secret, label, handshake_messages, hash_name="sha256"):
        record_header = bytes([22, 3, 3]) + len(handshake_messages).to_bytes(2, "big")
        return learners(master_secret, label, record_header + handshake_messages, hash_name)

    with openssl_server("AES256-GCM-SHA384") as peer:
        response = tls_get(peer.url, cafile=peer.cafile, stages=Stages(verify_data=learners))
        assert response.status == 200 and b"Hello from OpenSSL" in response.body
        messages = b"".join(raw for _, raw in lesson.handshake_messages(response.transcript))
        assert [label for label, _, _ in seen] == ["client finished", "server finished"]
        assert all(hash_name == "sha384" for _, _, hash_name in seen)
        client_messages, server_messages = seen[0][1], seen[1][1]
        assert messages.startswith(server_messages) and server_messages.startswith(client_messages)
        assert server_messages[len(client_messages) :][0] == 20  # the client's Finished, then nothing else
        with pytest.raises(PeerAlert) as caught:
            tls_get(peer.url, cafile=peer.cafile, stages=Stages(verify_data=hashes_a_record_header_too))
        assert caught.value.description == TLSAlert.decrypt_error
    # Read after the with block: the server thread has finished recording what OpenSSL said.
    assert "DIGEST_CHECK_FAILED" in peer.last_error.upper().replace(" ", "_")
