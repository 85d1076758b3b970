"""Tests of the session report, written from a recorded run."""

import html
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from labenv.replay.evidence import gather, group_logs
from labenv.replay.record import CheckResult, HostFacts, RunRecord, SessionRecord, StepRecord
from labenv.replay.report import default_report_dir, write_report
from labenv.replay.run_messages import run_queue_ids

QID = "wB4KA0xY000042"

MBOX = f"""\
From mmouse@toontown.test Fri Dec  4 20:10:01 2026
Return-Path: <mmouse@toontown.test>
Received: from foobar.yech.test (regulus.campus.test [10.77.0.10])
\tby alcyone.campus.test (labenv-mta 0.1.0) with SMTP id {QID}
\tfor <john@alcyone.campus.test>; Fri, 4 Dec 2026 20:10:01 +0000
Authentication-Results: alcyone.campus.test; spf=fail smtp.mailfrom=mmouse@toontown.test
Subject: This is a bogus message <script>
X-Spam-Status: No, score=2.1 required=5.0 tests=MISSING_DATE

Hi John,
"""

ALCYONE_LOG = f"""\
Dec  4 20:10:01 alcyone labenv-mta[42]: {QID}: from=<mmouse@toontown.test>, size=52, class=0, nrcpts=1, \
msgid=<202612042010.{QID}@alcyone.campus.test>, proto=SMTP, daemon=MTA, relay=regulus.campus.test [10.77.0.10]
Dec  4 20:10:01 spamd spamd[7]: spamd: processing message <202612042010.{QID}@alcyone.campus.test> for john:1001
Dec  4 20:10:01 alcyone labenv-mta[42]: {QID}: to=<john@alcyone.campus.test>, delay=00:00:00, mailer=local, \
pri=30052, dsn=2.0.0, stat=Sent
Dec  4 20:09:59 alcyone labenv-mta[41]: wB4K9xAA000041: to=<john@alcyone.campus.test>, stat=Sent
"""


def recorded_run(ok: bool = True) -> RunRecord:
    failed = CheckResult(
        name="spamd scored the message", kind="header", location="handout.toml:150 (session[2].step[0].expect[4].header)",
        ok=ok, expected="X-Spam-Status matching /^No/", actual="the message has no X-Spam-Status field",
    )
    read = StepRecord("alcyone", "john", "cat /var/mail/john", MBOX, 0, 0.1, checks=[failed])
    tail = StepRecord("alcyone", "john", "tail /var/log/syslog", ALCYONE_LOG, 0, 0.1)
    grep = StepRecord("loghost", "root", f"grep {QID} /var/log/syslog", ALCYONE_LOG.splitlines()[0] + "\n", 0, 0.1)
    return RunRecord(
        scenario="scenarios/handout.toml",
        title="Send, forge, read and trace a message",
        lab="replay",
        domain="campus.test",
        started="2026-12-04T20:10:00+00:00",
        seconds=12.5,
        question="Is there any reliable way to tell where a message really came from?",
        hosts=[HostFacts("regulus", "regulus.campus.test", "10.77.0.10", "relay"),
               HostFacts("alcyone", "alcyone.campus.test", "10.77.0.20", "final")],
        variables={"forged": "mmouse@toontown.test"},
        sessions=[SessionRecord("read", "Read", [read]), SessionRecord("logs", "Logs", [tail, grep])],
        relations=[CheckResult("one queue id", "relation", "handout.toml:235 (relation[0].same)", True,
                               "final_qid = received_qid", f"final_qid={QID}, received_qid={QID}")],
        captures={"final_qid": QID},
    )


@pytest.fixture
def written(tmp_path: Path):
    def write(record):
        markdown = write_report(record, tmp_path / "out")
        return markdown.read_text(), (tmp_path / "out" / "report.html").read_text(), tmp_path / "out"

    return write


def test_report_hops_annotated():
    evidence = gather(recorded_run())
    assert len(evidence.hops) == 1
    hop = evidence.hops[0]
    assert hop.helo == "foobar.yech.test"
    assert hop.client_host == "regulus"
    assert hop.writer_host == "alcyone"
    assert hop.helo_matches is False


