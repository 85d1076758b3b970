"""The handout's flow on a real lab: mail -v from regulus, a forged SMTP session, headers and logs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.e2e.lab_helpers import QUEUE_ID, received_lines, run, wait_for_log, wait_for_message

pytestmark = pytest.mark.docker

SESSION_SUBJECT = "Test"
FORGED_SUBJECT = "This is a bogus message"
FORGED_SENDER = "mmouse@toontown.test"
MADE_UP_HELO = "foobar.yech.test"


@pytest.fixture(scope="module")
def mail_session(docker_client, lab):
    """Send the session one message as john with `mail -v` and return the transcript."""
    final = lab.host_with_role("final")
    relay = lab.host_with_role("relay")
    command = f"echo 'This is a test.' | mail -v -s {SESSION_SUBJECT} john@{final.fqdn}; sleep 2"
    code, transcript = run(docker_client, lab.name, relay.name, command, user="john")
    assert code == 0, transcript
    return transcript


@pytest.fixture(scope="module")
def delivered(docker_client, lab, mail_session):
    return wait_for_message(docker_client, lab.name, lab.host_with_role("final").name, "john", SESSION_SUBJECT)


def test_mail_v_transcript(lab, mail_session):
    relay = lab.host_with_role("relay")
    assert re.search(rf"^220 {re.escape(relay.fqdn)} ESMTP", mail_session, re.M), mail_session
    assert re.search(r"^>>> EHLO ", mail_session, re.M), mail_session
    assert re.search(r"^>>> MAIL From:<john@", mail_session, re.M), mail_session
    assert re.search(rf"^250 2\.0\.0 {QUEUE_ID} Message accepted for delivery", mail_session, re.M), mail_session
    assert re.search(rf"\.\.\. Sent \({QUEUE_ID} Message accepted for delivery\)", mail_session), mail_session


def test_delivered_headers(lab, delivered):
    relay = lab.host_with_role("relay")
    final = lab.host_with_role("final")
    received = received_lines(delivered)

    assert len(received) >= 2, received
    # The newest Received line is alcyone's, naming the relay by its real name and address.
    assert f"({relay.fqdn} [{relay.address}])" in received[0], received[0]
    assert f"by {final.fqdn}" in received[0], received[0]
    assert any(f"by {relay.fqdn}" in line for line in received[1:]), received
    assert delivered["Return-Path"] == f"<john@{relay.fqdn}>"
    assert delivered["Message-Id"], "Message-Id is missing"
    assert re.match(r"(No|Yes), score=-?\d+\.\d+ required=\d+\.\d+", delivered["X-Spam-Status"] or ""), delivered[
        "X-Spam-Status"
    ]


def test_loghost_ties_queue_ids(docker_client, lab, delivered):
    relay = lab.host_with_role("relay")
    final = lab.host_with_role("final")
    loghost = lab.host_with_role("syslog")
    received = received_lines(delivered)
    final_id = re.search(rf"by {re.escape(final.fqdn)} .*? id ({QUEUE_ID})", received[0]).group(1)
    relay_line = next(line for line in received[1:] if f"by {relay.fqdn}" in line)
    relay_id = re.search(rf" id ({QUEUE_ID})", relay_line).group(1)

    for host, queue_id in ((relay, relay_id), (final, final_id)):
        from_lines = wait_for_log(docker_client, lab.name, loghost.name, "/var/log/mail.log", rf" {host.name} \S+\[\d+\]: {queue_id}: from=<")
        to_lines = wait_for_log(docker_client, lab.name, loghost.name, "/var/log/mail.log", rf" {host.name} \S+\[\d+\]: {queue_id}: to=<john@")
        assert "stat=Sent" in to_lines[-1], to_lines[-1]
        assert from_lines

    spamd_lines = wait_for_log(docker_client, lab.name, loghost.name, "/var/log/mail.log", r" spamd\[\d+\]: .*(clean message|identified spam)")
    assert spamd_lines


def test_forged_sender_keeps_real_relay(docker_client, lab):
    relay = lab.host_with_role("relay")
    final = lab.host_with_role("final")
    script = (
        "import smtplib\n"
        f"s = smtplib.SMTP({final.fqdn!r}, 25, local_hostname={MADE_UP_HELO!r})\n"
        "s.helo()\n"
        f"s.sendmail({FORGED_SENDER!r}, ['john@{final.fqdn}'], "
        f"'Subject: {FORGED_SUBJECT}\\r\\n\\r\\nHi John,\\r\\nRocky says hello.\\r\\n')\n"
        "s.quit()\n"
    )
    code, output = run(docker_client, lab.name, relay.name, f"python3 -c {shlex.quote(script)}", user="john")
    assert code == 0, output

    message = wait_for_message(docker_client, lab.name, final.name, "john", FORGED_SUBJECT)
    newest = received_lines(message)[0]
    assert newest.startswith(f"from {MADE_UP_HELO} ({relay.fqdn} [{relay.address}])"), newest
    assert message["Return-Path"] == f"<{FORGED_SENDER}>"


def test_mail_command_shows_headers(lab, delivered):
    result = subprocess.run(
        [sys.executable, "-m", "labenv", "mail", "--name", lab.name, "john"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^--- message 1 of \d+ ---$", result.stdout, re.M)
    assert f"Subject: {SESSION_SUBJECT}\n" in result.stdout
    assert f"Return-Path: <john@{lab.host_with_role('relay').fqdn}>" in result.stdout
    assert "X-Spam-Status: " in result.stdout
