"""DKIM signing and verification through the in-process DNS server (RFC 6376)."""

import base64
import hashlib
import re

import pytest

from labenv.auth.dkim_check import verify_dkim
from labenv.auth.dkim_keys import generate_key_pair
from labenv.auth.dkim_sign import sign_message
from tests.support.dns_server import DnsServer

MESSAGE = (
    b"From: Mickey Mouse <mmouse@toontown.test>\r\n"
    b"To: john@alcyone.campus.test\r\n"
    b"Subject: Lunch\r\n"
    b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <lunch.1@toontown.test>\r\n"
    b"\r\n"
    b"See you at noon.\r\n"
)
KEY_NAME = "sel1._domainkey.toontown.test"


@pytest.fixture(scope="module")
def key_pair():
    return generate_key_pair(bits=1024)


@pytest.fixture
def dns_server(key_pair):
    with DnsServer({KEY_NAME: [f"TXT {key_pair.zone_rdata()}"]}) as server:
        yield server


def signed(message: bytes, key_pair, **options) -> bytes:
    header = sign_message(message, domain="toontown.test", selector="sel1", private_key_pem=key_pair.private_key_pem, **options)
    return header + message


def test_dkim_round_trip_passes(key_pair, dns_server):
    results = verify_dkim(signed(MESSAGE, key_pair), dns_server.resolver())
    assert len(results) == 1
    assert results[0].result == "pass"
    assert results[0].domain == "toontown.test"
    assert results[0].selector == "sel1"
    assert dns_server.count(KEY_NAME, "TXT") == 1


def test_dkim_signature_tags(key_pair):
    header = sign_message(MESSAGE, domain="toontown.test", selector="sel1", private_key_pem=key_pair.private_key_pem)
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", header)
    assert unfolded.startswith(b"DKIM-Signature: ")
    assert b"a=rsa-sha256" in unfolded
    assert b"c=relaxed/relaxed" in unfolded
    assert b"d=toontown.test" in unfolded
    signed_fields = re.search(rb"h=([^;]+);", unfolded).group(1).replace(b" ", b"").lower().split(b":")
    for field in (b"from", b"to", b"subject", b"date", b"message-id"):
        assert field in signed_fields


def test_dkim_tampered_body_fails(key_pair, dns_server):
    message = signed(MESSAGE, key_pair).replace(b"noon", b"one")
    result = verify_dkim(message, dns_server.resolver())[0]
    assert result.result == "fail"
    assert "body hash" in result.reason


def test_dkim_tampered_header_fails(key_pair, dns_server):
    message = signed(MESSAGE, key_pair).replace(b"Subject: Lunch", b"Subject: Dinner")
    assert verify_dkim(message, dns_server.resolver())[0].result == "fail"


def test_dkim_relaxed_survives_refolding(key_pair, dns_server):
    message = signed(MESSAGE, key_pair).replace(b"Subject: Lunch", b"Subject:   Lunch  ")
    assert verify_dkim(message, dns_server.resolver())[0].result == "pass"


def test_dkim_missing_key_permerror(key_pair):
    with DnsServer({}) as server:
        result = verify_dkim(signed(MESSAGE, key_pair), server.resolver())[0]
    assert result.result == "permerror"
    assert result.domain == "toontown.test"


def test_dkim_servfail_temperror(key_pair):
    with DnsServer({}, servfail=[KEY_NAME]) as server:
        result = verify_dkim(signed(MESSAGE, key_pair), server.resolver(timeout=1))[0]
    assert result.result == "temperror"


def test_dkim_unsigned_message_has_no_results(dns_server):
    assert verify_dkim(MESSAGE, dns_server.resolver()) == []


def test_dkim_malformed_signature_permerror(dns_server):
    message = b"DKIM-Signature: v=1; a=rsa-sha256; d=toontown.test\r\n" + MESSAGE
    assert verify_dkim(message, dns_server.resolver())[0].result == "permerror"


def test_dkim_clause_for_authentication_results(key_pair, dns_server):
    result = verify_dkim(signed(MESSAGE, key_pair), dns_server.resolver())[0]
    assert result.clause() == "dkim=pass header.d=toontown.test header.s=sel1"


def test_dkim_key_record_split_into_txt_strings(key_pair):
    strings = generate_key_pair(bits=2048).txt_strings()
    assert len(strings) == 2
    assert all(len(piece) <= 255 for piece in strings)
    assert key_pair.public_record.startswith("v=DKIM1; k=rsa; p=")


def body_hash(message: bytes, key_pair, canonicalization: tuple[str, str]) -> bytes:
    header = sign_message(
        message, domain="toontown.test", selector="sel1",
        private_key_pem=key_pair.private_key_pem, canonicalization=canonicalization,
    )
    unfolded = re.sub(rb"\s+", b"", header)
    return base64.b64decode(re.search(rb"bh=([^;]+);", unfolded).group(1))


HEADERS_ONLY = MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"


# RFC 6376 section 3.4.3: simple canonicalisation turns an empty body into one CRLF.
# Section 3.4.4: relaxed canonicalisation strips whitespace at line ends and then
# drops empty lines at the end, so an empty or whitespace-only body hashes as "".
@pytest.mark.parametrize(
    ("body", "canonicalization", "canonical_body"),
    [
        (b"", ("simple", "simple"), b"\r\n"),
        (b"", ("relaxed", "relaxed"), b""),
        (b" \r\n\t\r\n", ("relaxed", "relaxed"), b""),
        (b"\r\n\r\n\r\n", ("simple", "simple"), b"\r\n"),
        (b" \r\n\t\r\n", ("simple", "simple"), b" \r\n\t\r\n"),
    ],
)
def test_dkim_body_hash_edge_bodies(key_pair, body, canonicalization, canonical_body):
    expected = hashlib.sha256(canonical_body).digest()
    assert body_hash(HEADERS_ONLY + body, key_pair, canonicalization) == expected


def test_dkim_empty_body_hash_constants(key_pair):
    # The two values every DKIM implementation agrees on, in base64.
    simple = body_hash(HEADERS_ONLY, key_pair, ("simple", "simple"))
    relaxed = body_hash(HEADERS_ONLY, key_pair, ("relaxed", "relaxed"))
    assert base64.b64encode(simple) == b"frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="
    assert base64.b64encode(relaxed) == b"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=\xff; s=s; h=from; bh=AAAA; b=AAAA\r\n", "permerror"),
        (b"DKIM-Signature: \xff\r\n", "permerror"),
        (b"DKIM-Signature: v=1; a=rsa-sha256; d=toontown.test; s=sel1; h=from; bh=AAAA; b=AAAA\r\n", "fail"),
    ],
)
def test_dkim_garbage_signature(dns_server, signature, expected):
    # dkimpy raises several exception types on such input; none may escape.
    [result] = verify_dkim(signature + MESSAGE, dns_server.resolver())
    assert result.result == expected, result.reason


def test_dkim_unparsable_message_permerror(dns_server):
    message = b"DKIM-Signature: v=1; d=toontown.test\r\ngarbage without colon\r\n\r\nbody\r\n"
    [result] = verify_dkim(message, dns_server.resolver())
    assert result.result == "permerror"
