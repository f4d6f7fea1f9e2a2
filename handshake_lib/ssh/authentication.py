"""User authentication's decisions (RFC 4252, 4256): what the server accepts, what the client tries next.

Theory of operation
-------------------
The state tables (``ssh.states``) say which message may come when; this module decides what each one
means, for one connection, on each side.  Both halves are plain objects with no I/O, so a lesson can
step a login one request at a time and a test can check every verdict.

**Server** (:class:`ServerAuthenticator`, configured by a :class:`ServerAuthPolicy`).  Every request
names a user, a service and a method; the answer is one of

* SUCCESS: the request completed a chain of methods the policy requires (``required``: OpenSSH's
  ``AuthenticationMethods``, e.g. ``(("publickey", "keyboard-interactive"),)``; by default any one
  offered method is enough);
* FAILURE with ``partial_success`` TRUE: this method worked, but the chain needs more;
* FAILURE: the method failed or is not one that can continue; the list names those that can;
* PK_OK: an unsigned publickey *query* for a key that is authorized (RFC 4252 section 7): sign with it;
* INFO_REQUEST: a keyboard-interactive round (RFC 4256): questions, answered by INFO_RESPONSE, round
  after round (a password, then a one-time code).

A publickey login needs a key line in ``authorized_keys`` that sshd would honour (known options, a
``from=`` that admits the client's address) and a signature that verifies over the section 7 blob with
the session identifier; the signature algorithm must be one we list in ``server-sig-algs`` (never
SHA-1 ``ssh-rsa``).  The line's ``command=`` and ``restrict`` come with the verdict
(:class:`AuthenticatedUser`), for the connection layer to apply.  Passwords are compared in constant
time.  Every failure counts except the ``none`` probe; past ``max_failures`` (OpenSSH's MaxAuthTries,
6) the server disconnects (:class:`~handshake_lib.errors.TooManyAuthenticationAttempts`).  A user or
service that changes in the middle of a chain is refused as OpenSSH refuses it (a disconnect).

**Client** (:class:`ClientAuthenticator`, given a :class:`ClientAuth`).  After the ``none`` probe,
each USERAUTH_FAILURE lists the methods that can continue; the client takes the first of its
preferences (``methods``: OpenSSH's PreferredAuthentications order by default) for which it still has
something untried: the next key (queried first, signed after PK_OK, with an algorithm the server's
``server-sig-algs`` names), the keyboard-interactive answers, the password.  Each is tried once;
nothing left means the login failed (the caller sees the last list of methods, as ``ssh`` prints
"Permission denied (publickey,password)").  A PASSWD_CHANGEREQ ends the attempt with
:class:`~handshake_lib.errors.PasswordChangeRequired`: changing passwords is not taught here.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ..errors import (
    InternalError,
    PasswordChangeRequired,
    ProtocolError,
    TooManyAuthenticationAttempts,
)
from .authorized_keys import AuthorizedKey, AuthorizedKeys
from .hostkeys import HostKeyPair
from .messages import Prompt, UserauthInfoRequest, UserauthInfoResponse, UserauthRequest
from .userauth import (
    KeyboardInteractiveFields,
    PasswordFields,
    PublickeyFields,
    request_fields,
    verify_publickey_request,
)

__all__ = [
    "DEFAULT_MAX_FAILURES",
    "SERVER_SIG_ALGS",
    "Verdict",
    "KeyboardInteractiveRound",
    "ServerAuthPolicy",
    "AuthenticatedUser",
    "Outcome",
    "ServerAuthenticator",
    "ClientAuth",
    "ClientAuthenticator",
    "signature_algorithm",
    "PREFERRED_METHODS",
]

# OpenSSH's MaxAuthTries default.
DEFAULT_MAX_FAILURES = 6
# What our server accepts for user keys (RFC 8308 server-sig-algs): the signature algorithms we verify.
SERVER_SIG_ALGS: tuple[str, ...] = (
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256",
)  # fmt: skip
# OpenSSH's PreferredAuthentications, without gssapi-with-mic (explained in lesson 14, not implemented).
PREFERRED_METHODS: tuple[str, ...] = ("publickey", "keyboard-interactive", "password")
_METHODS = frozenset(PREFERRED_METHODS)


class Verdict(Enum):
    """The server's answer to one request (the message it sends)."""

    SUCCESS = "USERAUTH_SUCCESS"
    PARTIAL = "USERAUTH_FAILURE, partial success"
    FAILURE = "USERAUTH_FAILURE"
    PK_OK = "USERAUTH_PK_OK"
    INFO_REQUEST = "USERAUTH_INFO_REQUEST"


