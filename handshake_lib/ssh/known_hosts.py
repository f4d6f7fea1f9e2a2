"""known_hosts: which host keys a client trusts, in OpenSSH's file format, and what to do with a new one.

Theory of operation
-------------------
SSH has no certificate authority by default: the first time a client meets a server it is shown the
key's fingerprint and asked "Are you sure you want to continue connecting?"; if yes, the key is
written to ``~/.ssh/known_hosts`` and every later connection must present the same key
(trust on first use).  The file format is sshd(8)'s "SSH_KNOWN_HOSTS FILE FORMAT", one entry a line::

    [@cert-authority|@revoked] hostpatterns keytype base64-key [comment]

``hostpatterns`` is a comma-separated list: names and addresses, ``*`` and ``?`` wildcards, ``!`` to
exclude (a negated match rejects the line even if another pattern matched), ``[host]:port`` for a
server on a port other than 22.  ``ssh-keygen -H`` (and ``HashKnownHosts yes``) replaces the list by
``|1|salt|HMAC-SHA1(salt, name)``, both base64, so a stolen file does not list the hosts one visits;
a hashed line names exactly one host, and can only be matched by hashing a candidate name.

:meth:`KnownHosts.lookup` follows OpenSSH's ``hostfile.c`` (``check_hostkeys_by_key_or_type``): of
the entries whose host field matches, a key equal to the server's is a match; otherwise any other key
for the host (of any type) means the host key *changed*, and the offending line is the last such
entry; a key listed ``@revoked`` for the host is *revoked*, whatever else matched; no entry is
*unknown*.  ``@cert-authority`` lines name a CA that signs host *certificates*; we parse and explain
them, but they never vouch for a plain host key (as in OpenSSH), and we do not implement certificates.

:func:`check_host_key` turns a lookup into a decision under a policy, as ``StrictHostKeyChecking``
does: ``strict`` (``yes``) refuses an unknown key, ``accept-new`` adds it, ``ask`` asks a callback
(a notebook widget, a terminal prompt) with the same information ``ssh`` prints.  A changed or
revoked key is refused under every policy, with OpenSSH's warning text in the exception.

Sans-I/O: the module parses text and returns new text; reading and writing the file is the caller's
business.  Limits (OpenSSH reads any size): at most 4 MiB and 100,000 lines, lines of at most 16 KiB;
bad lines are skipped with a reason, as OpenSSH skips them.  :func:`check_host_key` also does what
ssh does for an unknown ``[host]:port``: it trusts the key if the port-less entry for the host holds
it.  Not done: ``CheckHostIP`` (a second lookup by address), certificates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ..errors import DecodeError, HostKeyChanged, HostKeyRevoked, UnknownHostKey
from .hostkeys import KEY_TYPES, HostKey, parse_public_key_line

__all__ = [
    "Marker",
    "KnownHostsLine",
    "SkippedLine",
    "KnownHosts",
    "LookupStatus",
    "LookupResult",
    "HostKeyPolicy",
    "HostKeyQuestion",
    "HostKeyDecision",
    "check_host_key",
    "host_name_for",
    "hash_host_name",
    "known_hosts_line",
    "match_pattern",
    "match_pattern_list",
    "MAX_FILE_BYTES",
    "MAX_LINES",
    "MAX_LINE_BYTES",
]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_LINES = 100_000
MAX_LINE_BYTES = 16 * 1024
DEFAULT_PORT = 22
HASH_MAGIC = "|1|"
_SALT_BYTES = 20  # the salt is as long as a SHA-1 digest (hostfile.c)
_MAX_SUBPATTERN = 1023  # match_pattern_list's sub[1024]: a longer pattern makes the whole list fail


class Marker(Enum):
    """The optional first word of a known_hosts line."""

    NONE = ""
    CERT_AUTHORITY = "@cert-authority"
    REVOKED = "@revoked"

    @property
    def explanation(self) -> str:
        return {
            Marker.NONE: "a host key trusted for the hosts listed",
            Marker.CERT_AUTHORITY: "a certificate authority: it vouches for host *certificates* it signed for "
            "these hosts, never as a plain host key (we do not implement SSH certificates yet, so this "
            "line trusts nothing here)",
            Marker.REVOKED: "a revoked key: refused for these hosts whatever other lines say",
        }[self]


# -- host patterns (match.c) ------------------------------------------------------------------------
def match_pattern(name: str, pattern: str) -> bool:
    """OpenSSH's ``match_pattern``: ``*`` matches any run of characters, ``?`` any one; case-sensitive.

    The greedy two-pointer walk (backtrack to the last ``*``) gives the same answers as OpenSSH's
    recursion in linear-times-stars time, so a hostile pattern cannot make a lookup exponential.
    """
    n = p = 0
    star = -1
    star_n = 0
    while n < len(name):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == name[n]) and pattern[p] != "*":
            n += 1
            p += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, star_n = p, n
            p += 1
        elif star >= 0:
            star_n += 1
            n, p = star_n, star + 1
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def match_pattern_list(name: str, patterns: str) -> int:
    """OpenSSH's ``match_pattern_list(name, patterns, dolower=1)``: 1 matched, 0 not, -1 a ``!`` pattern matched.

    Each comma-separated pattern is lowercased; a negated match wins at once; a pattern longer than
    1023 characters makes the whole list not match.
    """
    positive = 0
    i = 0
    while i < len(patterns):
        negated = patterns[i] == "!"
        if negated:
            i += 1
        end = patterns.find(",", i)
        end = len(patterns) if end < 0 else end
        sub = patterns[i:end]
        if len(sub) >= _MAX_SUBPATTERN:
            return 0
        i = end + 1 if end < len(patterns) else end
        if match_pattern(name, sub.lower()):
            if negated:
                return -1
            positive = 1
    return positive


def host_name_for(host: str, port: int | None = DEFAULT_PORT) -> str:
    """The name known_hosts stores for ``host`` at ``port``: the host, or ``[host]:port`` off port 22, lowercased."""
    host = host.lower()
    if port in (None, 0, DEFAULT_PORT):
        return host
    return f"[{host}]:{port}"


def hash_host_name(name: str, salt: bytes) -> str:
    """``|1|base64(salt)|base64(HMAC-SHA1(salt, name))``, as ``ssh-keygen -H`` writes a name."""
    if len(salt) != _SALT_BYTES:
        raise ValueError(f"the salt is {_SALT_BYTES} bytes, not {len(salt)}")
    digest = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    return f"{HASH_MAGIC}{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def known_hosts_line(
    host: str,
    port: int | None,
    key: HostKey,
    *,
    hashed: bool = True,
    random: Callable[[int], bytes] = os.urandom,
) -> str:
    """The line ``ssh`` appends for a newly accepted key (no comment, no newline); hashed with a fresh salt."""
    name = host_name_for(host, port)
    return f"{hash_host_name(name, random(_SALT_BYTES)) if hashed else name} {key.openssh()}"


# -- the parsed file --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KnownHostsLine:
    """One entry: its 1-based line number, marker, host field (patterns or one hash), key and comment."""

    number: int
    text: str
    marker: Marker
    hosts: str
    key: HostKey
    comment: str = ""
    salt: bytes | None = None  # set for a hashed host field

    @property
    def hashed(self) -> bool:
        return self.salt is not None

    def matches(self, name: str) -> bool:
        """Whether this line's host field names ``name`` (already in :func:`host_name_for` form)."""
        if self.salt is not None:
            return hmac.compare_digest(hash_host_name(name, self.salt), self.hosts)
        return match_pattern_list(name.lower(), self.hosts) == 1

    def explain(self) -> str:
        """A sentence a learner can read: what this line says."""
        who = "one hashed host name" if self.hashed else f"hosts {self.hosts}"
        return f"line {self.number}: {self.key.label} key {self.key.fingerprint()} for {who}: {self.marker.explanation}"


