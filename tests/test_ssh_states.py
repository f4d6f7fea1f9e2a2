"""The SSH transport and service tables (handshake_lib.ssh.states): what they accept, refuse and draw.

A live session with OpenSSH is replayed through the same tables by the connection's tests; here the
tables themselves: every state is reachable, out-of-order messages are refused before anything reads
them, the guarded rows (a wrong kex guess, EXT_INFO) apply only when their guard holds, and rekeying runs
from either side.
"""

from __future__ import annotations

import pytest

from handshake_lib.errors import UnexpectedMessage
from handshake_lib.ssh import states as s
from handshake_lib.ssh.states import Guard, Input, State

S = State
ID = "identification"
# A client's probe as OpenSSH's server answers it: numbers are RFC 4250's.
CLIENT_PROBE = [("sent", ID), ("received", ID), ("sent", 20), ("received", 20), ("sent", 30), ("received", 31),
                ("sent", 21), ("received", 21), ("sent", 5), ("received", 7), ("received", 6), ("sent", 50),
                ("received", 51)]  # fmt: skip


def test_a_client_probe_walks_both_tables_to_the_list_of_methods():
    states = s.replay("client", CLIENT_PROBE)
    assert states[0] == (S.WAIT_IDENTIFICATION, S.NO_SERVICE)
    assert states[3] == (S.WAIT_KEX_ECDH_REPLY, S.NO_SERVICE)
    assert states[5] == (S.WAIT_NEWKEYS, S.NO_SERVICE)
    assert states[7] == (S.ENCRYPTED, S.WAIT_SERVICE_ACCEPT)  # keys on: the service starts
    assert states[-1] == (S.ENCRYPTED, S.AUTH_METHODS_KNOWN)


def test_a_server_answers_the_probe():
    events = [("sent", ID), ("received", ID), ("sent", 20), ("received", 20), ("received", 30), ("sent", 31),
              ("sent", 21), ("sent", 7), ("received", 21), ("received", 5), ("sent", 6), ("received", 50),
              ("sent", 51), ("received", 50)]  # fmt: skip
    states = s.replay("server", events)
    assert states[4] == (S.WAIT_NEWKEYS, S.NO_SERVICE)
    assert states[8] == (S.ENCRYPTED, S.WAIT_SERVICE_REQUEST)
    assert states[-1] == (S.ENCRYPTED, S.WAIT_USERAUTH)


@pytest.mark.parametrize(
    "events",
    [
        CLIENT_PROBE[:5] + [("received", 21)],  # NEWKEYS before the server's reply
        CLIENT_PROBE[:3] + [("received", 31)],  # a reply before the server's KEXINIT
        CLIENT_PROBE[:5] + [("received", 6)],  # a service message before any NEWKEYS
        CLIENT_PROBE[:10] + [("received", 7)],  # EXT_INFO twice
        CLIENT_PROBE + [("received", 6)],  # SERVICE_ACCEPT again
        [("sent", ID), ("received", 20)],  # KEXINIT before the identification line
    ],
)
def test_out_of_order_messages_end_the_connection(events):
    assert s.replay("client", events)[-1] == (S.ERROR, S.ERROR)


def test_the_refusal_comes_from_the_table_with_the_state_named():
    with pytest.raises(UnexpectedMessage, match="NEWKEYS is not allowed in client transport state WAIT_KEX_ECDH_REPLY"):
        s.transition_for("client", "transport", S.WAIT_KEX_ECDH_REPLY, Input.newkeys)


def test_service_messages_wait_while_the_peer_is_rekeying():
    rekeying = CLIENT_PROBE + [("received", 20)]  # the server started a new key exchange
    assert s.replay("client", rekeying)[-1] == (S.WAIT_KEX_ECDH_REPLY, S.AUTH_METHODS_KNOWN)
    # Once the server sent KEXINIT it sends no service message until its NEWKEYS (RFC 4253 7.1).
    assert s.replay("client", rekeying + [("received", 53)])[-1] == (S.ERROR, S.ERROR)
    # But after our own KEXINIT, the server's messages sent before it saw ours still arrive.
    ours_first = CLIENT_PROBE[:-1] + [("sent", 20), ("received", 51)]
    assert s.replay("client", ours_first)[-1] == (S.KEXINIT_SENT, S.AUTH_METHODS_KNOWN)


@pytest.mark.parametrize("role", ["client", "server"])
def test_a_rekey_from_either_side_comes_back_to_encrypted(role):
    if role == "client":
        start = CLIENT_PROBE
        ours = [("sent", 20), ("received", 20), ("sent", 30), ("received", 31), ("sent", 21), ("received", 21)]
        theirs = [("received", 20), ("sent", 20), ("sent", 30), ("received", 31), ("sent", 21), ("received", 21)]
    else:
        start = [("sent", ID), ("received", ID), ("sent", 20), ("received", 20), ("received", 30), ("sent", 31),
                 ("sent", 21), ("received", 21)]  # fmt: skip
        ours = [("sent", 20), ("received", 20), ("received", 30), ("sent", 31), ("sent", 21), ("received", 21)]
        theirs = [("received", 20), ("sent", 20), ("received", 30), ("sent", 31), ("sent", 21), ("received", 21)]
    for rekey in (ours, theirs):
        states = s.replay(role, start + rekey)
        assert states[len(start)][0] in (S.KEXINIT_SENT, S.WAIT_KEX_ECDH_REPLY, S.WAIT_KEX_ECDH_INIT)
        assert states[-1][0] is S.ENCRYPTED


