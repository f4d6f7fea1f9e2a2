"""SSH transport and user-authentication messages: frozen dataclasses with mirrored decode/encode.

Theory of operation
-------------------
A packet's payload (what is left once ``packet.py`` has removed the length, the padding and the MAC)
is one message: a message number byte, then fields in SSH's encodings (RFC 4251 section 5: ``byte``,
``boolean``, ``uint32``, ``string``, ``mpint``, ``name-list``).  Every message here is a frozen
dataclass, in the style of :mod:`handshake_lib.tls.messages`:

* ``decode(r)``, a classmethod, reads the whole payload (number included) from a
  :class:`~handshake_lib.wire.Reader`, recording a :class:`~handshake_lib.wire.Span` for every field
  (``kexinit.kex_algorithms``: "key exchange methods, first choice first");
* ``encode(w)`` writes exactly the same bytes, so ``decode(x).to_bytes() == x`` for every ``x`` that
  decodes, but for a ``boolean`` byte other than 0 and 1 (RFC 4251 reads any non-zero byte as TRUE; we
  write TRUE as 1).  The exchange hash takes the KEXINITs' bytes as received, never a re-encoding.

:func:`decode_message` dispatches on the first byte.  Numbers 30 and 31 mean different messages under
different key exchange methods (RFC 4250 section 4.1.2): ``kex_family="ecdh"`` reads
SSH_MSG_KEX_ECDH_INIT/REPLY (public values as strings: ECDH, curve25519 and the post-quantum hybrids
mlkem768x25519 and sntrup761x25519 all use these), ``"dh"`` reads SSH_MSG_KEXDH_INIT/REPLY (``e`` and
``f`` as mpints); without a family a 30 or 31 is :class:`~handshake_lib.errors.UnexpectedMessage`,
because outside a key exchange it cannot be right.  Any number this module does not model (connection
messages, group exchange, unknown numbers) decodes to :class:`UnknownMessage`, which keeps the body, so a
core can answer SSH_MSG_UNIMPLEMENTED as RFC 4253 section 11.4 requires.  The decoded message carries
its spans in ``message.spans`` (empty with ``annotate=False``: same checks, same errors, no spans).

Limits (also in ``docs/limits.md``): strings are bounded by the payload, which the packet layer bounds;
a name-list may hold at most :data:`~handshake_lib.ssh.constants.MAX_NAMES` names, each at most 64
characters (RFC 4251 section 6); SSH_MSG_EXT_INFO at most :data:`MAX_EXTENSIONS` extensions.

Errors: truncated or malformed fields, bytes after the last field and names over the limits are
:class:`~handshake_lib.errors.DecodeError` (disconnect PROTOCOL_ERROR); a message number we model read
where another was expected, or 30/31 without a key exchange, is ``UnexpectedMessage``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from ..errors import DecodeError, EncodeError, SSHDisconnect, UnexpectedMessage
from ..wire import Reader, Span, Writer
from .constants import MAX_NAME_LENGTH, MAX_NAMES, PSEUDO_ALGORITHMS, KexFamily, MessageNumber, message_name

__all__ = [
    "MAX_EXTENSIONS",
    "Message",
    "Disconnect",
    "Ignore",
    "Unimplemented",
    "Debug",
    "ServiceRequest",
    "ServiceAccept",
    "ExtInfo",
    "KexInit",
    "NewKeys",
    "KexECDHInit",
    "KexECDHReply",
    "KexDHInit",
    "KexDHReply",
    "UserauthRequest",
    "UserauthFailure",
    "UserauthSuccess",
    "UserauthBanner",
    "MAX_PROMPTS",
    "Prompt",
    "UserauthPkOk",
    "UserauthPasswdChangereq",
    "UserauthInfoRequest",
    "UserauthInfoResponse",
    "AUTH_METHOD_MESSAGES",
    "UnknownMessage",
    "MESSAGES",
    "decode_message",
]

# SSH_MSG_EXT_INFO carries a uint32 count; OpenSSH sends at most 5 extensions today.
MAX_EXTENSIONS = 64
COOKIE_LENGTH = 16  # RFC 4253 section 7.1

_M = TypeVar("_M", bound="Message")


# -- field helpers -------------------------------------------------------------------------------------
def _name_list(r: Reader, field_name: str, meaning: str) -> tuple[str, ...]:
    """A name-list with this library's limits: at most MAX_NAMES names of at most MAX_NAME_LENGTH characters."""
    offset = r.offset
    names = r.ssh_name_list(field_name, meaning if r.annotating else None)
    if len(names) > MAX_NAMES:
        raise DecodeError(f"name-list holds {len(names)} names, more than {MAX_NAMES}", field=field_name, offset=offset)
    for name in names:
        if len(name) > MAX_NAME_LENGTH:
            raise DecodeError(
                f"name {name[:20]!r}... is {len(name)} characters long; RFC 4251 section 6 allows {MAX_NAME_LENGTH}",
                field=field_name,
                offset=offset,
            )
    if r.annotating:
        signals = [name for name in names if name in PSEUDO_ALGORITHMS]
        shown = ", ".join(names) if names else "(empty)"
        r.annotate(f"{meaning}: {shown}" + (f" (signals, never chosen: {', '.join(signals)})" if signals else ""))
    return tuple(names)


