"""Received field parsing for labenv trace."""

from datetime import datetime, timedelta, timezone

import pytest

from labenv.trace_received import parse_received

HANDOUT = (
    "from foobar.yech.com (regulus.csustan.edu [130.17.70.16]) by alcyone.csustan.edu "
    "(8.12.10+Sun/8.12.8) with SMTP id j0O893wM016306 for <john@alcyone.csustan.edu>; "
    "Mon, 24 Jan 2005 00:10:19 -0800 (PST)"
)
LAB = (
    "from regulus.campus.test (regulus.campus.test [10.77.0.10])\r\n"
    "\tby alcyone.campus.test (labenv-mta 0.1.0) with ESMTP id q4K8a1B9000123\r\n"
    "\tfor <john@alcyone.campus.test>; Fri, 04 Dec 2026 20:00:00 +0000"
)


def test_handout_line_clauses():
    hop = parse_received(HANDOUT)
    assert hop.helo == "foobar.yech.com"
    assert hop.reverse_name == "regulus.csustan.edu"
    assert hop.address == "130.17.70.16"
    assert hop.by == "alcyone.csustan.edu"
    assert hop.by_comment == "(8.12.10+Sun/8.12.8)"
    assert hop.protocol == "SMTP"
    assert hop.queue_id == "j0O893wM016306"
    assert hop.recipient == "john@alcyone.csustan.edu"


def test_handout_line_date():
    hop = parse_received(HANDOUT)
    assert hop.when == datetime(2005, 1, 24, 0, 10, 19, tzinfo=timezone(timedelta(hours=-8)))


def test_lab_line_folded():
    hop = parse_received(LAB)
    assert (hop.helo, hop.reverse_name, hop.address) == ("regulus.campus.test", "regulus.campus.test", "10.77.0.10")
    assert (hop.by, hop.protocol, hop.queue_id) == ("alcyone.campus.test", "ESMTP", "q4K8a1B9000123")
    assert hop.when == datetime(2026, 12, 4, 20, 0, tzinfo=timezone.utc)
    assert "\n" not in hop.raw


def test_unknown_reverse_name():
    hop = parse_received("from evil.test (unknown [192.0.2.9]) by alcyone.campus.test with ESMTP id X; Fri, 04 Dec 2026 20:00:00 +0000")
    assert hop.reverse_name is None
    assert hop.address == "192.0.2.9"
    assert hop.helo == "evil.test"


def test_may_be_forged_flag():
    hop = parse_received(
        "from x.test (mail.campus.test [10.77.0.10] (may be forged)) by alcyone.campus.test with SMTP id Y; "
        "Fri, 04 Dec 2026 20:00:00 +0000"
    )
    assert hop.may_be_forged
    assert hop.reverse_name == "mail.campus.test"
    assert hop.address == "10.77.0.10"


def test_ident_user_in_comment():
    hop = parse_received("from localhost (john@localhost [127.0.0.1]) by regulus.campus.test with ESMTP id Z; Fri, 04 Dec 2026 20:00:00 +0000")
    assert hop.ident_user == "john"
    assert hop.reverse_name == "localhost"


def test_sendmail_local_submission():
    hop = parse_received("(from john@localhost) by regulus.campus.test (8.12.10/8.12.10/Submit) id A1; Fri, 04 Dec 2026 20:00:00 +0000")
    assert hop.helo is None
    assert hop.address is None
    assert hop.ident_user == "john@localhost"
    assert hop.by == "regulus.campus.test"
    assert hop.queue_id == "A1"


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("from a.test ([192.0.2.1]) by b.test with SMTP id Q; Fri, 04 Dec 2026 20:00:00 +0000", "192.0.2.1"),
        ("from a.test (192.0.2.1) by b.test with SMTP id Q; Fri, 04 Dec 2026 20:00:00 +0000", "192.0.2.1"),
        ("from a.test (a.test [IPv6:2001:db8::1]) by b.test with ESMTP id Q; Fri, 04 Dec 2026 20:00:00 +0000", "2001:db8::1"),
    ],
)
def test_address_forms(value, address):
    assert parse_received(value).address == address


def test_no_date_leaves_when_empty():
    hop = parse_received("from a.test by b.test")
    assert hop.when is None
    assert hop.by == "b.test"


def test_to_dict_serialises_time():
    assert parse_received(HANDOUT).to_dict()["when"] == "2005-01-24T00:10:19-08:00"