@dataclass(frozen=True)
class SkippedLine:
    """A line that is not an entry: ``reason`` says why it was skipped (as OpenSSH skips bad lines)."""

    number: int
    text: str
    reason: str


class LookupStatus(Enum):
    MATCH = "match"  # HOST_OK
    CHANGED = "changed"  # HOST_CHANGED
    REVOKED = "revoked"  # HOST_REVOKED
    UNKNOWN = "unknown"  # HOST_NEW


@dataclass(frozen=True)
class LookupResult:
    """What known_hosts says about ``key`` for ``name``.

    ``lines``: every entry (no marker) that names the host, in file order; ``found``: the line that
    decided (the matching one, or the offending one for CHANGED, the revoked one for REVOKED);
    ``cert_authorities``: ``@cert-authority`` lines for the host, which do not count for a plain key.
    """

    status: LookupStatus
    name: str
    key: HostKey
    path: str
    lines: tuple[KnownHostsLine, ...] = ()
    found: KnownHostsLine | None = None
    cert_authorities: tuple[KnownHostsLine, ...] = ()

    @property
    def line_numbers(self) -> tuple[int, ...]:
        return tuple(line.number for line in self.lines)

    @property
    def other_keys(self) -> tuple[KnownHostsLine, ...]:
        """Known keys of the host of another type than the server's (ssh's "keys of different type")."""
        return tuple(line for line in self.lines if line.key.key_type != self.key.key_type)

    @property
    def message(self) -> str:
        """What OpenSSH's ``ssh`` prints in this case (``ssh -v`` for a match)."""
        label, fp = self.key.label, self.key.fingerprint()
        if self.status is LookupStatus.MATCH:
            assert self.found is not None
            return (
                f"Host '{self.name}' is known and matches the {label} host key.\n"
                f"Found key in {self.path}:{self.found.number}"
            )
        if self.status is LookupStatus.CHANGED:
            assert self.found is not None
            return "\n".join(
                [
                    "@" * 59,
                    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
                    "@" * 59,
                    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
                    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
                    "It is also possible that a host key has just been changed.",
                    f"The fingerprint for the {label} key sent by the remote host is\n{fp}.",
                    "Please contact your system administrator.",
                    f"Add correct host key in {self.path} to get rid of this message.",
                    f"Offending {self.found.key.label} key in {self.path}:{self.found.number}",
                    # Debian's OpenSSH adds how to remove the stale entry (upstream stops at "Offending").
                    "  remove with:",
                    f'  ssh-keygen -f "{self.path}" -R "{self.name}"',
                    f"Host key for {self.name} has changed and you have requested strict checking.",
                    "Host key verification failed.",
                ]
            )
        if self.status is LookupStatus.REVOKED:
            return "\n".join(
                [
                    "@" * 59,
                    "@       WARNING: REVOKED HOST KEY DETECTED!               @",
                    "@" * 59,
                    f"The {label} host key for {self.name} is marked as revoked.",
                    "This could mean that a stolen key is being used to",
                    "impersonate this host.",
                    f"{label} host key for {self.name} was revoked and you have requested strict checking.",
                    "Host key verification failed.",
                ]
            )
        return (
            f"No {label} host key is known for {self.name} and you have requested strict checking.\n"
            "Host key verification failed."
        )


