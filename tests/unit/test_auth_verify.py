"""verify_message: SPF, DKIM and DMARC together, as the final host runs them."""

import pytest

from labenv.auth.dkim_keys import generate_key_pair
from labenv.auth.verify import fold_header, sign_message, verify_message
from tests.support.dns_server import DnsServer

AUTHSERV = "alcyone.campus.test"
SPOOF = (
    b"From: Mickey Mouse <mmouse@toontown.test>\r\n"
    b"To: john@alcyone.campus.test\r\n"
    b"Subject: free cheese\r\n"
    b"\r\n"
    b"Trust me.\r\n"
)
LEGIT = (
    b"From: John <john@campus.test>\r\n"
    b"To: john@alcyone.campus.test\r\n"
    b"Subject: notes\r\n"
    b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <notes.1@campus.test>\r\n"
    b"\r\n"
    b"Lecture notes attached.\r\n"
)


@pytest.fixture(scope="module")
def key_pair():
    return generate_key_pair(bits=1024)


@pytest.fixture(scope="module")
def dns_server(key_pair):
    records = {
        "toontown.test": ['TXT "v=spf1 ip4:192.0.2.10 -all"'],
        "_dmarc.toontown.test": ['TXT "v=DMARC1; p=reject"'],
        "campus.test": ['TXT "v=spf1 ip4:10.77.1.0/24 -all"'],
        "_dmarc.campus.test": ['TXT "v=DMARC1; p=quarantine"'],
        "lab._domainkey.campus.test": [f"TXT {key_pair.zone_rdata()}"],
    }
    with DnsServer(records) as server:
        yield server


def verify(message: bytes, dns_server, mail_from: str, client_ip="10.77.1.5"):
    return verify_message(
        message, client_ip=client_ip, helo="regulus.campus.test", mail_from=mail_from,
        resolver=dns_server.resolver(), authserv_id=AUTHSERV,
    )


def test_verify_spoof_rejected(dns_server):
    verdict = verify(SPOOF, dns_server, "mmouse@toontown.test")
    assert verdict.spf.result == "fail"
    assert verdict.dkim == []
    assert verdict.dmarc.result == "fail"
    assert verdict.action == "reject"
    assert verdict.reject_reply() == "550 5.7.1 Rejected by DMARC policy for toontown.test"


def test_verify_spoof_header_lines(dns_server):
    received_spf, results = verify(SPOOF, dns_server, "mmouse@toontown.test").header_lines()
    assert received_spf.replace(b"\r\n ", b" ") == (
        b"Received-SPF: fail (alcyone.campus.test: domain of mmouse@toontown.test does not designate "
        b"10.77.1.5 as permitted sender) receiver=alcyone.campus.test; client-ip=10.77.1.5; "
        b'envelope-from="mmouse@toontown.test"; helo=regulus.campus.test; identity=mailfrom\r\n'
    )
    assert results.replace(b"\r\n ", b" ") == (
        b"Authentication-Results: alcyone.campus.test; spf=fail smtp.mailfrom=mmouse@toontown.test; "
        b"dkim=none; dmarc=fail (p=reject) header.from=toontown.test\r\n"
    )


def test_verify_header_lines_folded(dns_server):
    for line in verify(SPOOF, dns_server, "mmouse@toontown.test").header_lines():
        assert line.endswith(b"\r\n")
        assert all(len(part) <= 78 for part in line.split(b"\r\n"))


def test_verify_envelope_spoof_with_campus_sender(dns_server):
    # Envelope sender from the campus (SPF passes) but From: claims toontown.
    verdict = verify(SPOOF, dns_server, "john@campus.test")
    assert verdict.spf.result == "pass"
    assert verdict.dmarc.result == "fail"
    assert verdict.action == "reject"


def test_verify_signed_campus_mail_passes(dns_server, key_pair):
    signature = sign_message(LEGIT, domain="campus.test", selector="lab", private_key_pem=key_pair.private_key_pem)
    verdict = verify(signature + LEGIT, dns_server, "john@campus.test", client_ip="198.51.100.1")
    assert verdict.spf.result == "fail"
    assert [result.result for result in verdict.dkim] == ["pass"]
    assert verdict.dmarc.result == "pass"
    assert verdict.action == "accept"
    assert b"dkim=pass header.d=campus.test header.s=lab" in verdict.header_lines()[1].replace(b"\r\n ", b" ")


def test_verify_quarantine_policy(dns_server):
    message = SPOOF.replace(b"mmouse@toontown.test", b"dean@campus.test")
    verdict = verify(message, dns_server, "dean@campus.test", client_ip="198.51.100.1")
    assert verdict.action == "quarantine"
    assert verdict.quarantine_field() == b"X-Labenv-Quarantine: dmarc p=quarantine\r\n"


def test_verify_two_from_rejected(dns_server):
    message = b"From: john@campus.test\r\n" + SPOOF
    verdict = verify(message, dns_server, "john@campus.test")
    assert verdict.dmarc.result == "permerror"
    assert verdict.action == "reject"
    assert verdict.reject_reply() == "550 5.7.1 Rejected: 2 From fields"


def test_verify_null_sender_uses_helo(dns_server):
    verdict = verify(SPOOF, dns_server, "")
    assert verdict.spf.identity == "helo"
    assert b"smtp.helo=regulus.campus.test" in verdict.header_lines()[1]


def test_verify_log_fields(dns_server):
    line = verify(SPOOF, dns_server, "mmouse@toontown.test").log_fields()
    assert line == (
        "auth: client=10.77.1.5 helo=regulus.campus.test mailfrom=<mmouse@toontown.test> "
        "from=toontown.test spf=fail dkim=none dmarc=fail policy=reject action=reject"
    )


def test_fold_header_short_stays_one_line():
    assert fold_header("X-Test", "a; b") == "X-Test: a; b\r\n"


def test_verify_quotes_hostile_helo(dns_server):
    verdict = verify_message(
        SPOOF, client_ip="10.77.1.5", helo="x; dmarc=pass", mail_from="",
        resolver=dns_server.resolver(), authserv_id=AUTHSERV,
    )
    received_spf, results = (line.replace(b"\r\n ", b" ") for line in verdict.header_lines())
    assert b'smtp.helo="x; dmarc=pass";' in results
    assert b'helo="x; dmarc=pass"; identity=helo' in received_spf
    assert results.count(b"dmarc=") == 2


def test_verify_quotes_hostile_sender(dns_server):
    verdict = verify(SPOOF, dns_server, 'a"b(c)@toontown.test')
    received_spf, results = (line.replace(b"\r\n ", b" ") for line in verdict.header_lines())
    assert b'envelope-from="a\\"b(c)@toontown.test"' in received_spf
    assert b"domain of a\"b[c]@toontown.test" in received_spf
    assert b'smtp.mailfrom="a\\"b(c)@toontown.test"' in results
