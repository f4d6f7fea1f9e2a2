"""``--trace``: a TLS handshake as text, record by record, with every byte explained.

For each record of a transcript: a header line (number, direction, content type, size), one line per
decoded message (a short summary: suites offered, suite chosen, certificate subject...), then the
record's hex dump with the annotated spans under it (:func:`~handshake_lib.viz.hexview.render_hex_text`,
the same spans the notebooks' hex views draw).  A protected record is dumped as it travelled (a header
and ciphertext) and, when it could be decrypted, its plaintext is dumped after a note saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..tls.connection import ApplicationData, TranscriptEntry, plaintext_spans
from ..tls.constants import ExtensionType, KeyUpdateRequest, NamedGroup, ProtocolVersion, name_of
from ..tls.messages import Alert, Certificate, ClientHello, ClientKeyExchange, Finished, ServerHello, cipher_suite_name
from ..tls.messages13 import Certificate13, EncryptedExtensions, KeyUpdate, NewSessionTicket13
from ..wire import Span

__all__ = ["describe_message", "render_entry", "render_transcript"]

# TranscriptEntry.direction -> how the header line shows it.
_ARROWS = {"client->server": "client -> server", "server->client": "server -> client"}


def describe_message(message: object) -> str:
    """A one-line summary of a decoded message; the hex dump underneath has every field."""
    if isinstance(message, ClientHello):
        suites = ", ".join(cipher_suite_name(suite) for suite in message.cipher_suites)
        return f"ClientHello: {len(message.cipher_suites)} cipher_suites offered: {suites}"
    if isinstance(message, ServerHello):
        return _describe_server_hello(message)
    if isinstance(message, Certificate | Certificate13):
        return f"Certificate: {'; '.join(_subjects(message.certificates))}"
    if isinstance(message, EncryptedExtensions):
        names = ", ".join(name_of(ExtensionType, e.extension_type) for e in message.extensions) or "none"
        return f"EncryptedExtensions: {names}"
    if isinstance(message, NewSessionTicket13):
        return f"NewSessionTicket: lifetime {message.ticket_lifetime} s, ticket of {len(message.ticket)} bytes"
    if isinstance(message, KeyUpdate):
        return f"KeyUpdate: {name_of(KeyUpdateRequest, message.request_update)}"
    if isinstance(message, ClientKeyExchange):
        return "ClientKeyExchange: the pre-master secret, RSA-encrypted to the server's key"
    if isinstance(message, Finished):
        return f"Finished: verify_data {message.verify_data.hex()}"
    if isinstance(message, Alert):
        return f"Alert: {message.description_name} ({'fatal' if message.is_fatal else 'warning'})"
    if isinstance(message, ApplicationData):
        first_line = message.data.split(b"\r\n", 1)[0][:60].decode("ascii", errors="replace")
        return f"ApplicationData: {len(message.data)} bytes, starting {first_line!r}"
    return type(message).__name__


def _describe_server_hello(message: ServerHello) -> str:
    suite = cipher_suite_name(message.cipher_suite)
    if message.selected_version != ProtocolVersion.TLS1_3:
        return f"ServerHello: cipher_suite {suite}"
    share = message.extension(ExtensionType.key_share)
    if message.is_hello_retry_request:
        group = getattr(share, "selected_group", None)
        wanted = f", send a key share for {name_of(NamedGroup, group)}" if group is not None else ""
        return f"HelloRetryRequest (TLS 1.3): cipher_suite {suite}{wanted}"
    entry = getattr(share, "server_share", None)
    group = f", key share {name_of(NamedGroup, entry.group)}" if entry is not None else ""
    return f"ServerHello (TLS 1.3): cipher_suite {suite}{group}"


def _subjects(certificates: list[bytes]) -> list[str]:
    try:  # TLS 1.2's Certificate parses the chain; a TLS 1.3 one's entries hold the same DER
        return [certificate.subject.rfc4514_string() for certificate in Certificate(certificates).x509()]
    except Exception:  # noqa: BLE001 - a certificate cryptography cannot parse: the hex dump still shows it
        return [f"{len(certificates)} certificate(s), not parseable"]


def _dump(data: bytes, spans: Sequence[Span]) -> str:
    # Imported here, not at the top: handshake_lib.viz brings matplotlib and ipywidgets (about 0.3 s),
    # which every other command can do without.
    from ..viz.hexview import render_hex_text

    return render_hex_text(data, spans)


def render_entry(number: int, entry: TranscriptEntry) -> str:
    """One record of a transcript: header line, message summaries, hex dump(s)."""
    lock = "  [encrypted]" if entry.encrypted else ""
    direction = _ARROWS.get(entry.direction, entry.direction)
    lines = [f"=== record {number}: {direction}  {entry.content_type_name}, {len(entry.record)} bytes{lock}"]
    lines += [f"    {describe_message(message)}" for message in entry.messages]
    lines.append(_dump(entry.record, entry.spans))
    if entry.encrypted:
        plaintext = bytes(entry.plaintext)
        lines.append(f"--- decrypted with this session's keys, the fragment's plaintext ({len(plaintext)} bytes):")
        # A TLS 1.3 entry annotates its own content (its handshake messages have 1.3's table of types).
        own = getattr(entry, "plaintext_spans", None)
        spans = own() if callable(own) else plaintext_spans(entry.content_type, plaintext)
        lines.append(_dump(plaintext, spans))
    return "\n".join(lines)


def render_transcript(entries: Iterable[TranscriptEntry]) -> str:
    return "\n\n".join(render_entry(number, entry) for number, entry in enumerate(entries, start=1))
