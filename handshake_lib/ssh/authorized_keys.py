"""OpenSSH ``authorized_keys`` files: each line's options, key and comment, and ``from=`` matching.

Theory of operation
-------------------
sshd(8), "AUTHORIZED_KEYS FILE FORMAT": each line is ``[options] keytype base64-key [comment]``;
blank lines and lines starting with ``#`` are ignored.  The options field is comma-separated, with no
spaces except inside double quotes; a quoted value may hold ``\\"`` for a quote.  sshd finds the
options the way we do (``auth_check_authkey_line``): if the first word is not a key type, the options
run to the first space or tab outside quotes (``sshkey_advance_past_options``), then the key follows.

The options (auth-options.c, ``sshauthopt_parse``), names case-insensitive:

* flags: ``restrict`` (everything off: no port forwarding, agent or X11 forwarding, pty, user rc),
  ``no-*`` / positive forms (``pty``, ``port-forwarding``... which re-enable after ``restrict``),
  ``cert-authority``, ``no-touch-required``, ``verify-required``;
* valued: ``command=``, ``from=``, ``environment="NAME=value"``, ``expiry-time=``,
  ``principals=``, ``permitopen="host:port"``, ``permitlisten=``, ``tunnel=``.

An option sshd does not know makes it ignore the whole line ("bad options"); we keep such options,
named, in :attr:`AuthorizedKey.unknown_options`, so a learner sees why sshd would refuse the key.

``from="pattern-list"`` (``match_host_and_ip`` in match.c): the client's address is tried against
each pattern as a CIDR block (``addr_match_list``), else as a ``*``/``?`` wildcard; the host name
(sshd uses the address itself unless ``UseDNS yes``) as a wildcard, lowercased.  A ``!pattern`` that
matches refuses at once, whatever else matches.

A bad line is a :class:`BadLine` (line number and reason), never an exception: sshd skips it too.
Bounds: see :data:`MAX_LINE_BYTES`, :data:`MAX_LINES`, :data:`MAX_FILE_BYTES` (docs/limits.md).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import DecodeError
from .hostkeys import HostKey, parse_public_key_line
from .known_hosts import match_pattern, match_pattern_list

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_LINES",
    "MAX_FILE_BYTES",
    "FLAG_OPTIONS",
    "VALUE_OPTIONS",
    "AuthorizedKey",
    "AuthorizedKeys",
    "BadLine",
    "parse_options",
    "parse_line",
    "match_from",
]

MAX_LINE_BYTES = 8 * 1024  # sshd reads lines of at most SSH_MAX_PUBKEY_BYTES (16 KiB); 8 KiB holds RSA-16384 + options
MAX_LINES = 10_000
MAX_FILE_BYTES = 4 * 1024 * 1024

KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")

FLAG_OPTIONS = frozenset({
    "restrict", "cert-authority", "no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding", "no-pty",
    "no-user-rc", "port-forwarding", "agent-forwarding", "x11-forwarding", "pty", "user-rc",
    "no-touch-required", "touch-required", "verify-required",
})  # fmt: skip
VALUE_OPTIONS = frozenset({
    "command", "from", "environment", "expiry-time", "principals", "permitopen", "permitlisten", "tunnel",
})  # fmt: skip
_REPEATABLE = frozenset({"environment", "permitopen", "permitlisten"})


@dataclass(frozen=True)
class AuthorizedKey:
    """One key line: its options (flags and values, in file order), the key, the comment."""

    line_number: int
    key: HostKey
    comment: str = ""
    flags: tuple[str, ...] = ()
    values: tuple[tuple[str, str], ...] = ()  # (name, dequoted value); environment= etc. may repeat
    unknown_options: tuple[str, ...] = ()

    def value(self, name: str) -> str | None:
        """The first value of option ``name`` (``command``, ``from``...), or None."""
        return next((v for n, v in self.values if n == name), None)

    def all_values(self, name: str) -> tuple[str, ...]:
        return tuple(v for n, v in self.values if n == name)

    @property
    def command(self) -> str | None:
        return self.value("command")

    @property
    def from_patterns(self) -> str | None:
        return self.value("from")

    @property
    def restricted(self) -> bool:
        return "restrict" in self.flags

    @property
    def accepted_by_sshd(self) -> bool:
        """False when sshd would ignore this line ("bad options": an option it does not know)."""
        return not self.unknown_options

    def allows_from(self, address: str, hostname: str | None = None) -> bool:
        """sshd's verdict on a client at ``address`` (and ``hostname``): no ``from=`` admits everyone."""
        patterns = self.from_patterns
        return patterns is None or match_from(patterns, address, hostname)

    def fingerprint(self, hash_name: str = "SHA256") -> str:
        return self.key.fingerprint(hash_name)


