"""Tests of the expectation engine on recorded transcripts, and of the mail text parsers."""

import pytest

from labenv.replay import mailtext
from labenv.replay.checks import check_expectation, check_relation
from labenv.replay.loader import parse_scenario

TELNET = """\
Trying 10.77.0.20...
Connected to alcyone.campus.test.
Escape character is '^]'.
220 alcyone.campus.test ESMTP labenv-mta 0.1.0; Fri, 4 Dec 2026 20:10:00 +0000
HELO foobar.yech.test
250 alcyone.campus.test Hello regulus.campus.test [10.77.0.10], pleased to meet you
MAIL From:<mmouse@toontown.test>
250 2.1.0 <mmouse@toontown.test>... Sender ok
RCPT To:<jane@alcyone.campus.test>
550 5.1.1 <jane@alcyone.campus.test>... User unknown
RCPT To:<john@alcyone.campus.test>
250 2.1.5 <john@alcyone.campus.test>... Recipient ok
DATA
354 Enter mail, end with "." on a line by itself
Subject: This is a bogus message
.
250 2.0.0 wB4KA0xY000042 Message accepted for delivery
QUIT
221 2.0.0 alcyone.campus.test closing connection
"""

MBOX = """\
From john@regulus.campus.test Fri Dec  4 20:09:59 2026
Return-Path: <john@regulus.campus.test>
Received: from regulus.campus.test (regulus.campus.test [10.77.0.10])
\tby alcyone.campus.test (labenv-mta 0.1.0) with ESMTP id wB4K9xAA000041
\tfor <john@alcyone.campus.test>; Fri, 4 Dec 2026 20:09:59 +0000
Subject: Test

This is a test.

From mmouse@toontown.test Fri Dec  4 20:10:01 2026
Return-Path: <mmouse@toontown.test>
Received: from foobar.yech.test (regulus.campus.test [10.77.0.10])
\tby alcyone.campus.test (labenv-mta 0.1.0) with SMTP id wB4KA0xY000042
\tfor <john@alcyone.campus.test>; Fri, 4 Dec 2026 20:10:01 +0000
Subject: This is a bogus message
X-Spam-Status: No, score=2.1 required=5.0 tests=MISSING_DATE,MISSING_MID
\tautolearn=no version=4.0.1

Hi John,
"""

LOG = """\
Dec  4 20:10:01 alcyone labenv-mta[42]: wB4KA0xY000042: from=<mmouse@toontown.test>, size=52, class=0, \
nrcpts=1, msgid=<202612042010.wB4KA0xY000042@alcyone.campus.test>, proto=SMTP, daemon=MTA, \
relay=regulus.campus.test [10.77.0.10]
Dec  4 20:10:01 alcyone labenv-mta[42]: wB4KA0xY000042: to=<john@alcyone.campus.test>, delay=00:00:00, \
mailer=local, pri=30052, dsn=2.0.0, stat=Sent
"""

SCENARIO = """\
[[session]]
key = "s"
[[session.step]]
host = "regulus"
user = "john"
command = "telnet"

[[session.step.expect]]
reply = "MAIL From:"
code = 250
[[session.step.expect]]
reply = "RCPT To:<jane"
code = 250
[[session.step.expect]]
match = '^250 2\\.0\\.0 (?P<qid>[0-9A-Za-z]{14}) Message accepted'
[[session.step.expect]]
line = "221 2.0.0 {hosts.alcyone.fqdn} closing connection"
[[session.step.expect]]
header = "Received"
index = 0
value = 'from (?P<helo>\\S+) \\((?P<rdns>\\S+) \\[(?P<address>[\\d.]+)\\]\\).* id {captured.qid}'
[[session.step.expect]]
header = "X-Spam-Status"
value = '^No, score='
message_with = "{captured.qid}"
[[session.step.expect]]
header = "X-Spam-Flag"
absent = true
[[session.step.expect]]
log = '{captured.qid}: from='
fields = { from = "<{vars.forged}>", nrcpts = "1", relay = 'regulus\\.campus\\.test \\[[\\d.]+\\]' }
[[session.step.expect]]
log = ': to='
fields = { stat = "Deferred.*" }
name = "delivery deferred"

[[relation]]
same = ["qid", "qid"]
"""

CONTEXT = {
    "hosts": {"alcyone": {"fqdn": "alcyone.campus.test"}},
    "vars": {"forged": "mmouse@toontown.test"},
    "captured": {},
}


@pytest.fixture
def expectations():
    return parse_scenario(SCENARIO, "t.toml").sessions[0].steps[0].expectations


def run(expectation, output, captured=None):
    context = {**CONTEXT, "captured": dict(captured or {})}
    return check_expectation(expectation, output, context)


