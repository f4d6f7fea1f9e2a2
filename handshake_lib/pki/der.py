"""An annotating DER decoder: X.509 certificates read element by element, with RFC 5280's field names.

Theory of operation
-------------------
DER (ITU-T X.690) writes every value as *tag, length, value* (TLV).  The tag's bit 0x20 says whether the
value is primitive (an INTEGER, an OBJECT IDENTIFIER, a string, a time) or constructed (more TLVs: a
SEQUENCE, a SET, an explicit ``[n]`` tag).  A length below 128 is one byte; otherwise the first byte
says how many length bytes follow, and DER demands the shortest form (BER's indefinite length is
refused).  Certificates use single-byte tags only.

:func:`read_der` reads one TLV into a :class:`~handshake_lib.wire.Reader` group named after the field it
holds, with ``tag``, ``length`` and ``value`` spans (children for a constructed value), so a hex view,
a trace and a lesson all show the same names.  Names follow the structure of RFC 5280 section 4.1
(``tbsCertificate.validity.notAfter``); context tags ``[0]`` to ``[3]`` name the optional fields of the
TBSCertificate; OBJECT IDENTIFIERs are shown dotted and, for the common ones, by name.
:func:`der_spans` runs it over a whole certificate and returns the spans read before any error.

Safety: input is bounded (:data:`MAX_DER_LENGTH`), nesting is bounded (:data:`MAX_DER_DEPTH`), length
fields of more than 4 bytes are refused, and every malformed input ends in a
:class:`~handshake_lib.errors.DecodeError` naming the field and offset, never another exception.
What the certificate *means* (is it valid, for whom, until when) is not decided here.
"""

from __future__ import annotations

from ..errors import DecodeError
from ..wire import Reader, Span

__all__ = ["MAX_DER_DEPTH", "MAX_DER_LENGTH", "OID_NAMES", "der_spans", "oid_text", "read_der"]

MAX_DER_LENGTH = 1 << 16  # a certificate is a few kilobytes; a whole chain rarely passes 16 KiB

_UNIVERSAL_TAGS = {
    0x01: "BOOLEAN", 0x02: "INTEGER", 0x03: "BIT STRING", 0x04: "OCTET STRING", 0x05: "NULL",
    0x06: "OBJECT IDENTIFIER", 0x0C: "UTF8String", 0x13: "PrintableString", 0x14: "T61String",
    0x16: "IA5String", 0x17: "UTCTime", 0x18: "GeneralizedTime", 0x1E: "BMPString",
    0x30: "SEQUENCE", 0x31: "SET",
}
OID_NAMES = {
    "1.2.840.113549.1.1.1": "rsaEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.2.1": "id-ecPublicKey",
    "1.2.840.10045.3.1.7": "prime256v1 (P-256)",
    "1.3.132.0.34": "secp384r1 (P-384)",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.3.101.112": "Ed25519",
    "2.5.4.3": "commonName (CN)",
    "2.5.4.6": "countryName (C)",
    "2.5.4.7": "localityName (L)",
    "2.5.4.8": "stateOrProvinceName (ST)",
    "2.5.4.10": "organizationName (O)",
    "2.5.4.11": "organizationalUnitName (OU)",
    "2.5.29.14": "subjectKeyIdentifier",
    "2.5.29.15": "keyUsage",
    "2.5.29.17": "subjectAltName",
    "2.5.29.19": "basicConstraints",
    "2.5.29.31": "cRLDistributionPoints",
    "2.5.29.32": "certificatePolicies",
    "2.5.29.35": "authorityKeyIdentifier",
    "2.5.29.37": "extKeyUsage",
    "1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
    "1.3.6.1.4.1.11129.2.4.2": "signed certificate timestamps (CT)",
}
# Child names by parent field (RFC 5280 section 4.1); context tags [n] name optional fields.
_TBS_FIELDS = ("serialNumber", "signature", "issuer", "validity", "subject", "subjectPublicKeyInfo")
_TBS_TAGGED = {0xA0: "version", 0xA1: "issuerUniqueID", 0xA2: "subjectUniqueID", 0xA3: "extensions"}
_CHILDREN: dict[str, tuple[str, ...]] = {
    "certificate": ("tbsCertificate", "signatureAlgorithm", "signatureValue"),
    "validity": ("notBefore", "notAfter"),
    "subjectPublicKeyInfo": ("algorithm", "subjectPublicKey"),
    "signature": ("algorithm", "parameters"),
    "signatureAlgorithm": ("algorithm", "parameters"),
    "algorithm": ("algorithm", "parameters"),
    "attribute": ("type", "value"),
}
_FIELD_MEANINGS = {
    "tbsCertificate": "TBSCertificate: everything the issuer signs",
    "signatureAlgorithm": "how the issuer signed (must equal tbsCertificate.signature)",
    "signatureValue": "the issuer's signature over the DER of tbsCertificate",
    "version": "[0] EXPLICIT: version",
    "serialNumber": "serial number, unique per issuer",
    "signature": "signature algorithm (repeated inside the signed part)",
    "issuer": "issuer: who vouches for this certificate",
    "validity": "validity: notBefore and notAfter",
    "subject": "subject: whom the certificate is about",
    "subjectPublicKeyInfo": "the subject's public key and its algorithm",
    "extensions": "[3] EXPLICIT: extensions (X.509 v3)",
}
MAX_DER_DEPTH = 24  # real certificates nest about 8 deep; deeper is malformed or hostile


