"""The live runs of lesson 13 (SSH host keys) and of exercise 13's last step, against OpenSSH.

Each function talks to a real Debian ``sshd`` (:func:`~handshake_lib.peers.openssh.openssh_server`) with
our client (:func:`~handshake_lib.net.ssh.ssh_probe`), and where OpenSSH has its own say, runs OpenSSH's
tool on the same files: ``ssh-keygen -lv`` for fingerprints and randomart, ``ssh-keygen -F`` for a
known_hosts lookup, ``ssh`` itself for a changed host key.  Nothing here decides anything the library
does not already decide; it starts, runs and reports.

* :func:`lesson_sshd`: a :class:`~handshake_lib.peers.BackgroundPeer` holding one sshd (Ed25519, ECDSA
  and RSA host keys) for the whole notebook; :func:`probe` connects our client to it (Curve25519, one
  host key algorithm, so a live connection costs about 25 ms and the widgets stay quick).
* :func:`keygen_fingerprint`, :func:`keygen_find`: what ``ssh-keygen -lv`` / ``-F`` print, cached per input.
* :func:`run_changed_host_key`: a known_hosts file holding another key for the server; our client and
  OpenSSH's ``ssh`` both refuse, and the result holds both messages.
* :func:`run_learner_host_key_checks` (exercise 13): the learner's ``check_host_key(known_hosts, host,
  port, key)`` (plain text in, ``"match"``, ``"changed"`` or ``"unknown"`` out) becomes the client's
  ``check_host_key`` stage (:func:`learner_host_key_stage`) and decides live connections to sshd: a known
  server comes through, a changed key is refused, an unknown one is added (``accept-new``).  A wrong
  function lets a changed key through or refuses the right one, and the result says which.

Limits: loopback only, every run bounded by ``timeout``; the exercise's function is called with text and
answers a word, so it can run in the grading sandbox behind a stand-in.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HandshakeError, HostKeyChanged, HostKeyRevoked, UnknownHostKey
from ..net import DEFAULT_TIMEOUT
from ..net.ssh import ProbeResult, ssh_probe
from ..ssh.client import SSHClient
from ..ssh.connection import Algorithms
from ..ssh.hostkeys import HostKey, HostKeyPair
from ..ssh.known_hosts import (
    HostKeyDecision,
    HostKeyPolicy,
    HostKeyQuestion,
    KnownHosts,
    LookupResult,
    LookupStatus,
    hash_host_name,
    host_name_for,
    known_hosts_line,
)
from ..ssh.stages import LIBRARY_STAGES
from . import BackgroundPeer
from .openssh import OpenSSHServer, _program, openssh_client, openssh_server

__all__ = [
    "HOST_KEY_CASES",
    "HOST_KEY_TYPES",
    "ChangedKeyRun",
    "HostKeyCase",
    "HostKeyCaseRun",
    "LearnerHostKeyRun",
    "WaitingConnection",
    "keygen_find",
    "keygen_fingerprint",
    "learner_host_key_stage",
    "lesson_sshd",
    "probe",
    "run_changed_host_key",
    "run_learner_host_key_checks",
]

# sshd's host key types (openssh_host_keys names) and the host key algorithm our client asks for each.
HOST_KEY_TYPES: dict[str, str] = {"ed25519": "ssh-ed25519", "ecdsa": "ecdsa-sha2-nistp256", "rsa": "rsa-sha2-256"}
ANSWERS = ("match", "changed", "unknown")


def lesson_sshd(host_key_types: Sequence[str] = tuple(HOST_KEY_TYPES)) -> BackgroundPeer[OpenSSHServer]:
    """One sshd for a notebook, started on first use and stopped with the kernel (or ``.stop()``)."""
    return BackgroundPeer(lambda: openssh_server(host_key_types=host_key_types))


def _algorithms(host_key_type: str) -> Algorithms:
    if host_key_type not in HOST_KEY_TYPES:
        raise ValueError(f"host key type must be one of {', '.join(HOST_KEY_TYPES)}, not {host_key_type!r}")
    return Algorithms(kex=("curve25519-sha256",), host_key=(HOST_KEY_TYPES[host_key_type],))


def probe(
    sshd: OpenSSHServer,
    *,
    known_hosts: KnownHosts | None = None,
    policy: HostKeyPolicy = HostKeyPolicy.ACCEPT_NEW,
    ask: Callable[[HostKeyQuestion], bool] | None = None,
    host_key_type: str = "ed25519",
    stages: Any = LIBRARY_STAGES,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProbeResult:
    """Our client against ``sshd`` up to its list of authentication methods (raises the typed error)."""
    client = SSHClient(
        sshd.host, sshd.port, known_hosts=known_hosts, host_key_policy=policy, ask=ask,
        algorithms=_algorithms(host_key_type), stages=stages,
    )  # fmt: skip
    return ssh_probe(sshd.host, sshd.port, client=client, timeout=timeout)


class WaitingConnection:
    """A connection to ``sshd`` that stops at the host key question and waits for the answer, as ``ssh`` does.

    A thread runs :func:`probe` with ``HostKeyPolicy.ASK``; its ask callback publishes the
    :class:`~handshake_lib.ssh.known_hosts.HostKeyQuestion` and blocks until :meth:`answer` (at most
    ``wait`` seconds, then the answer is no: sshd's own LoginGraceTime is 120 s).  When known_hosts
    already holds the key no question comes and the connection finishes by itself.  The thread is a
    daemon and every wait has a deadline, so an unanswered question never holds a kernel.
    """

    def __init__(
        self, sshd: OpenSSHServer, known_hosts: str, *, wait: float = 100.0, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.sshd, self.known_hosts, self.wait, self.timeout = sshd, known_hosts, wait, timeout
        self.question: HostKeyQuestion | None = None
        self.result: ProbeResult | None = None
        self.error: HandshakeError | OSError | None = None
        self._asked = threading.Event()  # the question is published, or the connection ended without one
        self._answered = threading.Event()
        self._done = threading.Event()
        self._answer = False
        self._lock = threading.Lock()  # the answer is set once, before the event says so
        threading.Thread(target=self._run, name="handshakes-waiting-ssh", daemon=True).start()

    def _ask(self, question: HostKeyQuestion) -> bool:
        self.question = question
        self._asked.set()
        return self._answered.wait(self.wait) and self._answer

    def _run(self) -> None:
        try:
            known = KnownHosts.parse(self.known_hosts, "~/.ssh/known_hosts")
            self.result = probe(
                self.sshd, known_hosts=known, policy=HostKeyPolicy.ASK, ask=self._ask, timeout=self.wait + self.timeout
            )
        except (HandshakeError, OSError) as error:
            self.error = error
        finally:
            self._asked.set()
            self._done.set()

    def wait_for_question(self, timeout: float | None = None) -> HostKeyQuestion | None:
        """The question, once the server's key arrived (None: the connection ended without asking)."""
        self._asked.wait(self.timeout if timeout is None else timeout)
        return self.question

    @property
    def waiting(self) -> bool:
        """A question is published and not answered yet, and the connection is still open."""
        return self.question is not None and not self._answered.is_set() and not self._done.is_set()

    def close(self) -> None:
        """Answer no without waiting for the end: the connection is refused and its thread ends."""
        with self._lock:
            self._answered.set()

    def answer(self, yes: bool, timeout: float | None = None) -> ProbeResult:
        """Answer the question (if one waits) and let the connection finish; its result, or its typed error.

        Only the first answer counts (after :meth:`close`, the answer was no).
        """
        with self._lock:
            if not self._answered.is_set():
                self._answer = bool(yes)
                self._answered.set()
        if not self._done.wait(self.timeout if timeout is None else timeout):
            raise TimeoutError("the connection did not finish after the answer")
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


# -- what OpenSSH's ssh-keygen says -------------------------------------------------------------------
def _run(arguments: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(arguments, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)


@functools.lru_cache(maxsize=64)
def keygen_fingerprint(public_key_line: str, hash_name: str = "SHA256", timeout: float = DEFAULT_TIMEOUT) -> str:
    """What ``ssh-keygen -lv -E HASH -f KEY.pub`` prints for ``public_key_line``: the fingerprint line and randomart."""
    keygen = _program("ssh-keygen", "openssh-client")
    with tempfile.TemporaryDirectory(prefix="handshakes-keygen-") as folder:
        path = Path(folder) / "key.pub"
        path.write_text(public_key_line.strip() + "\n")
        done = _run([keygen, "-lv", "-E", hash_name.lower(), "-f", str(path)], timeout)
    if done.returncode != 0:
        raise ValueError(f"ssh-keygen -lv refused the key: {done.stderr.strip()}")
    return done.stdout.rstrip("\n")


@functools.lru_cache(maxsize=64)
def keygen_find(known_hosts_text: str, host: str, port: int = 22, timeout: float = DEFAULT_TIMEOUT) -> str:
    """What ``ssh-keygen -F NAME -f FILE`` prints: the lines of ``known_hosts_text`` that name ``host`` at ``port``.

    Empty when nothing matches (ssh-keygen then exits 1).  OpenSSH prints a comment line per match
    ("# Host [127.0.0.1]:2222 found: line 3") and the line itself, hashed lines as they are.
    """
    keygen = _program("ssh-keygen", "openssh-client")
    with tempfile.TemporaryDirectory(prefix="handshakes-keygen-") as folder:
        path = Path(folder) / "known_hosts"
        path.write_text(known_hosts_text)
        done = _run([keygen, "-F", host_name_for(host, port), "-f", str(path)], timeout)
    return done.stdout.rstrip("\n")


# -- a changed host key: ours and OpenSSH's refusal -----------------------------------------------------
def _openssh_messages(stderr: str) -> str:
    """ssh's own words from a ``-vvv`` log: every line that is not a debug line."""
    lines = stderr.replace("\r\n", "\n").splitlines()
    return "\n".join(line for line in lines if not line.startswith(("debug1:", "debug2:", "debug3:", "OpenSSH_")))


@dataclass
class ChangedKeyRun:
    """Both clients against an sshd whose key is not the one known_hosts holds for it."""

    known_hosts: str
    server_fingerprint: str
    known_fingerprint: str
    ours: str = ""  # our client's refusal (HostKeyChanged's message)
    ours_error: str = ""  # its type name
    openssh: str = ""  # what OpenSSH's ssh printed (its debug lines left out)
    openssh_refused: bool = False  # "Host key verification failed."

    def summary(self) -> str:
        return "\n".join(
            [
                f"known_hosts holds {self.known_fingerprint}; the server presents {self.server_fingerprint}",
                "",
                f"our client ({self.ours_error or 'did not refuse!'}):",
                *("  " + line for line in self.ours.splitlines()),
                "",
                f"OpenSSH's ssh ({'refused' if self.openssh_refused else 'did not refuse!'}):",
                *("  " + line for line in self.openssh.splitlines()),
            ]
        )


def run_changed_host_key(
    sshd: OpenSSHServer, *, hashed: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> ChangedKeyRun:
    """Write another Ed25519 key for ``sshd`` into a known_hosts file; let our client and ``ssh`` meet it.

    Both must refuse: ours with :class:`~handshake_lib.errors.HostKeyChanged`, OpenSSH with its
    "REMOTE HOST IDENTIFICATION HAS CHANGED!" warning and "Host key verification failed.".
    """
    server_key = HostKey.from_openssh(sshd.host_keys["ed25519"])
    old = HostKeyPair.generate("ssh-ed25519").host_key
    text = known_hosts_line(sshd.host, sshd.port, old, hashed=hashed) + "\n"
    run = ChangedKeyRun(text, server_key.fingerprint(), old.fingerprint())
    with tempfile.TemporaryDirectory(prefix="handshakes-changed-") as folder:
        path = Path(folder) / "known_hosts"
        path.write_text(text)
        try:
            probe(sshd, known_hosts=KnownHosts.parse(text, str(path)), policy=HostKeyPolicy.STRICT, timeout=timeout)
            run.ours = "the connection went on"
        except HandshakeError as error:
            run.ours, run.ours_error = str(error), type(error).__name__
        openssh = openssh_client(
            sshd.host, sshd.port, user=sshd.user or "root", known_hosts_file=path,
            host_key_algorithms="ssh-ed25519", kex="curve25519-sha256", timeout=timeout,
        )  # fmt: skip
    run.openssh = _openssh_messages(openssh.stderr)
    run.openssh_refused = openssh.host_key_verification_failed
    return run


# -- exercise 13: the learner's check decides ----------------------------------------------------------
LearnerCheck = Callable[[str, str, int, str], Any]


def _lookup(known_hosts: KnownHosts, host: str, port: int | None, key: HostKey, status: LookupStatus) -> LookupResult:
    """The library's lookup, or (when the learner answered otherwise) a result with the learner's status."""
    library = known_hosts.lookup(host, port, key)
    if library.status is status:
        return library
    return LookupResult(status, library.name, key, known_hosts.path, library.lines, None, library.cert_authorities)


def learner_host_key_stage(check: LearnerCheck) -> Callable[..., HostKeyDecision]:
    """The ``SSHStages.check_host_key`` stage built on a learner's ``check(known_hosts_text, host, port, key_line)``.

    The learner answers ``"match"``, ``"changed"`` or ``"unknown"``; the policy stays the library's:
    a match is trusted, a changed key refused (HostKeyChanged), an unknown key refused under ``strict``,
    added under ``accept-new``, asked about under ``ask``.  Any other answer refuses the key: a check
    that forgot to ``return`` lets nothing in.
    """

    def check_host_key(
        known_hosts: KnownHosts,
        host: str,
        port: int | None,
        key: HostKey,
        policy: HostKeyPolicy = HostKeyPolicy.STRICT,
        *,
        ask: Callable[[HostKeyQuestion], bool] | None = None,
        hashed: bool = True,
        random: Callable[[int], bytes] = os.urandom,
    ) -> HostKeyDecision:
        answer = check(known_hosts.text, host, int(port or 22), key.openssh())
        name = host_name_for(host, port)
        if answer not in ANSWERS:
            raise UnknownHostKey(
                f"your check_host_key answered {answer!r}, not one of {', '.join(ANSWERS)}: the key is refused"
            )
        if answer == "match":
            return HostKeyDecision(_lookup(known_hosts, host, port, key, LookupStatus.MATCH))
        if answer == "changed":
            error = HostKeyChanged(
                f"your check_host_key says the host key for {name} changed: {key.label} {key.fingerprint()} "
                "is not the key known_hosts holds.\nHost key verification failed."
            )
            error.lookup = _lookup(known_hosts, host, port, key, LookupStatus.CHANGED)  # type: ignore[attr-defined]
            raise error
        lookup = _lookup(known_hosts, host, port, key, LookupStatus.UNKNOWN)
        policy = HostKeyPolicy(policy)
        asked = False
        if policy is HostKeyPolicy.ASK and ask is not None:
            asked = True
            question = HostKeyQuestion(name, key, key.fingerprint(), key.randomart(), (), known_hosts.path)
            if not ask(question):
                policy = HostKeyPolicy.STRICT
        if policy is HostKeyPolicy.STRICT:
            error = UnknownHostKey(
                f"your check_host_key says no key is known for {name}, and checking is strict.\n"
                "Host key verification failed."
            )
            error.lookup = lookup  # type: ignore[attr-defined]
            raise error
        line = known_hosts_line(host, port, key, hashed=hashed, random=random)
        return HostKeyDecision(lookup, line, known_hosts.append(line), asked)

    check_host_key.__name__ = getattr(check, "__name__", "check_host_key")
    return check_host_key


@dataclass(frozen=True)
class HostKeyCase:
    """One connection of exercise 13's live step: what known_hosts holds, the policy, what should happen."""

    name: str
    summary: str
    policy: HostKeyPolicy
    expected: str  # the library's answer for the server's key: match, changed or unknown
    goes_through: bool  # with the library's check the connection reaches user authentication


HOST_KEY_CASES: dict[str, HostKeyCase] = {
    case.name: case
    for case in (
        HostKeyCase("known-hashed", "known_hosts holds the server's key under a hashed name (strict checking)",
                    HostKeyPolicy.STRICT, "match", True),
        HostKeyCase("known-plain", "known_hosts holds the server's key under a plain name list (strict checking)",
                    HostKeyPolicy.STRICT, "match", True),
        HostKeyCase("changed", "known_hosts holds another Ed25519 key for the server, hashed (strict checking)",
                    HostKeyPolicy.STRICT, "changed", False),
        HostKeyCase("unknown", "known_hosts has keys for 127.0.0.1 on port 22 and another port, none for this "
                    "one (accept-new)", HostKeyPolicy.ACCEPT_NEW, "unknown", True),
    )
}  # fmt: skip


def _case_text(case: str, host: str, port: int, server: HostKey, others: list[HostKey]) -> str:
    """The known_hosts text of ``case``: a few lines about other hosts, and the case's own line(s)."""
    first, second, third = others
    name = host_name_for(host, port)
    lines = [
        "# lines about other servers",
        f"github.example,192.0.2.10 {first.openssh()}",
        f"{hash_host_name('git.example', os.urandom(20))} {second.openssh()}",
        f"@revoked old.example {third.openssh()}",
    ]
    if case == "known-hashed":
        lines.append(f"{hash_host_name(name, os.urandom(20))} {server.openssh()}")
    elif case == "known-plain":
        lines.append(f"build.example,{name.upper()} {server.openssh()} the server")
    elif case == "changed":
        lines.append(f"{hash_host_name(name, os.urandom(20))} {first.openssh()}")
    else:  # unknown: the same address on two other ports, each with another key
        lines.append(f"{host} {first.openssh()}")
        lines.append(f"{hash_host_name(host_name_for(host, port + 1), os.urandom(20))} {second.openssh()}")
    return "\n".join(lines) + "\n"


@dataclass
class HostKeyCaseRun:
    """What became of one case: the connection's outcome, your answer and the library's."""

    case: HostKeyCase
    known_hosts: str
    yours: str = ""  # your function's answer (repr of anything else)
    methods: tuple[str, ...] | None = None  # set when the connection reached user authentication
    added: bool = False  # accept-new wrote a new line
    refused: str = ""  # the error type that refused the key
    error: str = ""  # its message, or anything else that stopped the connection
    openssh_says: str = ""  # OpenSSH's ssh with the same known_hosts file, for a refused case

    @property
    def went_through(self) -> bool:
        return self.methods is not None

    @property
    def as_the_library_decides(self) -> bool:
        return self.went_through == self.case.goes_through

    def outcome(self) -> str:
        if self.went_through:
            added = " (the key was added to known_hosts)" if self.added else ""
            return f"went through{added}: sshd offers {', '.join(self.methods or ()) or 'nothing'}"
        if self.refused:
            return f"refused: {self.refused}"
        return f"stopped: {self.error}"

    def lines(self) -> list[str]:
        wanted = "goes through" if self.case.goes_through else "is refused"
        mark = "as it should" if self.as_the_library_decides else f"WRONG: with the library's check, it {wanted}"
        lines = [
            f"{self.case.name}: {self.case.summary}",
            f"  your check_host_key: {self.yours}; the library's: {self.case.expected}",
            f"  {self.outcome()}  ({mark})",
        ]
        said = [line.strip("@ ") for line in self.error.splitlines() if line.strip("@ ")]
        if self.refused and said:
            lines.append(f"  our client says: {said[0]}")
        if self.openssh_says:
            lines.append(f"  OpenSSH's ssh says: {self.openssh_says}")
        return lines


@dataclass
class LearnerHostKeyRun:
    """Exercise 13's live step: one :class:`HostKeyCaseRun` per case, by name."""

    runs: dict[str, HostKeyCaseRun] = field(default_factory=dict)

    def __getitem__(self, name: str) -> HostKeyCaseRun:
        return self.runs[name]

    def summary(self) -> str:
        return "\n".join(line for run in self.runs.values() for line in run.lines())


def _openssh_verdict(sshd: OpenSSHServer, text: str, folder: Path, timeout: float) -> str:
    path = folder / "known_hosts"
    path.write_text(text)
    run = openssh_client(
        sshd.host, sshd.port, user=sshd.user or "root", known_hosts_file=path,
        host_key_algorithms="ssh-ed25519", kex="curve25519-sha256", timeout=timeout,
    )  # fmt: skip
    words = [line for line in _openssh_messages(run.stderr).splitlines() if line.strip()]
    if run.host_key_verification_failed:
        telling = [line for line in words if "WARNING" in line or "No ED25519" in line or "verification" in line]
        return " / ".join(line.strip("@ ") for line in telling)
    return "it went on to user authentication" if run.reached_user_auth else (words[-1] if words else "")


def run_learner_host_key_checks(
    check_host_key: LearnerCheck | None = None,
    *,
    cases: Sequence[str] = tuple(HOST_KEY_CASES),
    sshd: OpenSSHServer | None = None,
    ask_openssh: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> LearnerHostKeyRun:
    """Exercise 13's last step: our client, with ``check_host_key`` deciding (None: the library's), meets sshd.

    One sshd (started for the call unless given) serves every case of ``cases`` (names in
    :data:`HOST_KEY_CASES`); each case writes its own known_hosts text and connects once.  With
    ``ask_openssh`` OpenSSH's ``ssh`` reads the same file for each case the library refuses, and says
    why.  The learner's function may fail any way: outcomes are recorded, nothing is raised.
    """
    unknown = [name for name in cases if name not in HOST_KEY_CASES]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}: use {', '.join(HOST_KEY_CASES)}")
    if sshd is None:
        with openssh_server(host_key_types=("ed25519",), timeout=timeout) as started:
            return run_learner_host_key_checks(
                check_host_key, cases=cases, sshd=started, ask_openssh=ask_openssh, timeout=timeout
            )
    server = HostKey.from_openssh(sshd.host_keys["ed25519"])
    others = [HostKeyPair.generate("ssh-ed25519").host_key for _ in range(3)]
    answers: list[str] = []

    def recorded(known_hosts: str, host: str, port: int, key: str) -> Any:
        assert check_host_key is not None
        try:
            answer = check_host_key(known_hosts, host, port, key)
        except Exception as error:
            answers.append(f"raised {type(error).__name__}: {error}")
            raise
        answers.append(repr(answer))
        return answer

    stages = (
        LIBRARY_STAGES
        if check_host_key is None
        else LIBRARY_STAGES.replace(check_host_key=learner_host_key_stage(recorded))
    )
    result = LearnerHostKeyRun()
    with tempfile.TemporaryDirectory(prefix="handshakes-exercise-13-") as folder:
        for name in cases:
            case = HOST_KEY_CASES[name]
            text = _case_text(name, sshd.host, sshd.port, server, others)
            run = result.runs[name] = HostKeyCaseRun(case, text)
            answers.clear()
            try:
                probed = probe(
                    sshd, known_hosts=KnownHosts.parse(text, f"{folder}/known_hosts"), policy=case.policy,
                    stages=stages, timeout=timeout,
                )  # fmt: skip
                run.methods = probed.methods
                run.added = probed.host_key_decision.added_line is not None
            except (HostKeyChanged, UnknownHostKey, HostKeyRevoked) as refused:
                run.refused, run.error = type(refused).__name__, str(refused)
            except (HandshakeError, OSError) as error:
                run.error = f"{type(error).__name__}: {error}"
            if check_host_key is None:
                run.yours = "(the library's)"
            else:
                run.yours = str(answers[0]) if answers else "not called"
            if ask_openssh and not case.goes_through:
                run.openssh_says = _openssh_verdict(sshd, text, Path(folder), timeout)
    return result