class KnownHosts:
    """A parsed known_hosts file: its entries, the lines skipped and why, and the text it came from.

    ``path`` only names the file in messages ("Offending ED25519 key in PATH:3").
    """

    def __init__(self, text: str = "", path: str = "~/.ssh/known_hosts") -> None:
        self.text = text
        self.path = path
        entries, skipped = _parse(text)
        self.entries: tuple[KnownHostsLine, ...] = entries
        self.skipped: tuple[SkippedLine, ...] = skipped

    @classmethod
    def parse(cls, data: str | bytes, path: str = "~/.ssh/known_hosts") -> KnownHosts:
        """Parse a file's contents; DecodeError only when it is larger than the limits (bad lines are skipped)."""
        if isinstance(data, bytes | bytearray):
            if len(data) > MAX_FILE_BYTES:
                raise DecodeError(
                    f"known_hosts of {len(data)} bytes is larger than {MAX_FILE_BYTES}", field="known_hosts"
                )
            data = bytes(data).decode("utf-8", errors="replace")
        if len(data) > MAX_FILE_BYTES:
            raise DecodeError(
                f"known_hosts of {len(data)} characters is larger than {MAX_FILE_BYTES}", field="known_hosts"
            )
        return cls(data, path)

    def entries_for(self, host: str, port: int | None = DEFAULT_PORT) -> tuple[KnownHostsLine, ...]:
        """Every entry (markers included) whose host field names ``host`` at ``port``: what ``ssh-keygen -F`` lists."""
        name = host_name_for(host, port)
        return tuple(line for line in self.entries if line.matches(name))

    def known_key_types(self, host: str, port: int | None = DEFAULT_PORT) -> tuple[str, ...]:
        """Key types already trusted for the host, in file order: a client asks for these first (as ssh does)."""
        types: list[str] = []
        for line in self.entries_for(host, port):
            if line.marker is Marker.NONE and line.key.key_type not in types:
                types.append(line.key.key_type)
        return tuple(types)

    def lookup(self, host: str, port: int | None, key: HostKey) -> LookupResult:
        """Is ``key`` the known key of ``host`` at ``port``?  See the module docstring for the rules."""
        name = host_name_for(host, port)
        matching = self.entries_for(host, port)
        plain = tuple(line for line in matching if line.marker is Marker.NONE)
        authorities = tuple(line for line in matching if line.marker is Marker.CERT_AUTHORITY)
        status, found = LookupStatus.UNKNOWN, None
        for line in plain:
            if line.key == key:
                status, found = LookupStatus.MATCH, line
                break
            status, found = LookupStatus.CHANGED, line  # the last mismatch is the one ssh reports
        for line in matching:
            if line.marker is Marker.REVOKED and line.key == key:
                status, found = LookupStatus.REVOKED, line
                break
        return LookupResult(status, name, key, self.path, plain, found, authorities)

    def add(
        self,
        host: str,
        port: int | None,
        key: HostKey,
        *,
        hashed: bool = True,
        random: Callable[[int], bytes] = os.urandom,
    ) -> str:
        """The file's new text with the line ``ssh`` would append for ``key`` (see :func:`known_hosts_line`)."""
        return self.append(known_hosts_line(host, port, key, hashed=hashed, random=random))

    def append(self, line: str) -> str:
        """The file's new text with ``line`` added at the end (a missing final newline is supplied first)."""
        separator = "" if not self.text or self.text.endswith("\n") else "\n"
        return f"{self.text}{separator}{line}\n"

    def explain(self) -> str:
        """Every line, entry or skipped, in a sentence each."""
        notes = {line.number: line.explain() for line in self.entries}
        notes.update({line.number: f"line {line.number}: skipped: {line.reason}" for line in self.skipped})
        return "\n".join(notes[number] for number in sorted(notes))