def test_report_logs_grouped():
    groups = group_logs(recorded_run())
    assert [group.queue_id for group in groups] == [QID, "wB4K9xAA000041"]
    hosts = [host for host, _ in groups[0].lines]
    # from= and to= on alcyone, spamd's line joined by its msgid, and loghost's copy.
    assert hosts == ["alcyone", "alcyone", "loghost", "alcyone"]
    assert "processing message" in groups[0].lines[3][1]


def test_report_logs_run_only(written):
    evidence = gather(recorded_run())
    assert [group.queue_id for group in evidence.log_groups] == [QID]
    assert evidence.left_out_queue_ids == 1
    assert evidence.left_out_lines == 1
    markdown, _, _ = written(recorded_run())
    logs = markdown.split("## Log lines by queue id", 1)[1].split("\n## ", 1)[0]
    assert "1 line(s) of 1 other queue id(s), such as those of earlier replays on this lab, are left out." in logs
    assert f"### {QID} (the examined message)" in logs
    # The session transcripts still show the earlier line, but the log section does not.
    assert "wB4K9xAA000041" not in logs


def test_report_logs_uncaptured_kept(written):
    record = recorded_run()
    record.captures = {}
    evidence = gather(record)
    assert [group.queue_id for group in evidence.log_groups] == [QID, "wB4K9xAA000041"]
    assert evidence.run_queue_ids_known is False
    markdown, _, _ = written(record)
    assert "The run captured no queue id, so the lines of every queue id" in markdown
    assert "### wB4K9xAA000041" in markdown


RELAY_QID = "wB4KA0aa000030"
SUBMIT_QID = "wB4KA0bb000029"
RELAYED_QID = "wB4KA0cc000031"
EARLIER_QID = "wB4K90dd000012"

RELAYED_MBOX = f"""\
From john@regulus.campus.test Fri Dec  4 20:00:01 2026
Received: from regulus.campus.test (regulus.campus.test [10.77.0.10])
\tby alcyone.campus.test (labenv-mta 0.1.0) with ESMTP id {RELAYED_QID}
\tfor <john@alcyone.campus.test>; Fri, 4 Dec 2026 20:00:01 +0000
Received: from localhost (localhost [127.0.0.1])
\tby regulus.campus.test (labenv-mta 0.1.0) with ESMTP id {RELAY_QID}
\tfor <john@alcyone.campus.test>; Fri, 4 Dec 2026 20:00:00 +0000
Message-ID: <202612042000.{SUBMIT_QID}@regulus.campus.test>
Subject: Test

This is a test.

From john@regulus.campus.test Fri Dec  4 19:00:01 2026
Received: from regulus.campus.test (regulus.campus.test [10.77.0.10])
\tby alcyone.campus.test (labenv-mta 0.1.0) with ESMTP id {EARLIER_QID}
\tfor <john@alcyone.campus.test>; Fri, 4 Dec 2026 19:00:01 +0000
Message-ID: <202612041900.wB4J00ee000011@regulus.campus.test>
Subject: Test

This is an earlier test.
"""

REGULUS_LOG = f"""\
Dec  4 19:00:00 regulus labenv-mta[30]: wB4J00ee000011: from=john, size=20, class=0, nrcpts=1, \
msgid=<202612041900.wB4J00ee000011@regulus.campus.test>, relay=john@localhost
Dec  4 20:00:00 regulus labenv-mta[31]: {SUBMIT_QID}: from=john, size=20, class=0, nrcpts=1, \
msgid=<202612042000.{SUBMIT_QID}@regulus.campus.test>, relay=john@localhost
Dec  4 20:00:00 regulus labenv-mta[32]: {RELAY_QID}: from=<john@regulus.campus.test>, size=20, class=0, nrcpts=1, \
msgid=<202612042000.{SUBMIT_QID}@regulus.campus.test>, proto=ESMTP, relay=localhost [127.0.0.1]
"""


def test_run_queue_ids_linked():
    record = recorded_run()
    record.sessions.append(SessionRecord("mail-v", "Relay", [
        StepRecord("alcyone", "john", "cat /var/mail/john", RELAYED_MBOX, 0, 0.1),
        StepRecord("regulus", "root", "cat /var/log/syslog", REGULUS_LOG, 0, 0.1),
    ]))
    record.captures = {"relay_qid": RELAY_QID, "received_protocol": "SMTP", "received_helo": "foobar.yech.test"}
    queue_ids = run_queue_ids(record)
    # The relayed message's Received lines give alcyone's queue id, and its
    # Message-ID, also on regulus's from= lines, gives the local submission.
    assert queue_ids == {RELAY_QID, RELAYED_QID, SUBMIT_QID}
    assert EARLIER_QID not in queue_ids
    assert QID not in queue_ids