@dataclass(frozen=True)
class KeyboardInteractiveRound:
    """One round of questions; ``check(user, answers)`` says whether the answers are right."""

    prompts: tuple[Prompt, ...]
    check: Callable[[str, tuple[str, ...]], bool] = field(repr=False)
    title: str = ""
    instruction: str = ""


@dataclass(frozen=True)
class ServerAuthPolicy:
    """Who may log in, and how.

    ``authorized_keys``: one file for every user, or a function of the user name (None: no keys).
    ``passwords``: user name to password.  ``keyboard_interactive``: the rounds, each must pass.
    ``offered``: the methods to list; by default those configured here.  ``required``: chains of methods,
    any one of which completes a login (default: any single offered method).  ``banner``: sent before
    authentication (RFC 4252 section 5.4).
    """

    authorized_keys: AuthorizedKeys | Callable[[str], AuthorizedKeys | None] | None = None
    passwords: Mapping[str, str] = field(default_factory=dict, repr=False)
    keyboard_interactive: tuple[KeyboardInteractiveRound, ...] = ()
    offered: tuple[str, ...] | None = None
    required: tuple[tuple[str, ...], ...] = ()
    max_failures: int = DEFAULT_MAX_FAILURES
    banner: str = ""

    def __post_init__(self) -> None:
        offered = self.offered_methods
        unknown = [m for m in (*offered, *(m for chain in self.required for m in chain)) if m not in _METHODS]
        if unknown:
            raise ValueError(
                f"unknown authentication method(s): {', '.join(unknown)} (we speak {', '.join(PREFERRED_METHODS)})"
            )
        missing = [m for chain in self.required for m in chain if m not in offered]
        if missing:
            raise ValueError(f"required method(s) not offered: {', '.join(missing)}")
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")

    @property
    def offered_methods(self) -> tuple[str, ...]:
        if self.offered is not None:
            return tuple(self.offered)
        configured = {
            "publickey": self.authorized_keys is not None,
            "keyboard-interactive": bool(self.keyboard_interactive),
            "password": bool(self.passwords),
        }
        return tuple(method for method in PREFERRED_METHODS if configured[method])

    @property
    def chains(self) -> tuple[tuple[str, ...], ...]:
        return self.required or tuple((method,) for method in self.offered_methods)

    def keys_for(self, user: str) -> AuthorizedKeys | None:
        if self.authorized_keys is None or isinstance(self.authorized_keys, AuthorizedKeys):
            return self.authorized_keys
        return self.authorized_keys(user)

    def check_password(self, user: str, password: str) -> bool:
        expected = self.passwords.get(user)
        # Compare even for an unknown user, so the time taken does not tell which users exist.
        reference = (expected if expected is not None else "\0" * max(len(password), 1)).encode()
        return hmac.compare_digest(reference, password.encode()) and expected is not None


@dataclass(frozen=True)
class AuthenticatedUser:
    """Who logged in, by which methods, and (publickey) the authorized_keys line whose options now apply."""

    user: str
    methods: tuple[str, ...]
    key: AuthorizedKey | None = None

    @property
    def forced_command(self) -> str | None:
        return self.key.command if self.key is not None else None

    @property
    def restricted(self) -> bool:
        return self.key is not None and self.key.restricted


