"""A corpus of certificate chains for the validator's tests: each one valid, or broken in one way.

Built with ``cryptography`` directly (the course PKI builder makes the course's own chains; these need
every field under our control).  All cases share one validation time, :data:`AT`, and a handful of
keys generated once, so the whole corpus costs a few hundred milliseconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


class Keys:
    """A few keys, made once: generating RSA keys is what would make the corpus slow."""

    def __init__(self) -> None:
        self.ec = [ec.generate_private_key(ec.SECP256R1()) for _ in range(8)]
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ed = ed25519.Ed25519PrivateKey.generate()


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Validator tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def usage(**flags: bool) -> x509.KeyUsage:
    every = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]
    return x509.KeyUsage(**{f: flags.get(f, False) for f in every})


CA_USAGE = usage(key_cert_sign=True, crl_sign=True, digital_signature=True)

_serial = iter(range(1000, 10**6))


def cert(
    cn: str,
    key,
    issuer: x509.Certificate | None,
    issuer_key,
    *,
    ca: bool = False,
    path_length: int | None = None,
    basic_constraints: bool = True,
    key_usage: x509.KeyUsage | None | str = "default",
    eku: list | None | str = "default",
    sans: list[str] | None = None,
    not_before: dt.datetime = AT - 30 * DAY,
    not_after: dt.datetime = AT + 30 * DAY,
    name_constraints: x509.NameConstraints | None = None,
    extra: list[tuple[x509.ExtensionType, bool]] = (),
    subject: x509.Name | None = None,
    sign_with=None,
) -> x509.Certificate:
    """One certificate; ``issuer=None`` makes it self-signed (a root).  Defaults follow the CA/B rules."""
    subject = subject or name(cn)
    public = key.public_key()
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.subject if issuer is not None else subject)
               .public_key(public).serial_number(next(_serial))
               .not_valid_before(not_before).not_valid_after(not_after))
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), True)
    if key_usage == "default":
        if ca:
            key_usage = CA_USAGE
        else:
            key_usage = usage(digital_signature=True, key_encipherment=isinstance(key, rsa.RSAPrivateKey))
    if key_usage is not None:
        builder = builder.add_extension(key_usage, True)
    if eku == "default":
        eku = None if ca else [SERVER]
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), False)
    if sans is None and not ca:
        sans = ["www.example.com"]
    if sans:
        entries = []
        for s in sans:
            if s.startswith("dns:"):
                entries.append(x509.DNSName(s[4:]))
                continue
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                entries.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, True)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
    signer = issuer_key if issuer is not None else key
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False)
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical)
    sign_key = sign_with or signer
    algorithm = None if isinstance(sign_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(sign_key, algorithm)


def crl(
    issuer: x509.Certificate, issuer_key, revoked: list[x509.Certificate] = (), *,
    last: dt.datetime = AT - DAY, next_: dt.datetime = AT + 6 * DAY, sign_with=None,
) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
               .last_update(last).next_update(next_))
    for c in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(c.serial_number).revocation_date(AT - 2 * DAY).build())
    return builder.sign(sign_with or issuer_key, hashes.SHA256())


def ocsp_response(leaf, issuer, issuer_key, status=ocsp.OCSPCertStatus.GOOD, *, this=AT - DAY,
                  next_=AT + 3 * DAY, responder=None, responder_key=None) -> ocsp.OCSPResponse:
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf, issuer=issuer, algorithm=hashes.SHA1(), cert_status=status, this_update=this, next_update=next_,
        revocation_time=AT - 2 * DAY if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None)
    signer_cert, signer_key = (responder, responder_key) if responder is not None else (issuer, issuer_key)
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    if responder is not None:
        builder = builder.certificates([responder])
    return builder.sign(signer_key, hashes.SHA256())


@dataclass
class Case:
    """One validation problem and the checks our validator must fail on it (empty: valid)."""

    leaf: x509.Certificate
    pool: list[x509.Certificate]
    anchors: list[x509.Certificate]
    fails: set[str] = field(default_factory=set)
    host: str | None = "www.example.com"
    purpose: str = "server"
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    ocsp: list[ocsp.OCSPResponse] = field(default_factory=list)
    stapled: ocsp.OCSPResponse | None = None
    max_depth: int = 8
    reason: str = ""  # a piece of the first failure's reason
    not_checked: set[str] = field(default_factory=set)  # beyond host_name/revocation's usual ones

    @property
    def valid(self) -> bool:
        return not self.fails


def corpus(keys: Keys) -> dict[str, Case]:
    """Every case by name."""
    k = keys.ec
    root = cert("Test Root CA", k[0], None, None, ca=True)
    inter = cert("Test Intermediate CA", k[1], root, k[0], ca=True, path_length=0)
    leaf = cert("www.example.com", k[2], inter, k[1])
    other_root = cert("Other Root CA", k[3], None, None, ca=True)

    def chain(**kw) -> x509.Certificate:
        return cert(kw.pop("cn", "www.example.com"), kw.pop("key", k[2]), inter, k[1], **kw)

    def c(leaf_cert, **kw) -> Case:
        return Case(leaf_cert, kw.pop("pool", [inter]), kw.pop("anchors", [root]), **kw)

    cases: dict[str, Callable[[], Case]] = {}

    def case(fn: Callable[[], Case]) -> Callable[[], Case]:
        cases[fn.__name__] = fn
        return fn

    # -- valid chains ------------------------------------------------------------------------------
    @case
    def valid_server_ecdsa():
        return c(leaf)

    @case
    def valid_server_rsa():
        return c(chain(key=keys.rsa))

    @case
    def valid_server_ed25519_leaf():
        return c(chain(key=keys.ed))

    @case
    def valid_server_rsa_chain():
        r = cert("RSA Root", keys.rsa, None, None, ca=True)
        i = cert("RSA Intermediate", k[4], r, keys.rsa, ca=True)
        return c(cert("www.example.com", keys.rsa, i, k[4]), pool=[i], anchors=[r])

    @case
    def valid_ip_address():
        return c(chain(sans=["127.0.0.1", "::1"]), host="127.0.0.1")

    @case
    def valid_ipv6_address():
        return c(chain(sans=["127.0.0.1", "::1"]), host="::1")

    @case
    def valid_wildcard():
        return c(chain(sans=["*.example.com"]), host="api.example.com")

    @case
    def valid_host_case_insensitive():
        return c(leaf, host="WWW.Example.COM")

    @case
    def valid_leaf_from_root():
        return c(cert("www.example.com", k[2], root, k[0]), pool=[], max_depth=0)

    @case
    def valid_pool_unordered_with_noise():
        noise = [cert(f"Noise CA {n}", k[5], root, k[0], ca=True) for n in range(3)]
        return c(leaf, pool=[*noise, inter, other_root])

    @case
    def valid_client():
        return c(chain(cn="alice", eku=[CLIENT], sans=["alice.example.com"]), host=None, purpose="client")

    @case
    def valid_client_rsa():
        return c(chain(cn="bob", key=keys.rsa, eku=[CLIENT], sans=["bob.example.com"]), host=None,
                 purpose="client")

    @case
    def valid_server_and_client_eku():
        return c(chain(eku=[SERVER, CLIENT]), purpose="client", host=None)

    @case
    def valid_crls_good():
        return c(leaf, crls=[crl(inter, k[1]), crl(root, k[0])])

    @case
    def valid_ocsp_good():
        return c(leaf, ocsp=[ocsp_response(leaf, inter, k[1])])

    @case
    def valid_ocsp_stapled_good():
        return c(leaf, stapled=ocsp_response(leaf, inter, k[1]))

    @case
    def valid_ocsp_delegated_responder():
        responder = cert("OCSP responder", k[6], inter, k[1], eku=[ExtendedKeyUsageOID.OCSP_SIGNING], sans=[])
        return c(leaf, ocsp=[ocsp_response(leaf, inter, k[1], responder=responder, responder_key=k[6])])

    @case
    def valid_stapled_used_first():
        # The stapled "good" answers for the leaf; the CRLs answer for the intermediate.
        return c(leaf, stapled=ocsp_response(leaf, inter, k[1]), crls=[crl(inter, k[1]), crl(root, k[0])])

    @case
    def valid_ocsp_unknown_is_not_checked():
        return c(leaf, ocsp=[ocsp_response(leaf, inter, k[1], ocsp.OCSPCertStatus.UNKNOWN)],
                 not_checked={"revocation"})

    @case
    def valid_alternative_to_expired_intermediate():
        # Same name and key twice: an expired copy first in the pool, a valid one after it.
        old = cert("Test Intermediate CA", k[1], root, k[0], ca=True, not_after=AT - DAY,
                   not_before=AT - 400 * DAY)
        return c(leaf, pool=[old, inter])

    @case
    def valid_alternative_to_untrusted_cross_sign():
        by_other = cert("Test Intermediate CA", k[1], other_root, k[3], ca=True)
        return c(leaf, pool=[by_other, other_root, inter])

    @case
    def valid_name_constraints_permitted():
        nc = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None)
        i = cert("Constrained CA", k[4], root, k[0], ca=True, name_constraints=nc)
        return c(cert("www.example.com", k[2], i, k[4]), pool=[i])

    @case
    def valid_no_eku():
        return c(chain(eku=None))

    # -- one thing broken ----------------------------------------------------------------------------
    @case
    def expired_leaf():
        return c(chain(not_after=AT - DAY), fails={"validity"}, reason="expired on")

    @case
    def not_yet_valid_leaf():
        return c(chain(not_before=AT + DAY), fails={"validity"}, reason="not valid before")

    @case
    def expired_intermediate():
        i = cert("Test Intermediate CA", k[1], root, k[0], ca=True, not_after=AT - DAY, not_before=AT - 90 * DAY)
        return c(leaf, pool=[i], fails={"validity"}, reason="'Test Intermediate CA' expired")

    @case
    def expired_root():
        r = cert("Test Root CA", k[0], None, None, ca=True, not_after=AT - DAY, not_before=AT - 90 * DAY)
        return c(leaf, anchors=[r], fails={"validity"}, reason="'Test Root CA' expired")

    @case
    def wrong_host():
        return c(leaf, host="www.example.org", fails={"host_name"}, reason="is not for 'www.example.org'")

    @case
    def wrong_ip():
        return c(chain(sans=["127.0.0.1"]), host="127.0.0.2", fails={"host_name"}, reason="127.0.0.2")

    @case
    def ip_only_in_dns_name():
        return c(chain(sans=["dns:127.0.0.1"]), host="127.0.0.1", fails={"host_name"}, reason="iPAddress")

    @case
    def wildcard_over_two_labels():
        return c(chain(sans=["*.example.com"]), host="a.b.example.com", fails={"host_name"})

    @case
    def wildcard_not_for_apex():
        return c(chain(sans=["*.example.com"]), host="example.com", fails={"host_name"})

    @case
    def wildcard_double():
        return c(chain(sans=["*.*.example.com"]), host="a.b.example.com", fails={"host_name"},
                 reason="beyond the left-most label")

    @case
    def wildcard_partial_label():
        return c(chain(sans=["w*.example.com"]), host="www.example.com", fails={"host_name"},
                 reason="not the whole left-most label")

    @case
    def wildcard_on_public_suffix():
        return c(chain(sans=["*.co.uk"]), host="example.co.uk", fails={"host_name"}, reason="public suffix")

    @case
    def wildcard_on_tld():
        return c(chain(sans=["*.com"]), host="example.com", fails={"host_name"}, reason="public suffix")

    @case
    def common_name_only():
        return c(chain(sans=[]), fails={"host_name"}, reason="commonName is not consulted")

    @case
    def untrusted_root():
        return c(leaf, anchors=[other_root], fails={"path"}, reason="no path to a trust anchor")

    @case
    def untrusted_root_sent_in_chain():
        return c(leaf, pool=[inter, root], anchors=[other_root], fails={"path"}, reason="self-signed")

    @case
    def missing_intermediate():
        return c(leaf, pool=[], fails={"path"}, reason="no issuer of 'www.example.com'")

    @case
    def intermediate_not_ca():
        i = cert("Test Intermediate CA", k[1], root, k[0], ca=False, key_usage=CA_USAGE, eku=None, sans=[])
        return c(leaf, pool=[i], fails={"basic_constraints"}, reason="is not a CA (cA=FALSE)")

    @case
    def intermediate_without_basic_constraints():
        i = cert("Test Intermediate CA", k[1], root, k[0], basic_constraints=False, key_usage=CA_USAGE, eku=None,
                 sans=[])
        return c(leaf, pool=[i], fails={"basic_constraints"}, reason="no basicConstraints")

    @case
    def leaf_is_a_ca():
        return c(chain(ca=True, key_usage=CA_USAGE, eku=[SERVER], sans=["www.example.com"]),
                 fails={"basic_constraints"}, reason="is a CA certificate")

    @case
    def path_length_exceeded():
        i2 = cert("Second Intermediate CA", k[4], inter, k[1], ca=True)
        return c(cert("www.example.com", k[2], i2, k[4]), pool=[inter, i2], fails={"path_length"},
                 reason="allows 0 intermediate(s)")

    @case
    def depth_exceeded():
        i2 = cert("Second Intermediate CA", k[4], root, k[0], ca=True)
        i3 = cert("Third Intermediate CA", k[5], i2, k[4], ca=True)
        return c(cert("www.example.com", k[2], i3, k[5]), pool=[i2, i3], max_depth=1, fails={"path"},
                 reason="max_depth")

    @case
    def bad_signature():
        return c(chain(sign_with=k[7]), fails={"signature"}, reason="is not signed by")

    @case
    def bad_signature_on_intermediate():
        i = cert("Test Intermediate CA", k[1], root, k[0], ca=True, path_length=0, sign_with=k[7])
        return c(leaf, pool=[i], fails={"signature"}, reason="'Test Intermediate CA' is not signed")

    @case
    def wrong_eku_client_only():
        return c(chain(eku=[CLIENT]), fails={"extended_key_usage"}, reason="lacks serverAuth")

    @case
    def server_certificate_used_as_client():
        return c(leaf, purpose="client", host=None, fails={"extended_key_usage"}, reason="lacks clientAuth")

    @case
    def any_eku_only():
        return c(chain(eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]), fails={"extended_key_usage"},
                 reason="anyExtendedKeyUsage")

    @case
    def intermediate_restricted_to_client():
        i = cert("Test Intermediate CA", k[1], root, k[0], ca=True, eku=[CLIENT])
        return c(leaf, pool=[i], fails={"extended_key_usage"}, reason="restricted to other purposes")

    @case
    def ca_without_key_cert_sign():
        i = cert("Test Intermediate CA", k[1], root, k[0], ca=True, key_usage=usage(crl_sign=True,
                                                                                    digital_signature=True))
        return c(leaf, pool=[i], fails={"key_usage"}, reason="lacks keyCertSign")

    @case
    def leaf_key_usage_wrong():
        return c(chain(key_usage=usage(crl_sign=True)), fails={"key_usage"}, reason="keyUsage allows none")

    @case
    def crl_issuer_without_crl_sign():
        i = cert("Test Intermediate CA", k[1], root, k[0], ca=True, key_usage=usage(key_cert_sign=True,
                                                                                   digital_signature=True))
        return c(leaf, pool=[i], crls=[crl(i, k[1]), crl(root, k[0])], fails={"key_usage"}, reason="cRLSign")

    @case
    def unknown_critical_extension():
        unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
        return c(chain(extra=[(unknown, True)]), fails={"critical_extensions"}, reason="1.3.6.1.4.1.55555.1")

    @case
    def unknown_noncritical_extension():
        unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
        return c(chain(extra=[(unknown, False)]))

    @case
    def name_constraints_outside_permitted():
        nc = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.org")], excluded_subtrees=None)
        i = cert("Constrained CA", k[4], root, k[0], ca=True, name_constraints=nc)
        return c(cert("www.example.com", k[2], i, k[4]), pool=[i], fails={"name_constraints"},
                 reason="outside 'Constrained CA'")

    @case
    def name_constraints_excluded():
        nc = x509.NameConstraints(permitted_subtrees=None, excluded_subtrees=[x509.DNSName("www.example.com")])
        i = cert("Constrained CA", k[4], root, k[0], ca=True, name_constraints=nc)
        return c(cert("www.example.com", k[2], i, k[4]), pool=[i], fails={"name_constraints"},
                 reason="excluded subtree")

    @case
    def name_constraints_ip_outside():
        nc = x509.NameConstraints(permitted_subtrees=[x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))],
                                  excluded_subtrees=None)
        i = cert("Constrained CA", k[4], root, k[0], ca=True, name_constraints=nc)
        return c(cert("srv", k[2], i, k[4], sans=["192.168.1.1"]), pool=[i], host="192.168.1.1",
                 fails={"name_constraints"}, reason="outside")

    @case
    def cycle_of_cross_signed_cas():
        a = cert("Cross CA A", k[4], None, None, ca=True)
        b = cert("Cross CA B", k[5], a, k[4], ca=True)
        a_by_b = cert("Cross CA A", k[4], b, k[5], ca=True)
        return c(cert("www.example.com", k[2], a, k[4]), pool=[a_by_b, b], fails={"path"}, reason="cycle")

    @case
    def revoked_leaf_crl():
        return c(leaf, crls=[crl(inter, k[1], [leaf]), crl(root, k[0])], fails={"revocation"},
                 reason="is on the CRL")

    @case
    def revoked_intermediate_crl():
        return c(leaf, crls=[crl(inter, k[1]), crl(root, k[0], [inter])], fails={"revocation"},
                 reason="'Test Intermediate CA' is on the CRL")

    @case
    def stale_crl():
        return c(leaf, crls=[crl(inter, k[1], last=AT - 10 * DAY, next_=AT - DAY), crl(root, k[0])],
                 fails={"revocation"}, reason="stale")

    @case
    def crl_bad_signature():
        return c(leaf, crls=[crl(inter, k[1], sign_with=k[7]), crl(root, k[0])], fails={"revocation"},
                 reason="does not verify")

    @case
    def revoked_ocsp():
        return c(leaf, ocsp=[ocsp_response(leaf, inter, k[1], ocsp.OCSPCertStatus.REVOKED)],
                 fails={"revocation"}, reason="was revoked")

    @case
    def revoked_crl_beats_good_stapled():
        return c(leaf, stapled=ocsp_response(leaf, inter, k[1]), crls=[crl(inter, k[1], [leaf]), crl(root, k[0])],
                 fails={"revocation"}, reason="is on the CRL")

    @case
    def revoked_stapled():
        return c(leaf, stapled=ocsp_response(leaf, inter, k[1], ocsp.OCSPCertStatus.REVOKED),
                 fails={"revocation"}, reason="stapled OCSP response says")

    @case
    def ocsp_expired_response():
        return c(leaf, ocsp=[ocsp_response(leaf, inter, k[1], this=AT - 10 * DAY, next_=AT - DAY)],
                 fails={"revocation"}, reason="stale")

    @case
    def ocsp_signed_by_stranger():
        stranger = cert("OCSP responder", k[7], other_root, k[3], eku=[ExtendedKeyUsageOID.OCSP_SIGNING], sans=[])
        return c(leaf, ocsp=[ocsp_response(leaf, inter, k[1], responder=stranger, responder_key=k[7])],
                 fails={"revocation"}, reason="not signed by")

    @case
    def ocsp_responder_without_ocsp_signing():
        responder = cert("OCSP responder", k[6], inter, k[1], eku=[SERVER], sans=[])
        return c(leaf, ocsp=[ocsp_response(leaf, inter, k[1], responder=responder, responder_key=k[6])],
                 fails={"revocation"}, reason="id-kp-OCSPSigning")

    # -- client purpose, broken ----------------------------------------------------------------------
    @case
    def client_expired():
        return c(chain(cn="alice", eku=[CLIENT], not_after=AT - DAY), purpose="client", host=None,
                 fails={"validity"})

    @case
    def client_untrusted():
        return c(chain(cn="alice", eku=[CLIENT]), anchors=[other_root], purpose="client", host=None, fails={"path"})

    @case
    def client_revoked():
        alice = chain(cn="alice", eku=[CLIENT])
        return c(alice, purpose="client", host=None, crls=[crl(inter, k[1], [alice]), crl(root, k[0])],
                 fails={"revocation"})

    @case
    def client_bad_signature():
        return c(chain(cn="alice", eku=[CLIENT], sign_with=k[7]), purpose="client", host=None,
                 fails={"signature"})

    @case
    def client_not_yet_valid():
        return c(chain(cn="alice", eku=[CLIENT], not_before=AT + DAY), purpose="client", host=None,
                 fails={"validity"}, reason="not valid before")

    @case
    def client_missing_intermediate():
        return c(chain(cn="alice", eku=[CLIENT]), pool=[], purpose="client", host=None, fails={"path"})

    @case
    def client_key_usage_without_digital_signature():
        return c(chain(cn="alice", eku=[CLIENT], key_usage=usage(data_encipherment=True)), purpose="client",
                 host=None, fails={"key_usage"}, reason="TLS client")

    @case
    def client_intermediate_restricted_to_servers():
        i = cert("Test Intermediate CA", k[1], root, k[0], ca=True, eku=[SERVER])
        return c(chain(cn="alice", eku=[CLIENT]), pool=[i], purpose="client", host=None,
                 fails={"extended_key_usage"}, reason="restricted to other purposes")

    @case
    def valid_client_ed25519():
        return c(chain(cn="carol", key=keys.ed, eku=[CLIENT]), purpose="client", host=None)

    @case
    def valid_client_no_eku():
        return c(chain(cn="dave", eku=None), purpose="client", host=None)

    @case
    def wildcard_never_matches_an_ip_address():
        return c(chain(sans=["*.0.0.1"]), host="127.0.0.1", fails={"host_name"}, reason="iPAddress")

    return {name_: build() for name_, build in cases.items()}
