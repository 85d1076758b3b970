"""From: domain extraction for DMARC, which must fail safe."""

import pytest

from labenv.auth.from_header import author_domain, header_values

BODY = b"\r\nhello\r\n"


def message_with(*from_values: str) -> bytes:
    fields = b"".join(b"From: " + value.encode() + b"\r\n" for value in from_values)
    return fields + b"To: john@alcyone.campus.test\r\nSubject: hi\r\n" + BODY


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        ("mmouse@toontown.test", "toontown.test"),
        ("Mickey Mouse <mmouse@toontown.test>", "toontown.test"),
        ("Mickey Mouse <mmouse@ToonTown.TEST>", "toontown.test"),
        ('"Mouse, Mickey" <mmouse@toontown.test>', "toontown.test"),
        ('"john@campus.test" <mmouse@toontown.test>', "toontown.test"),
        ("Mouse <mmouse@toontown.test> (the real one)", "toontown.test"),
        ("a@toontown.test, b@toontown.test", "toontown.test"),
    ],
)
def test_from_domain_found(value, domain):
    author = author_domain(message_with(value))
    assert author.problem is None
    assert author.domain == domain


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?q?Mouse,_Mickey?= <mmouse@toontown.test>",
        "=?utf-8?b?TW91c2UsIE1pY2tleQ==?= <mmouse@toontown.test>",
    ],
)
def test_from_encoded_word_comma_one_address(value):
    author = author_domain(message_with(value))
    assert author.domain == "toontown.test"
    assert author.address == "mmouse@toontown.test"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("mmouse", "does not parse"),
        ("<mmouse@toontown.test", "does not parse"),
        ("Mickey <mmouse@toontown.test", "does not parse"),
        ("mmouse@toontown.test <john@campus.test>", "does not parse"),
        ("mmouse@toontown.test@evil.test", "does not parse"),
        ("a@one.test, b@two.test", "several domains"),
        ("<mmouse@[10.0.0.1]>", "not a DNS name"),
        ("undisclosed-recipients:;", "no mailbox"),
        ("", "no mailbox"),
    ],
)
def test_from_invalid_has_problem(value, problem):
    author = author_domain(message_with(value))
    assert author.domain is None
    assert problem in author.problem


def test_from_two_fields_problem():
    author = author_domain(message_with("john@campus.test", "mmouse@toontown.test"))
    assert author.domain is None
    assert author.problem == "2 From fields"


def test_from_lowercase_name_counts_as_second_field():
    message = b"from: john@campus.test\r\n" + message_with("mmouse@toontown.test")
    assert author_domain(message).problem == "2 From fields"


def test_from_missing_problem():
    author = author_domain(b"To: john@alcyone.campus.test\r\n" + BODY)
    assert author.domain is None
    assert author.problem == "no From field"


def test_header_values_unfolds():
    message = b"Subject: one\r\n two\r\nFrom: a@b.test\r\n" + BODY
    assert header_values(message, "Subject") == ["one two"]