def oid_text(body: bytes) -> str:
    if not body or body[-1] & 0x80:
        raise ValueError("OBJECT IDENTIFIER is empty or its last byte has the continuation bit")
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    dotted = ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))
    return f"{OID_NAMES[dotted]} ({dotted})" if dotted in OID_NAMES else dotted


def _primitive_meaning(tag: int, body: bytes, field_name: str) -> str:
    if tag == 0x02:
        number = int.from_bytes(body, "big", signed=True)
        if field_name == "versionNumber":
            return f"{number}: X.509 v{number + 1}"
        return f"{number}" if len(body) <= 8 else f"{len(body) * 8}-bit integer 0x{body[:8].hex()}..."
    if tag == 0x06:
        return oid_text(body)
    if tag in (0x0C, 0x13, 0x14, 0x16, 0x1E):
        encoding = "utf-16-be" if tag == 0x1E else "utf-8"
        return repr(body.decode(encoding, errors="replace"))
    if tag == 0x17:
        text = body.decode("ascii", errors="replace")
        return f"UTCTime {text} (20{text[:2]}-{text[2:4]}-{text[4:6]} {text[6:8]}:{text[8:10]}:{text[10:12]} UTC)"
    if tag == 0x18:
        return f"GeneralizedTime {body.decode('ascii', errors='replace')}"
    if tag == 0x01:
        return "TRUE" if body == b"\xff" else "FALSE" if body == b"\x00" else "invalid BOOLEAN"
    if tag == 0x05:
        return "NULL (no parameters)"
    if tag == 0x03:
        return f"{max(0, (len(body) - 1) * 8 - (body[0] if body else 0))} bits"
    if tag == 0x04:
        return f"{len(body)} bytes"
    if 0x80 <= tag <= 0x8F:
        text = body.decode("ascii", errors="replace")
        return f"[{tag & 0x1F}] {text!r}" if text.isprintable() else f"[{tag & 0x1F}] {len(body)} bytes"
    return f"{len(body)} bytes"


def _tag_name(tag: int) -> str:
    if tag in _UNIVERSAL_TAGS:
        return _UNIVERSAL_TAGS[tag]
    klass = ("universal", "application", "context", "private")[tag >> 6]
    form = "constructed" if tag & 0x20 else "primitive"
    return f"[{tag & 0x1F}] {klass} {form}" if klass == "context" else f"{klass} tag {tag & 0x1F} ({form})"