@dataclass(frozen=True)
class Outcome:
    """The server's verdict on one message, and what it sends back."""

    verdict: Verdict
    methods: tuple[str, ...] = ()  # what can continue (FAILURE, PARTIAL)
    reason: str = ""  # why, in words (never a password)
    pk_ok: tuple[str, bytes] | None = None  # (algorithm, key blob) to echo
    info_request: UserauthInfoRequest | None = None
    user: AuthenticatedUser | None = None  # SUCCESS


class ServerAuthenticator:
    """One connection's server side of user authentication (see the module docstring)."""

    def __init__(self, policy: ServerAuthPolicy, *, client_address: str = "127.0.0.1") -> None:
        self.policy = policy
        self.client_address = client_address
        self.failures = 0
        self.done: list[str] = []  # methods completed in the current chain
        self.user: str | None = None
        self.service: str | None = None
        self.authenticated: AuthenticatedUser | None = None
        self._key: AuthorizedKey | None = None
        self._rounds_passed = 0  # keyboard-interactive
        self._info_pending: UserauthInfoRequest | None = None

    def can_continue(self) -> tuple[str, ...]:
        """RFC 4252 5.1: the methods that may productively continue (the next of each chain begun)."""
        names: list[str] = []
        for chain in self.policy.chains:
            begun = tuple(chain[: len(self.done)]) == tuple(self.done) and len(chain) > len(self.done)
            if begun and chain[len(self.done)] not in names:
                names.append(chain[len(self.done)])
        return tuple(names)

    def on_request(self, request: UserauthRequest, session_id: bytes) -> Outcome:
        """The verdict on a USERAUTH_REQUEST (a DecodeError for malformed method fields)."""
        self._info_pending = None
        if self.user is not None and self.done and (request.user, request.service) != (self.user, self.service):
            raise ProtocolError("change of user or service in the middle of authentication is not allowed")
        self.user, self.service = request.user, request.service
        if request.service != "ssh-connection":
            return self._fail(f"service {request.service!r} is not offered after authentication")
        if request.method == "none":
            return Outcome(Verdict.FAILURE, self.can_continue(), "none: the client asks which methods to use")
        if request.method not in self.can_continue():
            return self._fail(f"method {request.method!r} cannot continue")
        fields = request_fields(request)  # malformed fields: DecodeError (a disconnect), not a "no"
        if isinstance(fields, PublickeyFields):
            return self._publickey(request, fields, session_id)
        if isinstance(fields, PasswordFields):
            if fields.change:
                return self._fail("password change requests are not supported")
            if self.policy.check_password(request.user, fields.password):
                return self._method_done("password")
            return self._fail("wrong password (or unknown user)")
        assert isinstance(fields, KeyboardInteractiveFields)
        self._rounds_passed = 0
        return self._next_round()

    def on_info_response(self, response: UserauthInfoResponse) -> Outcome:
        """The verdict on a keyboard-interactive round's answers."""
        request, self._info_pending = self._info_pending, None
        if request is None or self.user is None:
            raise ProtocolError("USERAUTH_INFO_RESPONSE without a question asked")
        if len(response.responses) != len(request.prompts):
            raise ProtocolError(f"{len(response.responses)} answers to {len(request.prompts)} prompts")
        rounds = self.policy.keyboard_interactive
        round_ = rounds[self._rounds_passed]
        if not round_.check(self.user, tuple(response.responses)):
            return self._fail(f"keyboard-interactive: wrong answer in round {self._rounds_passed + 1}")
        self._rounds_passed += 1
        return self._next_round()

    def _next_round(self) -> Outcome:
        rounds = self.policy.keyboard_interactive
        if self._rounds_passed >= len(rounds):
            return self._method_done("keyboard-interactive")
        round_ = rounds[self._rounds_passed]
        request = UserauthInfoRequest(round_.title, round_.instruction, round_.prompts)
        self._info_pending = request
        return Outcome(Verdict.INFO_REQUEST, info_request=request, reason=f"round {self._rounds_passed + 1}")

    def _publickey(self, request: UserauthRequest, fields: PublickeyFields, session_id: bytes) -> Outcome:
        if fields.algorithm not in SERVER_SIG_ALGS:
            return self._fail(f"signature algorithm {fields.algorithm} is not accepted (server-sig-algs)")
        keys = self.policy.keys_for(request.user)
        entry = None
        if keys is not None:
            entry = next((k for k in keys.for_client(self.client_address) if k.key.encode() == fields.public_key), None)
        if entry is None:
            return self._fail("the key is not in authorized_keys (or its options refuse this client)")
        if not fields.has_signature:
            return Outcome(Verdict.PK_OK, pk_ok=(fields.algorithm, fields.public_key), reason="an authorized key")
        if not verify_publickey_request(session_id, request):
            return self._fail("the signature does not verify")
        self._key = entry
        return self._method_done("publickey")

    def _method_done(self, method: str) -> Outcome:
        self.done.append(method)
        assert self.user is not None
        if any(tuple(chain) == tuple(self.done) for chain in self.policy.chains):
            self.authenticated = AuthenticatedUser(self.user, tuple(self.done), self._key)
            return Outcome(Verdict.SUCCESS, reason=f"{' then '.join(self.done)}", user=self.authenticated)
        return Outcome(Verdict.PARTIAL, self.can_continue(), f"{method} done; the policy needs more")

    def _fail(self, reason: str) -> Outcome:
        self.failures += 1
        if self.failures > self.policy.max_failures:
            raise TooManyAuthenticationAttempts(
                f"more than {self.policy.max_failures} failed authentication attempts (last: {reason})"
            )
        return Outcome(Verdict.FAILURE, self.can_continue(), reason)


