"""Lesson 12's layout (handshake_lib/lessons/ssh_key_exchange.py) and its widget benchmarks.

What the widgets compute is tested in the library (test_ssh_negotiation..., test_ssh_kex.py,
test_ssh_exchange_hash.py, test_ssh_kdf.py); these tests check what the learner sees, that it changes
when the inputs change, and that bad input is one short error with nothing changed.  The pictures of a
live session are drawn from one real session with OpenSSH's sshd.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from bench.cases import ssh_key_exchange as ssh_bench  # noqa: E402
from handshake_lib.lessons.ssh_key_exchange import (  # noqa: E402
    DEMO_SHARED_SECRET,
    banner_views,
    curve25519_steps,
    exchange_hash_view,
    key_share_table_html,
    negotiation_lab,
    session_arrows,
    session_sequence,
    state_table_picture,
)
from handshake_lib.ssh.exchange_hash import exchange_hash  # noqa: E402
from handshake_lib.ssh.kdf import derive  # noqa: E402
from handshake_lib.ssh.negotiation import build_kexinit, negotiate  # noqa: E402
from handshake_lib.viz.statediagram import HIGHLIGHT_FACE  # noqa: E402
from tests.conftest import require  # noqa: E402


# -- the negotiation lab -------------------------------------------------------------------------------------
def test_lab_starts_with_what_negotiate_picks_and_highlights_it() -> None:
    lab = negotiation_lab()
    expected = negotiate(build_kexinit("client", random=bytes), build_kexinit("server", random=bytes))
    assert lab.view is not None and not lab.view.failed
    assert lab.view.verdict == expected.describe()
    winner = f"<span style='background:#c8f7c5;color:#000;font-weight:bold'>{expected.kex}</span>"
    assert lab.table.value.count(winner) == 2  # on both sides


def test_reordering_the_client_list_changes_the_choice() -> None:
    lab = negotiation_lab()
    view = lab.update(client_kex=["ecdh-sha2-nistp256", "curve25519-sha256"])
    assert view.choices[0].winner == "ecdh-sha2-nistp256" and "kex: ecdh-sha2-nistp256" in view.verdict
    # The server's order never matters: the same choice when the server puts it last.
    view = lab.update(server_kex=["curve25519-sha256", "ecdh-sha2-nistp256"])
    assert view.choices[0].winner == "ecdh-sha2-nistp256"
    view = lab.update(client_ciphers=["aes128-ctr", "chacha20-poly1305@openssh.com"])
    assert "client->server: aes128-ctr MAC: hmac-sha2-256-etm@openssh.com" in view.verdict
    view = lab.update(client_ciphers=["chacha20-poly1305@openssh.com"])
    assert "MAC: <implicit>" in view.verdict and "implicit (AEAD)" in lab.table.value


def test_removing_every_common_name_shows_the_failure() -> None:
    lab = negotiation_lab()
    view = lab.update(server_ciphers=[])
    assert view.failed and view.verdict.startswith("the key exchange fails: no matching cipher client to server")
    assert "no match" in lab.table.value and "#b00020" in lab.verdict.value
    view = lab.update(server_ciphers=["aes128-ctr"])
    assert not view.failed and "aes128-ctr" in view.verdict


def test_the_boxes_run_the_same_callback() -> None:
    lab = negotiation_lab()
    lab.boxes["client_kex"].value = ["ecdh-sha2-nistp256"]
    assert lab.view is not None and lab.view.choices[0].winner == "ecdh-sha2-nistp256"


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({"client_kex": "curve25519-sha256"}, TypeError, "client_kex must be a list of choices"),
        ({"server_macs": ["rot13"]}, ValueError, "each of server_macs must be one of"),
        ({"client_kex": [None]}, ValueError, "client_kex holds None"),
        ({"client_cipher": ["aes128-ctr"]}, TypeError, "update() takes client_kex"),
    ],
)
def test_bad_input_is_one_short_error_and_changes_nothing(arguments, error, words) -> None:
    lab = negotiation_lab()
    before = ({name: list(box.value) for name, box in lab.boxes.items()}, lab.table.value, lab.verdict.value)
    with pytest.raises(error) as raised:
        lab.update(**arguments)
    assert words in str(raised.value) and "\n" not in str(raised.value)
    assert ({name: list(box.value) for name, box in lab.boxes.items()}, lab.table.value, lab.verdict.value) == before


# -- Curve25519, H, keys ---------------------------------------------------------------------------------
def test_curve25519_with_the_demo_keys_gives_the_published_secret() -> None:
    steps = curve25519_steps()
    assert steps.agree and steps.client_secret == DEMO_SHARED_SECRET
    assert steps.encoded_k == bytes.fromhex("00000021") + b"\x00" + DEMO_SHARED_SECRET  # 0xdf: a 00 byte in front
    text = "\n".join(steps.lines())
    assert "the course's published value: True" in text and "a 00 byte was added" in text


def _demo_hash(k: bytes):
    steps = curve25519_steps()
    return exchange_hash(
        "curve25519-sha256", client_version="SSH-2.0-c", server_version="SSH-2.0-s", client_kexinit=b"\x14ci",
        server_kexinit=b"\x14si", host_key_blob=b"ks", client_public=steps.client_public,
        server_public=steps.server_public, shared_secret=k,
    )  # fmt: skip


def test_exchange_hash_view_shows_every_input_and_changes_with_them() -> None:
    steps = curve25519_steps()
    h = _demo_hash(steps.encoded_k)
    view = exchange_hash_view(h)
    assert [span.field for span in view.spans] == ["V_C", "V_S", "I_C", "I_S", "K_S", "Q_C", "Q_S", "K"]
    assert view.data == h.data and h.digest.hex() in view.title_html.value
    assert "V_C || V_S || I_C || I_S || K_S || Q_C || Q_S || K" in view.title_html.value
    view.select(7)
    assert "the shared secret" in view.detail.value
    other = exchange_hash_view(_demo_hash(bytes.fromhex("0000000101")))
    assert other.data != view.data and other.title_html.value != view.title_html.value


def test_key_derivation_explorer_follows_the_cipher_and_mac() -> None:
    explorer = ssh_bench.demo_key_derivation(cipher="aes256-ctr", mac="hmac-sha2-512-etm@openssh.com")
    keys = explorer.derived
    assert keys is not None and [len(v) for v in keys.by_letter().values()] == [16, 16, 32, 32, 64, 64]
    expected_e = derive("sha256", explorer.encoded_k, explorer.digest, explorer.session_id, "E", 64)
    assert keys.mac_client_to_server == expected_e and expected_e.hex() in explorer.output.value
    assert "K1 .. K2: Kn = SHA256(K || H || K1 .. Kn-1), 64 bytes cut to 64" in explorer.output.value
    keys = explorer.update(cipher="chacha20-poly1305@openssh.com")
    assert [len(v) for v in keys.by_letter().values()] == [0, 0, 64, 64, 0, 0]
    assert "the AEAD cipher's tag needs no MAC key" in explorer.output.value
    with pytest.raises(ValueError, match="cipher must be one of .*; not 'rc4'"):
        explorer.update(cipher="rc4")
    assert explorer.cipher_menu.value == "chacha20-poly1305@openssh.com"


def test_key_share_table_lists_each_row() -> None:
    from handshake_lib.peers.ssh_runs import KeyShareSize

    rows = [KeyShareSize("mlkem768x25519-sha256", "asyncssh", 1216, 1120, 1232, 1280, "string", 32, "SHA256(a || b)")]
    html = key_share_table_html(rows)
    assert "<td>mlkem768x25519-sha256</td><td>asyncssh</td><td>1216</td><td>1120</td>" in html
    assert "<td>string, 32 bytes: SHA256(a || b)</td>" in html


def test_benchmarks_move_the_widgets() -> None:
    assert set(ssh_bench.BENCHMARKS) == {
        "negotiation_lab.update(client_kex, server_ciphers)",
        "key_derivation_explorer.update(cipher, mac)",
    }
    lab = negotiation_lab()
    step = ssh_bench.bench_negotiation(lab)
    winners = {step().choices[0].winner for _ in range(8)}
    assert len(winners) > 3
    explorer = ssh_bench.demo_key_derivation()
    step = ssh_bench.bench_key_derivation(explorer)
    outputs = []
    for _ in range(6):
        step()
        outputs.append((explorer.cipher_menu.value, explorer.mac_menu.value, explorer.output.value))
    assert len(set(outputs)) == 6


# -- a live session, drawn ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def session():
    require("sshd", "OpenSSH's server (Debian package openssh-server)")
    from handshake_lib.peers.openssh import openssh_server
    from handshake_lib.peers.ssh_runs import live_session
    from handshake_lib.ssh.connection import Algorithms

    with openssh_server() as sshd:
        yield live_session(sshd, algorithms=Algorithms(kex=("curve25519-sha256",)))


def test_banners_are_both_identification_lines_annotated(session) -> None:
    views = banner_views(session.result.transcript).children
    assert len(views) == 2
    ours, theirs = views
    assert ours.data.startswith(b"SSH-2.0-") and ours.data.endswith(b"\r\n")
    assert theirs.data == session.result.server_identification.encode() + b"\r\n"
    assert theirs.data.startswith(b"SSH-2.0-OpenSSH_")
    fields = [span.field for span in theirs.spans]
    assert "identification.software" in fields and fields[-1] == "identification.end"


def test_sequence_has_each_flight_and_marks_the_encrypted_ones(session) -> None:
    arrows = session_arrows(session.result.transcript, session.result.timings)
    labels = [arrow.label for arrow in arrows]
    assert labels[0].startswith("SSH-2.0-") and arrows[0].sender == "client"
    assert any(label.startswith("KEXINIT") for label in labels)
    assert any(label.startswith("KEX_ECDH_REPLY (") for label in labels)  # in clear: before NEWKEYS
    assert any("{USERAUTH_FAILURE}" in label for label in labels)
    # Every packet once, and a round trip never drawn crossing itself.
    assert sum(label.count(" B)") for label in labels) == len(session.result.transcript)
    assert all(a.sent_at <= a.received_at for a in arrows)
    for ours, theirs in zip(arrows, arrows[1:], strict=False):
        if ours.sender == "client" and theirs.sender == "server":
            assert ours.received_at <= theirs.sent_at + 1e-9, (ours, theirs)
    figure = session_sequence(session.result)
    assert "curve25519-sha256" in figure.axes[0].get_title()


def test_state_table_highlights_the_path_the_session_took(session) -> None:
    figure = state_table_picture(session.result.transcript)
    faces = {patch.get_gid(): to_hex(patch.get_facecolor()) for patch in figure.axes[0].patches if patch.get_gid()}
    for state in ("IDLE", "WAIT_KEXINIT", "WAIT_KEX_ECDH_REPLY", "WAIT_NEWKEYS", "ENCRYPTED"):
        assert faces[f"state:{state}"] == HIGHLIGHT_FACE, state
    assert faces["state:KEXINIT_SENT"] != HIGHLIGHT_FACE  # no re-key in this session
    plain = {p.get_gid(): to_hex(p.get_facecolor()) for p in state_table_picture().axes[0].patches if p.get_gid()}
    assert plain["state:ENCRYPTED"] != HIGHLIGHT_FACE