def _child_name(parent: str, index: int, tag: int, position_in_tbs: list[int]) -> str:
    if parent == "tbsCertificate":
        if tag in _TBS_TAGGED:
            return _TBS_TAGGED[tag]
        slot = position_in_tbs[0]
        position_in_tbs[0] += 1
        return _TBS_FIELDS[slot] if slot < len(_TBS_FIELDS) else "field"
    if parent == "version":
        return "versionNumber"
    if parent in ("issuer", "subject"):
        return "rdn"
    if parent == "rdn":
        return "attribute"
    if parent == "extensions":
        return "extensionList" if index == 0 and tag == 0x30 else "extension"
    if parent == "extensionList":
        return "extension"
    if parent == "extension":
        return ("extnID", "critical", "extnValue")[index] if tag != 0x04 or index == 0 else "extnValue"
    names = _CHILDREN.get(parent)
    if names and index < len(names):
        return names[index]
    return _UNIVERSAL_TAGS.get(tag, "element").lower().replace(" ", "_")


def read_der(reader: Reader, name: str, depth: int = 0) -> None:
    """Read one DER TLV as a group ``name`` with ``tag``, ``length`` and ``value`` (or children)."""
    if depth > MAX_DER_DEPTH:
        raise DecodeError(f"DER nested more than {MAX_DER_DEPTH} deep", field=name, offset=reader.offset)
    peek = reader.data[reader.position] if reader.remaining else 0
    with reader.group(name, _FIELD_MEANINGS.get(name, _tag_name(peek))) as tlv:
        tag = tlv.u8("tag", _tag_name)
        if tag & 0x1F == 0x1F:
            raise DecodeError(
                "high tag numbers (>= 31) do not occur in certificates", field=name, offset=tlv.offset - 1
            )
        first = tlv.data[tlv.position] if tlv.remaining else None
        if first is None:
            raise DecodeError("missing length", field=f"{name}.length", offset=tlv.offset)
        if first < 0x80:
            length = tlv.u8("length", "short form: the length itself")
        elif first == 0x80:
            raise DecodeError("indefinite length is BER, never DER", field=f"{name}.length", offset=tlv.offset)
        else:
            count = first & 0x7F
            if count > 4:
                raise DecodeError(f"a {count}-byte length is absurd here", field=f"{name}.length", offset=tlv.offset)
            start = tlv.offset
            encoded = tlv.raw(
                1 + count, "length",
                lambda v: f"long form: {v[0] & 0x7f} byte(s) of length follow, value {int.from_bytes(v[1:], 'big')}",
            )
            length = int.from_bytes(encoded[1:], "big")
            if length < 0x80 or encoded[1] == 0:
                raise DecodeError("length not in its shortest form (DER requires it)", field=f"{name}.length",
                                  offset=start)
        if tag & 0x20:  # constructed: the value is more TLVs
            with tlv.sub_reader(length, "value", f"{length} bytes of nested elements") as inner:
                position_in_tbs = [0]
                index = 0
                while not inner.at_end:
                    child_tag = inner.data[inner.position]
                    read_der(inner, _child_name(name, index, child_tag, position_in_tbs), depth + 1)
                    index += 1
        else:
            body = tlv.data[tlv.position : tlv.position + length]
            try:
                meaning = _primitive_meaning(tag, body, name) if len(body) == length else ""
            except (ValueError, IndexError):  # a bad OID or an empty BIT STRING: explain, do not crash
                meaning = "malformed value"
            tlv.raw(length, "value", meaning)


def der_spans(der: bytes, root: str = "certificate") -> tuple[list[Span], DecodeError | None]:
    """Annotate DER (by default an X.509 certificate): a group per element named as in RFC 5280.

    Returns the spans and the DecodeError that stopped decoding (spans read before it are kept).
    ``root`` names the outermost element; the RFC 5280 names apply below ``"certificate"``.
    """
    spans: list[Span] = []
    if len(der) > MAX_DER_LENGTH:
        return spans, DecodeError(f"{len(der)} bytes of DER; the limit is {MAX_DER_LENGTH}", field=root, offset=0)
    reader = Reader(der, spans=spans)
    try:
        read_der(reader, root, 0)
        reader.expect_end(f"the {root}")
    except DecodeError as error:
        return spans, error
    return spans, None
