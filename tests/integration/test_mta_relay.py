"""Relay delivery by MX, retries, ETRN queue runs and delivery status notifications."""

from __future__ import annotations

import email
import email.policy
import smtplib
import time

import pytest

from labenv.mta.config import HostPort
from tests.support.dns_server import DnsServer

ZONE = {
    "alcyone.test.": ["MX 10 mx.alcyone.test."],
    "mx.alcyone.test.": ["A 127.0.0.1"],
}


@pytest.fixture
def dns_server():
    with DnsServer(ZONE) as server:
        yield server


@pytest.fixture
def relay_pair(make_mta, dns_server):
    """A final MTA for alcyone.test and a relay MTA for regulus.test that reaches it by MX."""
    final = make_mta("alcyone.test")
    host, port = dns_server.address
    relay = make_mta(
        "regulus.test",
        role="relay",
        resolver=HostPort(host, port),
        relay_port=final.port,
    )
    return relay, final


def _unreachable_relay(make_mta, dns_server, port: int, **fields):
    """Start a relay whose MX for alcyone.test points at ``port``, where nothing listens."""
    host, dns_port = dns_server.address
    return make_mta("regulus.test", role="relay", resolver=HostPort(host, dns_port), relay_port=port, **fields)


def _submit(port: int, sender: str, recipient: str, data: bytes, mail_options=(), rcpt_options=()) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("regulus.test")
        client.sendmail(sender, [recipient], data, mail_options=list(mail_options), rcpt_options=list(rcpt_options))


def _wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met within %s s" % timeout)


def test_relay_delivers_by_mx(relay_pair):
    relay, final = relay_pair
    _submit(relay.port, "john@regulus.test", "jane@alcyone.test", b"Subject: relayed\r\n\r\nhello\r\n")
    relay.server.wait_idle()
    [message] = final.messages("jane")
    received = message.get_all("Received")
    assert len(received) == 2
    assert received[0].startswith("from regulus.test (unknown [127.0.0.1])")
    assert "by alcyone.test (labenv-mta 0.1.0) with ESMTP id" in received[0]
    assert "by regulus.test (labenv-mta 0.1.0) with ESMTP id" in received[1]
    assert message["Return-Path"] == "<john@regulus.test>"
    [to_line] = relay.sink.matching("to=<jane@alcyone.test>")
    assert "mailer=esmtp" in to_line
    assert "relay=mx.alcyone.test. [127.0.0.1]" in to_line
    assert "stat=Sent (2.0.0 " in to_line
    assert to_line.endswith(" Message accepted for delivery)")
    assert list(relay.config.spool.iterdir()) == []


def test_permanent_failure_bounces_with_dsn(relay_pair):
    relay, final = relay_pair
    _submit(
        relay.port,
        "john@regulus.test",
        "nobody@alcyone.test",
        b"Subject: doomed\r\nX-Secret: headers only\r\n\r\nbody text\r\n",
        mail_options=["RET=HDRS", "ENVID=QQ314159"],
        rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;nobody@alcyone.test"],
    )
    [bounce] = _wait_for(lambda: relay.messages("john"))
    assert bounce["Return-Path"] == "<>"
    parsed = email.message_from_bytes(bounce.as_bytes(), policy=email.policy.compat32)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    human, status, returned = parsed.get_payload()
    assert "nobody@alcyone.test" in human.get_payload()
    fields = "\n".join(str(block) for block in status.get_payload())
    assert "Original-Envelope-Id: QQ314159" in fields
    assert "Original-Recipient: rfc822;nobody@alcyone.test" in fields
    assert "Final-Recipient: RFC822; nobody@alcyone.test" in fields
    assert "Action: failed" in fields
    assert "Status: 5.1.1" in fields
    assert "Remote-MTA: DNS; mx.alcyone.test" in fields
    assert "Diagnostic-Code: SMTP; 550 5.1.1 <nobody@alcyone.test>... User unknown" in fields
    assert returned.get_content_type() == "text/rfc822-headers"
    assert "X-Secret: headers only" in returned.get_payload()
    assert "body text" not in returned.get_payload()
    assert relay.sink.matching("DSN: 550 5.1.1 <nobody@alcyone.test>... User unknown")


def test_notify_never_sends_no_bounce(relay_pair):
    relay, final = relay_pair
    _submit(relay.port, "john@regulus.test", "nobody@alcyone.test", b"Subject: quiet\r\n\r\nx\r\n", rcpt_options=["NOTIFY=NEVER"])
    _wait_for(lambda: relay.sink.matching("to=<nobody@alcyone.test>"))
    relay.server.wait_idle()
    assert relay.messages("john") == []
    assert list(relay.config.spool.iterdir()) == []


def test_bounce_returns_full_message_by_default(relay_pair):
    relay, final = relay_pair
    _submit(relay.port, "john@regulus.test", "nobody@alcyone.test", b"Subject: full\r\n\r\nwhole body\r\n")
    [bounce] = _wait_for(lambda: relay.messages("john"))
    returned = bounce.get_payload()[2]
    assert returned.get_content_type() == "message/rfc822"
    assert "whole body" in returned.as_string()


