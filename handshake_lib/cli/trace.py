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
from ..tls.messages import Alert, Certificate, ClientHello, ClientKeyExchange, Finished, ServerHello, cipher_suite_name
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
        return f"ServerHello: cipher_suite {cipher_suite_name(message.cipher_suite)}"
    if isinstance(message, Certificate):
        try:
            subjects = [certificate.subject.rfc4514_string() for certificate in message.x509()]
        except Exception:  # noqa: BLE001 - a certificate cryptography cannot parse: the hex dump still shows it
            subjects = [f"{len(message.certificates)} certificate(s), not parseable"]
        return f"Certificate: {'; '.join(subjects)}"
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
        lines.append(_dump(plaintext, plaintext_spans(entry.content_type, plaintext)))
    return "\n".join(lines)


def render_transcript(entries: Iterable[TranscriptEntry]) -> str:
    return "\n\n".join(render_entry(number, entry) for number, entry in enumerate(entries, start=1))