# -- client -------------------------------------------------------------------------------------------
Answer = Callable[[UserauthInfoRequest], Sequence[str]]


@dataclass(frozen=True)
class ClientAuth:
    """What the client may authenticate with: keys (``ssh -i``), a password, keyboard-interactive answers.

    ``answer(request)`` returns one string per prompt of a keyboard-interactive round (a one-time code,
    a password...).  ``methods``: the order to try them in (``-o PreferredAuthentications``).
    ``signed_data``: the stage that builds the blob a publickey signature covers (a learner replaces it;
    the library's is ``userauth.publickey_signed_data``).
    """

    identities: tuple[HostKeyPair, ...] = ()
    password: str | None = field(default=None, repr=False)
    answer: Answer | None = None
    methods: tuple[str, ...] = PREFERRED_METHODS

    def __post_init__(self) -> None:
        object.__setattr__(self, "identities", tuple(self.identities))
        unknown = [m for m in self.methods if m not in _METHODS]
        if unknown:
            raise ValueError(f"unknown authentication method(s): {', '.join(unknown)}")


def signature_algorithm(key: HostKeyPair, server_sig_algs: Sequence[str] | None) -> str | None:
    """The algorithm to sign with: the key's first that the server lists (RFC 8308 3.1); None if none is.

    A server that sent no ``server-sig-algs`` gets our first choice (for RSA, rsa-sha2-512: OpenSSH's
    client would fall back to SHA-1 ``ssh-rsa``, which we never sign with).
    """
    algorithms = [a for a in key.signature_algorithms if a in SERVER_SIG_ALGS]
    if server_sig_algs is None:
        return algorithms[0] if algorithms else None
    return next((a for a in algorithms if a in server_sig_algs), None)


