"""Header fields the MTA builds and inserts."""

from __future__ import annotations

import os
import time

import pytest

from labenv.mta import headers


@pytest.fixture
def pacific_time():
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/Los_Angeles"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


HANDOUT_TIME = 1106554143.0  # 2005-01-24 08:09:03 UTC


def test_date_handout_format(pacific_time):
    assert headers.rfc2822_date(HANDOUT_TIME) == "Mon, 24 Jan 2005 00:09:03 -0800 (PST)"


def test_received_one_recipient(pacific_time):
    field = headers.received_header(
        helo="regulus.cs.example.edu",
        client_name="regulus.cs.example.edu",
        client_ip="10.0.0.2",
        hostname="alcyone.cs.example.edu",
        product="8.12.10/8.12.10",
        protocol="ESMTP",
        queue_id="j0O893wM016306",
        recipients=["john@alcyone.cs.example.edu"],
        when=HANDOUT_TIME,
    )
    assert field == (
        b"Received: from regulus.cs.example.edu (regulus.cs.example.edu [10.0.0.2])\r\n"
        b"\tby alcyone.cs.example.edu (8.12.10/8.12.10) with ESMTP id j0O893wM016306\r\n"
        b"\tfor <john@alcyone.cs.example.edu>; Mon, 24 Jan 2005 00:09:03 -0800 (PST)\r\n"
    )


def test_received_unknown_client_two_recipients(pacific_time):
    field = headers.received_header(
        helo="disney.com",
        client_name=None,
        client_ip="10.0.0.9",
        hostname="alcyone",
        product="p",
        protocol="SMTP",
        queue_id="j0O893wM016306",
        recipients=["a@x", "b@x"],
        when=HANDOUT_TIME,
    )
    assert field == (
        b"Received: from disney.com (unknown [10.0.0.9])\r\n"
        b"\tby alcyone (p) with SMTP id j0O893wM016306; Mon, 24 Jan 2005 00:09:03 -0800 (PST)\r\n"
    )


def test_message_id_uses_utc():
    assert headers.message_id("j0O893wM016306", "alcyone", HANDOUT_TIME) == "<200501240809.j0O893wM016306@alcyone>"


@pytest.mark.parametrize(
    ("message", "end"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody", 12),
        (b"A: 1\r\n folded\r\n\r\n", 15),
        (b"A: 1\r\n", 6),
        (b"", 0),
        (b"\r\nbody", 0),
        (b"not a header\r\n", 0),
        (b"A: 1\r\nnot a header\r\n", 6),
    ],
)
def test_header_end(message, end):
    assert headers.header_end(message) == end


def test_field_values_unfold_and_ignore_case():
    message = b"Subject: one\r\nsubject: two\r\n  more\r\nX: y\r\n\r\nSubject: body\r\n"
    assert headers.field_values(message, b"SUBJECT") == [b"one", b"two  more"]


def test_append_fields_before_separator():
    assert headers.append_fields(b"A: 1\r\n\r\nbody\r\n", [b"B: 2\r\n"]) == b"A: 1\r\nB: 2\r\n\r\nbody\r\n"


def test_append_fields_adds_separator_before_body():
    assert headers.append_fields(b"A: 1\r\nbody line\r\n", [b"B: 2\r\n"]) == b"A: 1\r\nB: 2\r\n\r\nbody line\r\n"


def test_append_fields_headers_only():
    assert headers.append_fields(b"A: 1", [b"B: 2\r\n"]) == b"A: 1\r\nB: 2\r\n"


def test_first_values_one_pass():
    message = b"Date: d1\r\nmessage-id: <a@b>\r\n folded\r\nDate: d2\r\n\r\nPrecedence: bulk\r\n"
    values = headers.first_values(message, (b"date", b"message-id", b"precedence"))
    assert values == {b"date": b"d1", b"message-id": b"<a@b> folded"}
