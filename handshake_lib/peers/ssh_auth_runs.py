"""The live runs of lesson 14 (SSH user authentication) and of exercise 14's last step.

Our client (:func:`~handshake_lib.net.ssh.ssh_connect`, :func:`~handshake_lib.net.ssh.ssh_probe`) logs in
to a real Debian ``sshd`` (:func:`~handshake_lib.peers.openssh.openssh_server`, ``LogLevel DEBUG3``), and
every verdict shown is sshd's own: its USERAUTH replies in our transcript and the lines it logged for the
connection ("Accepted publickey", "Failed publickey", "Partial publickey", "not from a permitted host").
Where sshd cannot play (keyboard-interactive with a one-time code needs PAM and root's passwords), our
own :class:`~handshake_lib.net.ssh.SSHProbeServer` does, and its recorded verdicts are shown instead;
tests check that server against asyncssh's and paramiko's clients (tests/test_ssh_login.py).

* :func:`lesson_auth_sshd`: one sshd for a notebook (:class:`~handshake_lib.peers.BackgroundPeer`) that
  knows the lesson's two user keys (:func:`lesson_keys`); :func:`probe_methods` asks it which methods it
  offers (the ``none`` request); :func:`login_with_key` logs in with a key and keeps the query, PK_OK,
  the signed request and the RFC 4252 section 7 blob; :func:`replay_signature` sends that signature again
  on a new connection (sshd refuses it: another session identifier).
* :class:`OneTimeCodes` (RFC 6238 TOTP through ``cryptography``) and :func:`lesson_otp_server`: our server
  requiring a key, then keyboard-interactive rounds (a password, then a 6-digit code); :func:`otp_login`
  logs in with what a learner typed and returns the server's verdict on each request.
* :func:`run_partial_success`: sshd with ``AuthenticationMethods publickey,publickey``: the first key is a
  FAILURE with partial success TRUE, the second a SUCCESS.
* :func:`compare_authorized_keys`: option lines (``from=``, ``command=``, ``restrict``...) each with a
  fresh key, given to sshd and to our server; each key tried against both from 127.0.0.1.
* :func:`run_learner_signed_data` (exercise 14): the learner's ``signed_data`` as the client's
  ``userauth_signed_data`` stage in a live login to sshd; :func:`signed_data_difference` names the first
  field where a blob differs from the library's.

Limits: loopback only; every connection bounded by ``timeout`` (5 s by default); sshd's log is read from
an offset taken before each run and waited on (at most ``timeout``) for the line that ends the attempt.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from ..errors import AuthenticationFailed, DecodeError, HandshakeError
from ..net import DEFAULT_TIMEOUT
from ..net.ssh import ProbeResult, SSHProbeServer, ssh_connect, ssh_probe
from ..ssh.authentication import ClientAuth, KeyboardInteractiveRound, ServerAuthPolicy, Verdict
from ..ssh.authorized_keys import AuthorizedKey, AuthorizedKeys, parse_line
from ..ssh.client import SSHClient
from ..ssh.connection import Algorithms, TranscriptEntry
from ..ssh.hostkeys import HostKeyPair
from ..ssh.known_hosts import KnownHosts
from ..ssh.messages import Prompt, UserauthFailure, UserauthInfoResponse, UserauthPkOk, UserauthRequest
from ..ssh.stages import LIBRARY_STAGES, SSHStages
from ..ssh.userauth import (
    PublickeyFields,
    decode_publickey_signed_data,
    publickey_signed_data,
    request_fields,
)
from . import BackgroundPeer
from .openssh import OpenSSHServer, openssh_server

__all__ = [
    "DEFAULT_OPTION_LINES",
    "LessonKeys",
    "LearnerLoginRun",
    "MethodsProbe",
    "OTPLogin",
    "OTPServerPeer",
    "OneTimeCodes",
    "OptionVerdict",
    "PartialSuccessRun",
    "PublickeyLogin",
    "ReplayRun",
    "compare_authorized_keys",
    "lesson_auth_sshd",
    "lesson_keys",
    "lesson_otp_server",
    "login_with_key",
    "otp_login",
    "otp_policy",
    "probe_methods",
    "replay_signature",
    "run_learner_signed_data",
    "run_partial_success",
    "signed_data_difference",
    "sshd_auth_lines",
]

# Curve25519 and one host key: a live login costs a few ms of key exchange, and the widgets stay quick.
ALGORITHMS = Algorithms(kex=("curve25519-sha256",), host_key=("ssh-ed25519",))
# sshd's log lines about user authentication (LogLevel DEBUG3 writes a hundred others per connection).
_AUTH_LINE = re.compile(
    r"userauth-request for|attempt \d+ failures|userauth_finish|publickey test pkalg|Accepted |Failed |Partial |"
    r"Postponed |"
    r"not from a permitted host|key options:|bad key options|Received disconnect"
)
# The line a connection ends with in sshd's log (after a login, the audit event of a pipe we closed first).
_ENDS = re.compile(r"Received disconnect from|Connection closed by|Disconnected from|audit_event: unhandled event 12")


@dataclass(frozen=True)
class LessonKeys:
    """The lesson's user keys: two that sshd knows, one it does not (all Ed25519, made once per process)."""

    learner: HostKeyPair
    second: HostKeyPair
    stranger: HostKeyPair

    @property
    def authorized_lines(self) -> list[str]:
        return [self.learner.public_line(), self.second.public_line()]