def test_success_notice_for_local_delivery(mta):
    _submit(mta.port, "john@alcyone.test", "jane@alcyone.test", b"Subject: tell me\r\n\r\nx\r\n", rcpt_options=["NOTIFY=SUCCESS"])
    assert len(mta.messages("jane")) == 1
    [notice] = _wait_for(lambda: mta.messages("john"))
    fields = "\n".join(str(block) for block in notice.get_payload()[1].get_payload())
    assert "Action: delivered" in fields
    assert "Status: 2.0.0" in fields


def test_unknown_domain_bounces(make_mta, dns_server):
    host, port = dns_server.address
    relay = make_mta("regulus.test", role="relay", resolver=HostPort(host, port))
    _submit(relay.port, "john@regulus.test", "x@nowhere.test", b"Subject: lost\r\n\r\nx\r\n")
    [bounce] = _wait_for(lambda: relay.messages("john"))
    fields = "\n".join(str(block) for block in bounce.get_payload()[1].get_payload())
    assert "Status: 5.1.2" in fields


def test_deferred_then_delivered_after_etrn(make_mta, dns_server, unused_port, raw_client):
    relay = _unreachable_relay(make_mta, dns_server, unused_port, retry_delays=(3600.0,))
    _submit(relay.port, "john@regulus.test", "jane@alcyone.test", b"Subject: later\r\n\r\nx\r\n")
    [deferred] = _wait_for(lambda: relay.sink.matching("to=<jane@alcyone.test>"))
    assert "stat=Deferred: Connection to mx.alcyone.test failed" in deferred
    assert "dsn=4.4.1" in deferred
    assert len([name for name in relay.config.spool.iterdir() if name.suffix == ".msg"]) == 1

    final = make_mta("alcyone.test", listen=HostPort("127.0.0.1", unused_port))
    client = raw_client(relay.port)
    client.command("EHLO alcyone.test")
    assert client.command("ETRN alcyone.test") == "250 2.0.0 Queuing for node alcyone.test started"
    [message] = _wait_for(lambda: final.messages("jane"))
    assert message["Subject"] == "later"
    [sent] = _wait_for(lambda: relay.sink.matching("stat=Sent ("))
    assert "to=<jane@alcyone.test>" in sent
    assert _wait_for(lambda: list(relay.config.spool.iterdir()) == [])


def test_verb_shows_relay_transcript(relay_pair, raw_client):
    relay, final = relay_pair
    client = raw_client(relay.port)
    client.command("EHLO regulus.test")
    client.command("VERB")
    client.command("MAIL FROM:<john@regulus.test>")
    client.command("RCPT TO:<jane@alcyone.test>")
    client.command("DATA")
    lines = [client.command(b"Subject: verbose\r\n\r\nx\r\n.")]
    while not lines[-1].startswith("250 "):
        lines.append(client.reply())
    assert lines[0] == "050 <jane@alcyone.test>... Connecting to mx.alcyone.test. via esmtp..."
    assert lines[1].startswith("050 220 alcyone.test ESMTP labenv-mta 0.1.0; ")
    assert "050 >>> EHLO regulus.test" in lines
    assert "050 >>> MAIL From:<john@regulus.test> SIZE=" in " ".join(lines)
    assert "050 >>> RCPT To:<jane@alcyone.test>" in lines
    assert "050 >>> DATA" in lines
    assert "050 >>> QUIT" in lines
    assert "050 221 2.0.0 alcyone.test closing connection" in lines
    assert "050 Closing connection to mx.alcyone.test." in lines
    sent = [line for line in lines if line.startswith("050 <jane@alcyone.test>... Sent (2.0.0 ")]
    assert len(sent) == 1
    assert sent[0].endswith(" Message accepted for delivery)")
    assert lines[-1].startswith("250 2.0.0 ")
    [message] = final.messages("jane")
    assert message["Subject"] == "verbose"


def test_delay_notice_when_requested(make_mta, dns_server, unused_port):
    relay = _unreachable_relay(make_mta, dns_server, unused_port, delay_warning=0.0, retry_delays=(3600.0,))
    _submit(relay.port, "john@regulus.test", "jane@alcyone.test", b"Subject: slow\r\n\r\nx\r\n", rcpt_options=["NOTIFY=DELAY,FAILURE"])
    [notice] = _wait_for(lambda: relay.messages("john"))
    assert notice["Subject"].startswith("Warning: could not send message for past ")
    fields = "\n".join(str(block) for block in notice.get_payload()[1].get_payload())
    assert "Action: delayed" in fields
    assert "Status: 4.4.1" in fields
    # The message itself stays queued for the next attempt.
    assert len(list(relay.config.spool.glob("*.msg"))) == 1


def test_queue_age_limit_bounces(make_mta, dns_server, unused_port):
    relay = _unreachable_relay(make_mta, dns_server, unused_port, max_queue_age=0.0)
    _submit(relay.port, "john@regulus.test", "jane@alcyone.test", b"Subject: too old\r\n\r\nx\r\n")
    [bounce] = _wait_for(lambda: relay.messages("john"))
    fields = "\n".join(str(block) for block in bounce.get_payload()[1].get_payload())
    assert "Action: failed" in fields
    assert "Status: 4.4.7" in fields
    [line] = relay.sink.matching("to=<jane@alcyone.test>")
    assert "stat=Message could not be delivered for 0 days" in line
    assert _wait_for(lambda: list(relay.config.spool.iterdir()) == [])
