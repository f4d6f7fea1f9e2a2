"""Typed errors, and the TLS alert or SSH disconnect reason each one ends a connection with.

Every way a peer's bytes can be wrong has its own exception class here.  A protocol core catches
one, sends ``error.tls_alert`` (TLS) or ``error.ssh_disconnect`` (SSH) to the peer, and re-raises it
to its caller, so a learner sees *why* the connection ended, and the peer sees the alert the RFC
asks for.  Nothing a peer sends should surface as ``IndexError``, ``struct.error`` or a hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class TLSAlert(IntEnum):
    """AlertDescription values (RFC 5246 section 7.2, RFC 8446 section 6)."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    user_canceled = 90
    no_renegotiation = 100
    missing_extension = 109
    unsupported_extension = 110
    unrecognized_name = 112
    certificate_required = 116
    no_application_protocol = 120


class SSHDisconnect(IntEnum):
    """SSH_MSG_DISCONNECT reason codes (RFC 4253 section 11.1)."""

    HOST_NOT_ALLOWED_TO_CONNECT = 1
    PROTOCOL_ERROR = 2
    KEY_EXCHANGE_FAILED = 3
    RESERVED = 4
    MAC_ERROR = 5
    COMPRESSION_ERROR = 6
    SERVICE_NOT_AVAILABLE = 7
    PROTOCOL_VERSION_NOT_SUPPORTED = 8
    HOST_KEY_NOT_VERIFIABLE = 9
    CONNECTION_LOST = 10
    BY_APPLICATION = 11
    TOO_MANY_CONNECTIONS = 12
    AUTH_CANCELLED_BY_USER = 13
    NO_MORE_AUTH_METHODS_AVAILABLE = 14
    ILLEGAL_USER_NAME = 15


@dataclass(frozen=True)
class Exchange:
    """What crossed the wire before a connection failed, so a trace can show how it ended.

    ``transcript``: the records in order (the fatal alert included, ours or the peer's), as the core
    kept them; ``timings``: when each one was sent or received, ``(seconds, direction, index)``.
    """

    transcript: list[Any]
    timings: list[Any]


class HandshakeError(Exception):
    """Base class of every error this library raises on purpose.

    ``exchange``: when a function that runs a whole connection over a socket (``net.tls.open_tls``,
    ``net.tls.tls_get``) fails, it sets this, once, to what was exchanged up to the failure (an
    :class:`Exchange`); None when nothing ran.  ``transcript`` and ``timings`` read it.
    """

    exchange: Exchange | None = None

    @property
    def transcript(self) -> list[Any] | None:
        """The records exchanged up to the failure (``exchange.transcript``), or None."""
        return self.exchange.transcript if self.exchange is not None else None

    @property
    def timings(self) -> list[Any]:
        """When each of those records crossed the wire (``exchange.timings``); empty without an exchange."""
        return self.exchange.timings if self.exchange is not None else []


class EncodeError(HandshakeError, ValueError):
    """A value does not fit the wire format we were asked to write (a caller's mistake)."""


class ProtocolError(HandshakeError):
    """The peer broke the protocol.  Subclasses say how, and which alert or disconnect follows."""

    tls_alert: TLSAlert = TLSAlert.internal_error
    ssh_disconnect: SSHDisconnect = SSHDisconnect.PROTOCOL_ERROR


