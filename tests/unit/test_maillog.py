"""sendmail-format mail log lines."""

import pytest

from labenv.mta import maillog

HANDOUT_QID = "j0O893wM016306"
HANDOUT_MSGID = "<200501240810.j0O893wM016306@alcyone.csustan.edu>"


def test_from_line_handout():
    line = maillog.from_line(
        HANDOUT_QID,
        sender="mmouse@disney.com",
        size=93,
        klass=0,
        nrcpts=1,
        msgid=HANDOUT_MSGID,
        proto="SMTP",
        daemon="MTA-v4",
        relay_host="regulus.csustan.edu",
        relay_ip="130.17.70.16",
    )
    assert line == (
        "j0O893wM016306: from=<mmouse@disney.com>, size=93, class=0, nrcpts=1, "
        "msgid=<200501240810.j0O893wM016306@alcyone.csustan.edu>, proto=SMTP, "
        "daemon=MTA-v4, relay=regulus.csustan.edu [130.17.70.16]"
    )


def test_to_line_handout():
    line = maillog.to_line(
        HANDOUT_QID,
        recipient="john@alcyone.csustan.edu",
        delay=63,
        xdelay=31,
        mailer="local",
        pri=maillog.priority(451, 0, 1),
        dsn="2.0.0",
        stat="Sent",
    )
    assert line == (
        "j0O893wM016306: to=<john@alcyone.csustan.edu>, delay=00:01:03, "
        "xdelay=00:00:31, mailer=local, pri=30451, dsn=2.0.0, stat=Sent"
    )


def test_from_line_optional_fields():
    line = maillog.from_line(
        "AAAAAAAA000001",
        sender="<>",
        size=1200,
        klass=-60,
        nrcpts=2,
        msgid=None,
        proto="ESMTP",
        daemon="MTA",
        relay_host=None,
        relay_ip="192.0.2.7",
        bodytype="8BITMIME",
        may_be_forged=True,
    )
    assert line == (
        "AAAAAAAA000001: from=<>, size=1200, class=-60, nrcpts=2, bodytype=8BITMIME, "
        "proto=ESMTP, daemon=MTA, relay=[192.0.2.7] (may be forged)"
    )


def test_from_line_local_submission():
    line = maillog.from_line(
        "AAAAAAAA000001",
        sender="john",
        size=10,
        klass=0,
        nrcpts=1,
        msgid="<x@y>",
        proto=None,
        daemon=None,
        relay_host="john@localhost",
        relay_ip=None,
    )
    assert line.endswith("msgid=<x@y>, relay=john@localhost")
    assert "proto=" not in line


def test_to_line_relay_and_ctladdr():
    line = maillog.to_line(
        "AAAAAAAA000001",
        recipient="<john@alcyone.test>",
        ctladdr="<john@localhost> (1003/1003)",
        delay=2,
        xdelay=1,
        mailer="relay",
        pri=30079,
        relay=maillog.format_relay("alcyone.test.", "10.77.0.20"),
        dsn="2.0.0",
        stat="Sent (AAAAAAAA000002 Message accepted for delivery)",
    )
    assert line == (
        "AAAAAAAA000001: to=<john@alcyone.test>, ctladdr=<john@localhost> (1003/1003), "
        "delay=00:00:02, xdelay=00:00:01, mailer=relay, pri=30079, "
        "relay=alcyone.test. [10.77.0.20], dsn=2.0.0, "
        "stat=Sent (AAAAAAAA000002 Message accepted for delivery)"
    )


def test_to_line_without_xdelay():
    line = maillog.to_line(
        "Q", recipient="a@b", delay=0, xdelay=None, mailer="esmtp", pri=1, dsn="4.0.0",
        stat="Deferred: Connection refused by b.",
    )
    assert line == "Q: to=<a@b>, delay=00:00:00, mailer=esmtp, pri=1, dsn=4.0.0, stat=Deferred: Connection refused by b."


@pytest.mark.parametrize(
    ("size", "klass", "nrcpts", "runs", "expected"),
    [
        (451, 0, 1, 0, 30451),
        (93, 0, 1, 0, 30093),
        (1000, -60, 1, 0, 1000 + 108000 + 30000),
        (1000, 100, 2, 0, 1000 - 180000 + 60000),
        (451, 0, 1, 2, 30451 + 180000),
    ],
)
def test_priority_arithmetic(size, klass, nrcpts, runs, expected):
    assert maillog.priority(size, klass, nrcpts, runs) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 0),
        ("first-class", 0),
        ("special-delivery", 100),
        ("list", -30),
        (" Bulk ", -60),
        ("JUNK", -100),
        ("urgent", 0),
    ],
)
def test_message_class_precedence(header, expected):
    assert maillog.message_class(header) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "00:00:00"),
        (31.9, "00:00:31"),
        (63, "00:01:03"),
        (3600 * 23 + 59 * 60 + 59, "23:59:59"),
        (86400, "1+00:00:00"),
        (86400 * 3 + 3661, "3+01:01:01"),
        (-5, "00:00:00"),
    ],
)
def test_format_interval_cases(seconds, expected):
    assert maillog.format_interval(seconds) == expected


@pytest.mark.parametrize(
    ("host", "ip", "forged", "expected"),
    [
        ("regulus.test", "10.0.0.1", False, "regulus.test [10.0.0.1]"),
        (None, "10.0.0.1", False, "[10.0.0.1]"),
        ("regulus.test", "10.0.0.1", True, "regulus.test [10.0.0.1] (may be forged)"),
        ("john@localhost", None, False, "john@localhost"),
    ],
)
def test_format_relay_cases(host, ip, forged, expected):
    assert maillog.format_relay(host, ip, forged) == expected


def test_noqueue_line_prefix():
    message = "ruleset=check_rcpt, arg1=<x@y>, relay=[10.0.0.9], reject=550 5.7.1 <x@y>... Relaying denied"
    assert maillog.noqueue_line(message) == "NOQUEUE: " + message
