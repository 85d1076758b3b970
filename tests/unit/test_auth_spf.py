"""SPF evaluation against the in-process DNS server (RFC 7208)."""

import pytest

from labenv.auth.spf import check_spf
from tests.support.dns_server import DnsServer

CLIENT = "10.0.0.7"

BASE_RECORDS = {
    "mail.toontown.test": ["A 10.0.0.7", "AAAA 2001:db8::7"],
    "other.toontown.test": ["A 10.9.9.9"],
    "7.0.0.10.in-addr.arpa": ["PTR mail.toontown.test."],
}


def spf_check(records: dict, mail_from="mmouse@toontown.test", client=CLIENT, helo="mail.toontown.test", **server_options):
    with DnsServer({**BASE_RECORDS, **records}, **server_options) as server:
        return check_spf(client, mail_from, helo, server.resolver()), server.count()


def txt(*strings: str) -> list[str]:
    # One TXT string contains at most 255 bytes, so longer records are cut into pieces.
    pieces = [text[start : start + 255] for text in strings for start in range(0, len(text), 255)]
    quoted = " ".join('"' + piece + '"' for piece in pieces)
    return [f"TXT {quoted}"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 ip4:10.0.0.0/24 -all", "pass"),
        ("v=spf1 ip4:10.0.1.0/24 -all", "fail"),
        ("v=spf1 ip4:10.0.1.0/24 ~all", "softfail"),
        ("v=spf1 ip4:10.0.1.0/24 ?all", "neutral"),
        ("v=spf1 ip4:10.0.1.0/24", "neutral"),
        ("v=spf1 -ip4:10.0.0.7 +all", "fail"),
        ("v=spf1 ip6:2001:db8::/32 -all", "fail"),
        ("v=spf1 a:mail.toontown.test -all", "pass"),
        ("v=spf1 a:other.toontown.test/8 -all", "pass"),
        ("v=spf1 a:other.toontown.test -all", "fail"),
        ("v=spf1 mx -all", "pass"),
        ("v=spf1 ptr -all", "pass"),
        ("v=spf1 ptr:example.test -all", "fail"),
        ("v=spf1 exists:%{ir}.allow.toontown.test -all", "pass"),
        ("v=spf1 foo=bar ip4:10.0.0.7 -all", "pass"),
    ],
)
def test_spf_results(record, expected):
    records = {
        "toontown.test": txt(record) + ["MX 10 mail.toontown.test."],
        "7.0.0.10.allow.toontown.test": ["A 127.0.0.2"],
    }
    result, _ = spf_check(records)
    assert result.result == expected, result.reason


def test_spf_none_without_record():
    result, _ = spf_check({"toontown.test": ['TXT "some other text"']})
    assert result.result == "none"


def test_spf_none_for_nxdomain():
    result, _ = spf_check({}, mail_from="x@nowhere.test")
    assert result.result == "none"


def test_spf_joins_txt_strings_without_space():
    # RFC 7208 section 3.3: "v=spf1 ip4:10.0" + ".0.7 -all" is one record.
    result, _ = spf_check({"toontown.test": txt("v=spf1 ip4:10.0", ".0.7 -all")})
    assert result.result == "pass", result.reason


def test_spf_two_records_permerror():
    records = {"toontown.test": txt("v=spf1 ip4:10.0.0.7 -all") + txt("v=spf1 -all")}
    result, _ = spf_check(records)
    assert result.result == "permerror"
    assert "2 SPF records" in result.reason


def test_spf_two_void_lookups_allowed():
    record = "v=spf1 a:void1.toontown.test a:void2.toontown.test ip4:10.0.0.7 -all"
    result, _ = spf_check({"toontown.test": txt(record)})
    assert result.result == "pass", result.reason
    assert result.void_lookups == 2


def test_spf_third_void_lookup_permerror():
    record = "v=spf1 a:void1.toontown.test a:void2.toontown.test a:void3.toontown.test ip4:10.0.0.7 -all"
    result, queries = spf_check({"toontown.test": txt(record)})
    assert result.result == "permerror"
    assert "void" in result.reason
    # One TXT lookup and the three A lookups: evaluation stopped at the third void one.
    assert queries == 4