def test_a_wrong_guess_is_discarded_only_when_the_guard_says_so():
    plain = s.transition_for("server", "transport", S.WAIT_KEXINIT, Input.kexinit)
    guessed = s.transition_for("server", "transport", S.WAIT_KEXINIT, Input.kexinit, {Guard.wrong_guess_follows})
    assert plain.target is S.WAIT_KEX_ECDH_INIT and guessed.target is S.DISCARD_GUESS
    after = s.transition_for("server", "transport", S.DISCARD_GUESS, Input.kex_ecdh_init)
    assert after.target is S.WAIT_KEX_ECDH_INIT and after.send == ()  # nothing answers the wrong guess


def test_ext_info_follows_newkeys_only_when_the_client_asked():
    row = s.transition_for("server", "transport", S.WAIT_KEX_ECDH_INIT, Input.kex_ecdh_init)
    assert row.send == ("KEX_ECDH_REPLY", "NEWKEYS")
    refined = s.refine("server", "transport", row, {Guard.ext_info_wanted})
    assert refined.send == ("KEX_ECDH_REPLY", "NEWKEYS", "EXT_INFO")
    with pytest.raises(UnexpectedMessage, match="only when ext-info-c sent"):
        s.transition_for("client", "service", S.WAIT_SERVICE_ACCEPT, Input.ext_info)


def test_strict_kex_allows_only_the_exchange_itself():
    assert [n for n in range(256) if s.strict_kex_allows(n)] == [20, 21, 30, 31]
    assert frozenset({1, 2, 3, 4}) == s.GENERIC_MESSAGES


@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("machine", ["transport", "service"])
def test_every_state_of_a_table_is_reachable_from_its_start(role, machine):
    rows = [row for twins in (s.TRANSPORT_TABLES if machine == "transport" else s.SERVICE_TABLES)[role].values()
            for row in twins]
    seen, frontier = set(), [s.INITIAL_STATE[machine]]
    while frontier:
        state = frontier.pop()
        if state not in seen:
            seen.add(state)
            frontier += [row.target for row in rows if row.source is state]
    assert {row.source for row in rows} | {row.target for row in rows} <= seen


def test_inputs_map_from_message_numbers_and_to_one_machine():
    assert s.input_for(31) is Input.kex_ecdh_reply and s.input_for(2) is None and s.input_for(101) is None
    assert s.input_for(99) is Input.channel_success and s.machine_for(Input.channel_data) == "service"
    assert s.machine_for(Input.newkeys) == "transport" and s.machine_for(Input.ext_info) == "service"


def test_diagram_rows_label_the_flights():
    rows = s.diagram_rows("server")
    assert ("WAIT_KEX_ECDH_INIT", "KEX_ECDH_INIT / KEX_ECDH_REPLY, NEWKEYS\n"
            "KEX_ECDH_INIT [ext-info-c offered, first kex] / KEX_ECDH_REPLY, NEWKEYS, EXT_INFO", "WAIT_NEWKEYS") in rows
    assert all(source != target for source, _, target in rows)
    assert any(source == target for source, _, target in s.diagram_rows("client", "service", complete=True))
    with pytest.raises(ValueError):
        s.diagram_rows("router")


# -- user authentication ---------------------------------------------------------------------------------------
LOGIN = CLIENT_PROBE + [("sent", 50), ("received", "SSH_MSG_USERAUTH_PK_OK"), ("sent", 50), ("received", 52)]


def test_a_client_login_by_key_walks_query_pk_ok_signature_success():
    states = s.replay("client", LOGIN)
    assert states[len(CLIENT_PROBE) - 1] == (S.ENCRYPTED, S.WAIT_USERAUTH)  # the failure was followed by a request
    assert states[-1] == (S.ENCRYPTED, S.AUTHENTICATED)
    # without a next request the failure is the end: a PK_OK then has no row
    assert s.replay("client", CLIENT_PROBE + [("received", 60)])[-1] == (S.ERROR, S.ERROR)


def test_a_server_keyboard_interactive_login_in_two_rounds():
    head = [("sent", ID), ("received", ID), ("sent", 20), ("received", 20), ("received", 30), ("sent", 31),
            ("sent", 21), ("received", 21), ("received", 5), ("sent", 6), ("sent", 53)]  # fmt: skip
    rounds = [("received", 50), ("sent", "SSH_MSG_USERAUTH_INFO_REQUEST"), ("received", 61),
              ("sent", "SSH_MSG_USERAUTH_INFO_REQUEST"), ("received", 61), ("sent", 52)]  # fmt: skip
    states = s.replay("server", head + rounds)
    assert [service for _, service in states[-6:]] == [
        S.WAIT_INFO_RESPONSE, S.WAIT_INFO_RESPONSE, S.WAIT_INFO_RESPONSE, S.WAIT_INFO_RESPONSE, S.AUTHENTICATED,
        S.AUTHENTICATED,
    ]  # fmt: skip
    # an answer nobody asked for
    assert s.replay("server", head + [("received", 50), ("sent", 51), ("received", 61)])[-1] == (S.ERROR, S.ERROR)


def test_message_60_is_named_by_the_method():
    assert s.input_for(60, "SSH_MSG_USERAUTH_INFO_REQUEST") is Input.userauth_info_request
    assert s.input_for(60, "SSH_MSG_USERAUTH_PASSWD_CHANGEREQ") is Input.userauth_passwd_changereq
    assert s.input_for(60) is Input.userauth_pk_ok
    assert s.transition_for("server", "service", S.AUTHENTICATED, Input.userauth_request).target is S.AUTHENTICATED
