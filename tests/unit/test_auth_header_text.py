"""Quoting of client-supplied text in the authentication header fields."""

import pytest

from labenv.auth.header_text import comment, quoted, token_or_quoted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail.toontown.test", "mail.toontown.test"),
        ("mmouse@toontown.test", "mmouse@toontown.test"),
        ("[10.0.0.1]", "[10.0.0.1]"),
        ("a b", '"a b"'),
        ("x;dmarc=pass", '"x;dmarc=pass"'),
        ('a"b', '"a\\"b"'),
        ("", '""'),
    ],
)
def test_token_or_quoted(text, expected):
    assert token_or_quoted(text) == expected


def test_quoted_replaces_control_and_non_ascii():
    assert quoted("a\r\nb\u00e9") == '"a??b?"'


def test_comment_has_no_inner_parentheses():
    assert comment("bad (nested) text\\") == "(bad [nested] text/)"
