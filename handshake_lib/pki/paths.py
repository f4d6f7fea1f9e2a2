"""Certificates read once, and path building from a leaf to a trust anchor (RFC 4158, bounded).

:class:`CertView` reads every field the validator uses from one certificate, once, so that a garbled
field (``cryptography`` parses extensions lazily) surfaces as one typed error,
:class:`~handshake_lib.errors.CertificateDecodeError`, when the certificate is first looked at, never
as a ``ValueError`` in the middle of a check.

:func:`build_paths` walks from the leaf upwards: the candidates for a certificate's issuer are the
trust anchors, then the untrusted pool, whose subject equals its issuer name and whose subjectKeyIdentifier
agrees with its authorityKeyIdentifier when both are there.  Signatures are *not* the matching rule
(the ``signature`` check reports them); names and key identifiers are, as in OpenSSL.  Each complete
path (one that ends at a trust anchor) is handed to the caller, which checks it and says whether to
keep looking, so a path through an expired or distrusted cross-signed intermediate gives way to a
valid alternative.  Three things bound the walk: a certificate already on the current path is never
added again (a cycle of cross-signed CAs ends there), at most ``max_depth`` intermediates, and at most
``max_candidates`` candidate issuers tried in all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

from ..errors import CertificateDecodeError

__all__ = [
    "CertView",
    "PathSearch",
    "build_paths",
    "describe",
    "MAX_CERTIFICATE_BYTES",
    "MAX_SAN_ENTRIES",
    "MAX_POOL_CERTIFICATES",
    "PARSE_ERRORS",
]

MAX_CERTIFICATE_BYTES = 64 * 1024  # real certificates are 1-8 KiB; a bigger one is an attack or a mistake
MAX_SAN_ENTRIES = 1_000  # public CAs issue at most a few hundred names per certificate
MAX_POOL_CERTIFICATES = 1_000  # untrusted intermediates read for one validation
MAX_NAME_CONSTRAINT_SUBTREES = 128  # each name is compared with each subtree

# What cryptography raises when a field it parses lazily turns out to be malformed (some of these are
# not ValueErrors: DuplicateExtension derives from Exception directly).
PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnicodeError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)

# Extensions whose meaning the validator applies; any other extension marked critical fails the
# ``critical_extensions`` check (RFC 5280 section 4.2: "MUST reject the certificate").  Certificate
# policies are not processed, so a critical certificatePolicies fails too: said, not hidden.
UNDERSTOOD_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)


def describe(certificate: x509.Certificate) -> str:
    """A short name for a certificate in a reason: its subject CN, else its whole subject, else its serial."""
    try:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            value = names[0].value
            text = value if isinstance(value, str) else value.decode("utf-8", "replace")
            return repr(text[:64])
        subject = certificate.subject.rfc4514_string()
        if subject:
            return repr(subject[:64])
    except PARSE_ERRORS:
        pass
    return f"the certificate with serial {certificate.serial_number:#x}"


def _extension(extensions: x509.Extensions, kind: type) -> tuple[object | None, bool]:
    try:
        found = extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None, False
    return found.value, found.critical


# Views of recently read certificates, by DER (CertView.read): bounded, least recently read dropped first.
MAX_CACHED_VIEWS = 256
_VIEWS: dict[bytes, CertView] = {}


@dataclass(frozen=True)
class CertView:
    """What the validator reads from one certificate, read (and size-checked) once."""

    certificate: x509.Certificate
    der: bytes
    name: str  # for reasons: describe(certificate)
    subject: x509.Name
    issuer: x509.Name
    not_before: dt.datetime
    not_after: dt.datetime
    spki: bytes  # SubjectPublicKeyInfo, DER: "the same key" means the same bytes here
    basic_constraints: x509.BasicConstraints | None
    key_usage: x509.KeyUsage | None
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] | None
    has_san: bool
    dns_names: tuple[str, ...]
    ip_addresses: tuple[object, ...]
    name_constraints: x509.NameConstraints | None
    subject_key_id: bytes | None
    authority_key_id: bytes | None
    unknown_critical: tuple[str, ...]  # dotted OIDs of critical extensions we do not apply

    @classmethod
    def read(cls, certificate: x509.Certificate, role: str = "certificate") -> CertView:
        """Read ``certificate``; :class:`CertificateDecodeError` if it is too big or a field does not parse.

        A view depends on the certificate's bytes alone, so the views of the last
        :data:`MAX_CACHED_VIEWS` certificates read are kept by DER: a client that validates the same server
        and trust anchor on every handshake reads their extensions once (a fifth of a handshake's validation).
        """
        try:
            der = certificate.public_bytes(serialization.Encoding.DER)
        except PARSE_ERRORS as error:
            raise CertificateDecodeError(f"the {role} does not encode: {str(error)[:200]}") from None
        if len(der) > MAX_CERTIFICATE_BYTES:
            raise CertificateDecodeError(
                f"the {role} has {len(der)} bytes; certificates over {MAX_CERTIFICATE_BYTES} bytes are not read"
            )
        view = _VIEWS.pop(der, None)
        if view is None:
            view = cls._read(certificate, der, role)
        _VIEWS[der] = view  # the most recently read last
        while len(_VIEWS) > MAX_CACHED_VIEWS:
            _VIEWS.pop(next(iter(_VIEWS)), None)
        return view

    @classmethod
    def _read(cls, certificate: x509.Certificate, der: bytes, role: str) -> CertView:
        try:
            extensions = certificate.extensions
            san, _ = _extension(extensions, x509.SubjectAlternativeName)
            dns: tuple[str, ...] = ()
            ips: tuple[object, ...] = ()
            if san is not None:
                assert isinstance(san, x509.SubjectAlternativeName)
                if len(san) > MAX_SAN_ENTRIES:
                    raise CertificateDecodeError(
                        f"the {role} {describe(certificate)} has {len(san)} subjectAltName entries; "
                        f"at most {MAX_SAN_ENTRIES} are read"
                    )
                dns = tuple(san.get_values_for_type(x509.DNSName))
                ips = tuple(san.get_values_for_type(x509.IPAddress))
            constraints, _ = _extension(extensions, x509.NameConstraints)
            if isinstance(constraints, x509.NameConstraints):
                count = len(constraints.permitted_subtrees or ()) + len(constraints.excluded_subtrees or ())
                if count > MAX_NAME_CONSTRAINT_SUBTREES:
                    raise CertificateDecodeError(f"the {role} has {count} name constraint subtrees")
            eku, _ = _extension(extensions, x509.ExtendedKeyUsage)
            ski, _ = _extension(extensions, x509.SubjectKeyIdentifier)
            aki, _ = _extension(extensions, x509.AuthorityKeyIdentifier)
            bc, _ = _extension(extensions, x509.BasicConstraints)
            ku, _ = _extension(extensions, x509.KeyUsage)
            unknown = tuple(
                e.oid.dotted_string for e in extensions if e.critical and e.oid not in UNDERSTOOD_EXTENSIONS
            )
            return cls(
                certificate=certificate,
                der=der,
                name=describe(certificate),
                subject=certificate.subject,
                issuer=certificate.issuer,
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
                spki=certificate.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                basic_constraints=bc if isinstance(bc, x509.BasicConstraints) else None,
                key_usage=ku if isinstance(ku, x509.KeyUsage) else None,
                extended_key_usage=tuple(eku) if isinstance(eku, x509.ExtendedKeyUsage) else None,
                has_san=san is not None,
                dns_names=dns,
                ip_addresses=ips,
                name_constraints=constraints if isinstance(constraints, x509.NameConstraints) else None,
                subject_key_id=ski.digest if isinstance(ski, x509.SubjectKeyIdentifier) else None,
                authority_key_id=aki.key_identifier if isinstance(aki, x509.AuthorityKeyIdentifier) else None,
                unknown_critical=unknown,
            )
        except CertificateDecodeError:
            raise
        except PARSE_ERRORS as error:  # cryptography's lazy parsing, an odd key type
            raise CertificateDecodeError(
                f"the {role} {describe(certificate)} does not parse: {str(error)[:200]}"
            ) from None

    @property
    def is_self_issued(self) -> bool:
        return self.subject == self.issuer

    def valid_at(self, at: dt.datetime) -> bool:
        return self.not_before <= at <= self.not_after

    def may_issue(self, child: CertView) -> bool:
        """Could this certificate be ``child``'s issuer by name and key identifier (not by signature)?"""
        if self.subject != child.issuer:
            return False
        if child.authority_key_id is not None and self.subject_key_id is not None:
            return child.authority_key_id == self.subject_key_id
        return True


@dataclass
class PathSearch:
    """What one run of :func:`build_paths` tried: complete paths found, dead ends, and why it stopped."""

    candidates_tried: int = 0
    dead_ends: list[tuple[tuple[CertView, ...], str]] = field(default_factory=list)
    stopped: str = ""  # non-empty when a bound ended the search


def build_paths(
    leaf: CertView,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[CertView],
    *,
    at: dt.datetime,
    max_depth: int,
    max_candidates: int,
    search: PathSearch,
) -> Iterator[tuple[CertView, ...]]:
    """Yield every path (leaf first, a trust anchor last) within the bounds, most promising first.

    The caller stops iterating when it likes a path.  Dead ends and bounds are recorded in ``search``.
    Pool certificates that do not parse are skipped when first met as a candidate, and recorded there.
    """
    # Pool certificates are indexed by subject name only (cheap), and read in full the first time they
    # are a candidate: a pool of 1,000 unrelated certificates with 1,000 names each costs 1,000 Names.
    by_subject: dict[x509.Name, list[tuple[int, x509.Certificate]]] = {}
    views: dict[int, CertView | None] = {}

    for position, certificate in enumerate(pool[:MAX_POOL_CERTIFICATES]):
        try:
            subject = certificate.subject
        except PARSE_ERRORS:
            continue  # no name, no issuer of anything
        by_subject.setdefault(subject, []).append((position, certificate))

    def pool_for(name: x509.Name) -> list[CertView]:
        found = []
        for position, certificate in by_subject.get(name, []):
            if position not in views:
                try:
                    views[position] = CertView.read(certificate, f"pool certificate #{position + 1}")
                except CertificateDecodeError as error:
                    views[position] = None
                    search.dead_ends.append(((), f"skipped: {error}"))
            view = views[position]
            if view is not None:
                found.append(view)
        return found

    anchor_der = {a.der for a in anchors}
    if leaf.der in anchor_der:
        yield (leaf,)
        return

    def candidates(child: CertView) -> list[tuple[CertView, bool]]:
        found = [(a, True) for a in anchors if a.may_issue(child)]
        found += [(c, False) for c in pool_for(child.issuer) if c.der not in anchor_der and c.may_issue(child)]
        # Most promising first: trust anchors, then certificates valid now (OpenSSL prefers those too).
        found.sort(key=lambda item: (not item[1], not item[0].valid_at(at)))
        return found

    def walk(path: tuple[CertView, ...]) -> Iterator[tuple[CertView, ...]]:
        child = path[-1]
        options = candidates(child)
        if not options:
            search.dead_ends.append((path, f"no issuer of {child.name} among the trust anchors and the pool"))
            return
        for candidate, is_anchor in options:
            if search.stopped:
                return
            if search.candidates_tried >= max_candidates:
                search.stopped = f"gave up after trying {max_candidates} candidate issuers"
                return
            search.candidates_tried += 1
            if is_anchor:
                yield (*path, candidate)
                continue
            if candidate.der == child.der:
                search.dead_ends.append((path, f"{child.name} is self-signed but not a trust anchor"))
                continue
            if any(candidate.der == c.der or (candidate.subject == c.subject and candidate.spki == c.spki)
                   for c in path):
                search.dead_ends.append((path, f"{candidate.name}, issuer of {child.name}, is already on the "
                                         "path (a cycle of cross-signed CAs)"))
                continue
            if len(path) > max_depth:  # path holds the leaf and len(path) - 1 intermediates
                search.dead_ends.append(
                    (path, f"{candidate.name} would make more than {max_depth} intermediate(s) (max_depth)")
                )
                continue
            yield from walk((*path, candidate))

    yield from walk((leaf,))

