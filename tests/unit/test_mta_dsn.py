"""Delivery status notifications."""

from __future__ import annotations

import email
import email.policy

from labenv.mta import dsn, outcome
from labenv.mta.spool import Envelope, Recipient

ORIGINAL = b"Subject: hello\r\nX-Tag: t\r\n\r\nthe body\r\n"


def _envelope(ret: str | None) -> Envelope:
    return Envelope(queue_id="j0O893wM016306", sender="john@regulus.test", recipients=[], received_at=0.0, ret=ret, envid="ID+2B1")


def _report(ret: str | None, recipient: Recipient, result: outcome.Outcome, action: str) -> email.message.Message:
    data = dsn.build_report(_envelope(ret), ORIGINAL, [(recipient, result, action)], hostname="regulus.test", bounce_id="j0O893wN016306")
    return email.message_from_bytes(data, policy=email.policy.compat32)


def test_wants_notice_defaults_to_failure():
    recipient = Recipient("a@b")
    assert dsn.wants_notice(recipient, "failed")
    assert not dsn.wants_notice(recipient, "sent")


def test_wants_notice_follows_notify():
    assert not dsn.wants_notice(Recipient("a@b", ["NEVER"]), "failed")
    assert dsn.wants_notice(Recipient("a@b", ["SUCCESS"]), "sent")
    assert not dsn.wants_notice(Recipient("a@b", ["SUCCESS"]), "failed")


def test_failure_report_fields():
    result = outcome.failed("5.1.1", "550 5.1.1 <x@y>... User unknown", remote_mta="mx.y", relay="mx.y. [10.0.0.1]")
    report = _report("HDRS", Recipient("x@y", ["FAILURE"], "rfc822;x+40y"), result, "failed")
    assert report["To"] == "<john@regulus.test>"
    assert report.get_content_type() == "multipart/report"
    human, status, returned = report.get_payload()
    per_message, per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; regulus.test"
    assert per_message["Original-Envelope-Id"] == "ID+1"
    assert per_recipient["Original-Recipient"] == "rfc822;x@y"
    assert per_recipient["Final-Recipient"] == "RFC822; x@y"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "DNS; mx.y"
    assert per_recipient["Diagnostic-Code"] == "SMTP; 550 5.1.1 <x@y>... User unknown"
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "the body" not in returned.get_payload()
    assert "X-Tag: t" in returned.get_payload()


def test_full_return_by_default():
    report = _report(None, Recipient("x@y"), outcome.failed("5.2.0", "mailbox broken"), "failed")
    returned = report.get_payload()[2]
    assert returned.get_content_type() == "message/rfc822"
    assert returned.get_payload()[0]["Subject"] == "hello"
    assert returned.get_payload()[0].get_payload() == "the body\r\n"
