"""Named certificate scenarios, good and faulty, each with the verdict a validator should reach.

A :class:`Scenario` is one validation question, complete: the leaf, an *unordered* pool of untrusted
intermediates (as a TLS server sends them, or not), the trust anchors, the host name or IP address
to check, the purpose (``server``: serverAuth, ``client``: clientAuth), the validation time, CRLs and
a stapled OCSP response, and what is :class:`Expected` under the profile lesson 04 teaches (RFC 5280
path validation plus the Web PKI rules: RFC 9525 host names, the CA/Browser Forum's requirements):
valid, or the name of the first check that fails, from :data:`CHECKS`.  Each scenario breaks one
property, so the first failing check is the one the scenario is about.

Where RFC 5280 (and OpenSSL, which follows it) and the Web PKI disagree, the variant's ``profiles``
note says how; ``tests/test_pki_variants.py`` records by name where ``openssl verify`` or
``cryptography.x509.verification`` legitimately differ from the expectation, and why.

Scenarios are reproducible: the same ``now`` gives the same names, serial numbers, times and
extensions (keys are fresh per :class:`KeyRing`; pass one ring to reuse keys across scenarios, which
is what keeps building them all cheap: one RSA key, the rest ECDSA P-256 and one Ed25519 key).
:meth:`Scenario.write` puts everything in a folder as ``openssl verify`` reads it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from .issue import CA_USAGE, UNKNOWN_EXTENSION_OID, Authority, KeyType, PrivateKey, Purpose, new_key, signature_hash
from .loading import load_ocsp_response
from .report import ValidationReport
from .revocation_data import build_crl, ocsp_response
from .validate import validate

__all__ = [
    "CHECKS",
    "MAX_INTERMEDIATES",
    "VARIANTS",
    "Check",
    "Expected",
    "KeyRing",
    "Scenario",
    "VariantInfo",
    "build_all",
    "build_variant",
]

Check = Literal[
    "path", "signature", "validity", "basic_constraints", "path_length", "key_usage", "extended_key_usage",
    "name_constraints", "host_name", "revocation", "critical_extensions",
]
# The validator's vocabulary (handshake_lib/pki/validate.py uses the same names), in report order.
CHECKS: tuple[Check, ...] = (
    "path", "signature", "validity", "basic_constraints", "path_length", "key_usage", "extended_key_usage",
    "name_constraints", "host_name", "revocation", "critical_extensions",
)

# How many intermediates the profile we teach accepts between a leaf and its trust anchor: the default
# of cryptography's verifier and what `openssl verify -verify_depth 8` allows; RFC 5280 sets no bound.
MAX_INTERMEDIATES = 8
MANIFEST_FORMAT = 1

SHOP = "www.shop.example"  # RFC 2606 reserves .example: these names can never be someone's real site


@dataclass(frozen=True)
class Expected:
    """The verdict under the profile we teach: valid, or the first check that fails."""

    valid: bool
    first_failure: Check | None = None

    def __post_init__(self) -> None:
        if self.valid != (self.first_failure is None):
            raise ValueError("a valid scenario names no failing check, an invalid one names exactly one")
        if self.first_failure is not None and self.first_failure not in CHECKS:
            raise ValueError(f"unknown check {self.first_failure!r} (use one of {', '.join(CHECKS)})")

    def __str__(self) -> str:
        return "valid" if self.valid else f"invalid ({self.first_failure})"


VALID = Expected(True)


def _fails(check: Check) -> Expected:
    return Expected(False, check)


class KeyRing:
    """Private keys by label, made on first use: scenarios built from one ring share their keys."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, KeyType], PrivateKey] = {}

    def get(self, label: str, key_type: KeyType = "ecdsa-p256") -> PrivateKey:
        key = self._keys.get((label, key_type))
        if key is None:
            key = self._keys[(label, key_type)] = new_key(key_type)
        return key