@dataclass(frozen=True)
class BadLine:
    """A line we (and sshd) skip, with why."""

    line_number: int
    reason: str


@dataclass(frozen=True)
class AuthorizedKeys:
    """A parsed file: the keys and the skipped lines, in file order."""

    keys: tuple[AuthorizedKey, ...] = ()
    bad_lines: tuple[BadLine, ...] = ()
    truncated: bool = False  # more than MAX_LINES lines: the rest were not read

    @classmethod
    def parse(cls, data: str | bytes) -> AuthorizedKeys:
        if isinstance(data, bytes | bytearray):
            if len(data) > MAX_FILE_BYTES:
                raise DecodeError(f"authorized_keys larger than {MAX_FILE_BYTES} bytes", field="authorized_keys")
            text = bytes(data).decode("utf-8", errors="replace")
        else:
            text = data
            if len(text) > MAX_FILE_BYTES:
                raise DecodeError(f"authorized_keys larger than {MAX_FILE_BYTES} bytes", field="authorized_keys")
        keys: list[AuthorizedKey] = []
        bad: list[BadLine] = []
        lines = text.split("\n")
        truncated = len(lines) > MAX_LINES
        for number, line in enumerate(lines[:MAX_LINES], start=1):
            try:
                entry = parse_line(line, number)
            except DecodeError as error:
                bad.append(BadLine(number, str(error)))
                continue
            if entry is not None:
                keys.append(entry)
        return cls(tuple(keys), tuple(bad), truncated)

    def for_client(self, address: str, hostname: str | None = None) -> tuple[AuthorizedKey, ...]:
        """The keys sshd would accept from this client: known options and a ``from=`` that admits it."""
        return tuple(k for k in self.keys if k.accepted_by_sshd and k.allows_from(address, hostname))


def _dequote(text: str, start: int, name: str) -> tuple[str, int]:
    """Read ``"..."`` from ``text[start]`` (opt_dequote): ``\\"`` is a quote, other backslashes stay."""
    if start >= len(text) or text[start] != '"':
        raise DecodeError(f"option {name}= needs a double-quoted value", field=f"authorized_keys.{name}")
    out: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] == '"':
            out.append('"')
            i += 2
        elif text[i] == '"':
            return "".join(out), i + 1
        else:
            out.append(text[i])
            i += 1
    raise DecodeError(f"option {name}= has no closing quote", field=f"authorized_keys.{name}")