@functools.cache
def lesson_keys() -> LessonKeys:
    return LessonKeys(
        HostKeyPair.generate("ssh-ed25519", comment="learner@laptop"),
        HostKeyPair.generate("ssh-ed25519", comment="learner@phone"),
        HostKeyPair.generate("ssh-ed25519", comment="someone else"),
    )


def lesson_auth_sshd(keys: LessonKeys | None = None) -> BackgroundPeer[OpenSSHServer]:
    """One sshd for a notebook, knowing ``keys``' two authorized keys; stopped with the kernel (or ``.stop()``)."""
    keys = keys or lesson_keys()
    return BackgroundPeer(lambda: openssh_server(host_key_types=("ed25519",), authorized_keys=keys.authorized_lines))


def sshd_auth_lines(log: str) -> list[str]:
    """The lines of an sshd log about user authentication, without the ``debugN:`` and ``[preauth]`` noise."""
    lines: list[str] = []
    for line in log.splitlines():
        if _AUTH_LINE.search(line) and "sending debug message" not in line:
            line = re.sub(r"^debug\d: ", "", line).replace(" [preauth]", "")
            line = re.sub(r"/tmp/handshakes-sshd-[^/]+/", "", line)
            if line not in lines[-2:]:  # sshd logs some lines twice (debug1 and debug3)
                lines.append(line)
    return lines


def _log_since(sshd: OpenSSHServer, offset: int, wait_for: re.Pattern[str] | None, timeout: float) -> str:
    """sshd's log after ``offset``; waits (bounded) for ``wait_for``: its child may write after we hear back."""
    deadline = time.monotonic() + timeout
    while True:
        text = sshd.log[offset:]
        if wait_for is None or wait_for.search(text) or time.monotonic() >= deadline:
            return text
        time.sleep(0.005)


def _known(sshd: OpenSSHServer) -> KnownHosts:
    return KnownHosts.parse(sshd.known_hosts)


# -- (a) the methods a server offers ---------------------------------------------------------------------
@dataclass(frozen=True)
class MethodsProbe:
    """Our client's ``none`` request and sshd's answer, with what sshd logged about it."""

    result: ProbeResult
    sshd_says: tuple[str, ...]

    @property
    def none_request(self) -> TranscriptEntry:
        return next(e for e in self.result.transcript if isinstance(e.message, UserauthRequest))

    @property
    def failure(self) -> TranscriptEntry:
        return next(e for e in self.result.transcript if isinstance(e.message, UserauthFailure))


def probe_methods(sshd: OpenSSHServer, *, timeout: float = DEFAULT_TIMEOUT) -> MethodsProbe:
    """Ask ``sshd`` which methods it offers: the ``none`` request, then goodbye."""
    offset = len(sshd.log)
    client = SSHClient(sshd.host, sshd.port, user=sshd.user, known_hosts=_known(sshd), algorithms=ALGORITHMS)
    result = ssh_probe(sshd.host, sshd.port, client=client, timeout=timeout)
    log = _log_since(sshd, offset, _ENDS, timeout)
    return MethodsProbe(result, tuple(sshd_auth_lines(log)))


