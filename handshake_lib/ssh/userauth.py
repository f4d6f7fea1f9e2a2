"""The method-specific fields of SSH_MSG_USERAUTH_REQUEST, and the publickey signature (RFC 4252, 4256).

Theory of operation
-------------------
:class:`~handshake_lib.ssh.messages.UserauthRequest` decodes the fields every request shares (user,
service, method) and keeps the rest raw in ``method_data``.  :func:`decode_method_fields` reads that
rest for the three methods we speak, recording a :class:`~handshake_lib.wire.Span` for every field:

- ``publickey`` (RFC 4252 section 7): boolean has-signature, string algorithm, string public key
  blob, then (only when the flag is TRUE) string signature.  A client first asks "would you accept
  this key?" without a signature (the server answers PK_OK), then sends the same request signed.
- ``password`` (section 8): boolean change, string password, then (only when change is TRUE) string
  new password.  Passwords never appear in spans, explanations or reprs: only their length does.
- ``keyboard-interactive`` (RFC 4256 section 3.1): string language tag (deprecated, normally empty),
  string submethods (a hint such as ``pam``).

Each result has ``encode()``, the exact inverse, so ``decode(encode(x)) == x`` and a decoded request
re-encodes byte for byte.

The signature in a publickey request is over :func:`publickey_signed_data`, the blob section 7
defines: string session identifier (the first exchange hash H), byte 50 (SSH_MSG_USERAUTH_REQUEST),
string user, string service, string "publickey", boolean TRUE, string algorithm, string public key
blob.  Binding the session identifier is what stops a signature captured on one connection from
logging in on another.  :func:`verify_publickey_request` rebuilds that blob and checks the signature
with the key the request carries, reusing :mod:`~handshake_lib.ssh.hostkeys` (the same key and
signature formats as host keys: Ed25519, ECDSA P-256/384/521, RSA with SHA-2 per RFC 8332).  Whether
the key is *authorized* is a different question (authorized_keys), not answered here.

Sans-I/O: bytes in, dataclasses out; no sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import BadHostKeySignature, DecodeError, EncodeError
from ..wire import Reader, Span, Writer
from .constants import MessageNumber
from .hostkeys import REFUSED_SIGNATURE_ALGORITHMS, SIGNATURE_ALGORITHMS, decode_host_key
from .messages import UserauthRequest

__all__ = [
    "MAX_METHOD_DATA",
    "KeyboardInteractiveFields",
    "MethodFields",
    "PasswordFields",
    "SignedData",
    "decode_publickey_signed_data",
    "PublickeyFields",
    "decode_method_fields",
    "publickey_signed_data",
    "request_fields",
    "verify_publickey_request",
]

# A request fits in one packet (OpenSSH: 256 KiB); RSA-16384 keys and signatures are ~4 KiB, so 64 KiB
# bounds anything real and keeps a hostile request from costing more.
MAX_METHOD_DATA = 64 * 1024

# Which key blob type each publickey algorithm name needs: RSA keys sign under rsa-sha2-256/512
# (RFC 8332) while their blob still says ssh-rsa; the others name their own key type.
_KEY_TYPE_FOR_ALGORITHM: dict[str, str] = {
    algorithm: key_type for key_type, algorithms in SIGNATURE_ALGORITHMS.items() for algorithm in algorithms
}


@dataclass(frozen=True)
class PublickeyFields:
    """RFC 4252 section 7: the key offered, and (when ``has_signature``) the signature over the blob."""

    METHOD = "publickey"
    has_signature: bool
    algorithm: str
    public_key: bytes = field(repr=False)
    signature: bytes | None = field(default=None, repr=False)
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.has_signature != (self.signature is not None):
            raise EncodeError("a publickey request has a signature exactly when has_signature is TRUE")

    def encode(self) -> bytes:
        w = Writer().ssh_boolean(self.has_signature).ssh_string(self.algorithm).ssh_string(self.public_key)
        if self.signature is not None:
            w.ssh_string(self.signature)
        return w.getvalue()


@dataclass(frozen=True)
class PasswordFields:
    """RFC 4252 section 8: the password, or (``change``) the old password and a new one."""

    METHOD = "password"
    change: bool
    password: str = field(repr=False)
    new_password: str | None = field(default=None, repr=False)
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.change != (self.new_password is not None):
            raise EncodeError("a password request has a new password exactly when change is TRUE")

    def __repr__(self) -> str:  # never the password itself
        new = f", new_password=<{len(self.new_password.encode())} bytes>" if self.new_password is not None else ""
        return f"PasswordFields(change={self.change}, password=<{len(self.password.encode())} bytes>{new})"

    def encode(self) -> bytes:
        w = Writer().ssh_boolean(self.change).ssh_string(self.password)
        if self.new_password is not None:
            w.ssh_string(self.new_password)
        return w.getvalue()


@dataclass(frozen=True)
class KeyboardInteractiveFields:
    """RFC 4256 section 3.1: a language tag (deprecated) and submethod hints; the prompts come later."""

    METHOD = "keyboard-interactive"
    language: str = ""
    submethods: str = ""
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)

    def encode(self) -> bytes:
        return Writer().ssh_string(self.language).ssh_string(self.submethods).getvalue()


MethodFields = PublickeyFields | PasswordFields | KeyboardInteractiveFields


def _masked(what: str) -> Callable[[bytes], str]:  # a meaning that tells the length and nothing else
    return lambda raw: f"{what}: {len(raw)} bytes, masked (never shown)"


def decode_method_fields(method: str, data: bytes, *, base_offset: int = 0) -> MethodFields:
    """Decode ``method_data`` of a request for ``method``; DecodeError for malformed or unknown methods.

    ``base_offset``: where ``data`` starts in the enclosing buffer, so spans point into the packet.
    """
    data = bytes(data)
    if len(data) > MAX_METHOD_DATA:
        raise DecodeError(f"method fields of {len(data)} bytes, more than {MAX_METHOD_DATA}", field=method)
    r = Reader(data, base_offset=base_offset)
    if method == "publickey":
        with r.group("publickey", "RFC 4252 section 7"):
            signed = r.ssh_boolean(
                "has_signature",
                lambda v: "TRUE: signed, log me in" if v else "FALSE: a query, would you accept this key?",
            )
            algorithm = r.ssh_text("algorithm", "the public key algorithm (the signature's, for RSA rsa-sha2-*)")
            key = r.ssh_string("public_key", "the public key blob, as in a .pub file (base64-decoded)")
            signature = r.ssh_string("signature", "signature over the RFC 4252 section 7 blob") if signed else None
        r.expect_end("the publickey fields")
        return PublickeyFields(signed, algorithm, key, signature, tuple(r.spans))
    if method == "password":
        with r.group("password", "RFC 4252 section 8"):
            change = r.ssh_boolean("change", lambda v: "TRUE: change the password" if v else "FALSE: plain login")
            password = r.ssh_text("password", _masked("the (old) password"))
            new = r.ssh_text("new_password", _masked("the new password")) if change else None
        r.expect_end("the password fields")
        return PasswordFields(change, password, new, tuple(r.spans))
    if method == "keyboard-interactive":
        with r.group("keyboard_interactive", "RFC 4256 section 3.1"):
            language = r.ssh_text("language", "language tag, deprecated (normally empty)")
            submethods = r.ssh_text("submethods", "hints for the server (e.g. pam), comma-separated")
        r.expect_end("the keyboard-interactive fields")
        return KeyboardInteractiveFields(language, submethods, tuple(r.spans))
    raise DecodeError(f"method {method!r} has no decoder here", field="method_name", offset=base_offset)


def request_fields(request: UserauthRequest) -> MethodFields:
    """The decoded method fields of ``request`` (its ``method_data``)."""
    return decode_method_fields(request.method, request.method_data)


def publickey_signed_data(session_id: bytes, user: str, service: str, algorithm: str, public_key: bytes) -> bytes:
    """The blob a publickey signature covers, exactly as RFC 4252 section 7 defines it."""
    return (
        Writer()
        .ssh_string(session_id)
        .u8(MessageNumber.USERAUTH_REQUEST)  # byte 50
        .ssh_string(user)
        .ssh_string(service)
        .ssh_string("publickey")
        .ssh_boolean(True)
        .ssh_string(algorithm)
        .ssh_string(public_key)
        .getvalue()
    )


@dataclass(frozen=True)
class SignedData:
    """The RFC 4252 section 7 blob, taken apart: what a publickey signature covers, field by field."""

    session_id: bytes
    message_number: int
    user: str
    service: str
    method: str
    has_signature: bool
    algorithm: str
    public_key: bytes = field(repr=False)
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


def decode_publickey_signed_data(blob: bytes) -> SignedData:
    """Read a blob built as :func:`publickey_signed_data` builds it, recording a span for every field.

    Used to show the blob in a hex view and to compare a learner's blob with the library's field by
    field.  It reads what is there and does not judge it (a wrong message number or FALSE flag is
    returned as read, for the caller to point at); a blob that does not have the eight fields, or has
    bytes after them, is a DecodeError.
    """
    blob = bytes(blob)
    if len(blob) > MAX_METHOD_DATA:
        raise DecodeError(f"signed data of {len(blob)} bytes, more than {MAX_METHOD_DATA}", field="signed_data")
    r = Reader(blob)
    with r.group("signed_data", "RFC 4252 section 7: what the publickey signature covers"):
        session_id = r.ssh_string("session_id", "the session identifier: the first exchange hash H of this connection")
        number = r.u8(
            "message_number",
            lambda v: "SSH_MSG_USERAUTH_REQUEST (50)" if v == MessageNumber.USERAUTH_REQUEST else "not 50!",
        )
        user = r.ssh_text("user_name", "the user to log in as")
        service = r.ssh_text("service_name", "the service to start (ssh-connection)")
        method = r.ssh_text("method_name", "the method: publickey")
        signed = r.ssh_boolean("has_signature", lambda v: "TRUE, as in the signed request" if v else "FALSE!")
        algorithm = r.ssh_text("algorithm", "the signature algorithm named in the request")
        key = r.ssh_string("public_key", "the public key blob named in the request")
    r.expect_end("the signed data")
    return SignedData(session_id, number, user, service, method, signed, algorithm, key, tuple(r.spans))


def verify_publickey_request(session_id: bytes, request: UserauthRequest) -> bool:
    """True when ``request`` is a signed publickey request whose signature verifies under its own key.

    False for an unsigned query, an algorithm we do not verify (SHA-1 ``ssh-rsa``, certificates), an
    algorithm that does not match the key blob or the signature, or a signature that does not verify.
    A request whose fields are malformed raises DecodeError (bad bytes are not a "no").
    """
    if request.method != "publickey":
        return False
    fields = request_fields(request)
    assert isinstance(fields, PublickeyFields)
    if not fields.has_signature or fields.signature is None:
        return False
    key_type = _KEY_TYPE_FOR_ALGORITHM.get(fields.algorithm)
    if key_type is None or fields.algorithm in REFUSED_SIGNATURE_ALGORITHMS:
        return False
    try:
        key = decode_host_key(fields.public_key)
    except DecodeError:
        return False  # a key type we do not verify, or not a key: not a valid login either way
    if key.key_type != key_type:
        return False
    data = publickey_signed_data(session_id, request.user, request.service, fields.algorithm, fields.public_key)
    try:
        key.verify(fields.signature, data, allowed_algorithms=[fields.algorithm])
    except BadHostKeySignature:
        return False
    return True