def _parse(text: str) -> tuple[tuple[KnownHostsLine, ...], tuple[SkippedLine, ...]]:
    entries: list[KnownHostsLine] = []
    skipped: list[SkippedLine] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise DecodeError(f"known_hosts has {len(lines)} lines, more than {MAX_LINES}", field="known_hosts")
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        body = line.lstrip(" \t")
        if not body or body.startswith("#"):
            continue  # blank lines and comments are not entries, nor errors
        result = _parse_entry(number, line, body)
        if isinstance(result, KnownHostsLine):
            entries.append(result)
        else:
            skipped.append(result)
    return tuple(entries), tuple(skipped)


def _parse_entry(number: int, line: str, body: str) -> KnownHostsLine | SkippedLine:
    def skip(reason: str) -> SkippedLine:
        return SkippedLine(number, line, reason)

    if len(line) > MAX_LINE_BYTES:
        return skip(f"longer than {MAX_LINE_BYTES} characters")
    marker = Marker.NONE
    while body.startswith("@"):  # check_markers() in hostfile.c: one marker, ended by a space or tab
        if marker is not Marker.NONE:
            return skip("more than one marker")
        # OpenSSH looks for the first space, and for a tab only when the line has no space at all.
        end = body.find(" ") if " " in body else body.find("\t")
        if end <= 1 or end >= 32:
            return skip("invalid marker")
        word, rest = body[:end], body[end:].lstrip(" \t")
        try:
            marker = Marker(word)
        except ValueError:
            return skip(f"invalid marker {word!r} (known: @cert-authority, @revoked)")
        body = rest
    hosts, _, rest = _split_word(body)
    if not rest:
        return skip("truncated line: no key after the host names")
    rest = rest.lstrip(" \t")
    if not rest or rest.startswith("#"):
        return skip("truncated before the key type")
    salt = None
    if hosts.startswith("|"):
        salt = _hashed_salt(hosts)
        if salt is None:
            return skip("bad hashed host name (expected |1|base64 salt|base64 HMAC-SHA1)")
    key_type = rest.split(None, 1)[0]
    if key_type not in KEY_TYPES:
        return skip(f"unsupported key type {key_type!r} (we read {', '.join(KEY_TYPES)})")
    try:
        key, comment = parse_public_key_line(rest)
    except DecodeError as error:
        return skip(f"bad key: {error}")
    return KnownHostsLine(number, line, marker, hosts, key, comment, salt)


def _split_word(text: str) -> tuple[str, str, str]:
    """The first word (ended by a space or a tab), the separator and what follows."""
    for index, char in enumerate(text):
        if char in " \t":
            return text[:index], char, text[index + 1 :].lstrip(" \t")
    return text, "", ""


