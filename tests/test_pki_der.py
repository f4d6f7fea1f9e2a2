"""The annotating DER decoder (handshake_lib.pki.der), checked against ``openssl asn1parse``, and the
certificate fields ``cryptography`` reads (handshake_lib.pki.fields)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st

from handshake_lib.errors import DecodeError
from handshake_lib.pki import CoursePKI
from handshake_lib.pki.der import MAX_DER_LENGTH, der_spans, oid_text
from handshake_lib.pki.fields import certificate_fields, certificate_subject


@pytest.fixture(scope="module")
def server_files():
    with tempfile.TemporaryDirectory() as folder:
        yield CoursePKI.create().write_server_files(Path(folder))


def asn1parse(der: bytes) -> list[tuple[int, int, int]]:
    """(offset, header length, value length) of every element, as ``openssl asn1parse`` reads them."""
    out = subprocess.run(
        [require("openssl"), "asn1parse", "-inform", "DER"], input=der, capture_output=True, check=True, timeout=10
    ).stdout.decode()
    return [
        (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^\s*(\d+):d=\s*\d+\s+hl=\s*(\d+)\s+l=\s*(\d+)", out, re.MULTILINE)
    ]


def tlv_groups(spans) -> list[tuple[int, int, int]]:
    """(offset, header length, value length) of every TLV our annotator found."""
    found = []
    for index, span in enumerate(spans):
        if span.is_group and index + 2 < len(spans) and spans[index + 1].name == "tag":
            header = 1 + spans[index + 2].length
            found.append((span.offset, header, span.length - header))
    return found


def test_der_annotation_matches_openssl_asn1parse(server_files):
    der = server_files.issued.der
    spans, error = der_spans(der)
    assert error is None
    assert tlv_groups(spans) == asn1parse(der)


def test_der_annotation_of_an_rsa_ca_certificate_matches_openssl_too():
    from cryptography.hazmat.primitives.serialization import Encoding

    root = CoursePKI.create(key_type="rsa2048").root.certificate.public_bytes(Encoding.DER)
    spans, error = der_spans(root)
    assert error is None and tlv_groups(spans) == asn1parse(root)


def test_der_annotation_names_the_rfc5280_fields(server_files):
    spans, _ = der_spans(server_files.issued.der)
    by_field = {span.field: span for span in spans}
    tbs = "certificate.value.tbsCertificate.value"
    for name in ("version", "serialNumber", "signature", "issuer", "validity", "subject", "subjectPublicKeyInfo"):
        assert f"{tbs}.{name}" in by_field, name
    assert "X.509 v3" in by_field[f"{tbs}.version.value.versionNumber.value"].meaning
    not_after = by_field[f"{tbs}.validity.value.notAfter.value"].meaning
    expiry = server_files.issued.certificate.not_valid_after_utc
    assert expiry.strftime("%y%m%d%H%M%S") in not_after
    assert "subjectAltName" in " ".join(s.meaning for s in spans)


def test_oid_text_names_known_oids_and_writes_others_dotted():
    assert oid_text(bytes.fromhex("2a864886f70d01010b")) == "sha256WithRSAEncryption (1.2.840.113549.1.1.11)"
    assert oid_text(bytes.fromhex("2b0601040182370202")) == "1.3.6.1.4.1.311.2.2"
    with pytest.raises(ValueError):
        oid_text(b"\x2a\x86")  # the last byte still has the continuation bit


@pytest.mark.parametrize(
    ("der", "message"),
    [
        (b"\x30\x80\x00\x00", "indefinite length"),
        (b"\x30\x81\x05\x02\x01\x01\x05\x00", "shortest form"),
        (b"\x30\x10\x02\x01", "need"),
        (b"\x1f\x01\x00", "high tag numbers"),
        (b"".join(b"\x30" + bytes([2 * (40 - i - 1)]) for i in range(40)), "nested more than"),
        (b"\x30\x03\x02\x01\x01\xff", "unexpected bytes"),
        (b"\x30\x85\x01\x00\x00\x00\x00", "absurd"),
        (b"\x04\x82\xff\xff" + bytes(MAX_DER_LENGTH), "the limit is"),
    ],
    ids=["indefinite", "long-form-too-long", "truncated", "high-tag", "too-deep", "trailing", "5-byte-length", "huge"],
)
def test_der_annotation_stops_with_a_decode_error(der, message):
    spans, error = der_spans(der)
    assert isinstance(error, DecodeError) and message in str(error)
    assert all(s.end <= len(der) for s in spans)  # what was read before the error is kept, inside the data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_der_annotation_never_raises(data):
    spans, error = der_spans(data)
    assert error is None or isinstance(error, DecodeError)
    assert all(s.offset >= 0 and s.end <= len(data) for s in spans)


def test_certificate_fields_are_what_openssl_reads_too(server_files):
    der = server_files.issued.der
    rows = dict(certificate_fields(der))
    assert rows["subject"] == "CN=localhost,O=Handshakes course" == certificate_subject(der)
    assert "localhost" in rows["extension subjectAltName"] and "127.0.0.1" in rows["extension subjectAltName"]
    serial = subprocess.run(
        [require("openssl"), "x509", "-inform", "DER", "-noout", "-serial"],
        input=der, capture_output=True, check=True, timeout=10,
    ).stdout.decode()
    assert int(serial.strip().split("=")[1], 16) == int(rows["serial number"], 16)
    with pytest.raises(ValueError):
        certificate_fields(b"\x30\x03\x02\x01")
    assert certificate_subject(b"\x30\x03\x02\x01") == "(not X.509)"