def parse_options(text: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Split an options field into (flags, values, unknown options); a syntax error is a DecodeError."""
    flags: list[str] = []
    values: list[tuple[str, str]] = []
    unknown: list[str] = []
    i = 0
    while i < len(text):
        end = i
        while end < len(text) and text[end] not in ',="':
            end += 1
        name = text[i:end].lower()
        if not name:
            raise DecodeError("an empty option", field="authorized_keys.options")
        if end < len(text) and text[end] == "=":
            value, i = _dequote(text, end + 1, name)
            if name in VALUE_OPTIONS:
                if name not in _REPEATABLE and any(n == name for n, _ in values):
                    raise DecodeError(f"option {name}= given twice", field=f"authorized_keys.{name}")
                if name == "environment" and "=" not in value:
                    raise DecodeError('environment= must be "NAME=value"', field="authorized_keys.environment")
                values.append((name, value))
            else:
                unknown.append(name)
        else:
            i = end
            (flags if name in FLAG_OPTIONS else unknown).append(name)
        if i < len(text):
            if text[i] != ",":
                raise DecodeError(f"expected ',' after option {name}", field="authorized_keys.options")
            i += 1
            if i == len(text):
                raise DecodeError("options end with ','", field="authorized_keys.options")
    return tuple(flags), tuple(values), tuple(unknown)


def _options_end(line: str) -> int:
    """Index of the first space or tab outside quotes (sshkey_advance_past_options)."""
    quoted = False
    i = 0
    while i < len(line):
        char = line[i]
        if char == "\\" and quoted and i + 1 < len(line) and line[i + 1] == '"':
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return i
        i += 1
    raise DecodeError("options with an unclosed quote" if quoted else "options but no key", field="authorized_keys")


def parse_line(line: str, line_number: int = 1) -> AuthorizedKey | None:
    """One line: None for a blank or ``#`` line, an :class:`AuthorizedKey`, or a DecodeError saying why not."""
    if len(line.encode("utf-8", errors="replace")) > MAX_LINE_BYTES:
        raise DecodeError(f"line longer than {MAX_LINE_BYTES} bytes", field="authorized_keys")
    line = line.rstrip("\r\n").strip(" \t")
    if not line or line.startswith("#"):
        return None
    flags: tuple[str, ...] = ()
    values: tuple[tuple[str, str], ...] = ()
    unknown: tuple[str, ...] = ()
    first = line.split(None, 1)[0]
    if first not in KEY_TYPES:
        end = _options_end(line)
        flags, values, unknown = parse_options(line[:end])
        line = line[end:].lstrip(" \t")
        if not line or line.split(None, 1)[0] not in KEY_TYPES:
            raise DecodeError(
                f"no key type we know after the options (we read {', '.join(KEY_TYPES)})", field="authorized_keys"
            )
    key, comment = parse_public_key_line(line)
    return AuthorizedKey(line_number, key, comment, flags, values, unknown)


# -- from= (match.c match_host_and_ip, addr.c addr_match_list) -------------------------------------
_CIDR_CHARS = frozenset("0123456789abcdefABCDEF.:/")


def _cidr(pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None | bool:
    """The network a pattern names; None if it is not an address (then a wildcard); False if malformed."""
    if not pattern or any(c not in _CIDR_CHARS for c in pattern):
        return None
    try:
        return ipaddress.ip_network(pattern, strict=True)
    except ValueError:
        try:
            ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return None
        return False  # host bits set under the mask: addr_pton_cidr's "inconsistent mask length", -2


def _address_match(address: str, patterns: str) -> int:
    """addr_match_list: 1 match, 0 none, -1 a negated match, -2 a malformed list."""
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return 0
    result = 0
    for raw in patterns.split(","):
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if not pattern:
            return -2
        network = _cidr(pattern)
        if network is False:
            return -2
        if network is None:
            matched = match_pattern(address, pattern)
        else:
            assert not isinstance(network, bool)
            matched = client.version == network.version and client in network
        if matched:
            if negated:
                return -1
            result = 1
    return result


def match_from(pattern_list: str, address: str, hostname: str | None = None) -> bool:
    """sshd's ``from=`` verdict for a client at ``address``, named ``hostname`` (the address when None).

    match_host_and_ip: a malformed address list or a negated address match refuses; then a negated
    host name match refuses; otherwise either an address or a name match admits.
    """
    host = address if hostname is None else hostname
    by_address = _address_match(address, pattern_list)
    if by_address in (-1, -2):
        return False
    by_name = match_pattern_list(host.lower(), pattern_list)
    if by_name == -1:
        return False
    return by_address == 1 or by_name == 1