# -- (b) a publickey login, taken apart -----------------------------------------------------------------
@dataclass
class PublickeyLogin:
    """One login with a key: the messages that carried it, the blob the signature covers, sshd's verdict."""

    user: str
    key: HostKeyPair
    accepted: bool
    transcript: list[TranscriptEntry] = field(repr=False)
    session_id: bytes = b""
    sshd_says: tuple[str, ...] = ()
    error: str = ""  # why we were refused (AuthenticationFailed's words), or another failure

    def _entries(self, kind: type) -> list[TranscriptEntry]:
        return [e for e in self.transcript if isinstance(e.message, kind)]

    @property
    def query(self) -> TranscriptEntry | None:
        """The unsigned publickey request: "would you accept this key?"."""
        return next((e for e in self._publickey_requests() if not e[1].has_signature), (None,))[0]

    @property
    def pk_ok(self) -> TranscriptEntry | None:
        return next(iter(self._entries(UserauthPkOk)), None)

    @property
    def signed_request(self) -> TranscriptEntry | None:
        return next((e for e in self._publickey_requests() if e[1].has_signature), (None,))[0]

    @property
    def signature(self) -> bytes | None:
        signed = next((f for _, f in self._publickey_requests() if f.has_signature), None)
        return signed.signature if signed is not None else None

    @property
    def signed_data(self) -> bytes:
        """The RFC 4252 section 7 blob for this login, rebuilt by the library from the session id and request."""
        entry = self.signed_request or self.query
        if entry is None:
            return b""
        request = entry.message
        fields = request_fields(request)
        assert isinstance(fields, PublickeyFields)
        return publickey_signed_data(
            self.session_id, request.user, request.service, fields.algorithm, fields.public_key
        )

    def _publickey_requests(self) -> list[tuple[TranscriptEntry, PublickeyFields]]:
        pairs = []
        for entry in self._entries(UserauthRequest):
            if entry.message.method == "publickey" and entry.direction == "client->server":
                fields = request_fields(entry.message)
                assert isinstance(fields, PublickeyFields)
                pairs.append((entry, fields))
        return pairs


def _login(sshd: OpenSSHServer, key: HostKeyPair, stages: SSHStages, timeout: float) -> PublickeyLogin:
    offset = len(sshd.log)
    client = SSHClient(
        sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(identities=(key,)), known_hosts=_known(sshd),
        algorithms=ALGORITHMS, stages=stages,
    )  # fmt: skip
    try:
        with ssh_connect(sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(), client=client, timeout=timeout):
            accepted, error = True, ""
    except AuthenticationFailed as refused:
        accepted, error = False, str(refused)
    except (HandshakeError, OSError) as failed:
        accepted, error = False, f"{type(failed).__name__}: {failed}"
    log = _log_since(sshd, offset, _ENDS, timeout)
    return PublickeyLogin(
        sshd.user, key, accepted, client.transcript, client.session_id or b"", tuple(sshd_auth_lines(log)), error
    )


