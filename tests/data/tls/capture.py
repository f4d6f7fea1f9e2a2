"""Capture what OpenSSL really sends, with Python's ``ssl`` and memory BIOs (no sockets needed).

Used two ways:

* by the tests, live, to decode fresh flights from the installed OpenSSL;
* as a maintainer script, ``python tests/data/tls/capture.py``, to refresh the ``*.hex`` files next
  to it: fixed real bytes for the round-trip and fuzzing tests, so those do not depend on the
  OpenSSL version of the machine running them.

The RSA key and certificate are generated fresh in memory on every run (DEMO ONLY, never stored): the
stored flights contain only the public certificate, which is harmless and expires after a day.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent


def write_throwaway_rsa_cert(directory: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A self-signed RSA-2048 certificate for ``host`` valid for one day; returns (cert.pem, key.pem)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_context(
    cert_path: Path,
    key_path: Path,
    ciphers: str = "AES128-GCM-SHA256",
    *,
    server_preference: bool = True,
    seclevel: int | None = None,
) -> ssl.SSLContext:
    """An OpenSSL TLS 1.2 server context restricted to ``ciphers`` (OpenSSL names).

    With OpenSSL 3.0 (Debian's default security level 2) all four RSA key exchange suites of the
    course, AES128-SHA included, work without lowering the level: level 2 forbids SHA-1 *signatures*,
    not the HMAC-SHA1 of a record.  ``seclevel=0`` is needed only to accept a ClientHello without
    ``signature_algorithms`` (the server then assumes SHA-1 signatures, RFC 5246 7.4.1.4.1).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    ctx.set_ciphers(ciphers + (f":@SECLEVEL={seclevel}" if seclevel is not None else ""))
    if not server_preference:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def client_context(*, allow_tls13: bool = False, ciphers: str = "DEFAULT") -> ssl.SSLContext:
    """An OpenSSL client context.  ``DEFAULT`` is OpenSSL's own list (Python's default has no RSA key exchange)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the throwaway certificate is self-signed; nothing secret flows
    if not allow_tls13:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    return ctx


@dataclass
class MemoryHandshake:
    client_hello: bytes  # records, as the client sent them
    server_flight: bytes  # ServerHello ... ServerHelloDone
    client_flight: bytes  # ClientKeyExchange, ChangeCipherSpec, Finished (encrypted)
    server_finish: bytes  # (NewSessionTicket,) ChangeCipherSpec, Finished
    cipher: str
    version: str


def _pump(obj: ssl.SSLObject) -> None:
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()


def memory_handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, host: str = "localhost"
) -> MemoryHandshake:
    """Run a full handshake between two OpenSSL objects through memory BIOs, keeping each flight's bytes."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=host)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    flights = []
    sender, receiver, sender_out, receiver_in = client, server, c_out, s_in
    for _ in range(4):
        _pump(sender)
        data = sender_out.read()
        flights.append(data)
        receiver_in.write(data)
        sender, receiver = receiver, sender
        sender_out, receiver_in = (s_out, c_in) if sender is server else (c_out, s_in)
    _pump(client)
    cipher = server.cipher()
    assert cipher is not None and client.cipher() is not None
    return MemoryHandshake(*flights, cipher=cipher[0], version=cipher[1])


def client_hello_bytes(client_ctx: ssl.SSLContext, host: str = "localhost") -> bytes:
    """The ClientHello record(s) OpenSSL's client emits for ``client_ctx``."""
    out = ssl.MemoryBIO()
    client = client_ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=host)
    _pump(client)
    return out.read()


def server_answer(server_ctx: ssl.SSLContext, client_hello_records: bytes) -> bytes:
    """What an OpenSSL server answers to ``client_hello_records`` (its flight, or an alert record)."""
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    s_in.write(client_hello_records)
    try:
        server.do_handshake()
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError:
        pass  # the alert it sent is in s_out
    return s_out.read()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = write_throwaway_rsa_cert(Path(tmp))
        files = {
            "openssl_client_hello_tls12.hex": client_hello_bytes(client_context()),
            "openssl_client_hello_tls13.hex": client_hello_bytes(client_context(allow_tls13=True)),
        }
        run = memory_handshake(server_context(cert_path, key_path), client_context())
        files["openssl_server_flight_aes128gcm.hex"] = run.server_flight
        files["openssl_client_flight_aes128gcm.hex"] = run.client_flight
        files["openssl_server_finish_aes128gcm.hex"] = run.server_finish
    for name, data in files.items():
        (HERE / name).write_text(data.hex() + "\n")
        print(f"{name}: {len(data)} bytes")
    print(f"negotiated {run.cipher} {run.version} with {ssl.OPENSSL_VERSION}")


if __name__ == "__main__":
    main()