def _hashed_salt(hosts: str) -> bytes | None:
    """The salt of ``|1|salt|hash`` when both parts are well-formed; None otherwise (extract_salt())."""
    if not hosts.startswith(HASH_MAGIC):
        return None
    salt_text, separator, digest_text = hosts[len(HASH_MAGIC) :].partition("|")
    if not separator or not 0 < len(salt_text) <= 1024:
        return None
    try:
        salt = base64.b64decode(salt_text, validate=True)
        digest = base64.b64decode(digest_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(salt) != _SALT_BYTES or len(digest) != _SALT_BYTES:
        return None
    return salt


# -- policies -------------------------------------------------------------------------------------
class HostKeyPolicy(Enum):
    """What to do with an unknown host key (``StrictHostKeyChecking``); changed and revoked keys are always refused."""

    STRICT = "strict"  # yes: refuse
    ACCEPT_NEW = "accept-new"  # accept-new: add it and go on
    ASK = "ask"  # ask: show the fingerprint and ask


@dataclass(frozen=True)
class HostKeyQuestion:
    """What ``ssh`` shows before "Are you sure you want to continue connecting (yes/no/[fingerprint])?"."""

    name: str
    key: HostKey
    fingerprint: str
    randomart: str
    other_keys: tuple[KnownHostsLine, ...]
    path: str

    @property
    def prompt(self) -> str:
        first = f"The authenticity of host '{self.name} ({self.name})' can't be established"
        lines = [first + ("\nbut keys of different type are already known for this host." if self.other_keys else ".")]
        lines.append(f"{self.key.label} key fingerprint is {self.fingerprint}.")
        for line in self.other_keys:
            lines.append(
                f"WARNING: {line.key.label} key found for host {self.name}\nin {self.path}:{line.number}\n"
                f"{line.key.label} key fingerprint {line.key.fingerprint()}."
            )
        lines.append("Are you sure you want to continue connecting (yes/no/[fingerprint])? ")
        return "\n".join(lines)


@dataclass(frozen=True)
class HostKeyDecision:
    """The key is trusted.  ``new_text``: the known_hosts text to write when the key was just added, else None."""

    lookup: LookupResult
    added_line: str | None = None
    new_text: str | None = None
    asked: bool = False

    @property
    def message(self) -> str:
        if self.added_line is None:
            return self.lookup.message
        return f"Warning: Permanently added '{self.lookup.name}' ({self.lookup.key.label}) to the list of known hosts."


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
    """Decide whether to trust ``key`` for ``host`` at ``port`` under ``policy``, as ``ssh`` decides.

    Returns a :class:`HostKeyDecision` (with the new file text when the key was added), or raises
    :class:`~handshake_lib.errors.HostKeyChanged`, ``HostKeyRevoked`` or ``UnknownHostKey``, whose
    message is what ``ssh`` prints and whose ``lookup`` attribute holds the :class:`LookupResult`.
    ``ask`` is required with :attr:`HostKeyPolicy.ASK`: it gets a :class:`HostKeyQuestion` and
    returns True for yes.
    """
    policy = HostKeyPolicy(policy)
    if policy is HostKeyPolicy.ASK and ask is None:
        raise ValueError("HostKeyPolicy.ASK needs an ask callback")
    result = known_hosts.lookup(host, port, key)
    if result.status is LookupStatus.MATCH:
        return HostKeyDecision(result)
    if result.status is LookupStatus.UNKNOWN and port not in (None, 0, DEFAULT_PORT):
        # ssh's "checking without port identifier": an unknown [host]:port is trusted when the
        # port-less entry for host holds this very key (sshconnect.c, HOST_NEW).
        portless = known_hosts.lookup(host, DEFAULT_PORT, key)
        if portless.status is LookupStatus.MATCH:
            return HostKeyDecision(portless)
    error: UnknownHostKey | HostKeyChanged | HostKeyRevoked
    if result.status is LookupStatus.CHANGED:
        error = HostKeyChanged(result.message)
    elif result.status is LookupStatus.REVOKED:
        error = HostKeyRevoked(result.message)
    elif policy is HostKeyPolicy.STRICT:
        error = UnknownHostKey(result.message)
    else:
        asked = False
        if policy is HostKeyPolicy.ASK:
            assert ask is not None
            question = HostKeyQuestion(
                result.name, key, key.fingerprint(), key.randomart(), result.other_keys, known_hosts.path
            )
            asked = True
            if not ask(question):
                error = UnknownHostKey(
                    f"The {key.label} host key {key.fingerprint()} for {result.name} was not accepted.\n"
                    "Host key verification failed."
                )
                error.lookup = result  # type: ignore[attr-defined]
                raise error
        line = known_hosts_line(host, port, key, hashed=hashed, random=random)
        return HostKeyDecision(result, line, known_hosts.append(line), asked)
    error.lookup = result  # type: ignore[attr-defined]
    raise error