def login_with_key(
    sshd: OpenSSHServer, key: HostKeyPair | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> PublickeyLogin:
    """Log in to ``sshd`` with ``key`` (the lesson's learner key by default): query, PK_OK, signed request."""
    return _login(sshd, key or lesson_keys().learner, LIBRARY_STAGES, timeout)


@dataclass(frozen=True)
class _ReplayingKey(HostKeyPair):
    """A key pair that "signs" by sending a signature captured earlier: what an attacker who recorded one has."""

    captured: bytes = field(default=b"", repr=False)

    def sign(self, data: bytes, algorithm: str | None = None) -> bytes:
        return self.captured


@dataclass(frozen=True)
class ReplayRun:
    """A signature from one login sent again on a new connection: sshd's verdict, and our check on both ids."""

    first: PublickeyLogin
    replayed: PublickeyLogin
    valid_for_first: bool  # the signature over the first connection's blob (True: it was genuine)
    valid_for_second: bool  # over the second connection's blob (False: another session identifier)


def replay_signature(sshd: OpenSSHServer, first: PublickeyLogin, *, timeout: float = DEFAULT_TIMEOUT) -> ReplayRun:
    """Send ``first``'s signature, unchanged, in a new login to ``sshd`` (same user, key and algorithm)."""
    if first.signature is None or first.signed_request is None:
        raise ValueError("that login sent no signed request: nothing to replay")
    key = first.key
    replaying = _ReplayingKey(key.private_key, key.host_key, key.comment, first.signature)
    second = _login(sshd, replaying, LIBRARY_STAGES, timeout)
    algorithm = request_fields(first.signed_request.message).algorithm  # type: ignore[union-attr]

    def valid(login: PublickeyLogin) -> bool:
        request = first.signed_request.message  # type: ignore[union-attr]
        data = publickey_signed_data(login.session_id, request.user, request.service, algorithm, key.host_key.encode())
        try:
            key.host_key.verify(first.signature or b"", data, [algorithm])
        except HandshakeError:
            return False
        return True

    return ReplayRun(first, second, valid(first), valid(second))


# -- (c) keyboard-interactive with a one-time code -------------------------------------------------------
@dataclass(frozen=True)
class OneTimeCodes:
    """An authenticator app's 6-digit codes (RFC 6238 TOTP, HMAC-SHA1, 30 s steps) from a shared secret.

    The server accepts the current code and the one before it (a code typed just as it changed).
    """

    secret: bytes = field(repr=False)
    step: int = 30
    clock: Callable[[], float] = time.time

    def _totp(self) -> TOTP:
        return TOTP(self.secret, 6, SHA1(), self.step, enforce_key_length=False)

    def current(self) -> str:
        return self._totp().generate(self.clock()).decode()

    def check(self, code: str) -> bool:
        if not (isinstance(code, str) and len(code) == 6 and code.isdigit()):
            return False
        now = self.clock()
        for moment in (now, now - self.step):
            try:
                self._totp().verify(code.encode(), moment)
                return True
            except InvalidToken:
                continue
        return False


def otp_policy(keys: LessonKeys, password: str, codes: OneTimeCodes) -> ServerAuthPolicy:
    """A key, then keyboard-interactive: a password round, then a one-time code round (echoed, like an app's)."""
    return ServerAuthPolicy(
        authorized_keys=AuthorizedKeys.parse("\n".join(keys.authorized_lines)),
        keyboard_interactive=(
            KeyboardInteractiveRound((Prompt("Password: "),), lambda user, a: a == (password,), "Step 1 of 2"),
            KeyboardInteractiveRound(
                (Prompt("One-time code from your app: ", echo=True),), lambda user, a: codes.check(a[0]), "Step 2 of 2"
            ),
        ),
        required=(("publickey", "keyboard-interactive"),),
        banner="Handshakes lesson 14: a key, then your password, then a one-time code.\n",
    )


class OTPServerPeer(BackgroundPeer[SSHProbeServer]):
    """Our one-time-code server for a notebook, with what a learner needs to log in: the app's codes, the password."""

    def __init__(self, keys: LessonKeys, password: str, codes: OneTimeCodes) -> None:
        self.keys, self.password, self.codes = keys, password, codes
        self.host_key = HostKeyPair.generate("ssh-ed25519")
        policy = otp_policy(keys, password, codes)
        super().__init__(lambda: SSHProbeServer([self.host_key], auth=policy))


def lesson_otp_server(
    keys: LessonKeys | None = None, password: str = "correct horse", codes: OneTimeCodes | None = None
) -> OTPServerPeer:
    """Our server on loopback with :func:`otp_policy`, for a notebook (stopped with the kernel or ``.stop()``).

    The password and the TOTP secret are published demo values: loopback only.
    """
    return OTPServerPeer(keys or lesson_keys(), password, codes or OneTimeCodes(b"handshakes lesson 14 demo secret"))


@dataclass(frozen=True)
class OTPLogin:
    """One login to our server: each request and the server's verdict on it, and how it ended."""

    authenticated: bool
    verdicts: tuple[tuple[str, str, str], ...]  # (what the client sent, the server's answer, why)
    transcript: list[TranscriptEntry] = field(repr=False)
    error: str = ""
    banner: str = ""


def otp_login(
    server: SSHProbeServer,
    *,
    user: str = "learner",
    key: HostKeyPair | None = None,
    password: str = "",
    code: str = "",
    timeout: float = DEFAULT_TIMEOUT,
) -> OTPLogin:
    """Log in to our ``server`` with a key (None: no key), and type ``password`` and ``code`` when asked."""

    def answer(request: Any) -> list[str]:
        return [password if "Password" in p.text else code for p in request.prompts]

    auth = ClientAuth(identities=(key,) if key is not None else (), answer=answer)
    known = KnownHosts.parse(f"[{server.host}]:{server.port} {server.host_keys[0].public_line()}\n")
    before = len(server.connections)
    client = SSHClient(server.host, server.port, user=user, auth=auth, known_hosts=known, algorithms=ALGORITHMS)
    authenticated, error, banner = False, "", ""
    try:
        with ssh_connect(server.host, server.port, user=user, auth=auth, client=client, timeout=timeout) as session:
            authenticated, banner = True, session.login.banner
    except AuthenticationFailed as refused:
        error = str(refused)
    except (HandshakeError, OSError) as failed:
        error = f"{type(failed).__name__}: {failed}"
    asked = sum(
        isinstance(e.message, UserauthRequest | UserauthInfoResponse) and e.direction == "client->server"
        for e in client.transcript
    )
    served = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # the server thread may record its last verdict after we read ours
        if len(server.connections) > before:
            served = server.connections[before]
            if len(served.verdicts) >= asked:
                break
        time.sleep(0.005)
    verdicts = []
    rounds = 0
    for verdict in served.verdicts if served is not None else ():
        outcome = verdict.outcome
        what = outcome.verdict.value
        if outcome.methods:
            what += f" (can continue: {', '.join(outcome.methods)})"
        sent = verdict.method
        if sent == "publickey":  # a query is answered PK_OK, or refused before any signature is asked for
            query = outcome.verdict is Verdict.PK_OK or "authorized_keys" in outcome.reason
            sent = "publickey query" if query else "publickey, signed"
        elif sent == "keyboard-interactive":
            sent = "keyboard-interactive" if rounds == 0 else f"answer to round {rounds}"
            rounds += 1
        verdicts.append((sent, what, outcome.reason))
    return OTPLogin(authenticated, tuple(verdicts), client.transcript, error, banner)


# -- (d) partial success ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartialSuccessRun:
    """sshd requiring two keys (``AuthenticationMethods publickey,publickey``) and our client offering them."""

    accepted: bool
    methods: tuple[str, ...]  # what logged us in, in order
    transcript: list[TranscriptEntry] = field(repr=False)
    sshd_says: tuple[str, ...] = ()
    error: str = ""

    @property
    def failures(self) -> list[TranscriptEntry]:
        return [e for e in self.transcript if isinstance(e.message, UserauthFailure)]

    @property
    def partial(self) -> TranscriptEntry | None:
        return next((e for e in self.failures if e.message.partial_success), None)


def run_partial_success(
    identities: Sequence[HostKeyPair] | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> PartialSuccessRun:
    """Start sshd requiring two different keys; log in offering ``identities`` (both lesson keys by default)."""
    keys = lesson_keys()
    identities = tuple(identities) if identities is not None else (keys.learner, keys.second)
    options = {"AuthenticationMethods": "publickey,publickey"}
    with openssh_server(
        host_key_types=("ed25519",), authorized_keys=keys.authorized_lines, extra_options=options, timeout=timeout
    ) as sshd:
        client = SSHClient(
            sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(identities=identities), known_hosts=_known(sshd),
            algorithms=ALGORITHMS,
        )  # fmt: skip
        accepted, methods, error = False, (), ""
        try:
            with ssh_connect(sshd.host, sshd.port, user=sshd.user, auth=ClientAuth(), client=client, timeout=timeout):
                accepted, methods = True, tuple(client.authenticator.succeeded)
        except AuthenticationFailed as refused:
            error = str(refused)
        except (HandshakeError, OSError) as failed:
            error = f"{type(failed).__name__}: {failed}"
        log = _log_since(sshd, 0, _ENDS, timeout)
    return PartialSuccessRun(accepted, methods, client.transcript, tuple(sshd_auth_lines(log)), error)


# -- (e) authorized_keys options -----------------------------------------------------------------------
DEFAULT_OPTION_LINES: tuple[str, ...] = (
    "",
    'from="10.0.0.0/8"',
    'from="127.0.0.1,::1"',
    'command="echo hello",restrict',
    'from="!127.0.0.1,*"',
    "no-such-option",
)


@dataclass(frozen=True)
class OptionVerdict:
    """One authorized_keys line (options and a fresh key): how it parses, our server's and sshd's verdicts."""

    options: str
    line: str
    parsed: AuthorizedKey | None
    problem: str  # why the line is skipped (a bad line), or ""
    ours: bool  # our server let the key in from 127.0.0.1
    ours_reason: str
    sshd: bool  # sshd let it in
    sshd_says: tuple[str, ...]
    forced_command: str | None = None  # what our server would run instead of the client's command
    restricted: bool = False

    @property
    def agree(self) -> bool:
        return self.ours == self.sshd


def compare_authorized_keys(
    options: Sequence[str] = DEFAULT_OPTION_LINES, *, timeout: float = DEFAULT_TIMEOUT
) -> list[OptionVerdict]:
    """Give sshd and our server the same authorized_keys (one fresh key per options string); try every key on both."""
    if not options or len(options) > 12:
        raise ValueError("give from 1 to 12 option strings")
    keys = [HostKeyPair.generate("ssh-ed25519", comment=f"key{n}") for n in range(1, len(options) + 1)]
    lines = [f"{opts.strip()} {key.public_line()}".strip() for opts, key in zip(options, keys, strict=True)]
    text = "\n".join(lines) + "\n"
    parsed = AuthorizedKeys.parse(text)
    policy = ServerAuthPolicy(authorized_keys=parsed, max_failures=len(keys) + 1)
    host_key = HostKeyPair.generate("ssh-ed25519")
    verdicts = []
    with openssh_server(host_key_types=("ed25519",), authorized_keys=lines, timeout=timeout) as sshd, \
            SSHProbeServer([host_key], auth=policy) as ours:  # fmt: skip
        known = KnownHosts.parse(f"[{ours.host}]:{ours.port} {host_key.public_line()}\n")
        for number, (opts, key, line) in enumerate(zip(options, keys, lines, strict=True), start=1):
            try:
                entry, problem = parse_line(line, number), ""
            except DecodeError as error:
                entry, problem = None, str(error)
            before = len(ours.connections)
            try:
                with ssh_connect(ours.host, ours.port, user="learner", auth=ClientAuth(identities=(key,)),
                                 known_hosts=known, algorithms=ALGORITHMS, timeout=timeout):  # fmt: skip
                    pass
            except (HandshakeError, OSError):
                pass
            served = _wait_served(ours, before, timeout)
            user = served.user if served is not None else None
            reasons = [v.outcome.reason for v in served.verdicts] if served is not None else []
            sshd_login = _login(sshd, key, LIBRARY_STAGES, timeout)
            verdicts.append(OptionVerdict(
                opts, line, entry, problem, user is not None, reasons[-1] if reasons else "",
                sshd_login.accepted, sshd_login.sshd_says,
                user.forced_command if user is not None else (entry.command if entry else None),
                user.restricted if user is not None else bool(entry and entry.restricted),
            ))  # fmt: skip
    return verdicts


def _wait_served(server: SSHProbeServer, before: int, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(server.connections) > before:
            served = server.connections[before]
            if served.user is not None or served.error is not None or served.server.closed:
                return served
        time.sleep(0.005)
    return server.connections[before] if len(server.connections) > before else None


# -- exercise 14: the learner's blob signed in a live login ----------------------------------------------
_FIELD_NAMES = ("session_id", "message_number", "user", "service", "method", "has_signature", "algorithm",
                "public_key")  # fmt: skip


def signed_data_difference(yours: object, expected: bytes) -> str:
    """ "" when ``yours`` is ``expected``; otherwise the first field that differs, in words."""
    if not isinstance(yours, bytes | bytearray):
        return f"signed_data must return bytes, not {type(yours).__name__}"
    yours = bytes(yours)
    if yours == expected:
        return ""
    want = decode_publickey_signed_data(expected)
    try:
        got = decode_publickey_signed_data(yours)
    except DecodeError as error:
        return (
            f"your {len(yours)} bytes do not read as the eight fields (string, byte, string, string, string, "
            f"boolean, string, string): {error}; expected {len(expected)} bytes starting {expected[:12].hex()}"
        )
    for name in _FIELD_NAMES:
        mine, theirs = getattr(got, name), getattr(want, name)
        if mine != theirs:
            show = lambda v: (v.hex() or "(empty)") if isinstance(v, bytes) else repr(v)  # noqa: E731
            return f"field {name}: yours is {show(mine)[:80]}, expected {show(theirs)[:80]}"
    return "the fields are right but the bytes differ (a length prefix?)"


_RAISED = object()


@dataclass(frozen=True)
class LearnerLoginRun:
    """Exercise 14's live step: the learner's blob signed in a login to sshd, and sshd's verdict."""

    accepted: bool
    yours: bytes  # the blob your function returned in the live login (b"" if it returned no bytes)
    expected: bytes  # the library's blob for the same login
    difference: str  # "" or the first differing field
    sshd_says: tuple[str, ...]
    error: str = ""

    def summary(self) -> str:
        verdict = "sshd ACCEPTED the signature over your blob" if self.accepted else "sshd REFUSED the login"
        lines = [verdict, f"  your blob:     {self.yours.hex()[:96]}{'...' if len(self.yours) > 48 else ''}",
                 f"  library's:     {self.expected.hex()[:96]}{'...' if len(self.expected) > 48 else ''}",
                 f"  {'identical' if not self.difference else self.difference}"]  # fmt: skip
        if self.error:
            lines.append(f"  our client: {self.error}")
        said = [line for line in self.sshd_says if re.search("publickey for|pkalg", line)]
        lines += ["  sshd's log:"] + [f"    {line}" for line in said]
        return "\n".join(lines)


def run_learner_signed_data(
    signed_data: Callable[..., Any], *, sshd: OpenSSHServer | None = None, timeout: float = DEFAULT_TIMEOUT
) -> LearnerLoginRun:
    """Log in to sshd with the lesson key, ``signed_data`` building the blob the signature covers.

    sshd (started for the call unless given) knows the key; it accepts exactly when the blob is the one
    RFC 4252 section 7 defines for this connection.  The learner's function may fail any way: the outcome
    is recorded, nothing is raised.
    """
    if sshd is None:
        with openssh_server(
            host_key_types=("ed25519",), authorized_keys=lesson_keys().authorized_lines, timeout=timeout
        ) as started:
            return run_learner_signed_data(signed_data, sshd=started, timeout=timeout)
    seen: list[tuple[object, bytes]] = []

    def stage(session_id: bytes, user: str, service: str, algorithm: str, public_key: bytes) -> Any:
        expected = publickey_signed_data(session_id, user, service, algorithm, public_key)
        seen.append((_RAISED, expected))  # replaced by the result if the function returns
        blob = signed_data(session_id, user, service, algorithm, public_key)
        seen[-1] = (blob, expected)
        return blob

    login = _login(sshd, lesson_keys().learner, LIBRARY_STAGES.replace(userauth_signed_data=stage), timeout)
    if not seen:
        return LearnerLoginRun(login.accepted, b"", b"", "your function was not called", login.sshd_says, login.error)
    blob, expected = seen[0]
    difference = "your function raised an error" if blob is _RAISED else signed_data_difference(blob, expected)
    yours = bytes(blob) if isinstance(blob, bytes | bytearray) else b""
    return LearnerLoginRun(login.accepted, yours, expected, difference, login.sshd_says, login.error)