def _check_names(names: Sequence[str], what: str) -> None:
    """The encode-side mirror of :func:`_name_list`'s limits."""
    if len(names) > MAX_NAMES:
        raise EncodeError(f"{what} holds {len(names)} names, more than {MAX_NAMES}")
    for name in names:
        if len(name) > MAX_NAME_LENGTH:
            raise EncodeError(f"{name!r} in {what} is longer than {MAX_NAME_LENGTH} characters")


def _disconnect_reason(value: int) -> str:
    try:
        return f"SSH_DISCONNECT_{SSHDisconnect(value).name}"
    except ValueError:
        return f"unknown reason code {value}"


# -- the base class ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """Base of every message: the number byte around a typed body.

    Subclasses set ``NUMBER`` and implement ``decode_body``/``encode_body``.  ``spans`` holds what
    :func:`decode_message` recorded (empty for a message built in code, or decoded with
    ``annotate=False``); it takes no part in equality.
    """

    NUMBER: ClassVar[int]
    GROUP: ClassVar[str]  # the span name of the whole message, e.g. "kexinit"
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False, kw_only=True)

    @property
    def message_number(self) -> int:
        return self.NUMBER

    @property
    def name(self) -> str:
        """The RFC name, e.g. ``SSH_MSG_KEXINIT``."""
        return "SSH_MSG_" + self.GROUP.upper()  # the group names are the RFC names in lower case

    @classmethod
    def decode_body(cls: type[_M], r: Reader) -> _M:
        raise NotImplementedError

    def encode_body(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def decode(cls: type[_M], r: Reader) -> _M:
        """Read a whole payload that must be this message (the number byte first, no bytes after it)."""
        name = "SSH_MSG_" + cls.GROUP.upper()
        with r.group(cls.GROUP, name) as message:
            offset = message.offset
            # Named after the class, not the byte: 30 is SSH_MSG_KEX_ECDH_INIT here only because the
            # caller's kex family said so.
            number = message.u8("message_number", lambda v: name if v == cls.NUMBER else message_name(v))
            if number != cls.NUMBER:
                raise UnexpectedMessage(
                    f"expected {name} ({cls.NUMBER}), got {message_name(number)} ({number}) at offset {offset}"
                )
            decoded = cls.decode_body(message)
        r.expect_end(name)
        return decoded

    def encode(self, w: Writer) -> None:
        w.u8(self.message_number)
        self.encode_body(w)

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.getvalue()


# -- transport layer generic (RFC 4253 sections 10 and 11, RFC 8308) ----------------------------------
@dataclass(frozen=True)
class Disconnect(Message):
    """SSH_MSG_DISCONNECT (RFC 4253 section 11.1): the connection ends, with a reason code and text.

    ``reason`` is an :class:`~handshake_lib.errors.SSHDisconnect` when the code is one RFC 4253 defines,
    else the plain number (private codes exist); ``reason_name`` names either.
    """

    NUMBER: ClassVar[int] = MessageNumber.DISCONNECT
    GROUP: ClassVar[str] = "disconnect"
    reason: int = SSHDisconnect.PROTOCOL_ERROR
    description: str = ""
    language: str = ""

    @property
    def reason_name(self) -> str:
        return _disconnect_reason(self.reason)

    @classmethod
    def decode_body(cls, r: Reader) -> Disconnect:
        code = r.u32("reason_code", _disconnect_reason)
        try:
            reason: int = SSHDisconnect(code)
        except ValueError:
            reason = code  # a code RFC 4253 does not define (private codes exist): kept as the number
        description = r.ssh_text("description", "human-readable reason (UTF-8)")
        language = r.ssh_text("language_tag", "language of the description (RFC 3066), usually empty")
        return cls(reason, description, language)

    def encode_body(self, w: Writer) -> None:
        w.u32(self.reason).ssh_string(self.description).ssh_string(self.language)


@dataclass(frozen=True)
class Ignore(Message):
    """SSH_MSG_IGNORE (RFC 4253 section 11.2): data to be ignored (padding traffic, or a keep-alive)."""

    NUMBER: ClassVar[int] = MessageNumber.IGNORE
    GROUP: ClassVar[str] = "ignore"
    data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> Ignore:
        return cls(r.ssh_string("data", "arbitrary bytes the receiver must ignore"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.data)


@dataclass(frozen=True)
class Unimplemented(Message):
    """SSH_MSG_UNIMPLEMENTED (RFC 4253 section 11.4): "I do not know the packet you sent with this number"."""

    NUMBER: ClassVar[int] = MessageNumber.UNIMPLEMENTED
    GROUP: ClassVar[str] = "unimplemented"
    sequence_number: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> Unimplemented:
        return cls(r.u32("packet_sequence_number", "the sequence number of the rejected packet"))

    def encode_body(self, w: Writer) -> None:
        w.u32(self.sequence_number)


@dataclass(frozen=True)
class Debug(Message):
    """SSH_MSG_DEBUG (RFC 4253 section 11.3): a message for debugging, shown when ``always_display``."""

    NUMBER: ClassVar[int] = MessageNumber.DEBUG
    GROUP: ClassVar[str] = "debug"
    always_display: bool = False
    message: str = ""
    language: str = ""

    @classmethod
    def decode_body(cls, r: Reader) -> Debug:
        always = r.ssh_boolean("always_display", lambda v: "show it to the user" if v else "show it only if asked")
        message = r.ssh_text("message", "debugging text (UTF-8)")
        return cls(always, message, r.ssh_text("language_tag", "language of the message, usually empty"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_boolean(self.always_display).ssh_string(self.message).ssh_string(self.language)


@dataclass(frozen=True)
class ServiceRequest(Message):
    """SSH_MSG_SERVICE_REQUEST (RFC 4253 section 10): the client asks for ``ssh-userauth`` (or another service)."""

    NUMBER: ClassVar[int] = MessageNumber.SERVICE_REQUEST
    GROUP: ClassVar[str] = "service_request"
    service: str = "ssh-userauth"

    @classmethod
    def decode_body(cls, r: Reader) -> ServiceRequest:
        return cls(r.ssh_text("service_name", "the service the client wants to start"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.service)


@dataclass(frozen=True)
class ServiceAccept(Message):
    """SSH_MSG_SERVICE_ACCEPT (RFC 4253 section 10): the server starts the service."""

    NUMBER: ClassVar[int] = MessageNumber.SERVICE_ACCEPT
    GROUP: ClassVar[str] = "service_accept"
    service: str = "ssh-userauth"

    @classmethod
    def decode_body(cls, r: Reader) -> ServiceAccept:
        return cls(r.ssh_text("service_name", "the service the server starts"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.service)


SERVER_SIG_ALGS = "server-sig-algs"


@dataclass(frozen=True)
class ExtInfo(Message):
    """SSH_MSG_EXT_INFO (RFC 8308 section 2.3): extension name/value pairs, sent right after NEWKEYS.

    Values are kept as bytes (their meaning depends on the extension); ``server-sig-algs``, the
    signature algorithms a server accepts for public key authentication, is checked and annotated as
    a name-list, and :attr:`server_sig_algs` reads it.
    """

    NUMBER: ClassVar[int] = MessageNumber.EXT_INFO
    GROUP: ClassVar[str] = "ext_info"
    extensions: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def with_server_sig_algs(cls, algorithms: Sequence[str], *others: tuple[str, bytes]) -> ExtInfo:
        return cls(((SERVER_SIG_ALGS, ",".join(algorithms).encode("ascii")), *others))

    @property
    def server_sig_algs(self) -> tuple[str, ...] | None:
        for name, value in self.extensions:
            if name == SERVER_SIG_ALGS:
                return tuple(value.decode("ascii").split(",")) if value else ()
        return None

    @classmethod
    def decode_body(cls, r: Reader) -> ExtInfo:
        offset = r.offset
        count = r.u32("nr_extensions", "number of extensions")
        if count > MAX_EXTENSIONS:
            raise DecodeError(f"{count} extensions, more than {MAX_EXTENSIONS}", field="nr_extensions", offset=offset)
        extensions = []
        for _ in range(count):
            with r.group("extension", "one extension") as extension:
                name = extension.ssh_text("extension_name", "extension name")
                if name == SERVER_SIG_ALGS:
                    names = _name_list(extension, "extension_value", "signature algorithms accepted for user auth")
                    value = ",".join(names).encode("ascii")  # exactly the bytes read: the list was checked
                else:
                    value = extension.ssh_string("extension_value", f"value of {name}")
            extensions.append((name, value))
        return cls(tuple(extensions))

    def encode_body(self, w: Writer) -> None:
        if len(self.extensions) > MAX_EXTENSIONS:
            raise EncodeError(f"{len(self.extensions)} extensions, more than {MAX_EXTENSIONS}")
        w.u32(len(self.extensions))
        for name, value in self.extensions:
            if name == SERVER_SIG_ALGS:
                names = value.decode("ascii").split(",") if value else []
                _check_names(names, SERVER_SIG_ALGS)
                w.ssh_string(name).ssh_name_list(names)
            else:
                w.ssh_string(name).ssh_string(value)


# -- algorithm negotiation (RFC 4253 sections 7.1 and 7.3) -------------------------------------------
# The ten name-lists of a KEXINIT, in wire order: (attribute, span field, meaning).
KEXINIT_LISTS: tuple[tuple[str, str, str], ...] = (
    ("kex_algorithms", "kex_algorithms", "key exchange methods, first choice first"),
    ("server_host_key_algorithms", "server_host_key_algorithms", "host key algorithms"),
    ("encryption_client_to_server", "encryption_algorithms_client_to_server", "ciphers, client to server"),
    ("encryption_server_to_client", "encryption_algorithms_server_to_client", "ciphers, server to client"),
    ("mac_client_to_server", "mac_algorithms_client_to_server", "MACs, client to server"),
    ("mac_server_to_client", "mac_algorithms_server_to_client", "MACs, server to client"),
    ("compression_client_to_server", "compression_algorithms_client_to_server", "compression, client to server"),
    ("compression_server_to_client", "compression_algorithms_server_to_client", "compression, server to client"),
    ("languages_client_to_server", "languages_client_to_server", "languages, client to server (usually empty)"),
    ("languages_server_to_client", "languages_server_to_client", "languages, server to client (usually empty)"),
)


@dataclass(frozen=True)
class KexInit(Message):
    """SSH_MSG_KEXINIT (RFC 4253 section 7.1): a random cookie, ten name-lists, and whether a guess follows.

    Both sides send one; :func:`handshake_lib.ssh.negotiation.negotiate` picks the algorithms from the
    pair.  The exact payload bytes of both enter the exchange hash H (I_C and I_S), so the core keeps
    the bytes it sent and received, not a re-encoding.
    """

    NUMBER: ClassVar[int] = MessageNumber.KEXINIT
    GROUP: ClassVar[str] = "kexinit"
    cookie: bytes = bytes(COOKIE_LENGTH)
    kex_algorithms: tuple[str, ...] = ()
    server_host_key_algorithms: tuple[str, ...] = ()
    encryption_client_to_server: tuple[str, ...] = ()
    encryption_server_to_client: tuple[str, ...] = ()
    mac_client_to_server: tuple[str, ...] = ()
    mac_server_to_client: tuple[str, ...] = ()
    compression_client_to_server: tuple[str, ...] = ()
    compression_server_to_client: tuple[str, ...] = ()
    languages_client_to_server: tuple[str, ...] = ()
    languages_server_to_client: tuple[str, ...] = ()
    first_kex_packet_follows: bool = False
    reserved: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> KexInit:
        cookie = r.raw(COOKIE_LENGTH, "cookie", "16 random bytes: make each H unique, even with the same keys")
        lists = [_name_list(r, span_field, meaning) for _, span_field, meaning in KEXINIT_LISTS]
        follows = r.ssh_boolean(
            "first_kex_packet_follows",
            lambda v: "a guessed key exchange packet follows" if v else "no guessed packet follows",
        )
        reserved = r.u32("reserved", lambda v: "reserved, 0" if v == 0 else f"reserved, {v} (should be 0)")
        return cls(cookie, *lists, first_kex_packet_follows=follows, reserved=reserved)

    def encode_body(self, w: Writer) -> None:
        if len(self.cookie) != COOKIE_LENGTH:
            raise EncodeError(f"the KEXINIT cookie must be {COOKIE_LENGTH} bytes, not {len(self.cookie)}")
        w.raw(self.cookie)
        for attribute, span_field, _ in KEXINIT_LISTS:
            names = getattr(self, attribute)
            _check_names(names, span_field)
            w.ssh_name_list(names)
        w.ssh_boolean(self.first_kex_packet_follows).u32(self.reserved)


@dataclass(frozen=True)
class NewKeys(Message):
    """SSH_MSG_NEWKEYS (RFC 4253 section 7.3): from the next packet on, this direction uses the new keys."""

    NUMBER: ClassVar[int] = MessageNumber.NEWKEYS
    GROUP: ClassVar[str] = "newkeys"

    @classmethod
    def decode_body(cls, r: Reader) -> NewKeys:
        return cls()

    def encode_body(self, w: Writer) -> None:
        pass


# -- key exchange (RFC 4253 section 8; RFC 5656 section 4; RFC 8731; the PQ hybrids) -------------------
@dataclass(frozen=True)
class KexECDHInit(Message):
    """SSH_MSG_KEX_ECDH_INIT (30): the client's public value Q_C, as a string.

    32 bytes for curve25519, 65 for nistp256 (uncompressed point), 1216 for mlkem768x25519 (ML-KEM
    encapsulation key + X25519 key) and 1190 for sntrup761x25519 (sntrup761 public key + X25519 key).
    """

    NUMBER: ClassVar[int] = MessageNumber.KEX_ECDH_INIT
    GROUP: ClassVar[str] = "kex_ecdh_init"
    client_public: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> KexECDHInit:
        return cls(r.ssh_string("Q_C", lambda v: f"the client's ephemeral public value ({len(v)} bytes)"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.client_public)


@dataclass(frozen=True)
class KexECDHReply(Message):
    """SSH_MSG_KEX_ECDH_REPLY (31): the host key K_S, the server's public value Q_S and its signature over H.

    For the hybrids Q_S holds the KEM ciphertext followed by the server's X25519 key.
    """

    NUMBER: ClassVar[int] = MessageNumber.KEX_ECDH_REPLY
    GROUP: ClassVar[str] = "kex_ecdh_reply"
    host_key: bytes = b""
    server_public: bytes = b""
    signature: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> KexECDHReply:
        host_key = r.ssh_string("K_S", "the server's public host key blob")
        server_public = r.ssh_string("Q_S", lambda v: f"the server's ephemeral public value ({len(v)} bytes)")
        signature = r.ssh_string("signature", "the host key's signature over the exchange hash H")
        return cls(host_key, server_public, signature)

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.host_key).ssh_string(self.server_public).ssh_string(self.signature)


@dataclass(frozen=True)
class KexDHInit(Message):
    """SSH_MSG_KEXDH_INIT (30): the client's public value e = g^x mod p, as an mpint."""

    NUMBER: ClassVar[int] = MessageNumber.KEXDH_INIT
    GROUP: ClassVar[str] = "kexdh_init"
    client_public: int = 0

    @classmethod
    def decode_body(cls, r: Reader) -> KexDHInit:
        return cls(r.ssh_mpint("e", lambda v: f"e = g^x mod p: the client's public value ({len(v)} bytes)"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_mpint(self.client_public)


@dataclass(frozen=True)
class KexDHReply(Message):
    """SSH_MSG_KEXDH_REPLY (31): K_S, the server's public value f = g^y mod p (mpint), and the signature over H."""

    NUMBER: ClassVar[int] = MessageNumber.KEXDH_REPLY
    GROUP: ClassVar[str] = "kexdh_reply"
    host_key: bytes = b""
    server_public: int = 0
    signature: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> KexDHReply:
        host_key = r.ssh_string("K_S", "the server's public host key blob")
        server_public = r.ssh_mpint("f", lambda v: f"f = g^y mod p: the server's public value ({len(v)} bytes)")
        signature = r.ssh_string("signature", "the host key's signature over the exchange hash H")
        return cls(host_key, server_public, signature)

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.host_key).ssh_mpint(self.server_public).ssh_string(self.signature)


# -- user authentication (RFC 4252): what the transport issue needs, the rest kept raw -----------------
@dataclass(frozen=True)
class UserauthRequest(Message):
    """SSH_MSG_USERAUTH_REQUEST (RFC 4252 section 5): user, service, method, then method-specific fields.

    Only ``none`` (no fields: "which methods may I use?") is decoded; the fields of every other method
    are kept as raw bytes in ``method_data`` for the user-authentication issue to decode.
    """

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_REQUEST
    GROUP: ClassVar[str] = "userauth_request"
    user: str = ""
    service: str = "ssh-connection"
    method: str = "none"
    method_data: bytes = b""

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthRequest:
        user = r.ssh_text("user_name", "the user to log in as (UTF-8)")
        service = r.ssh_text("service_name", "the service to start after authentication")
        method = r.ssh_text("method_name", lambda v: "no authentication: asks for the methods" if v == b"none" else "")
        if method == "none":
            return cls(user, service, method)
        data = r.rest("method_fields", f"fields of the {method!r} method (not decoded here)")
        return cls(user, service, method, data)

    def encode_body(self, w: Writer) -> None:
        if self.method == "none" and self.method_data:
            raise EncodeError("the none method has no fields")
        w.ssh_string(self.user).ssh_string(self.service).ssh_string(self.method).raw(self.method_data)


@dataclass(frozen=True)
class UserauthFailure(Message):
    """SSH_MSG_USERAUTH_FAILURE (RFC 4252 section 5.1): the methods that can continue, and partial success."""

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_FAILURE
    GROUP: ClassVar[str] = "userauth_failure"
    methods: tuple[str, ...] = ()
    partial_success: bool = False

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthFailure:
        methods = _name_list(r, "authentications_that_can_continue", "methods that may continue")
        partial = r.ssh_boolean(
            "partial_success", lambda v: "the last method succeeded, more are needed" if v else "not a partial success"
        )
        return cls(methods, partial)

    def encode_body(self, w: Writer) -> None:
        _check_names(self.methods, "methods")
        w.ssh_name_list(self.methods).ssh_boolean(self.partial_success)


@dataclass(frozen=True)
class UserauthSuccess(Message):
    """SSH_MSG_USERAUTH_SUCCESS (RFC 4252 section 5.1): authentication is complete."""

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_SUCCESS
    GROUP: ClassVar[str] = "userauth_success"

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthSuccess:
        return cls()

    def encode_body(self, w: Writer) -> None:
        pass


@dataclass(frozen=True)
class UserauthBanner(Message):
    """SSH_MSG_USERAUTH_BANNER (RFC 4252 section 5.4): text to show the user before authentication."""

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_BANNER
    GROUP: ClassVar[str] = "userauth_banner"
    message: str = ""
    language: str = ""

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthBanner:
        message = r.ssh_text("message", "banner text (UTF-8)")
        return cls(message, r.ssh_text("language_tag", "language of the banner, usually empty"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.message).ssh_string(self.language)


# -- method-specific user authentication messages (RFC 4252 sections 7 and 8, RFC 4256) ------------------
# Number 60 means a different message for each method, as 30 and 31 do for each key exchange family: what
# the client's outstanding request asked for decides (``decode_message(..., auth_method=...)``).
MAX_PROMPTS = 32  # prompts in one SSH_MSG_USERAUTH_INFO_REQUEST or responses in one INFO_RESPONSE


def _masked_answer(raw: bytes) -> str:  # an answer may be a password or a one-time code: its length only
    return f"{len(raw)} bytes, masked (never shown)"


@dataclass(frozen=True)
class UserauthPkOk(Message):
    """SSH_MSG_USERAUTH_PK_OK (RFC 4252 section 7): "I would accept a signature from this key"."""

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_PK_OK
    GROUP: ClassVar[str] = "userauth_pk_ok"
    algorithm: str = ""
    public_key: bytes = field(default=b"", repr=False)

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthPkOk:
        algorithm = r.ssh_text("algorithm", "the algorithm of the query, echoed")
        return cls(algorithm, r.ssh_string("public_key", "the key of the query, echoed: sign with it now"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.algorithm).ssh_string(self.public_key)


@dataclass(frozen=True)
class UserauthPasswdChangereq(Message):
    """SSH_MSG_USERAUTH_PASSWD_CHANGEREQ (RFC 4252 section 8): the password has expired, choose a new one."""

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_PASSWD_CHANGEREQ
    GROUP: ClassVar[str] = "userauth_passwd_changereq"
    prompt: str = ""
    language: str = ""

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthPasswdChangereq:
        prompt = r.ssh_text("prompt", "why a new password is needed (UTF-8)")
        return cls(prompt, r.ssh_text("language_tag", "language of the prompt, usually empty"))

    def encode_body(self, w: Writer) -> None:
        w.ssh_string(self.prompt).ssh_string(self.language)


@dataclass(frozen=True)
class Prompt:
    """One question of a keyboard-interactive round: its text, and whether the answer may be echoed."""

    text: str
    echo: bool = False


@dataclass(frozen=True)
class UserauthInfoRequest(Message):
    """SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 section 3.2): one round of questions for the user."""

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_INFO_REQUEST
    GROUP: ClassVar[str] = "userauth_info_request"
    title: str = ""  # the RFC's "name": shown as a heading
    instruction: str = ""
    prompts: tuple[Prompt, ...] = ()
    language: str = ""

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthInfoRequest:
        title = r.ssh_text("name", "a title for the round (may be empty)")
        instruction = r.ssh_text("instruction", "what to do (may be empty)")
        language = r.ssh_text("language_tag", "deprecated, normally empty")
        count = r.u32("num_prompts", lambda v: f"{v} question(s); 0: the server only shows the texts")
        if count > MAX_PROMPTS:
            raise DecodeError(f"{count} prompts, more than {MAX_PROMPTS}", field="num_prompts")
        prompts = []
        for index in range(count):
            with r.group(f"prompt_{index + 1}", f"question {index + 1}") as g:
                text = g.ssh_text("prompt", "the question shown to the user")
                echo = g.ssh_boolean("echo", lambda v: "show what is typed" if v else "hide what is typed")
            prompts.append(Prompt(text, echo))
        return cls(title, instruction, tuple(prompts), language)

    def encode_body(self, w: Writer) -> None:
        if len(self.prompts) > MAX_PROMPTS:
            raise EncodeError(f"{len(self.prompts)} prompts, more than {MAX_PROMPTS}")
        w.ssh_string(self.title).ssh_string(self.instruction).ssh_string(self.language).u32(len(self.prompts))
        for prompt in self.prompts:
            w.ssh_string(prompt.text).ssh_boolean(prompt.echo)


@dataclass(frozen=True)
class UserauthInfoResponse(Message):
    """SSH_MSG_USERAUTH_INFO_RESPONSE (RFC 4256 section 3.4): one answer per prompt, in order (masked in spans)."""

    NUMBER: ClassVar[int] = MessageNumber.USERAUTH_INFO_RESPONSE
    GROUP: ClassVar[str] = "userauth_info_response"
    responses: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never the answers themselves
        return f"UserauthInfoResponse(<{len(self.responses)} answer(s), masked>)"

    @classmethod
    def decode_body(cls, r: Reader) -> UserauthInfoResponse:
        count = r.u32("num_responses", "one answer per prompt of the request")
        if count > MAX_PROMPTS:
            raise DecodeError(f"{count} responses, more than {MAX_PROMPTS}", field="num_responses")
        return cls(tuple(r.ssh_text(f"response_{index + 1}", _masked_answer) for index in range(count)))

    def encode_body(self, w: Writer) -> None:
        if len(self.responses) > MAX_PROMPTS:
            raise EncodeError(f"{len(self.responses)} responses, more than {MAX_PROMPTS}")
        w.u32(len(self.responses))
        for response in self.responses:
            w.ssh_string(response)


# -- everything else ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnknownMessage(Message):
    """A message number this module does not model (or no one does): the number and the body, unread.

    RFC 4253 section 11.4: an implementation MUST answer an unrecognized message with
    SSH_MSG_UNIMPLEMENTED carrying the packet's sequence number.
    """

    NUMBER: ClassVar[int] = -1
    GROUP: ClassVar[str] = "message"
    number: int = 0
    body: bytes = b""

    @property
    def message_number(self) -> int:
        return self.number

    @property
    def name(self) -> str:
        return message_name(self.number)

    @classmethod
    def decode(cls, r: Reader) -> UnknownMessage:
        with r.group(cls.GROUP, "a message this library does not decode") as message:
            number = message.u8("message_number", message_name)
            body = message.rest("body", "not decoded: answered with SSH_MSG_UNIMPLEMENTED")
        return cls(number, body)

    def encode_body(self, w: Writer) -> None:
        w.raw(self.body)


# Messages whose number alone says what they are; 30 and 31 are resolved with the kex family.
MESSAGES: dict[int, type[Message]] = {
    cls.NUMBER: cls
    for cls in (
        Disconnect,
        Ignore,
        Unimplemented,
        Debug,
        ServiceRequest,
        ServiceAccept,
        ExtInfo,
        KexInit,
        NewKeys,
        UserauthRequest,
        UserauthFailure,
        UserauthSuccess,
        UserauthBanner,
        UserauthInfoResponse,
    )
}
# What 60 is, by the method of the request it answers.
AUTH_METHOD_MESSAGES: dict[str, type[Message]] = {
    "publickey": UserauthPkOk,
    "password": UserauthPasswdChangereq,
    "keyboard-interactive": UserauthInfoRequest,
}
_KEX_MESSAGES: dict[str, dict[int, type[Message]]] = {
    "ecdh": {MessageNumber.KEX_ECDH_INIT: KexECDHInit, MessageNumber.KEX_ECDH_REPLY: KexECDHReply},
    "dh": {MessageNumber.KEXDH_INIT: KexDHInit, MessageNumber.KEXDH_REPLY: KexDHReply},
}


def decode_message(
    payload: bytes, *, kex_family: KexFamily | None = None, auth_method: str | None = None, annotate: bool = True
) -> Message:
    """Decode one packet payload into its message; the spans are in ``message.spans``.

    ``kex_family``: ``"ecdh"`` or ``"dh"`` while a key exchange of that family runs (it decides what 30
    and 31 are, see the module docstring), None otherwise.  ``auth_method``: the method of the client's
    outstanding authentication request, which decides what 60 is (PK_OK, PASSWD_CHANGEREQ or
    INFO_REQUEST); without one a 60 is kept whole as :class:`UnknownMessage`, as unknown numbers are.
    """
    if kex_family is not None and kex_family not in _KEX_MESSAGES:
        raise ValueError(f"kex_family must be 'ecdh', 'dh' or None, not {kex_family!r}")
    r = Reader(payload, annotate=annotate)
    if not payload:
        raise DecodeError("an empty payload has no message number", field="message_number", offset=0)
    number = payload[0]
    cls: type[Message] | None
    if number in (MessageNumber.KEXDH_INIT, MessageNumber.KEXDH_REPLY):
        if kex_family is None:
            raise UnexpectedMessage(
                f"message {number} ({message_name(number)}) depends on the key exchange method, "
                "and no key exchange is in progress"
            )
        cls = _KEX_MESSAGES[kex_family][number]
    elif number == MessageNumber.USERAUTH_PK_OK:
        cls = AUTH_METHOD_MESSAGES.get(auth_method or "", UnknownMessage)
    else:
        cls = MESSAGES.get(number, UnknownMessage)
    message = cls.decode(r)
    if not annotate:
        return message
    return _with_spans(message, r.spans)


def _with_spans(message: Message, spans: list[Span]) -> Message:
    object.__setattr__(message, "spans", tuple(spans))  # frozen: set once, right after decoding
    return message


# The connection protocol's messages (80-100) live in channel_messages.py, which adds them to MESSAGES.
from . import channel_messages as _channel_messages  # noqa: E402,F401  (after MESSAGES exists: no cycle)