def test_spf_ten_dns_terms_allowed():
    record = "v=spf1 " + " ".join(["a:other.toontown.test"] * 10) + " ip4:10.0.0.7 -all"
    result, _ = spf_check({"toontown.test": txt(record)})
    assert result.result == "pass", result.reason
    assert result.dns_mechanisms == 10


def test_spf_eleventh_dns_term_permerror():
    record = "v=spf1 " + " ".join(["a:other.toontown.test"] * 11) + " ip4:10.0.0.7 -all"
    result, _ = spf_check({"toontown.test": txt(record)})
    assert result.result == "permerror"
    assert "more than 10" in result.reason


def test_spf_limit_counts_across_includes():
    includes = {f"inc{n}.toontown.test": txt("v=spf1 a:other.toontown.test -all") for n in range(6)}
    record = "v=spf1 " + " ".join(f"include:inc{n}.toontown.test" for n in range(6)) + " -all"
    result, _ = spf_check({"toontown.test": txt(record), **includes})
    assert result.result == "permerror"


def test_spf_include_pass():
    records = {
        "toontown.test": txt("v=spf1 include:_spf.campus.test -all"),
        "_spf.campus.test": txt("v=spf1 ip4:10.0.0.0/16 -all"),
    }
    result, _ = spf_check(records)
    assert result.result == "pass"
    assert result.mechanism == "include:_spf.campus.test"


def test_spf_include_fail_does_not_match():
    records = {
        "toontown.test": txt("v=spf1 include:_spf.campus.test ~all"),
        "_spf.campus.test": txt("v=spf1 -all"),
    }
    result, _ = spf_check(records)
    assert result.result == "softfail"


def test_spf_include_without_record_permerror():
    result, _ = spf_check({"toontown.test": txt("v=spf1 include:missing.test -all")})
    assert result.result == "permerror"


def test_spf_redirect_used_when_nothing_matched():
    records = {
        "toontown.test": txt("v=spf1 ip4:192.0.2.1 redirect=_spf.campus.test"),
        "_spf.campus.test": txt("v=spf1 ip4:10.0.0.7 -all"),
    }
    result, _ = spf_check(records)
    assert result.result == "pass"


def test_spf_redirect_without_record_permerror():
    result, _ = spf_check({"toontown.test": txt("v=spf1 redirect=missing.test")})
    assert result.result == "permerror"


@pytest.mark.parametrize(
    "record",
    ["v=spf1 ip4:10.0.0.300 -all", "v=spf1 frobnicate -all", "v=spf1 a:%{z}.test -all", "v=spf1 redirect=a.test redirect=b.test"],
)
def test_spf_syntax_error_permerror(record):
    result, _ = spf_check({"toontown.test": txt(record)})
    assert result.result == "permerror"


def test_spf_servfail_temperror():
    result, _ = spf_check({}, servfail=["toontown.test"])
    assert result.result == "temperror"


def test_spf_null_sender_checks_helo():
    records = {"mail.toontown.test": txt("v=spf1 a -all") + ["A 10.0.0.7"]}
    result, _ = spf_check(records, mail_from="")
    assert result.identity == "helo"
    assert result.domain == "mail.toontown.test"
    assert result.result == "pass"


def test_spf_ipv4_mapped_client():
    result, _ = spf_check({"toontown.test": txt("v=spf1 ip4:10.0.0.7 -all")}, client="::ffff:10.0.0.7")
    assert result.result == "pass"


def test_received_spf_header():
    result, _ = spf_check({"toontown.test": txt("v=spf1 -all")}, client="10.77.1.5", helo="regulus.campus.test")
    header = result.received_spf("alcyone.campus.test")
    assert header == (
        "fail (alcyone.campus.test: domain of mmouse@toontown.test does not designate 10.77.1.5 "
        "as permitted sender) receiver=alcyone.campus.test; client-ip=10.77.1.5; "
        'envelope-from="mmouse@toontown.test"; helo=regulus.campus.test; identity=mailfrom'
    )
