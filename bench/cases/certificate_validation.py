"""Our certificate validator beside ``cryptography``'s, on the same three-certificate chain.

Issue 9's speed target: validating a chain of three (leaf, intermediate, root) with a host name and a
CRL takes our validator (Python over ``cryptography``'s parsing and signature primitives) at most 3x
what ``cryptography``'s Rust verifier takes.  Both rows come from the same run; the ratio is their
medians' (``bench/results/latest.json`` keeps every sample).  ``cryptography`` does not check
revocation, so its row validates the same chain and host without the CRL; ours reads and verifies
the CRL on top, which is the work the target allows for.

Not a widget case: lesson 04's widget (``handshake_lib.lessons.certificates``, which shows this
validator's report) is timed in ``bench/cases/certificates.py``.  Each call validates at a time one
second later than the last, so every call does the whole work and returns a different answer.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store

from handshake_lib.pki.validate import validate

START = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
HOST = "www.example.com"


def _certificate(cn: str, key, issuer_cert, issuer_key, *, ca: bool) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer = issuer_key or key
    usage = dict(digital_signature=True, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                 encipher_only=False, decipher_only=False)
    builder = (
        x509.CertificateBuilder().subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(START - dt.timedelta(days=30)).not_valid_after(START + dt.timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def three_certificates() -> tuple[x509.Certificate, x509.Certificate, x509.Certificate, x509.CertificateRevocationList]:
    """(leaf, intermediate, root, the intermediate's CRL) with ECDSA P-256 keys, as public CAs issue today."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _certificate("Bench Root CA", keys[0], None, None, ca=True)
    intermediate = _certificate("Bench Intermediate CA", keys[1], root, keys[0], ca=True)
    leaf = _certificate(HOST, keys[2], intermediate, keys[1], ca=False)
    crl = (
        x509.CertificateRevocationListBuilder().issuer_name(intermediate.subject)
        .last_update(START - dt.timedelta(days=1)).next_update(START + dt.timedelta(days=30))
        .sign(keys[1], hashes.SHA256())
    )
    return leaf, intermediate, root, crl


def bench_ours() -> Callable[[], object]:
    leaf, intermediate, root, crl = three_certificates()
    times = (START + dt.timedelta(seconds=n) for n in itertools.count())
    return lambda: validate(leaf, intermediates=[intermediate], trust_anchors=[root], at=next(times), host=HOST,
                            crls=[crl])


def bench_cryptography() -> Callable[[], object]:
    leaf, intermediate, root, _ = three_certificates()
    store = Store([root])
    times = (START + dt.timedelta(seconds=n) for n in itertools.count())

    def verify() -> str:
        at = next(times)
        verifier = PolicyBuilder().store(store).time(at).build_server_verifier(DNSName(HOST))
        return f"{at:%H:%M:%S}: {len(verifier.verify(leaf, [intermediate]))} certificates"

    return verify


# Read by `python -m bench` (bench/widgets.py): name -> setup returning the callback to time.
BENCHMARKS: dict[str, Callable[[], Callable[[], object]]] = {
    "validate(3 certificates, host, CRL) ours": bench_ours,
    "cryptography verifier (3 certificates, host)": bench_cryptography,
}