def test_report_markdown(written):
    markdown, _, _ = written(recorded_run())
    assert markdown.startswith("# Replay of Send, forge, read and trace a message on lab replay\n")
    assert "Every expectation held." in markdown
    assert "| logs | Logs | 2 | 0/0 | pass |" in markdown
    assert "| relations | relations between sessions | 1 | 1/1 | pass |" in markdown
    assert "john@alcyone: cat /var/mail/john" in markdown
    assert "| 1 | alcyone | foobar.yech.test | regulus.campus.test | 10.77.0.10 (regulus) | no | " + QID in markdown
    assert f"### {QID} (the examined message)" in markdown
    assert "[loghost] Dec  4 20:10:01 alcyone labenv-mta[42]" in markdown
    assert "| domain authentication | the domain of &lt;mmouse@toontown.test&gt; | spf=fail |" in markdown
    assert "relay=regulus.campus.test [10.77.0.10] on alcyone" in markdown
    assert "| wB4KA0xY000042 | observed by the receiving host |" in markdown
    assert "| HELO and reverse DNS | foobar.yech.test | regulus.campus.test | no |" in markdown
    assert "not recomputed (the report is written from the run record, without DNS lookups)" in markdown


def test_report_failure_listed(written):
    markdown, page, _ = written(recorded_run(ok=False))
    assert "1 expectation(s) failed." in markdown
    assert "## Failures" in markdown
    assert "FAIL: spamd scored the message (handout.toml:150 (session[2].step[0].expect[4].header))" in markdown
    assert "actual: the message has no X-Spam-Status field" in markdown
    assert "FAIL: spamd scored the message" in page


def test_report_html_escaped(written):
    _, page, _ = written(recorded_run())
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert html.escape("Subject: This is a bogus message <script>") in page
    assert "&lt;mmouse@toontown.test&gt;" in page


def test_report_markdown_escaped(written):
    record = recorded_run()
    record.relations[0].actual = "from=<mmouse@toontown.test> | size=52 & more"
    record.question = "Who wrote <john@alcyone.campus.test>?"
    markdown, _, _ = written(record)
    assert "| from=&lt;mmouse@toontown.test&gt; \\| size=52 &amp; more |" in markdown
    assert "Who wrote &lt;john@alcyone.campus.test&gt;?" in markdown
    assert "<mmouse@toontown.test>" not in markdown.split("```")[0]
    # Preformatted text is fenced, so it keeps its angle brackets.
    assert "Return-Path: <mmouse@toontown.test>" in markdown


def test_report_run_json_roundtrip(written):
    record = recorded_run()
    _, _, folder = written(record)
    loaded = RunRecord.load(folder / "run.json")
    assert loaded == record
    assert json.loads((folder / "run.json").read_text())["captures"] == {"final_qid": QID}


def test_report_default_dir():
    moment = datetime(2026, 12, 4, 20, 10, 5, tzinfo=timezone.utc)
    assert default_report_dir(Path("reports"), "replay", moment) == Path("reports/replay-20261204T201005Z")


def test_report_defences_on(written):
    record = recorded_run()
    switch = StepRecord("alcyone", "root", "labenv policy enforce",
                        "alcyone labenv-mta[8]: auth policy changed from observe to enforce\n", 0, 0.5,
                        action="auth-policy", policy="enforce")
    rejected = StepRecord("regulus", "john", "telnet alcyone.campus.test 25",
                          "DATA\n354 go ahead\n.\n550 5.7.1 Rejected by DMARC policy for toontown.test\n", 0, 0.3,
                          policy="enforce")
    record.sessions.append(SessionRecord("enforce", "Enforce", [switch, rejected]))
    markdown, _, _ = written(record)
    closing = markdown.split("### With the defences on", 1)
    assert len(closing) == 2
    assert "john@regulus: telnet alcyone.campus.test 25" in closing[1]
    assert "550 5.7.1 Rejected by DMARC policy for toontown.test" in closing[1]
    assert "labenv policy enforce" not in closing[1]


def test_report_defences_absent(written):
    markdown, _, _ = written(recorded_run())
    assert "With the defences on" not in markdown
