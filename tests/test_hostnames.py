"""handshake_lib.hostnames: the DNS rules of `pki demo --hostname`, `tls get URL` and lesson 02's server_name."""

from __future__ import annotations

import pytest

from handshake_lib.hostnames import check_certificate_name, check_dns_name, check_server_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [("localhost", "localhost"), ("a.b.", "a.b"), ("xn--caf-dma.example", "xn--caf-dma.example"),
     ("_acme-challenge.example.org", "_acme-challenge.example.org"), ("a" * 63 + ".b", "a" * 63 + ".b"),
     (".".join(["a" * 63] * 3) + "." + "b" * 61, ".".join(["a" * 63] * 3) + "." + "b" * 61)],
)  # fmt: skip
def test_dns_names_that_are_fine(name: str, expected: str) -> None:
    assert check_dns_name(name) == expected
    assert check_server_name(name) == expected


@pytest.mark.parametrize(
    ("name", "words"),
    [("", "is empty"), (".", "is empty"), ("..", "empty label"), ("a..b", "empty label"), (".a", "empty label"),
     ("a" * 64, "at most 63"), ("a." * 127 + "bb", "at most 253"), ("caf\u00e9.example", "xn-- form"),
     ("a b", "only letters"), ("-a.example", "inner hyphens"), ("a-.example", "inner hyphens"),
     ("a\x00b", "only letters"), ("*.example.org", "only letters"), ("a\udcff", "not ASCII")],
)  # fmt: skip
def test_names_that_are_not_dns_names_are_refused_in_one_line(name: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as raised:
        check_dns_name(name)
    assert "\n" not in str(raised.value)


def test_ip_addresses_are_certificate_names_but_never_server_names() -> None:
    assert check_certificate_name("::1") == "::1"
    assert check_certificate_name("*.example.org") == "*.example.org"  # a wildcard, leftmost, in a certificate
    with pytest.raises(ValueError, match="RFC 6066"):
        check_server_name("127.0.0.1")
    with pytest.raises(ValueError, match="only letters"):
        check_certificate_name("a.*.example.org")


@pytest.mark.parametrize("check", [check_dns_name, check_server_name, check_certificate_name])
def test_a_name_that_is_not_text_is_a_type_error(check) -> None:
    with pytest.raises(TypeError, match="is a str, not int"):
        check(5)  # ipaddress would have read 0.0.0.5
