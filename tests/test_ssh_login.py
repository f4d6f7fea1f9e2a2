"""User authentication for real (RFC 4252, 4256): our client logs in to sshd, asyncssh and paramiko; their
clients log in to our server; each side's verdicts are the peer's own (sshd's log, the peer's records).

Each peer server starts once per module; the keys are made once.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator

import pytest

from handshake_lib.errors import (
    AuthenticationFailed,
    PasswordChangeRequired,
    ProtocolError,
    TooManyAuthenticationAttempts,
)
from handshake_lib.net.ssh import SSHProbeServer, ssh_connect
from handshake_lib.ssh.authentication import (
    ClientAuth,
    KeyboardInteractiveRound,
    ServerAuthenticator,
    ServerAuthPolicy,
    Verdict,
)
from handshake_lib.ssh.authorized_keys import AuthorizedKeys
from handshake_lib.ssh.hostkeys import HostKeyPair
from handshake_lib.ssh.known_hosts import KnownHosts
from handshake_lib.ssh.messages import (
    Prompt,
    UserauthFailure,
    UserauthInfoRequest,
    UserauthInfoResponse,
    UserauthPkOk,
    UserauthRequest,
    decode_message,
)
from handshake_lib.ssh.stages import LIBRARY_STAGES
from handshake_lib.ssh.userauth import PasswordFields, PublickeyFields, request_fields
from tests.conftest import require, require_module

KEYS = {
    "ssh-ed25519": HostKeyPair.generate("ssh-ed25519", comment="ed"),
    "ecdsa-sha2-nistp256": HostKeyPair.generate("ecdsa-sha2-nistp256", comment="ec"),
    "ssh-rsa": HostKeyPair.generate("ssh-rsa", rsa_bits=2048, comment="rsa"),
}
STRANGER = HostKeyPair.generate("ssh-ed25519", comment="not authorized anywhere")
SECOND = HostKeyPair.generate("ssh-ed25519", comment="the second factor key")
HOST_KEY = HostKeyPair.generate("ssh-ed25519")
ROUNDS = [[("Password: ", "s3cret")], [("One-time code: ", "123456")]]


def _requests(transcript: list, direction: str = "client->server") -> list[UserauthRequest]:
    return [e.message for e in transcript if isinstance(e.message, UserauthRequest) and e.direction == direction]


# -- our client against OpenSSH's sshd --------------------------------------------------------------------
@pytest.fixture(scope="module")
def sshd() -> Iterator[object]:
    require("sshd")
    from handshake_lib.peers.openssh import openssh_server

    lines = [key.public_line() for key in KEYS.values()]
    with openssh_server(authorized_keys=lines, extra_options={"AuthenticationMethods": "publickey"}) as server:
        yield server


@pytest.mark.parametrize("key_type", sorted(KEYS))
def test_our_client_logs_in_to_sshd_with_each_key_type_after_a_refused_key(sshd: object, key_type: str) -> None:
    key = KEYS[key_type]
    auth = ClientAuth(identities=(STRANGER, key))
    with ssh_connect(
        sshd.host, sshd.port, user=sshd.user, auth=auth, known_hosts=KnownHosts.parse(sshd.known_hosts)
    ) as session:
        assert session.client.authenticated and session.methods == ("publickey",)
        transcript = session.login.transcript
    names = [entry.name for entry in transcript if entry.direction == "server->client"]
    assert names[-3:] == ["SSH_MSG_USERAUTH_FAILURE", "SSH_MSG_USERAUTH_PK_OK", "SSH_MSG_USERAUTH_SUCCESS"]
    queries = [request_fields(r) for r in _requests(transcript) if r.method == "publickey"]
    # the stranger's query refused, then our key's query, then the same key signed
    assert [(f.has_signature, f.public_key) for f in queries] == [
        (False, STRANGER.host_key.encode()),
        (False, key.host_key.encode()),
        (True, key.host_key.encode()),
    ]
    if key_type == "ssh-rsa":
        assert queries[-1].algorithm == "rsa-sha2-512"  # sshd's server-sig-algs lists it first among ours
    fingerprint = key.host_key.fingerprint()
    assert re.search(
        rf"Accepted publickey for {sshd.user} from 127\.0\.0\.1 port \d+ ssh2: \w+ {re.escape(fingerprint)}", sshd.log
    )
    assert f"Failed publickey for {sshd.user}" in sshd.log


def test_no_authorized_key_is_permission_denied_as_sshd_says(sshd: object) -> None:
    auth = ClientAuth(identities=(STRANGER,), password="anything")
    with pytest.raises(AuthenticationFailed) as raised:
        ssh_connect(sshd.host, sshd.port, user=sshd.user, auth=auth, known_hosts=KnownHosts.parse(sshd.known_hosts))
    assert raised.value.methods == ("publickey",)  # the password was never tried: sshd does not offer it
    assert str(raised.value) == f"{sshd.user}: permission denied (publickey)"
    assert raised.value.exchange is not None
    sent = [e.message for e in raised.value.exchange.transcript if e.direction == "client->server"]
    assert sent[-1].name == "SSH_MSG_DISCONNECT" and sent[-1].reason == 14  # NO_MORE_AUTH_METHODS_AVAILABLE


def test_a_learner_signed_data_stage_decides_whether_sshd_lets_us_in(sshd: object) -> None:
    from handshake_lib.ssh.client import SSHClient
    from handshake_lib.ssh.userauth import publickey_signed_data

    known = KnownHosts.parse(sshd.known_hosts)
    key = KEYS["ssh-ed25519"]

    def learner_right(session_id: bytes, user: str, service: str, algorithm: str, blob: bytes) -> bytes:
        return publickey_signed_data(session_id, user, service, algorithm, blob)

    def learner_wrong(session_id: bytes, user: str, service: str, algorithm: str, blob: bytes) -> bytes:
        return publickey_signed_data(b"", user, service, algorithm, blob)  # forgot the session identifier

    for learner, admitted in ((learner_right, True), (learner_wrong, False)):
        stages = LIBRARY_STAGES.replace(userauth_signed_data=learner)
        client = SSHClient(
            sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(identities=(key,)), known_hosts=known, stages=stages
        )
        if admitted:
            with ssh_connect(sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(), client=client) as session:
                assert session.client.authenticated
        else:
            with pytest.raises(AuthenticationFailed):
                ssh_connect(sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(), client=client)
    assert re.search(
        r"Failed publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: ED25519 " + re.escape(key.host_key.fingerprint()),
        sshd.log,
    )


def test_sshd_two_keys_required_is_a_partial_success_then_success() -> None:
    require("sshd")
    from handshake_lib.peers.openssh import openssh_server

    lines = [KEYS["ssh-ed25519"].public_line(), SECOND.public_line(), KEYS["ecdsa-sha2-nistp256"].public_line()]
    options = {"AuthenticationMethods": "publickey,publickey", "PubkeyAcceptedAlgorithms": "ssh-ed25519"}
    with openssh_server(authorized_keys=lines, extra_options=options) as server:
        auth = ClientAuth(identities=(KEYS["ssh-ed25519"], KEYS["ecdsa-sha2-nistp256"], SECOND))
        known = KnownHosts.parse(server.known_hosts)
        with ssh_connect(server.host, server.port, user=server.user, auth=auth, known_hosts=known) as session:
            assert session.methods == ("publickey", "publickey")
            failures = [e.message for e in session.login.transcript if isinstance(e.message, UserauthFailure)]
            # none; the first key: partial success; the ECDSA key refused (sshd accepts Ed25519 only, though
            # its server-sig-algs still lists every algorithm it knows); then the second Ed25519 key: success
            assert [f.partial_success for f in failures] == [False, True, False]
        log = server.log
        assert re.search(
            r"Partial publickey for \S+ from 127\.0\.0\.1 .*" + re.escape(KEYS["ssh-ed25519"].host_key.fingerprint()),
            log,
        )
        assert re.search(
            r"Accepted publickey for \S+ from 127\.0\.0\.1 .*" + re.escape(SECOND.host_key.fingerprint()), log
        )


def test_the_signature_algorithm_follows_server_sig_algs() -> None:
    from handshake_lib.ssh.authentication import signature_algorithm

    rsa = KEYS["ssh-rsa"]
    assert signature_algorithm(rsa, None) == "rsa-sha2-512"
    assert signature_algorithm(rsa, ("ssh-ed25519", "rsa-sha2-256")) == "rsa-sha2-256"
    assert signature_algorithm(rsa, ("ssh-rsa",)) is None  # SHA-1 only: we do not sign
    assert signature_algorithm(KEYS["ecdsa-sha2-nistp256"], ("ssh-ed25519",)) is None


# -- our client against asyncssh's and paramiko's servers -------------------------------------------------
@pytest.fixture(scope="module")
def asyncssh_peer() -> Iterator[object]:
    require_module("asyncssh")
    from handshake_lib.peers.asyncssh_peers import asyncssh_server

    with asyncssh_server(
        passwords={"alice": "s3cret", "old": "s3cret"},
        authorized_keys={"alice": [KEYS["ecdsa-sha2-nistp256"].public_line()]},
        keyboard_interactive={"bob": ROUNDS},
        expired_passwords=("old",),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def paramiko_peer() -> Iterator[object]:
    require_module("paramiko")
    from handshake_lib.peers.paramiko_peers import paramiko_server

    with paramiko_server(
        passwords={"alice": "s3cret"},
        authorized_keys={"alice": [KEYS["ssh-rsa"].public_line()]},
        keyboard_interactive={"bob": ROUNDS},
    ) as server:
        yield server


def _answers(request: UserauthInfoRequest) -> list[str]:
    table = {prompt: answer for rounds in ROUNDS for prompt, answer in rounds}
    return [table[p.text] for p in request.prompts]


CASES = {
    "publickey": ("alice", ClientAuth(identities=(STRANGER, KEYS["ecdsa-sha2-nistp256"], KEYS["ssh-rsa"]))),
    "password": ("alice", ClientAuth(password="s3cret")),
    "keyboard-interactive": ("bob", ClientAuth(answer=_answers)),
}


@pytest.mark.parametrize("peer", ["asyncssh", "paramiko"])
@pytest.mark.parametrize("method", sorted(CASES))
def test_our_client_logs_in_to_asyncssh_and_paramiko(peer: str, method: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(f"{peer}_peer")
    user, auth = CASES[method]
    with ssh_connect(
        server.host, server.port, user=user, auth=auth, known_hosts=KnownHosts.parse(server.known_hosts)
    ) as session:
        assert session.methods == (method,)
        if method == "keyboard-interactive":
            rounds = [e.message for e in session.login.transcript if isinstance(e.message, UserauthInfoRequest)]
            assert [[p.text for p in r.prompts] for r in rounds] == [["Password: "], ["One-time code: "]]
    record = server.connections[-1]
    deadline = time.monotonic() + 5
    while not record.authenticated and time.monotonic() < deadline:
        time.sleep(0.01)
    assert record.authenticated and record.username == user
    if peer == "paramiko":  # paramiko asks its check_auth_publickey for the query and for the signed request
        assert set(record.methods) == {method}


@pytest.mark.parametrize("peer", ["asyncssh", "paramiko"])
def test_wrong_password_and_wrong_code_are_refused_by_the_peer(peer: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(f"{peer}_peer")
    known = KnownHosts.parse(server.known_hosts)
    with pytest.raises(AuthenticationFailed) as raised:
        ssh_connect(server.host, server.port, user="alice", auth=ClientAuth(password="wrong"), known_hosts=known)
    assert "password" in raised.value.methods
    wrong_code = ClientAuth(answer=lambda r: ["s3cret" if "Password" in r.prompts[0].text else "000000"])
    with pytest.raises(AuthenticationFailed):
        ssh_connect(server.host, server.port, user="bob", auth=wrong_code, known_hosts=known)


def test_an_expired_password_is_a_clear_error(asyncssh_peer: object) -> None:
    known = KnownHosts.parse(asyncssh_peer.known_hosts)
    with pytest.raises(PasswordChangeRequired, match="expired.*does not change passwords"):
        ssh_connect(
            asyncssh_peer.host, asyncssh_peer.port, user="old", auth=ClientAuth(password="s3cret"), known_hosts=known
        )


# -- their clients against our server ---------------------------------------------------------------------
def _otp_policy(**overrides: object) -> ServerAuthPolicy:
    settings: dict = dict(
        authorized_keys=AuthorizedKeys.parse("\n".join(k.public_line() for k in KEYS.values())),
        passwords={"alice": "s3cret"},
        keyboard_interactive=(
            KeyboardInteractiveRound((Prompt("Password: "),), lambda user, a: a == ("s3cret",)),
            KeyboardInteractiveRound((Prompt("One-time code: ", echo=True),), lambda user, a: a == ("123456",)),
        ),
        banner="Handshakes test server\n",
    )
    settings.update(overrides)
    return ServerAuthPolicy(**settings)


@pytest.fixture(scope="module")
def our_server() -> Iterator[SSHProbeServer]:
    with SSHProbeServer([HOST_KEY], auth=_otp_policy()) as server:
        yield server


def _known_hosts_text(server: SSHProbeServer) -> str:
    return f"[{server.host}]:{server.port} {HOST_KEY.public_line()}\n"


def _served(server: SSHProbeServer, before: int) -> object:
    deadline = time.monotonic() + 5
    while len(server.connections) <= before and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.connections[before]


def test_paramiko_client_logs_in_to_our_server_by_key_and_password(our_server: SSHProbeServer) -> None:
    require_module("paramiko")
    import paramiko

    from handshake_lib.peers.paramiko_peers import paramiko_client

    key = paramiko.Ed25519Key.from_private_key(__import__("io").StringIO(KEYS["ssh-ed25519"].private_bytes().decode()))
    before = len(our_server.connections)
    run = paramiko_client(
        our_server.host, our_server.port, user="carol", known_hosts=_known_hosts_text(our_server), key=key
    )
    assert run.error is None and run.authenticated
    served = _served(our_server, before)
    deadline = time.monotonic() + 5
    while served.user is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert served.user is not None and served.user.user == "carol" and served.user.methods == ("publickey",)
    assert served.user.key is not None and served.user.key.comment == "ed"
    run = paramiko_client(
        our_server.host, our_server.port, user="alice", known_hosts=_known_hosts_text(our_server), password="s3cret"
    )
    assert run.authenticated
    run = paramiko_client(
        our_server.host, our_server.port, user="alice", known_hosts=_known_hosts_text(our_server), password="nope"
    )
    assert not run.authenticated


def test_paramiko_keyboard_interactive_two_rounds_against_our_server(our_server: SSHProbeServer) -> None:
    require_module("paramiko")
    import paramiko

    for code, admitted in (("123456", True), ("999999", False)):
        asked: list[list[tuple[str, bool]]] = []

        def handler(
            title: str, instructions: str, prompts: list[tuple[str, bool]], code: str = code, asked: list = asked
        ) -> list[str]:
            asked.append(list(prompts))
            return ["s3cret" if "Password" in prompts[0][0] else code]

        with socket.create_connection((our_server.host, our_server.port), timeout=5) as sock:
            transport = paramiko.Transport(sock)
            try:
                transport.start_client(timeout=5)
                with contextlib.suppress(paramiko.AuthenticationException):
                    transport.auth_interactive("dave", handler)
                assert transport.is_authenticated() is admitted
                assert asked == [[("Password: ", False)], [("One-time code: ", True)]]
            finally:
                transport.close()


def test_asyncssh_client_logs_in_to_our_server_by_key_and_password(our_server: SSHProbeServer) -> None:
    require_module("asyncssh")
    import asyncssh

    from handshake_lib.peers.asyncssh_peers import asyncssh_client

    key = asyncssh.import_private_key(KEYS["ecdsa-sha2-nistp256"].private_bytes())
    run = asyncssh_client(
        our_server.host, our_server.port, user="erin", known_hosts=_known_hosts_text(our_server), client_keys=[key]
    )
    assert run.authenticated, run.error
    run = asyncssh_client(
        our_server.host, our_server.port, user="alice", known_hosts=_known_hosts_text(our_server), password="s3cret"
    )
    assert run.authenticated, run.error
    run = asyncssh_client(
        our_server.host, our_server.port, user="alice", known_hosts=_known_hosts_text(our_server), password="nope"
    )
    assert not run.authenticated


def test_our_server_sends_the_banner_and_judges_a_signed_request_itself(our_server: SSHProbeServer) -> None:
    result_methods = []
    with ssh_connect(
        our_server.host,
        our_server.port,
        user="frank",
        auth=ClientAuth(identities=(KEYS["ssh-rsa"],)),
        known_hosts=KnownHosts.parse(_known_hosts_text(our_server)),
    ) as session:
        assert session.login.banner == "Handshakes test server\n"
        result_methods.append(session.methods)
    assert result_methods == [("publickey",)]


# -- the policy's verdicts, sans-I/O ------------------------------------------------------------------------
SESSION_ID = bytes(range(32))


def _signed(key: HostKeyPair, user: str = "u", session_id: bytes = SESSION_ID) -> UserauthRequest:
    from handshake_lib.ssh.userauth import publickey_signed_data

    algorithm = key.signature_algorithms[0]
    blob = key.host_key.encode()
    signature = key.sign(publickey_signed_data(session_id, user, "ssh-connection", algorithm, blob), algorithm)
    return UserauthRequest(
        user, "ssh-connection", "publickey", PublickeyFields(True, algorithm, blob, signature).encode()
    )


def _password(password: str, user: str = "alice") -> UserauthRequest:
    return UserauthRequest(user, "ssh-connection", "password", PasswordFields(False, password).encode())


def test_max_failures_ends_in_a_disconnect_and_none_does_not_count() -> None:
    judge = ServerAuthenticator(_otp_policy(max_failures=3))
    for _ in range(10):
        assert (
            judge.on_request(UserauthRequest("alice", "ssh-connection", "none"), SESSION_ID).verdict is Verdict.FAILURE
        )
    for _ in range(3):
        assert judge.on_request(_password("wrong"), SESSION_ID).verdict is Verdict.FAILURE
    with pytest.raises(TooManyAuthenticationAttempts):
        judge.on_request(_password("wrong"), SESSION_ID)


def test_partial_success_chain_and_a_change_of_user_midway() -> None:
    policy = _otp_policy(required=(("publickey", "keyboard-interactive"),))
    judge = ServerAuthenticator(policy)
    assert judge.on_request(UserauthRequest("u", "ssh-connection", "none"), SESSION_ID).methods == ("publickey",)
    assert judge.on_request(_password("s3cret", "u"), SESSION_ID).verdict is Verdict.FAILURE  # not in the chain yet
    outcome = judge.on_request(_signed(KEYS["ssh-ed25519"]), SESSION_ID)
    assert (outcome.verdict, outcome.methods) == (Verdict.PARTIAL, ("keyboard-interactive",))
    with pytest.raises(ProtocolError, match="change of user"):
        judge.on_request(_signed(KEYS["ssh-ed25519"], user="mallory"), SESSION_ID)


def test_keyboard_interactive_answers_must_match_the_prompts() -> None:
    judge = ServerAuthenticator(_otp_policy())
    outcome = judge.on_request(
        UserauthRequest("u", "ssh-connection", "keyboard-interactive", b"\0\0\0\0\0\0\0\0"), SESSION_ID
    )
    assert outcome.verdict is Verdict.INFO_REQUEST and outcome.info_request is not None
    with pytest.raises(ProtocolError, match="2 answers to 1 prompts"):
        judge.on_info_response(UserauthInfoResponse(("a", "b")))
    with pytest.raises(ProtocolError, match="without a question"):
        judge.on_info_response(UserauthInfoResponse(("a",)))


def test_signature_from_another_session_and_from_restricted_lines_are_refused() -> None:
    key = KEYS["ssh-ed25519"]
    judge = ServerAuthenticator(_otp_policy())
    assert judge.on_request(_signed(key, session_id=b"another session"), SESSION_ID).verdict is Verdict.FAILURE
    lines = f'from="10.0.0.0/8" {key.public_line()}\ncommand="echo hi",restrict {KEYS["ssh-rsa"].public_line()}'
    judge = ServerAuthenticator(
        ServerAuthPolicy(authorized_keys=AuthorizedKeys.parse(lines)), client_address="127.0.0.1"
    )
    query = UserauthRequest(
        "u", "ssh-connection", "publickey", PublickeyFields(False, "ssh-ed25519", key.host_key.encode()).encode()
    )
    assert judge.on_request(query, SESSION_ID).verdict is Verdict.FAILURE  # from= does not admit 127.0.0.1
    outcome = judge.on_request(_signed(KEYS["ssh-rsa"]), SESSION_ID)
    assert outcome.verdict is Verdict.SUCCESS and outcome.user is not None
    assert (outcome.user.forced_command, outcome.user.restricted) == ("echo hi", True)


def test_method_specific_messages_round_trip_and_60_needs_the_method() -> None:
    pk_ok = UserauthPkOk("ssh-ed25519", b"blob")
    assert decode_message(pk_ok.to_bytes(), auth_method="publickey") == pk_ok
    info = UserauthInfoRequest("t", "i", (Prompt("a"), Prompt("b", echo=True)))
    assert decode_message(info.to_bytes(), auth_method="keyboard-interactive") == info
    assert (
        decode_message(info.to_bytes()).name
        == "SSH_MSG_USERAUTH_PK_OK or SSH_MSG_USERAUTH_PASSWD_CHANGEREQ or SSH_MSG_USERAUTH_INFO_REQUEST"
    )
    response = decode_message(UserauthInfoResponse(("hunter2",)).to_bytes())
    assert "hunter2" not in repr(response) and all("hunter2" not in str(s.meaning) for s in response.spans)


# -- login grace ------------------------------------------------------------------------------------------
def test_a_client_that_never_logs_in_is_dropped_after_the_grace_time_and_the_server_goes_on() -> None:
    with SSHProbeServer([HOST_KEY], auth=_otp_policy(), login_grace=0.3) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as idle:
            idle.sendall(b"SSH-2.0-idle\r\n")
            idle.settimeout(5)
            received = b""
            started = time.monotonic()
            while chunk := idle.recv(65536):
                received += chunk
            waited = time.monotonic() - started
        assert received.startswith(b"SSH-2.0-") and waited < 4  # closed by the server, not by our timeout
        with ssh_connect(
            server.host,
            server.port,
            user="alice",
            auth=ClientAuth(password="s3cret"),
            known_hosts=KnownHosts.parse(_known_hosts_text(server)),
        ) as session:
            assert session.client.authenticated
        assert type(server.connections[0].error).__name__ == "ConnectionTimeout"


def test_a_learner_packet_mac_decides_whether_sshd_reads_our_packets(sshd: object) -> None:
    from handshake_lib.errors import BadPacketMac, PeerDisconnect, UnexpectedEOF
    from handshake_lib.ssh.client import SSHClient
    from handshake_lib.ssh.connection import Algorithms
    from handshake_lib.ssh.protection import packet_mac

    def right(hash_name: str, key: bytes, sequence_number: int, data: bytes) -> bytes:
        import hashlib
        import hmac

        return hmac.new(key, sequence_number.to_bytes(4, "big") + data, getattr(hashlib, hash_name)).digest()

    def wrong(hash_name: str, key: bytes, sequence_number: int, data: bytes) -> bytes:
        # MACs the packet without its length field.  (Forgetting the sequence number would pass sshd's check of
        # our first packet: strict kex restarts numbering at 0 after NEWKEYS; our check of sshd's second fails.)
        return packet_mac(hash_name, key, sequence_number, data[4:])

    algorithms = Algorithms(ciphers=("aes128-ctr",), macs=("hmac-sha2-256",))
    known = KnownHosts.parse(sshd.known_hosts)
    auth = ClientAuth(identities=(KEYS["ssh-ed25519"],))
    for learner, admitted in ((right, True), (wrong, False)):
        stages = LIBRARY_STAGES.replace(packet_mac=learner)
        client = SSHClient(
            sshd.host, sshd.port, user=sshd.user, auth=auth, known_hosts=known, algorithms=algorithms, stages=stages
        )
        if admitted:
            with ssh_connect(sshd.host, sshd.port, user=sshd.user, auth=auth, client=client) as session:
                assert session.client.negotiated.mac_client_to_server == "hmac-sha2-256"
        else:
            # sshd finds our first encrypted packet's MAC wrong and hangs up (or our check of its EXT_INFO fails first)
            with pytest.raises((BadPacketMac, PeerDisconnect, UnexpectedEOF)):
                ssh_connect(sshd.host, sshd.port, user=sshd.user, auth=auth, client=client)
    deadline = time.monotonic() + 5  # sshd writes its log line as it disconnects, a moment after we gave up
    while "Corrupted MAC on input" not in sshd.log and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "Corrupted MAC on input" in sshd.log
