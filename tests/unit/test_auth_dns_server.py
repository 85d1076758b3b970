"""The in-process DNS server that the authentication tests query."""

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from tests.support.dns_server import DnsServer

RECORDS = {
    "mail.toontown.test": ["A 10.0.0.7", "AAAA 2001:db8::7"],
    "toontown.test": ["MX 10 mail.toontown.test.", 'TXT "v=spf1 ip4:10.0.0.0/24" " -all"'],
    "7.0.0.10.in-addr.arpa": ["PTR mail.toontown.test."],
    "sel._domainkey.deep.toontown.test": ['TXT "v=DKIM1; p=AAAA"'],
}


@pytest.fixture
def dns_server():
    with DnsServer(RECORDS) as server:
        yield server


def test_server_answers_a_and_aaaa(dns_server):
    resolver = dns_server.resolver()
    assert [r.address for r in resolver.resolve("mail.toontown.test", "A")] == ["10.0.0.7"]
    assert [r.address for r in resolver.resolve("mail.toontown.test", "AAAA")] == ["2001:db8::7"]


def test_server_answers_mx_and_ptr(dns_server):
    resolver = dns_server.resolver()
    mx = list(resolver.resolve("toontown.test", "MX"))
    assert (mx[0].preference, mx[0].exchange.to_text()) == (10, "mail.toontown.test.")
    ptr = resolver.resolve_address("10.0.0.7")
    assert ptr[0].target.to_text() == "mail.toontown.test."


def test_server_keeps_txt_strings_apart(dns_server):
    txt = dns_server.resolver().resolve("toontown.test", "TXT")[0]
    assert txt.strings == (b"v=spf1 ip4:10.0.0.0/24", b" -all")


def test_server_nxdomain_for_missing_name(dns_server):
    with pytest.raises(dns.resolver.NXDOMAIN):
        dns_server.resolver().resolve("nothing.toontown.test", "A")


def test_server_nodata_for_missing_type(dns_server):
    with pytest.raises(dns.resolver.NoAnswer):
        dns_server.resolver().resolve("mail.toontown.test", "TXT")


def test_server_nodata_for_empty_non_terminal(dns_server):
    query = dns.message.make_query("_domainkey.deep.toontown.test", "TXT")
    response = dns.query.udp(query, dns_server.address[0], port=dns_server.address[1], timeout=2)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []


def test_server_answers_over_tcp(dns_server):
    query = dns.message.make_query("mail.toontown.test", "A")
    response = dns.query.tcp(query, dns_server.address[0], port=dns_server.address[1], timeout=2)
    assert response.answer[0][0].address == "10.0.0.7"


def test_server_counts_queries(dns_server):
    resolver = dns_server.resolver()
    resolver.resolve("mail.toontown.test", "A")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("void.toontown.test", "A")
    assert dns_server.count() == 2
    assert dns_server.count("void.toontown.test", "A") == 1
    dns_server.reset_queries()
    assert dns_server.count() == 0


def test_server_reads_zone_text():
    zone = """
$ORIGIN campus.test.
$TTL 300
@        IN SOA ns hostmaster 1 3600 600 86400 60
alcyone  IN A 10.77.0.20
$ORIGIN 0.77.10.in-addr.arpa.
@        IN SOA ns.campus.test. hostmaster.campus.test. 1 3600 600 86400 60
20       IN PTR alcyone.campus.test.
"""
    with DnsServer(zone) as server:
        resolver = server.resolver()
        answer = resolver.resolve("alcyone.campus.test", "A")
        ptr = resolver.resolve_address("10.77.0.20")
    assert answer[0].address == "10.77.0.20"
    assert ptr[0].target.to_text() == "alcyone.campus.test."


def test_server_servfail_for_listed_name():
    with DnsServer(RECORDS, servfail=["toontown.test"]) as server:
        with pytest.raises(dns.resolver.NoNameservers):
            server.resolver().resolve("toontown.test", "TXT")


def test_server_add_while_running(dns_server):
    dns_server.add("new.toontown.test", "A 10.0.0.9")
    assert dns_server.resolver().resolve("new.toontown.test", "A")[0].address == "10.0.0.9"


def test_server_truncates_large_udp_answer():
    # 1400 bytes: more than UDP carries without EDNS (512) or with dnspython 2.9 EDNS defaults (1232).
    strings = " ".join(f'"{"x" * 200}"' for _ in range(7))
    with DnsServer({"big.test": [f"TXT {strings}"]}) as server:
        query = dns.message.make_query("big.test", "TXT", use_edns=False)
        udp_response = dns.query.udp(query, server.address[0], port=server.address[1], timeout=2)
        assert udp_response.flags & dns.flags.TC
        assert udp_response.answer == []
        # The resolver retries over TCP and gets the whole record.
        answer = server.resolver().resolve("big.test", "TXT")
    assert len(b"".join(answer[0].strings)) == 1400