@dataclass(frozen=True)
class Scenario:
    """One validation question and its expected answer; :meth:`write` puts it in a folder."""

    name: str
    summary: str
    leaf: x509.Certificate
    leaf_key: PrivateKey
    intermediates: tuple[x509.Certificate, ...]  # untrusted, unordered: what the peer sent besides its leaf
    roots: tuple[x509.Certificate, ...]  # the trust anchors
    host: str | None  # a DNS name or an IP address (text), None for a client certificate
    purpose: Purpose
    at: dt.datetime  # the validation time
    expected: Expected
    profiles: str = ""  # what RFC 5280 says versus the Web PKI, where they differ
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    ocsp: bytes | None = None  # a stapled OCSP response about the leaf, DER

    @property
    def host_is_ip(self) -> bool:
        if self.host is None:
            return False
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "variant": self.name,
            "summary": self.summary,
            "host": self.host,
            "host_is_ip": self.host_is_ip,
            "purpose": self.purpose,
            "at": self.at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "at_unix": int(self.at.timestamp()),
            "expected": {"valid": self.expected.valid, "first_failure": self.expected.first_failure},
            "profiles": self.profiles,
            "max_intermediates": MAX_INTERMEDIATES,
            "files": self.file_names(),
            "openssl_verify": self.openssl_verify_arguments(),
            "openssl_ocsp": self.openssl_ocsp_arguments(),
        }

    def file_names(self) -> dict[str, str]:
        names = {"leaf": "leaf.pem", "leaf_key": "leaf.key", "chain": "chain.pem", "roots": "roots.pem"}
        if self.crls:
            names["crls"] = "crls.pem"
        if self.ocsp is not None:
            names["ocsp"] = "ocsp.der"
            names["issuer"] = "issuer.pem"  # `openssl ocsp -issuer` wants the leaf's issuer on its own
        return names

    @property
    def leaf_issuer(self) -> x509.Certificate | None:
        """The certificate among the pool and the anchors whose subject is the leaf's issuer, if any."""
        for candidate in (*self.intermediates, *self.roots):
            if candidate.subject == self.leaf.issuer:
                return candidate
        return None

    def openssl_ocsp_arguments(self) -> list[str]:
        """``openssl ocsp``'s arguments that check the stapled response (``[]`` without one).

        OpenSSL prints ``leaf.pem: good``, ``revoked`` or ``unknown``, and ``WARNING: Status times
        invalid`` for a response past its nextUpdate; it judges that by the clock, not by ``-attime``.
        """
        if self.ocsp is None:
            return []
        arguments = ["-respin", "ocsp.der", "-issuer", "issuer.pem", "-cert", "leaf.pem", "-no_nonce"]
        arguments += ["-CAfile", "roots.pem", "-no-CApath", "-no-CAstore"]
        if self.intermediates:
            arguments += ["-verify_other", "chain.pem"]
        return arguments

    def openssl_verify_arguments(self) -> list[str]:
        """``openssl verify``'s arguments for this scenario, file names relative to the written folder.

        OpenSSL reads no OCSP response here (``openssl ocsp -respin ocsp.der`` does), and it checks the
        CRLs of every certificate on the path (``-crl_check_all``) when the scenario has CRLs.
        """
        arguments = [
            "-x509_strict", "-no-CApath", "-no-CAstore", "-CAfile", "roots.pem",
            "-attime", str(int(self.at.timestamp())),
            "-purpose", "sslserver" if self.purpose == "server" else "sslclient",
            "-verify_depth", str(MAX_INTERMEDIATES),
        ]
        if self.intermediates:
            arguments += ["-untrusted", "chain.pem"]
        if self.host is not None:
            arguments += ["-verify_ip" if self.host_is_ip else "-verify_hostname", self.host]
        if self.crls:
            arguments += ["-CRLfile", "crls.pem", "-crl_check_all"]
        return [*arguments, "leaf.pem"]

    def write(self, folder: Path | str) -> dict[str, Path]:
        """Write the scenario's files into ``folder`` (created if missing); return their paths by role.

        ``leaf.pem``, ``leaf.key`` (mode 0600), ``chain.pem`` (the untrusted pool, possibly empty),
        ``roots.pem``, ``crls.pem`` and ``ocsp.der`` (with ``issuer.pem``) when the scenario has them,
        and ``manifest.json`` (host, purpose, time, the expected verdict, OpenSSL's command lines).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        contents: dict[str, bytes] = {
            "leaf": self.leaf.public_bytes(pem),
            "chain": b"".join(c.public_bytes(pem) for c in self.intermediates),
            "roots": b"".join(c.public_bytes(pem) for c in self.roots),
        }
        if self.crls:
            contents["crls"] = b"".join(crl.public_bytes(pem) for crl in self.crls)
        if self.ocsp is not None:
            contents["ocsp"] = self.ocsp
            issuer = self.leaf_issuer
            if issuer is None:
                raise ValueError(f"variant {self.name}: an OCSP response needs the leaf's issuer in the pool")
            contents["issuer"] = issuer.public_bytes(pem)
        names = self.file_names()
        paths = {role: folder / names[role] for role in contents}
        for role, data in contents.items():
            paths[role].write_bytes(data)
        key_path = paths["leaf_key"] = folder / names["leaf_key"]
        key_path.touch(mode=0o600)
        key_path.chmod(0o600)
        key_path.write_bytes(
            self.leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        paths["manifest"] = folder / "manifest.json"
        paths["manifest"].write_text(json.dumps(self.manifest(), indent=2) + "\n")
        return paths

    def validate(self, **overrides: Any) -> ValidationReport:
        """Our validator's report on this scenario: what ``handshakes cert check`` says on its written files.

        The leaf, the pool, the anchors, purpose, time, host, CRLs and the stapled OCSP response go to
        :func:`~handshake_lib.pki.validate.validate` with ``max_depth`` :data:`MAX_INTERMEDIATES`;
        ``overrides`` replace any of its keyword arguments (``host="www.other.example"``...).
        """
        arguments: dict[str, Any] = {
            "intermediates": self.intermediates, "trust_anchors": self.roots, "purpose": self.purpose,
            "at": self.at, "host": self.host, "crls": self.crls, "max_depth": MAX_INTERMEDIATES,
            "stapled_ocsp": None if self.ocsp is None else load_ocsp_response(self.ocsp, f"{self.name} OCSP"),
        }
        arguments.update(overrides)
        return validate(self.leaf, **arguments)


# -- the workshop every variant is built in ---------------------------------------------------------------
class _Workshop:
    """Keys, a clock and serial numbers for one scenario, and the standard chain the variants bend."""

    def __init__(self, now: dt.datetime, keys: KeyRing) -> None:
        self.now = now
        self.keys = keys
        self._serial = 0x1000

    def serial(self) -> int:
        self._serial += 1
        return self._serial

    def root(self, label: str = "root", common_name: str = "Handshakes Variants Root CA", **options: Any) -> Authority:
        return Authority.root(common_name, self.keys.get(label), now=self.now, serial=self.serial(), **options)

    def intermediate(
        self, parent: Authority, label: str = "intermediate", common_name: str = "Handshakes Variants Issuing CA",
        **options: Any,
    ) -> Authority:
        return parent.intermediate(common_name, self.keys.get(label), now=self.now, serial=self.serial(), **options)

    def leaf(
        self, issuer: Authority, names: tuple[str, ...] = (SHOP,), *, key_type: KeyType = "ecdsa-p256",
        **options: Any,
    ) -> tuple[x509.Certificate, PrivateKey]:
        key = self.keys.get(f"leaf-{key_type}", key_type)
        return issuer.leaf(names, key, now=self.now, serial=self.serial(), **options), key

    def chain(
        self, names: tuple[str, ...] = (SHOP,), *, key_type: KeyType = "ecdsa-p256",
        root: dict[str, Any] | None = None, intermediate: dict[str, Any] | None = None, **leaf: Any,
    ) -> tuple[Authority, Authority, x509.Certificate, PrivateKey]:
        """Root -> intermediate -> leaf, every property as a public CA sets it unless overridden."""
        anchor = self.root(**(root or {}))
        issuing = self.intermediate(anchor, **(intermediate or {}))
        certificate, key = self.leaf(issuing, names, key_type=key_type, **leaf)
        return anchor, issuing, certificate, key

    def crl(self, issuer: Authority, revoked: tuple[int, ...] = (), **options: Any) -> x509.CertificateRevocationList:
        options.setdefault("this_update", self.now - dt.timedelta(hours=1))
        options.setdefault("next_update", self.now + dt.timedelta(days=7))
        return build_crl(issuer, revoked, **options)

    def ocsp(self, certificate: x509.Certificate, issuer: Authority, status: str, **options: Any) -> bytes:
        options.setdefault("this_update", self.now - dt.timedelta(hours=1))
        options.setdefault("next_update", self.now + dt.timedelta(days=4))
        return ocsp_response(certificate, issuer, status, **options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class VariantInfo:
    """What a variant is, known before it is built (for listings and the CLI)."""

    name: str
    summary: str
    expected: Expected
    profiles: str
    recipe: Callable[[_Workshop], dict[str, Any]] = field(repr=False)


VARIANTS: dict[str, VariantInfo] = {}


def _variant(
    name: str, summary: str, expected: Expected = VALID, profiles: str = ""
) -> Callable[[Callable[[_Workshop], dict[str, Any]]], Callable[[_Workshop], dict[str, Any]]]:
    def register(recipe: Callable[[_Workshop], dict[str, Any]]) -> Callable[[_Workshop], dict[str, Any]]:
        if name in VARIANTS:
            raise ValueError(f"variant {name!r} is defined twice")
        VARIANTS[name] = VariantInfo(name, summary, expected, profiles, recipe)
        return recipe

    return register


def _server(anchor: Authority, issuing: Authority | None, leaf: x509.Certificate, key: PrivateKey,
            host: str = SHOP, **more: Any) -> dict[str, Any]:
    """The usual parts: the pool holds the issuing intermediate, the anchor is the root."""
    parts: dict[str, Any] = {
        "leaf": leaf, "leaf_key": key, "intermediates": (issuing.certificate,) if issuing else (),
        "roots": (anchor.certificate,), "host": host, "purpose": "server",
    }
    parts.update(more)
    return parts


def _client(anchor: Authority, issuing: Authority, leaf: x509.Certificate, key: PrivateKey,
            **more: Any) -> dict[str, Any]:
    return _server(anchor, issuing, leaf, key, host=None, purpose="client", **more)  # type: ignore[arg-type]


CLIENT_NAME = "alice.clients.example"
CLIENT_ONLY = (ExtendedKeyUsageOID.CLIENT_AUTH,)
SERVER_ONLY = (ExtendedKeyUsageOID.SERVER_AUTH,)
_BR_KEYS = (
    "The CA/Browser Forum's Baseline Requirements allow only RSA and ECDSA (P-256/384/521) keys in publicly "
    "trusted certificates; RFC 5280 with RFC 8410 allows Ed25519, and so do OpenSSL, cryptography's verifier "
    "and the profile we teach (what a key is allowed is a CA's policy, not a check of the chain)."
)
_NO_PSL = (
    "RFC 5280 and RFC 9525 only say where a wildcard may stand; the Web PKI also refuses wildcards over a "
    "public suffix (Public Suffix List; CA/B Forum Baseline Requirements 3.2.2.6). OpenSSL and "
    "cryptography know no Public Suffix List."
)

_OCSP = (
    "RFC 6960 leaves what a client does with a revoked, unknown or stale answer to local policy, and "
    "browsers soft-fail (a missing or unusable answer is ignored), which is why public CAs retired OCSP in "
    "2025. Our default policy (require-fresh): 'revoked' and a stale answer fail; 'unknown' (the responder "
    "does not know the certificate) counts as no answer, so revocation is not checked; the hard-fail policy "
    "refuses it, as Firefox does with a stapled 'unknown'. openssl verify reads no OCSP; openssl ocsp "
    "-respin checks the stapled response."
)
_CRL = (
    "RFC 5280 (6.1.3) makes a revocation check part of path validation when CRLs are at hand; browsers "
    "mostly use pushed lists (CRLSets, CRLite) instead of fetching CRLs. The profile we teach checks every "
    "CRL it is given, each signed by an issuer with cRLSign and fresh by its nextUpdate."
)


# -- valid chains -----------------------------------------------------------------------------------------
@_variant("valid-ecdsa", "root -> intermediate -> ECDSA P-256 server leaf for www.shop.example")
def _valid_ecdsa(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain())


@_variant("valid-rsa", "root -> intermediate -> RSA 2048 server leaf (what TLS_RSA_* key exchange needs)")
def _valid_rsa(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(key_type="rsa2048"))


@_variant("valid-ed25519", "root -> intermediate -> Ed25519 server leaf", profiles=_BR_KEYS)
def _valid_ed25519(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(key_type="ed25519"))


@_variant("valid-no-intermediate", "the leaf is issued directly by the trusted root; no intermediates")
def _valid_direct(w: _Workshop) -> dict[str, Any]:
    anchor = w.root()
    leaf, key = w.leaf(anchor)
    return _server(anchor, None, leaf, key)


@_variant("valid-client", "a client certificate (clientAuth) checked for the client purpose")
def _valid_client(w: _Workshop) -> dict[str, Any]:
    return _client(*w.chain((CLIENT_NAME,), purpose="client"))


@_variant("valid-client-rsa", "an RSA client certificate (clientAuth) checked for the client purpose")
def _valid_client_rsa(w: _Workshop) -> dict[str, Any]:
    return _client(*w.chain((CLIENT_NAME,), key_type="rsa2048", purpose="client"))


@_variant("valid-both-ekus", "a leaf with serverAuth and clientAuth, checked for the client purpose")
def _valid_both(w: _Workshop) -> dict[str, Any]:
    both = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    return _client(*w.chain((CLIENT_NAME,), extended_usage=both))


@_variant("valid-ipv4", "an IPv4 address SAN (127.0.0.1) checked against the address 127.0.0.1")
def _valid_ipv4(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("localhost", "127.0.0.1")), host="127.0.0.1")


@_variant("valid-ipv6", "an IPv6 address SAN (::1) checked against the address ::1")
def _valid_ipv6(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("localhost", "::1")), host="::1")


@_variant("valid-wildcard", "*.shop.example covers www.shop.example (one whole left-most label)")
def _valid_wildcard(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("*.shop.example",)))


@_variant("valid-crl", "CRLs from the root and the intermediate, fresh, listing other serial numbers")
def _valid_crl(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    crls = (w.crl(anchor, (0xDEAD,)), w.crl(issuing, (0xBEEF,)))
    return _server(anchor, issuing, leaf, key, crls=crls)


@_variant("valid-ocsp-good", "a stapled OCSP response from the issuer: good, fresh")
def _valid_ocsp(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    return _server(anchor, issuing, leaf, key, ocsp=w.ocsp(leaf, issuing, "good"))


@_variant("valid-name-constraints", "the intermediate may issue only under shop.example; the leaf is in it")
def _valid_constraints(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(intermediate={"permitted_dns": ("shop.example",)}))


@_variant("valid-path-length", "root pathLen 1 -> intermediate pathLen 0 -> leaf: within both limits")
def _valid_path_length(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(root={"path_length": 1}, intermediate={"path_length": 0}))


@_variant("valid-unknown-noncritical-extension", "the leaf carries an unknown extension, not critical")
def _valid_unknown(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    # The same leaf with the extension, not critical: built by hand since the option marks it critical.
    builder = x509.CertificateBuilder(
        issuer_name=leaf.issuer, subject_name=leaf.subject, public_key=leaf.public_key(),
        serial_number=leaf.serial_number, not_valid_before=leaf.not_valid_before_utc,
        not_valid_after=leaf.not_valid_after_utc, extensions=list(leaf.extensions),
    ).add_extension(x509.UnrecognizedExtension(UNKNOWN_EXTENSION_OID, b"\x05\x00"), critical=False)
    leaf = builder.sign(issuing.private_key, signature_hash(issuing.private_key))
    return _server(anchor, issuing, leaf, key)


@_variant(
    "valid-cross-signed",
    "CAs A and B cross-signed each other (a cycle in the pool); B issued the leaf; A is trusted",
)
def _valid_cross(w: _Workshop) -> dict[str, Any]:
    a_root, b_by_a, a_by_b, leaf, key = _cross_signed(w)
    return _server(a_root, None, leaf, key, intermediates=(a_by_b.certificate, b_by_a.certificate))


@_variant(
    "valid-long-chain",
    f"{MAX_INTERMEDIATES} intermediates in a row, unordered in the pool: the most the profile allows",
)
def _valid_long(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, pool = _long_chain(w, MAX_INTERMEDIATES)
    leaf, key = w.leaf(issuing)
    return _server(anchor, None, leaf, key, intermediates=pool)


# -- time --------------------------------------------------------------------------------------------------
@_variant("expired", "the leaf's notAfter was 10 days ago", _fails("validity"))
def _expired(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(not_before=-dt.timedelta(days=100), not_after=-dt.timedelta(days=10)))


@_variant("not-yet-valid", "the leaf's notBefore is 10 days ahead", _fails("validity"))
def _not_yet(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(not_before=dt.timedelta(days=10), not_after=dt.timedelta(days=100)))


@_variant("expired-intermediate", "the intermediate's notAfter was a day ago; the leaf is in date", _fails("validity"))
def _expired_intermediate(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(
        intermediate={"not_before": -dt.timedelta(days=400), "not_after": -dt.timedelta(days=1)}
    ))


@_variant("client-not-yet-valid", "a client certificate whose notBefore is a day ahead", _fails("validity"))
def _client_not_yet(w: _Workshop) -> dict[str, Any]:
    return _client(*w.chain(
        (CLIENT_NAME,), purpose="client", not_before=dt.timedelta(days=1), not_after=dt.timedelta(days=90)
    ))


@_variant("client-expired", "an expired client certificate", _fails("validity"))
def _client_expired(w: _Workshop) -> dict[str, Any]:
    return _client(*w.chain(
        (CLIENT_NAME,), purpose="client", not_before=-dt.timedelta(days=100), not_after=-dt.timedelta(days=1)
    ))


# -- names -------------------------------------------------------------------------------------------------
@_variant("wrong-host", "a certificate for www.shop.example presented for www.other.example", _fails("host_name"))
def _wrong_host(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(), host="www.other.example")


@_variant(
    "wildcard-two-labels", "*.shop.example presented for a.b.shop.example: a wildcard covers one label",
    _fails("host_name"),
)
def _wildcard_two(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("*.shop.example",)), host="a.b.shop.example")


@_variant(
    "wildcard-bare-domain", "*.shop.example presented for shop.example: the wildcard needs a label",
    _fails("host_name"),
)
def _wildcard_bare(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("*.shop.example",)), host="shop.example")


@_variant(
    "wildcard-nested", "*.*.shop.example presented for a.b.shop.example: only the left-most label may be *",
    _fails("host_name"),
)
def _wildcard_nested(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("*.*.shop.example",)), host="a.b.shop.example")


@_variant(
    "wildcard-partial-label", "w*.shop.example presented for www.shop.example: * must be the whole label",
    _fails("host_name"),
    "RFC 6125 (section 6.4.3) let clients match a partial-label wildcard; RFC 9525 (section 6.3) and the "
    "Baseline Requirements forbid it. OpenSSL still matches it unless told not to.",
)
def _wildcard_partial(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("w*.shop.example",)))


@_variant(
    "wildcard-public-suffix", "*.co.uk presented for shop.co.uk: a wildcard over a public suffix",
    _fails("host_name"), _NO_PSL,
)
def _wildcard_psl(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("*.co.uk",)), host="shop.co.uk")


@_variant(
    "wildcard-tld", "*.com presented for example.com: a wildcard over a whole top-level domain",
    _fails("host_name"), _NO_PSL + " OpenSSL refuses a wildcard with fewer than two labels after it.",
)
def _wildcard_tld(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("*.com",)), host="example.com")


@_variant(
    "ip-with-dns-san", "the address 127.0.0.1 checked against a DNS SAN spelled 127.0.0.1 (and CN 127.0.0.1)",
    _fails("host_name"),
)
def _ip_dns(w: _Workshop) -> dict[str, Any]:
    anchor = w.root()
    issuing = w.intermediate(anchor)
    leaf, key = w.leaf(issuing, (), common_name="127.0.0.1")
    # A DNSName holding an address: only an iPAddress SAN may match an address (RFC 9525 section 6.2.1).
    leaf = _with_san(leaf, issuing, [x509.DNSName("127.0.0.1")])
    return _server(anchor, issuing, leaf, key, host="127.0.0.1")


@_variant(
    "dns-with-ip-san", "the name localhost checked against a certificate with only an IP SAN", _fails("host_name")
)
def _dns_ip(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(("127.0.0.1",)), host="localhost")


@_variant(
    "common-name-only", "no subjectAltName; the subject's CN is www.shop.example", _fails("host_name"),
    "RFC 6125 let a client fall back to the subject's CN when there was no DNS SAN; RFC 9525 and the "
    "browsers never look at the CN. OpenSSL still falls back to it.",
)
def _cn_only(w: _Workshop) -> dict[str, Any]:
    anchor = w.root()
    issuing = w.intermediate(anchor)
    leaf, key = w.leaf(issuing, (), common_name=SHOP)
    return _server(anchor, issuing, leaf, key)


# -- trust and path ----------------------------------------------------------------------------------------
@_variant(
    "untrusted-root",
    "a root with the trusted root's name but another key issued the chain (the AKIs name that other key)",
    _fails("path"),
    "A path builder that picks issuers by name alone tries the trusted root and reports its signature; "
    "matching the authorityKeyIdentifier to the subjectKeyIdentifier (RFC 5280 4.2.1.1) finds no issuer.",
)
def _untrusted_root(w: _Workshop) -> dict[str, Any]:
    trusted = w.root()
    rogue = w.root(label="rogue-root")
    issuing = w.intermediate(rogue)
    leaf, key = w.leaf(issuing)
    return _server(trusted, issuing, leaf, key)


@_variant("client-untrusted-root", "a client certificate from a CA the server does not trust", _fails("path"))
def _client_untrusted(w: _Workshop) -> dict[str, Any]:
    trusted = w.root()
    rogue = w.root(label="rogue-root", common_name="Some Other Root CA")
    issuing = w.intermediate(rogue)
    leaf, key = w.leaf(issuing, (CLIENT_NAME,), purpose="client")
    return _client(trusted, issuing, leaf, key)


@_variant("missing-intermediate", "the server sent its leaf without the intermediate that issued it", _fails("path"))
def _missing(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(), intermediates=())


@_variant("self-signed-leaf", "a self-signed server certificate that nobody trusts", _fails("path"))
def _self_signed(w: _Workshop) -> dict[str, Any]:
    trusted = w.root()
    key = w.keys.get("leaf-ecdsa-p256")
    leaf = Authority.root(
        SHOP, key, now=w.now, serial=w.serial(), ca=False, names=(SHOP,), not_after=dt.timedelta(days=90),
        extended_usage=SERVER_ONLY,
    ).certificate
    return _server(trusted, None, leaf, key)


@_variant(
    "cross-signed-cycle",
    "CAs A and B cross-signed each other (a cycle in the pool), B issued the leaf, only another root is "
    "trusted: path building must end, not loop",
    _fails("path"),
)
def _cycle(w: _Workshop) -> dict[str, Any]:
    _, b_by_a, a_by_b, leaf, key = _cross_signed(w)
    other = w.root(label="other-root", common_name="Handshakes Unrelated Root CA")
    return _server(other, None, leaf, key, intermediates=(a_by_b.certificate, b_by_a.certificate))


@_variant(
    "too-long-chain", f"20 intermediates in a row, more than the profile's {MAX_INTERMEDIATES}", _fails("path"),
    "RFC 5280 sets no limit on a path's length; every validator bounds it (cryptography: 8 intermediates "
    "by default, OpenSSL: 100, -verify_depth lowers it). The course profile stops at "
    f"{MAX_INTERMEDIATES}, so there is no acceptable path.",
)
def _too_long(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, pool = _long_chain(w, 20)
    leaf, key = w.leaf(issuing)
    return _server(anchor, None, leaf, key, intermediates=pool)


@_variant(
    "chain-one-too-long", f"{MAX_INTERMEDIATES + 1} intermediates in a row: one more than the profile allows",
    _fails("path"), "See too-long-chain.",
)
def _one_too_long(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, pool = _long_chain(w, MAX_INTERMEDIATES + 1)
    leaf, key = w.leaf(issuing)
    return _server(anchor, None, leaf, key, intermediates=pool)


@_variant(
    "client-missing-intermediate", "a client sent its leaf without the intermediate that issued it", _fails("path")
)
def _client_missing(w: _Workshop) -> dict[str, Any]:
    return _client(*w.chain((CLIENT_NAME,), purpose="client"), intermediates=())


# -- signatures --------------------------------------------------------------------------------------------
@_variant("bad-signature", "one bit of the leaf's signature flipped in transit", _fails("signature"))
def _bad_signature(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    return _server(anchor, issuing, _flip_last_bit(leaf), key)


@_variant("client-bad-signature", "one bit of a client certificate's signature flipped", _fails("signature"))
def _client_bad_signature(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain((CLIENT_NAME,), purpose="client")
    return _client(anchor, issuing, _flip_last_bit(leaf), key)


@_variant(
    "wrong-signing-key", "the leaf names the intermediate as issuer but another key signed it", _fails("signature"),
)
def _wrong_key(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(signing_key=w.keys.get("impostor")))


# -- constraints -------------------------------------------------------------------------------------------
@_variant(
    "intermediate-not-ca", "the intermediate's basicConstraints say CA:FALSE (its keyUsage still has keyCertSign)",
    _fails("basic_constraints"),
)
def _not_ca(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(intermediate={"ca": False, "usage": CA_USAGE}))


@_variant(
    "intermediate-no-basic-constraints", "the intermediate has no basicConstraints at all", _fails("basic_constraints"),
    "RFC 5280 (4.2.1.9) requires basicConstraints with cA on every CA certificate that signs certificates; "
    "only version 1 roots, configured by hand, were ever accepted without it. The Web PKI agrees.",
)
def _no_bc(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(intermediate={"ca": None, "usage": CA_USAGE}))


@_variant(
    "path-length-exceeded",
    "root -> intermediate (pathLen 0) -> second intermediate -> leaf: one CA too many below the first",
    _fails("path_length"),
)
def _path_length(w: _Workshop) -> dict[str, Any]:
    anchor = w.root()
    first = w.intermediate(anchor, path_length=0)
    second = w.intermediate(first, label="intermediate-2", common_name="Handshakes Variants Sub CA")
    leaf, key = w.leaf(second)
    return _server(anchor, None, leaf, key, intermediates=(second.certificate, first.certificate))


@_variant(
    "ca-without-keycertsign", "the intermediate's keyUsage has digitalSignature and cRLSign, no keyCertSign",
    _fails("key_usage"),
    "A path builder that skips issuers whose keyUsage lacks keyCertSign (OpenSSL does) reports no path "
    "instead; the verdict is the same.",
)
def _no_certsign(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(intermediate={"usage": {"digital_signature", "crl_sign"}}))


@_variant("wrong-eku", "a leaf for clientAuth only, presented by a server", _fails("extended_key_usage"))
def _wrong_eku(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(extended_usage=CLIENT_ONLY))


@_variant(
    "client-wrong-eku", "a leaf for serverAuth only, presented as a client certificate", _fails("extended_key_usage")
)
def _client_wrong_eku(w: _Workshop) -> dict[str, Any]:
    return _client(*w.chain((CLIENT_NAME,), extended_usage=SERVER_ONLY))


@_variant(
    "name-constraints-violated",
    "the intermediate may issue only under shop.example; the leaf is for www.other.example",
    _fails("name_constraints"),
)
def _constraints_violated(w: _Workshop) -> dict[str, Any]:
    chain = w.chain(("www.other.example",), intermediate={"permitted_dns": ("shop.example",)})
    return _server(*chain, host="www.other.example")


@_variant(
    "unknown-critical-extension", "the leaf carries an extension nobody knows, marked critical",
    _fails("critical_extensions"),
)
def _unknown_critical(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(unknown_critical_extension=True))


@_variant(
    "no-eku", "a server leaf without extendedKeyUsage: any purpose, so valid", VALID,
    "The Baseline Requirements (7.1.2.7.10) oblige a CA to put serverAuth in a subscriber certificate, but "
    "a verifier reads a missing extendedKeyUsage as 'any purpose' (RFC 5280 4.2.1.12): OpenSSL, "
    "cryptography and browsers do, and so do we. A certificate WITH an extendedKeyUsage must list the purpose.",
)
def _no_eku(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(extended_usage=None))


@_variant(
    "leaf-is-ca", "the server's own certificate says CA:TRUE", _fails("basic_constraints"),
    "RFC 5280 does not stop a CA certificate from being used as an end entity's; the Baseline Requirements "
    "(7.1.2.7.8) forbid cA in a subscriber certificate, and so does the profile we teach. OpenSSL follows "
    "RFC 5280.",
)
def _leaf_is_ca(w: _Workshop) -> dict[str, Any]:
    return _server(*w.chain(ca=True, usage={"digital_signature", "key_cert_sign"}))


# -- revocation --------------------------------------------------------------------------------------------
@_variant("revoked-leaf-crl", "the intermediate's CRL lists the leaf's serial number", _fails("revocation"), _CRL)
def _revoked_leaf(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    crls = (w.crl(anchor), w.crl(issuing, (leaf.serial_number,)))
    return _server(anchor, issuing, leaf, key, crls=crls)


@_variant(
    "revoked-intermediate-crl", "the root's CRL lists the intermediate's serial number", _fails("revocation"), _CRL
)
def _revoked_intermediate(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    crls = (w.crl(anchor, (issuing.certificate.serial_number,)), w.crl(issuing))
    return _server(anchor, issuing, leaf, key, crls=crls)


@_variant("client-revoked-crl", "a client certificate its issuer's CRL lists", _fails("revocation"))
def _client_revoked(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain((CLIENT_NAME,), purpose="client")
    crls = (w.crl(anchor), w.crl(issuing, (leaf.serial_number,)))
    return _client(anchor, issuing, leaf, key, crls=crls)


@_variant(
    "stale-crl", "the intermediate's CRL is past its nextUpdate (a day ago)", _fails("revocation"), _CRL,
)
def _stale_crl(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    stale = w.crl(issuing, this_update=w.now - dt.timedelta(days=8), next_update=w.now - dt.timedelta(days=1))
    return _server(anchor, issuing, leaf, key, crls=(w.crl(anchor), stale))


@_variant(
    "crl-without-crlsign", "the intermediate signed its CRL but its keyUsage lacks cRLSign", _fails("key_usage"),
    _CRL + " A CRL from an issuer without cRLSign is refused under key_usage (RFC 5280 4.2.1.3), as OpenSSL's "
    "error 35 'key usage does not include CRL signing' does.",
)
def _crl_no_crlsign(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain(intermediate={"usage": {"digital_signature", "key_cert_sign"}})
    return _server(anchor, issuing, leaf, key, crls=(w.crl(anchor), w.crl(issuing)))


@_variant("revoked-ocsp", "the stapled OCSP response says revoked", _fails("revocation"), _OCSP)
def _revoked_ocsp(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    return _server(anchor, issuing, leaf, key, ocsp=w.ocsp(leaf, issuing, "revoked"))


@_variant("ocsp-unknown", "the stapled OCSP response says unknown: no answer, so revocation is not checked",
          VALID, _OCSP)
def _unknown_ocsp(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    return _server(anchor, issuing, leaf, key, ocsp=w.ocsp(leaf, issuing, "unknown"))


@_variant(
    "ocsp-expired", "the stapled OCSP response says good, but its nextUpdate was a day ago", _fails("revocation"),
    _OCSP,
)
def _expired_ocsp(w: _Workshop) -> dict[str, Any]:
    anchor, issuing, leaf, key = w.chain()
    stale = w.ocsp(
        leaf, issuing, "good", this_update=w.now - dt.timedelta(days=5), next_update=w.now - dt.timedelta(days=1)
    )
    return _server(anchor, issuing, leaf, key, ocsp=stale)


# -- helpers for the recipes above ------------------------------------------------------------------------
def _flip_last_bit(certificate: x509.Certificate) -> x509.Certificate:
    """``certificate`` with one bit of its signature flipped: it still parses, and no longer verifies."""
    der = bytearray(certificate.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of a certificate is the last byte of its signature value
    return x509.load_der_x509_certificate(bytes(der))



def _with_san(leaf: x509.Certificate, issuer: Authority, names: list[x509.GeneralName]) -> x509.Certificate:
    """``leaf`` re-signed by ``issuer`` with a subjectAltName of exactly ``names`` (any kind, as given)."""
    extensions = [e for e in leaf.extensions if not isinstance(e.value, x509.SubjectAlternativeName)]
    builder = x509.CertificateBuilder(
        issuer_name=leaf.issuer, subject_name=leaf.subject, public_key=leaf.public_key(),
        serial_number=leaf.serial_number, not_valid_before=leaf.not_valid_before_utc,
        not_valid_after=leaf.not_valid_after_utc, extensions=extensions,
    ).add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer.private_key, signature_hash(issuer.private_key))


def _cross_signed(w: _Workshop) -> tuple[Authority, Authority, Authority, x509.Certificate, PrivateKey]:
    """Root A (self-signed), B signed by A, A signed by B: two certificates that issue each other."""
    a_key, b_key = w.keys.get("cross-a"), w.keys.get("cross-b")
    a_root = Authority.root("Handshakes Cross CA A", a_key, now=w.now, serial=w.serial())
    b_by_a = a_root.intermediate("Handshakes Cross CA B", b_key, now=w.now, serial=w.serial())
    a_by_b = b_by_a.intermediate("Handshakes Cross CA A", a_key, now=w.now, serial=w.serial())
    leaf, key = w.leaf(b_by_a)
    return a_root, b_by_a, a_by_b, leaf, key


def _long_chain(w: _Workshop, count: int) -> tuple[Authority, Authority, tuple[x509.Certificate, ...]]:
    """Root and ``count`` intermediates in a row; the pool lists them in a shuffled, reproducible order."""
    anchor = w.root()
    issuing = anchor
    chain: list[x509.Certificate] = []
    for depth in range(1, count + 1):
        issuing = w.intermediate(issuing, label=f"chain-{depth}", common_name=f"Handshakes Chain CA {depth}")
        chain.append(issuing.certificate)
    # Unordered, as the issue asks of a pool: every other CA from the top, then the rest from the bottom.
    return anchor, issuing, (*reversed(chain[::2]), *chain[1::2])


# -- building ----------------------------------------------------------------------------------------------
def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone (datetime.UTC), or OpenSSL and cryptography disagree")
    return now


def build_variant(name: str, *, now: dt.datetime | None = None, keys: KeyRing | None = None) -> Scenario:
    """The scenario called ``name`` (one of :data:`VARIANTS`), validated at ``now`` (default: now)."""
    info = VARIANTS.get(name)
    if info is None:
        raise ValueError(f"unknown variant {name!r} (one of: {', '.join(VARIANTS)})")
    workshop = _Workshop(_now(now), keys or KeyRing())
    parts = info.recipe(workshop)
    return Scenario(
        name=name, summary=info.summary, expected=info.expected, profiles=info.profiles, at=workshop.now, **parts
    )


def build_all(*, now: dt.datetime | None = None, keys: KeyRing | None = None) -> list[Scenario]:
    """Every variant, in definition order, from one key ring (made here if not given)."""
    keys = keys or KeyRing()
    when = _now(now)
    return [build_variant(name, now=when, keys=keys) for name in VARIANTS]
