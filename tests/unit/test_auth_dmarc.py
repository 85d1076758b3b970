"""DMARC policy discovery, alignment and results (RFC 7489)."""

import pytest

from labenv.auth.dkim_check import DkimResult
from labenv.auth.dmarc import check_dmarc, find_policy, is_aligned, organizational_domain, parse_policy
from labenv.auth.spf import SpfResult
from tests.support.dns_server import DnsServer

RECORDS = {
    "_dmarc.toontown.test": ['TXT "v=DMARC1; p=reject; sp=quarantine"'],
    "_dmarc.strict.test": ['TXT "v=DMARC1; p=reject; adkim=s; aspf=s"'],
    "_dmarc.watch.test": ['TXT "v=DMARC1; p=none; rua=mailto:d@watch.test"'],
    "_dmarc.double.test": ['TXT "v=DMARC1; p=reject"', 'TXT "v=DMARC1; p=none"'],
    "_dmarc.nop.test": ['TXT "v=DMARC1; rua=mailto:d@nop.test"'],
}


def spf(result: str, domain: str) -> SpfResult:
    return SpfResult(result, "", "mailfrom", "10.0.0.7", f"user@{domain}", "mail.test", domain)


def dkim(result: str, domain: str) -> DkimResult:
    return DkimResult(result, domain, "sel1", "")


def message_from(address: str) -> bytes:
    return f"From: {address}\r\nSubject: hi\r\n\r\nbody\r\n".encode()


@pytest.fixture(scope="module")
def resolver():
    with DnsServer(RECORDS) as server:
        yield server.resolver()


def test_org_domain_last_two_labels():
    assert organizational_domain("mail.eu.toontown.test") == "toontown.test"
    assert organizational_domain("toontown.test.") == "toontown.test"


@pytest.mark.parametrize(
    ("identifier", "author", "mode", "aligned"),
    [
        ("toontown.test", "toontown.test", "s", True),
        ("mail.toontown.test", "toontown.test", "s", False),
        ("mail.toontown.test", "toontown.test", "r", True),
        ("toontown.test", "news.toontown.test", "r", True),
        ("campus.test", "toontown.test", "r", False),
    ],
)
def test_alignment_modes(identifier, author, mode, aligned):
    assert is_aligned(identifier, author, mode) is aligned


def test_policy_parses_tags():
    policy = parse_policy("v=DMARC1; p=quarantine; sp=reject; adkim=s; pct=50", "toontown.test")
    assert (policy.policy, policy.subdomain_policy, policy.dkim_alignment, policy.spf_alignment, policy.percent) == (
        "quarantine", "reject", "s", "r", 50,
    )


def test_policy_without_p_is_none_unless_rua():
    assert parse_policy("v=DMARC1; adkim=s", "a.test") is None
    assert parse_policy("v=DMARC1; rua=mailto:x@a.test", "a.test").policy == "none"


def test_policy_found_at_org_domain(resolver):
    policy = find_policy("news.toontown.test", resolver)
    assert policy.record_domain == "toontown.test"


def test_policy_two_records_ignored(resolver):
    assert find_policy("double.test", resolver) is None


def test_dmarc_spf_aligned_passes(resolver):
    result = check_dmarc(message_from("mmouse@toontown.test"), spf("pass", "toontown.test"), [], resolver)
    assert result.result == "pass"
    assert result.spf_aligned
    assert result.action == "accept"


def test_dmarc_dkim_aligned_passes(resolver):
    result = check_dmarc(
        message_from("mmouse@toontown.test"), spf("fail", "toontown.test"), [dkim("pass", "mail.toontown.test")], resolver
    )
    assert result.result == "pass"
    assert result.dkim_aligned


def test_dmarc_spf_pass_unaligned_fails(resolver):
    # The handout's spoof: SPF passes for the relay's domain, From: names another.
    result = check_dmarc(message_from("mmouse@toontown.test"), spf("pass", "campus.test"), [], resolver)
    assert result.result == "fail"
    assert result.policy == "reject"
    assert result.action == "reject"
    assert result.clause() == "dmarc=fail (p=reject) header.from=toontown.test"


def test_dmarc_dkim_fail_not_aligned(resolver):
    result = check_dmarc(message_from("mmouse@toontown.test"), spf("none", "x.test"), [dkim("fail", "toontown.test")], resolver)
    assert result.result == "fail"


def test_dmarc_strict_rejects_subdomain(resolver):
    result = check_dmarc(message_from("a@strict.test"), spf("pass", "mail.strict.test"), [dkim("pass", "mail.strict.test")], resolver)
    assert result.result == "fail"


def test_dmarc_subdomain_policy_applies(resolver):
    result = check_dmarc(message_from("a@news.toontown.test"), spf("fail", "news.toontown.test"), [], resolver)
    assert result.policy == "quarantine"
    assert result.action == "quarantine"


def test_dmarc_p_none_only_reports(resolver):
    result = check_dmarc(message_from("a@watch.test"), spf("fail", "watch.test"), [], resolver)
    assert result.result == "fail"
    assert result.action == "accept"


def test_dmarc_no_record_none(resolver):
    result = check_dmarc(message_from("a@campus.test"), spf("fail", "campus.test"), [], resolver)
    assert result.result == "none"
    assert result.action == "accept"
    assert result.clause() == "dmarc=none header.from=campus.test"


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@toontown.test\r\nFrom: b@toontown.test\r\n\r\nx\r\n",
        b"From: <a@toontown.test\r\n\r\nx\r\n",
        b"Subject: no author\r\n\r\nx\r\n",
    ],
)
def test_dmarc_bad_from_never_passes(resolver, message):
    # Even with SPF and DKIM both passing and aligned with the first From.
    result = check_dmarc(message, spf("pass", "toontown.test"), [dkim("pass", "toontown.test")], resolver)
    assert result.result == "permerror"
    assert result.action == "reject"


def test_dmarc_servfail_temperror():
    with DnsServer(RECORDS, servfail=["_dmarc.toontown.test"]) as server:
        result = check_dmarc(message_from("a@toontown.test"), spf("pass", "toontown.test"), [], server.resolver(timeout=1))
    assert result.result == "temperror"
    assert result.action == "accept"