def test_reply_code_matches(expectations):
    result, _ = run(expectations[0], TELNET)
    assert result.ok
    assert result.actual == "250 2.1.0 <mmouse@toontown.test>... Sender ok"


def test_reply_code_differs(expectations):
    result, _ = run(expectations[1], TELNET)
    assert not result.ok
    assert result.actual.startswith("550 5.1.1")
    assert result.location == "t.toml:12 (session[0].step[0].expect[1].reply)"


def test_match_captures(expectations):
    result, captured = run(expectations[2], TELNET)
    assert result.ok
    assert captured == {"qid": "wB4KA0xY000042"}


def test_line_exact(expectations):
    result, _ = run(expectations[3], TELNET)
    assert result.ok
    missing, _ = run(expectations[3], TELNET.replace("221 2.0.0", "221 2.0.1"))
    assert not missing.ok
    assert "no such line" in missing.actual


def test_header_index_captures(expectations):
    result, captured = run(expectations[4], MBOX, {"qid": "wB4KA0xY000042"})
    assert result.ok
    assert captured == {"helo": "foobar.yech.test", "rdns": "regulus.campus.test", "address": "10.77.0.10"}


def test_header_wrong_queue_id(expectations):
    result, _ = run(expectations[4], MBOX, {"qid": "wB4KA0xY000099"})
    assert not result.ok
    assert "wB4KA0xY000042" in result.actual
    assert "wB4KA0xY000099" in result.expected


def test_header_missing_capture(expectations):
    result, _ = run(expectations[4], MBOX)
    assert not result.ok
    assert "captured.qid" in result.actual


def test_header_message_with(expectations):
    result, _ = run(expectations[5], MBOX, {"qid": "wB4KA0xY000042"})
    assert result.ok
    assert result.actual.startswith("X-Spam-Status: No, score=2.1")
    no_spam_header = MBOX.replace("X-Spam-Status", "X-Other")
    failed, _ = run(expectations[5], no_spam_header, {"qid": "wB4KA0xY000042"})
    assert not failed.ok
    assert failed.actual == "the message has no X-Spam-Status field"
    assert failed.name == "header X-Spam-Status"


def test_header_absent(expectations):
    result, _ = run(expectations[6], MBOX)
    assert result.ok
    flagged, _ = run(expectations[6], MBOX.replace("Subject: This", "X-Spam-Flag: YES\nSubject: This"))
    assert not flagged.ok


def test_log_fields(expectations):
    result, _ = run(expectations[7], LOG, {"qid": "wB4KA0xY000042"})
    assert result.ok
    forged = LOG.replace("from=<mmouse@toontown.test>", "from=<other@toontown.test>")
    failed, _ = run(expectations[7], forged, {"qid": "wB4KA0xY000042"})
    assert not failed.ok
    assert "differs in: from=<other@toontown.test>" in failed.actual


def test_log_named_failure(expectations):
    result, _ = run(expectations[8], LOG)
    assert not result.ok
    assert result.name == "delivery deferred"
    assert "stat=Sent" in result.actual


def test_relation_equal_and_missing():
    scenario = parse_scenario(
        SCENARIO.replace('same = ["qid", "qid"]', 'same = ["qid", "helo"]'), "t.toml"
    )
    relation = scenario.relations[0]
    assert not check_relation(relation, {"qid": "A"}).ok
    assert "helo=(not captured)" in check_relation(relation, {"qid": "A"}).actual
    assert not check_relation(relation, {"qid": "A", "helo": "B"}).ok
    assert check_relation(relation, {"qid": "A", "helo": "A"}).ok


def test_log_line_parse():
    line = mailtext.parse_log_line(LOG.splitlines()[0])
    assert line.host == "alcyone"
    assert line.tag == "labenv-mta"
    assert line.pid == "42"
    assert line.queue_id == "wB4KA0xY000042"
    assert line.fields["relay"] == "regulus.campus.test [10.77.0.10]"
    assert line.fields["msgid"] == "<202612042010.wB4KA0xY000042@alcyone.campus.test>"
    assert mailtext.parse_log_line("not a log line") is None


def test_log_fields_comma_in_parentheses():
    fields = mailtext.log_fields("to=<a@b>, delay=00:00:01, stat=Sent (wB4 Message accepted, ok)")
    assert fields["stat"] == "Sent (wB4 Message accepted, ok)"


def test_mbox_split():
    assert len(mailtext.mbox_messages(MBOX)) == 2
    assert mailtext.pick_message(MBOX, "wB4K9xAA000041")["Subject"] == "Test"
    assert mailtext.pick_message(MBOX, "absent") is None