class DecodeError(ProtocolError, ValueError):
    """Bytes that cannot be parsed: truncated, over-long, or a length that does not add up.

    ``field`` names what we were reading and ``offset`` where in the buffer, so a learner looking at
    a hex view can find the byte that was wrong.
    """

    tls_alert = TLSAlert.decode_error
    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR

    def __init__(self, message: str, *, field: str = "", offset: int | None = None) -> None:
        where = []
        if field:
            where.append(f"field {field!r}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.field = field
        self.offset = offset


class UnexpectedMessage(ProtocolError):
    """A message arrived that the state table does not allow in the current state."""

    tls_alert = TLSAlert.unexpected_message
    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR


class IllegalParameter(ProtocolError):
    """A well-formed message carries a value the protocol forbids here."""

    tls_alert = TLSAlert.illegal_parameter
    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR


class BadRecordMac(ProtocolError):
    """A record failed its MAC or AEAD check (or its CBC padding, which must look the same)."""

    tls_alert = TLSAlert.bad_record_mac
    ssh_disconnect = SSHDisconnect.MAC_ERROR


class RecordOverflow(ProtocolError):
    """A record longer than the protocol allows."""

    tls_alert = TLSAlert.record_overflow
    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR


class DecryptError(ProtocolError):
    """A handshake cryptographic check failed: a signature, or Finished verify_data."""

    tls_alert = TLSAlert.decrypt_error
    ssh_disconnect = SSHDisconnect.KEY_EXCHANGE_FAILED


class HandshakeFailure(ProtocolError):
    """The two sides have no parameters in common."""

    tls_alert = TLSAlert.handshake_failure
    ssh_disconnect = SSHDisconnect.KEY_EXCHANGE_FAILED


class ProtocolVersionError(ProtocolError):
    """The peer speaks a version we do not."""

    tls_alert = TLSAlert.protocol_version
    ssh_disconnect = SSHDisconnect.PROTOCOL_VERSION_NOT_SUPPORTED


class CertificateError(ProtocolError):
    """The peer's certificate chain or host name did not validate.

    Raised as one of the subclasses below, each named after the alert it sends; catch this class to
    catch them all.  :mod:`handshake_lib.tls.verify` picks the subclass from checks of its own (is the
    chain anchored, is every certificate within its validity period, is the leaf for a TLS server, does
    it name the host), never from the wording of ``cryptography``'s error message.
    """

    tls_alert = TLSAlert.bad_certificate
    ssh_disconnect = SSHDisconnect.HOST_KEY_NOT_VERIFIABLE
    # The validator's report (handshake_lib.pki.validate.ValidationReport) when the error comes from one
    # (``report.error()`` sets it): every check, not only the one that failed.
    report: Any = None


class CertificateRequired(CertificateError):
    """A TLS 1.3 server requires a client certificate and got an empty Certificate (RFC 8446 4.4.2.4)."""

    tls_alert = TLSAlert.certificate_required


class BadCertificate(CertificateError):
    """A certificate that is well anchored but wrong: it names another host, or it does not parse."""

    tls_alert = TLSAlert.bad_certificate


class CertificateDecodeError(BadCertificate, ValueError):
    """A certificate, CRL or OCSP response that does not parse, or is larger than the validator's caps.

    A kind of :class:`BadCertificate` (RFC 5246: "a certificate was corrupt"), so it ends a handshake
    with ``bad_certificate``; the message names the input and what was wrong with it.
    """


class UnknownCA(CertificateError):
    """The chain does not lead to any certificate we trust (OpenSSL: unable to get local issuer)."""

    tls_alert = TLSAlert.unknown_ca


class CertificateExpired(CertificateError):
    """A certificate in the chain is past its notAfter date (or we have nothing to check it against)."""

    tls_alert = TLSAlert.certificate_expired


class CertificateRevoked(CertificateError):
    """A certificate in the chain was revoked by its issuer (by a CRL or an OCSP response)."""

    tls_alert = TLSAlert.certificate_revoked


class UnsupportedCertificate(CertificateError):
    """A valid certificate of a kind this handshake cannot use (not RSA, not for key encipherment...)."""

    tls_alert = TLSAlert.unsupported_certificate


class CertificateUnknown(CertificateError):
    """The verifier refused the chain for a reason none of our checks recognise (RFC 5246: "some other
    issue"; OpenSSL's default for verification errors it has no better alert for)."""

    tls_alert = TLSAlert.certificate_unknown


# --- SSH (RFC 4253): each class ends a connection with the disconnect reason it names (no TLS alert: TLS
# never raises them) ------------------------------------------------------------------------------------------


class KeyExchangeFailed(ProtocolError):
    """The SSH key exchange could not complete: a bad public value, a signature that does not verify."""

    ssh_disconnect = SSHDisconnect.KEY_EXCHANGE_FAILED


class NoCommonAlgorithm(KeyExchangeFailed):
    """Two KEXINITs share no algorithm in one category (``category``: "kex", "encryption client to
    server", ...); the message names the category and both lists, as OpenSSH's "no matching ..." does."""

    def __init__(self, category: str, client: list[str], server: list[str]) -> None:
        super().__init__(
            f"no matching {category} algorithm: client offered {','.join(client) or '(nothing)'}, "
            f"server offered {','.join(server) or '(nothing)'}"
        )
        self.category = category
        self.client = list(client)
        self.server = list(server)


class BadPacketMac(BadRecordMac):
    """An SSH packet failed its MAC or AEAD tag (or decrypted to a length that cannot be right)."""

    ssh_disconnect = SSHDisconnect.MAC_ERROR


class PacketTooLarge(ProtocolError):
    """An SSH packet announces more bytes than we accept; refused before any of them is buffered."""

    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR


class HostKeyNotVerifiable(ProtocolError):
    """The SSH server's host key is not one we can trust.  Subclasses say why."""

    ssh_disconnect = SSHDisconnect.HOST_KEY_NOT_VERIFIABLE


class UnknownHostKey(HostKeyNotVerifiable):
    """No known_hosts entry names this host, and the policy did not accept a new key."""


class HostKeyChanged(HostKeyNotVerifiable):
    """known_hosts holds a different key for this host ("REMOTE HOST IDENTIFICATION HAS CHANGED")."""


class HostKeyRevoked(HostKeyNotVerifiable):
    """known_hosts marks this key ``@revoked``."""


class BadHostKeySignature(KeyExchangeFailed):
    """The server's signature over the exchange hash H does not verify with its host key."""


class PrivateKeyError(DecodeError):
    """A private key file we cannot load; the subclasses say why (``field`` is ``private_key``)."""


class PassphraseRequired(PrivateKeyError):
    """The private key file is encrypted and no passphrase was given."""


class WrongPassphrase(PrivateKeyError):
    """The passphrase does not decrypt the private key (its two check integers differ, PROTOCOL.key)."""


class UnsupportedPrivateKey(PrivateKeyError):
    """A private key file that parses but holds a key type we do not use (DSA, security keys, ...)."""


class ServiceNotAvailable(ProtocolError):
    """The SSH peer asked for a service we do not run (only ``ssh-userauth`` is offered)."""

    ssh_disconnect = SSHDisconnect.SERVICE_NOT_AVAILABLE


class PasswordChangeRequired(ProtocolError):
    """The SSH server answered our password with SSH_MSG_USERAUTH_PASSWD_CHANGEREQ: it has expired.

    We do not change passwords (RFC 4252 section 8 allows it, the course does not teach it), so the
    login ends here with a clear message, as a cancelled authentication.
    """

    ssh_disconnect = SSHDisconnect.AUTH_CANCELLED_BY_USER


class AuthenticationFailed(HandshakeError):
    """No method we could try logged us in (OpenSSH's "Permission denied (publickey,password)").

    ``methods``: what the server last said can continue.
    """

    def __init__(self, user: str, methods: tuple[str, ...], detail: str = "") -> None:
        listed = ",".join(methods) if methods else "none left"
        super().__init__(f"{user}: permission denied ({listed})" + (f": {detail}" if detail else ""))
        self.user = user
        self.methods = methods


class TooManyAuthenticationAttempts(ProtocolError):
    """The SSH client went on asking to authenticate past the server's limit."""

    ssh_disconnect = SSHDisconnect.NO_MORE_AUTH_METHODS_AVAILABLE


class ChannelError(ProtocolError):
    """The SSH peer broke the connection protocol (RFC 4254) on a channel: data on an unknown or closed
    channel, data after its EOF, a reply to no request.  Ends the connection with PROTOCOL_ERROR."""

    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR


class WindowExceeded(ChannelError):
    """The SSH peer sent more channel data than our window allows, or a data packet larger than our
    maximum packet size (RFC 4254 section 5.2), or grew its own window past 2^32 - 1."""


class PeerDisconnect(HandshakeError):
    """The SSH peer sent SSH_MSG_DISCONNECT (``reason``: the code, ``description``: its text)."""

    def __init__(self, reason: int, description: str = "") -> None:
        try:
            name = SSHDisconnect(reason).name
        except ValueError:
            name = f"unknown reason {reason}"
        super().__init__(f"peer disconnected: {name} ({reason})" + (f": {description}" if description else ""))
        self.reason = reason
        self.description = description


class SFTPError(HandshakeError):
    """Base of the SFTP errors (``ssh/sftp.py``): the file transfer protocol inside an SSH channel."""


class SFTPStatusError(SFTPError):
    """An SFTP request answered with a STATUS other than SSH_FX_OK (or refused by a file system).

    ``code`` is the status code (``ssh.sftp.StatusCode``, a plain int for a code draft-02 does not
    define) and ``message`` the peer's text; a :class:`~handshake_lib.ssh.sftp.FileSystem` raises it to
    refuse a request, and the server answers with exactly that code and text.
    """

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(f"SFTP status {code}" + (f": {message}" if message else ""))
        self.code = code
        self.message = message


class SFTPProtocolError(SFTPError, ProtocolError):
    """The SFTP peer broke the protocol: a packet before INIT, a second INIT, a reply to no request, ..."""


class SFTPPacketTooLarge(SFTPProtocolError):
    """An SFTP packet announces more bytes than we accept (OpenSSH: 256 KiB); refused before buffering them."""


class UnexpectedEOF(ProtocolError):
    """The peer closed the TCP connection in the middle of the handshake or of a record.

    RFC 5246 has no alert for "you hung up on me"; OpenSSL reports it as an unexpected EOF and sends
    nothing (there is nobody left to read it).  Should the alert be written anyway, ``unexpected_message``
    is the closest description: the end of the stream came where a message was due.
    """

    tls_alert = TLSAlert.unexpected_message
    ssh_disconnect = SSHDisconnect.CONNECTION_LOST


class UnsupportedExtension(ProtocolError):
    """The peer answered an extension we never offered (RFC 5246 section 7.4.1.4)."""

    tls_alert = TLSAlert.unsupported_extension
    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR


class MissingExtension(ProtocolError):
    """A TLS 1.3 message lacks an extension it must carry (RFC 8446 section 4.2: ``missing_extension``)."""

    tls_alert = TLSAlert.missing_extension
    ssh_disconnect = SSHDisconnect.PROTOCOL_ERROR


class InternalError(ProtocolError):
    """Something failed on *our* side while handling the peer's bytes: a bug, or a learner's stage.

    It is a ProtocolError so that it travels the same road (fatal alert ``internal_error`` to the
    peer, then the exception to the caller), although the peer did nothing wrong; the message names
    the stage and the original exception is its ``__cause__``.
    """

    tls_alert = TLSAlert.internal_error
    ssh_disconnect = SSHDisconnect.BY_APPLICATION


class ConnectionStateError(HandshakeError, RuntimeError):
    """The application used a connection wrongly: after an error or close, before the handshake, twice.

    A caller's mistake, not the peer's: nothing is sent, and the connection's state does not change.
    """


class ChannelStateError(ConnectionStateError):
    """Our own use of a channel is wrong: data after our EOF or CLOSE, a reply to no request, a channel
    number that is not open.  Nothing is sent."""


class SendBufferFull(ChannelStateError):
    """``send_data`` would queue more than the channel's bound while the peer's window is shut; nothing
    was queued (wait for WindowAdjusted, then send the rest)."""


class HTTPResponseError(HandshakeError, ValueError):
    """The page came over TLS fine, but it is not an HTTP/1.x response we can read (h11 refused it)."""


class ResponseTruncated(HTTPResponseError):
    """The server closed before the end of the body it announced (Content-Length, or a chunked body's last
    chunk): what arrived is not the whole page, and must not pass for it.

    ``received``: the body bytes that arrived; ``expected``: the Content-Length, or None for a chunked body.
    """

    def __init__(self, received: int, expected: int | None) -> None:
        if expected is None:
            message = f"the server closed after {received} bytes of a chunked body, before its last chunk"
        else:
            message = f"the server closed after {received} of {expected} bytes of the body"
        super().__init__(message)
        self.received = received
        self.expected = expected


class ResponseTooLarge(HTTPResponseError):
    """The body is longer than the caller's limit (``max_body_bytes``): announced so, or found so while reading.

    ``limit``: that limit; ``declared``: the Content-Length when it was the reason, else None.
    """

    def __init__(self, limit: int, declared: int | None = None) -> None:
        if declared is not None:
            message = f"the response announces a Content-Length of {declared} bytes, more than the limit of {limit}"
        else:
            message = f"the body is longer than the limit: more than {limit} bytes"
        super().__init__(message)
        self.limit = limit
        self.declared = declared


class PeerAlert(HandshakeError):
    """The peer ended the connection with an alert (TLS) or a disconnect message (SSH)."""

    def __init__(self, description: int, message: str = "") -> None:
        try:
            name = TLSAlert(description).name
        except ValueError:
            name = f"unknown alert {description}"
        super().__init__(message or f"peer sent alert {name} ({description})")
        self.description = description


class ConnectionTimeout(HandshakeError, TimeoutError):
    """A network wait ran past its timeout."""


class ConnectionLost(HandshakeError, ConnectionError):
    """The network failed under a running connection (a reset while we wrote, a route that went away).

    The socket's own OSError is its ``__cause__``; ``errno`` and ``strerror`` are copied from it, so code
    that catches OSError still catches this, and ``exchange`` says how far the connection got.
    """