class ClientAuthenticator:
    """One connection's client side: which request to send next (see the module docstring)."""

    def __init__(self, auth: ClientAuth | None, user: str) -> None:
        self.auth = auth
        self.user = user
        self.methods_offered: tuple[str, ...] = ()
        self.pending: UserauthRequest | None = None  # the request in flight
        self.method_in_flight: str | None = None  # decides what message 60 is
        self.succeeded: list[str] = []  # methods that succeeded (partial successes, then the last)
        self._next_key = 0
        self._tried: set[str] = set()
        self._query: tuple[HostKeyPair, str] | None = None

    def first(self) -> UserauthRequest:
        return self._send(UserauthRequest(self.user, "ssh-connection", "none"))

    def after_failure(
        self, methods: Sequence[str], partial: bool, server_sig_algs: Sequence[str] | None
    ) -> UserauthRequest | None:
        """The next request, or None: nothing left to try (the login failed, or this is a probe)."""
        if partial and self.method_in_flight is not None:
            self.succeeded.append(self.method_in_flight)
        self.methods_offered = tuple(methods)
        if self.auth is None:
            return None
        for method in self.auth.methods:
            if method not in methods:
                continue
            if method == "publickey":
                request = self._next_publickey_query(server_sig_algs)
                if request is not None:
                    return request
            elif method == "keyboard-interactive" and self.auth.answer is not None and method not in self._tried:
                self._tried.add(method)
                return self._send(
                    UserauthRequest(self.user, "ssh-connection", method, KeyboardInteractiveFields().encode())
                )
            elif method == "password" and self.auth.password is not None and method not in self._tried:
                self._tried.add(method)
                fields = PasswordFields(False, self.auth.password)
                return self._send(UserauthRequest(self.user, "ssh-connection", method, fields.encode()))
        self.pending = self.method_in_flight = None
        return None

    def _next_publickey_query(self, server_sig_algs: Sequence[str] | None) -> UserauthRequest | None:
        assert self.auth is not None
        while self._next_key < len(self.auth.identities):
            key = self.auth.identities[self._next_key]
            self._next_key += 1
            algorithm = signature_algorithm(key, server_sig_algs)
            if algorithm is None:
                continue  # the server would not accept any signature this key can make
            self._query = (key, algorithm)
            fields = PublickeyFields(False, algorithm, key.host_key.encode())
            return self._send(UserauthRequest(self.user, "ssh-connection", "publickey", fields.encode()))
        return None

    def after_pk_ok(
        self, algorithm: str, public_key: bytes, session_id: bytes, signed_data: Callable[..., bytes]
    ) -> UserauthRequest:
        """PK_OK: the same request, signed over the RFC 4252 section 7 blob (built by ``signed_data``)."""
        if self._query is None or self.method_in_flight != "publickey":
            raise ProtocolError("USERAUTH_PK_OK without a publickey query")
        key, ours = self._query
        if (algorithm, public_key) != (ours, key.host_key.encode()):
            raise ProtocolError("USERAUTH_PK_OK names a different key or algorithm than our query")
        blob = signed_data(session_id, self.user, "ssh-connection", algorithm, public_key)
        if not isinstance(blob, bytes | bytearray):
            raise InternalError(f"the signed-data stage returned {type(blob).__name__}, not bytes")
        signature = key.sign(bytes(blob), algorithm)
        fields = PublickeyFields(True, algorithm, public_key, signature)
        return self._send(UserauthRequest(self.user, "ssh-connection", "publickey", fields.encode()))

    def after_info_request(self, request: UserauthInfoRequest) -> UserauthInfoResponse:
        if self.method_in_flight != "keyboard-interactive" or self.auth is None or self.auth.answer is None:
            raise ProtocolError("USERAUTH_INFO_REQUEST without a keyboard-interactive request")
        if not request.prompts:
            return UserauthInfoResponse(())  # RFC 4256 3.4: an empty round is answered with no answers
        answers = tuple(self.auth.answer(request))
        if len(answers) != len(request.prompts) or not all(isinstance(a, str) for a in answers):
            raise InternalError(
                f"the answer function gave {len(answers)} answer(s) for {len(request.prompts)} prompt(s)"
            )
        return UserauthInfoResponse(answers)

    def after_passwd_changereq(self, prompt: str) -> None:
        raise PasswordChangeRequired(
            f"the server says the password has expired and asks for a new one ({prompt.strip() or 'no reason given'}); "
            "change it on the server first: this client does not change passwords"
        )

    def after_success(self) -> None:
        if self.method_in_flight is not None:
            self.succeeded.append(self.method_in_flight)

    def _send(self, request: UserauthRequest) -> UserauthRequest:
        self.pending = request
        self.method_in_flight = request.method if request.method != "none" else None
        return request
