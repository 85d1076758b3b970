"""SPF macro expansion, checked against the examples of RFC 7208 section 7.4."""

import ipaddress

import pytest

from labenv.auth.spf_record import SpfSyntaxError, expand_macros, macro_ip, parse_record


def values_for(ip: str) -> dict[str, str]:
    address = ipaddress.ip_address(ip)
    return {
        "s": "strong-bad@email.example.com",
        "l": "strong-bad",
        "o": "email.example.com",
        "d": "email.example.com",
        "i": macro_ip(address),
        "p": "unknown",
        "v": "in-addr" if address.version == 4 else "ip6",
        "h": "mx.example.org",
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("100%%%_%-", "100% %20"),
    ],
)
def test_macro_examples_ipv4(spec, expected):
    assert expand_macros(spec, values_for("192.0.2.3")) == expected


def test_macro_example_ipv6():
    expanded = expand_macros("%{ir}.%{v}._spf.%{d2}", values_for("2001:db8::cb01"))
    assert expanded == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"


def test_macro_uppercase_url_escapes():
    assert expand_macros("%{S}", {**values_for("192.0.2.3"), "s": "a b@x.test"}) == "a%20b%40x.test"


@pytest.mark.parametrize("spec", ["%{x}", "%", "50%", "%{d0}"])
def test_macro_invalid(spec):
    with pytest.raises(SpfSyntaxError):
        expand_macros(spec, values_for("192.0.2.3"))


def test_record_parses_dual_cidr():
    record = parse_record("v=spf1 mx:mail.test/24//64 -all")
    mechanism = record.mechanisms[0]
    assert (mechanism.name, mechanism.argument, mechanism.cidr4, mechanism.cidr6) == ("mx", "mail.test", 24, 64)


def test_record_parses_qualifiers():
    record = parse_record("v=spf1 -a ~mx ?ptr +all")
    assert [mechanism.result for mechanism in record.mechanisms] == ["fail", "softfail", "neutral", "pass"]
