"""The SMTP dialogue of the lab MTA: replies, extensions and state checks."""

from __future__ import annotations

import re
import smtplib
import time

import pytest

from labenv.mta.queueid import looks_like_queue_id

BANNER = re.compile(
    r"^220 alcyone\.test ESMTP labenv-mta \d+\.\d+\.\d+; "
    r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4} \(\w+\)$"
)


def test_banner_format(mta, raw_client):
    client = raw_client(mta.port)
    assert BANNER.match(client.banner), client.banner


def test_banner_product_configurable(make_mta, raw_client):
    server = make_mta(product="Sendmail 8.12.10/8.12.10")
    client = raw_client(server.port)
    assert client.banner.startswith("220 alcyone.test ESMTP Sendmail 8.12.10/8.12.10; ")


def test_ehlo_lists_extensions(mta, raw_client):
    client = raw_client(mta.port)
    reply = client.command("EHLO regulus.test")
    assert reply.splitlines() == [
        "250-alcyone.test Hello unknown [127.0.0.1], pleased to meet you",
        "250-ENHANCEDSTATUSCODES",
        "250-PIPELINING",
        "250-EXPN",
        "250-VERB",
        "250-8BITMIME",
        f"250-SIZE {mta.config.max_message_size}",
        "250-DSN",
        "250-ETRN",
        "250-DELIVERBY",
        "250 HELP",
    ]


def test_helo_greets(mta, raw_client):
    client = raw_client(mta.port)
    assert client.command("HELO regulus") == "250 alcyone.test Hello unknown [127.0.0.1], pleased to meet you"


def test_transaction_reply_texts(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO regulus.test")
    assert client.command("MAIL FROM:<mmouse@disney.com>") == "250 2.1.0 <mmouse@disney.com>... Sender ok"
    assert client.command("RCPT TO:<john@alcyone.test>") == "250 2.1.5 <john@alcyone.test>... Recipient ok"
    assert client.command("DATA") == '354 Enter mail, end with "." on a line by itself'
    reply = client.command(b"Subject: hi\r\n\r\nbody\r\n.")
    match = re.fullmatch(r"250 2\.0\.0 (\S+) Message accepted for delivery", reply)
    assert match, reply
    assert looks_like_queue_id(match.group(1))
    assert client.command("RSET") == "250 2.0.0 Reset state"
    assert client.command("NOOP") == "250 2.0.0 OK"
    assert client.command("QUIT") == "221 2.0.0 alcyone.test closing connection"


def test_unknown_user_rejected(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO regulus.test")
    client.command("MAIL FROM:<a@b.test>")
    assert client.command("RCPT TO:<nobody@alcyone.test>") == "550 5.1.1 <nobody@alcyone.test>... User unknown"
    assert mta.sink.matching("reject=550 5.1.1 <nobody@alcyone.test>... User unknown")


def test_relaying_denied_outside_relay_networks(make_mta, raw_client):
    server = make_mta(relay_networks=())
    client = raw_client(server.port)
    client.command("EHLO regulus.test")
    client.command("MAIL FROM:<a@b.test>")
    assert client.command("RCPT TO:<someone@elsewhere.test>") == "550 5.7.1 <someone@elsewhere.test>... Relaying denied"


def test_relay_network_may_relay(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO regulus.test")
    client.command("MAIL FROM:<a@b.test>")
    assert client.command("RCPT TO:<someone@elsewhere.test>") == "250 2.1.5 <someone@elsewhere.test>... Recipient ok"


def test_forged_sender_accepted(mta):
    # The handout's second session: a made-up sender from a made-up domain.
    with smtplib.SMTP("127.0.0.1", mta.port) as client:
        client.helo("disney.com")
        code, _ = client.mail("mmouse@disney.com")
        assert code == 250
        client.rcpt("john@alcyone.test")
        client.data(b"From: mmouse@disney.com\r\nSubject: hi\r\n\r\nhello\r\n")
    [message] = mta.messages("john")
    assert message["From"] == "mmouse@disney.com"
    assert message.get_from().startswith("mmouse@disney.com ")


def test_mail_before_helo(mta, raw_client):
    client = raw_client(mta.port)
    assert client.command("MAIL FROM:<a@b.test>") == "503 5.0.0 Polite people say HELO first"


def test_rcpt_before_mail(mta, raw_client):
    client = raw_client(mta.port)
    client.command("HELO x")
    assert client.command("RCPT TO:<john@alcyone.test>") == "503 5.0.0 Need MAIL before RCPT"


def test_nested_mail(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    client.command("MAIL FROM:<a@b.test>")
    assert client.command("MAIL FROM:<a@b.test>") == "503 5.5.0 Sender already specified"


def test_null_sender_accepted(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    assert client.command("MAIL FROM:<>") == "250 2.1.0 <>... Sender ok"
    client.command("RCPT TO:<john@alcyone.test>")
    client.command("DATA")
    assert client.command(b"Subject: bounce\r\n\r\nx\r\n.").startswith("250 2.0.0 ")
    [message] = mta.messages("john")
    assert message["Return-Path"] == "<>"
    assert message.get_from().startswith("MAILER-DAEMON ")


def test_size_checked_at_mail(make_mta, raw_client):
    server = make_mta(max_message_size=1000)
    client = raw_client(server.port)
    client.command("EHLO x")
    assert client.command("MAIL FROM:<a@b.test> SIZE=1001") == "552 5.3.4 Message size exceeds fixed maximum message size"
    assert client.command("MAIL FROM:<a@b.test> SIZE=1000") == "250 2.1.0 <a@b.test>... Sender ok"


def test_size_enforced_after_data(make_mta, raw_client):
    server = make_mta(max_message_size=1000)
    client = raw_client(server.port)
    client.command("EHLO x")
    client.command("MAIL FROM:<a@b.test>")
    client.command("RCPT TO:<john@alcyone.test>")
    client.command("DATA")
    reply = client.command(b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 1 + (b"y" * 70 + b"\r\n") * 20 + b".")
    assert reply == "552 5.3.4 Message size exceeds fixed maximum message size"
    assert client.command("NOOP") == "250 2.0.0 OK"
    assert server.messages("john") == []
    assert list(server.config.spool.iterdir()) == []


def test_dsn_and_deliverby_parameters(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    reply = client.command("MAIL FROM:<a@b.test> RET=HDRS ENVID=QQ314159 BODY=8BITMIME BY=3600;R SIZE=100")
    assert reply == "250 2.1.0 <a@b.test>... Sender ok"
    reply = client.command("RCPT TO:<john@alcyone.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;john@alcyone.test")
    assert reply == "250 2.1.5 <john@alcyone.test>... Recipient ok"


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("MAIL FROM:<a@b.test> RET=ALL", "501 5.5.4 Syntax error in RET parameter value"),
        ("MAIL FROM:<a@b.test> BODY=BINARYMIME", "501 5.5.4 Unknown BODY type BINARYMIME"),
        ("MAIL FROM:<a@b.test> FOO=1", "555 5.5.4 FOO parameter unrecognized"),
        ("MAIL FROM:<a@b.test> BY=soon", "501 5.5.4 Syntax error in BY parameter value"),
    ],
)
def test_bad_mail_parameters(mta, raw_client, command, reply):
    client = raw_client(mta.port)
    client.command("EHLO x")
    assert client.command(command) == reply


def test_bad_notify_rejected(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    client.command("MAIL FROM:<a@b.test>")
    assert client.command("RCPT TO:<john@alcyone.test> NOTIFY=NEVER,SUCCESS") == "501 5.5.4 Bad NOTIFY parameter"


def test_vrfy_and_expn(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    assert client.command("VRFY john") == "250 2.1.5 <john@alcyone.test>"
    assert client.command("EXPN <jane@alcyone.test>") == "250 2.1.5 <jane@alcyone.test>"
    assert client.command("VRFY nobody") == "550 5.1.1 nobody... User unknown"


def test_vrfy_and_expn_switched_off(make_mta, raw_client):
    server = make_mta(vrfy=False, expn=False)
    client = raw_client(server.port)
    ehlo = client.command("EHLO x")
    assert "EXPN" not in ehlo
    assert client.command("VRFY john").startswith("252 2.5.2 ")
    assert client.command("EXPN john") == "502 5.7.0 Sorry, we do not allow this operation"


def test_help(mta, raw_client):
    client = raw_client(mta.port)
    reply = client.command("HELP")
    assert reply.splitlines()[0] == "214-2.0.0 This is labenv-mta 0.1.0"
    assert reply.splitlines()[-1] == "214 2.0.0 End of HELP info"
    assert client.command("HELP RCPT").startswith("214-2.0.0 RCPT TO:")
    assert client.command("HELP FROB") == '504 5.3.0 HELP topic "FROB" unknown'


def test_verb_reports_delivery(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    assert client.command("VERB") == "250 2.0.0 Verbose mode"
    client.command("MAIL FROM:<a@b.test>")
    client.command("RCPT TO:<john@alcyone.test>")
    client.command("DATA")
    lines = [client.command(b"Subject: v\r\n\r\nx\r\n."), client.reply(), client.reply()]
    assert lines[0] == "050 <john@alcyone.test>... Connecting to local..."
    assert lines[1] == "050 <john@alcyone.test>... Sent"
    assert lines[2].startswith("250 2.0.0 ")
    # The delivery finished before the reply, so the mailbox already contains it.
    assert len(mta.messages("john")) == 1


def test_etrn(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    assert client.command("ETRN regulus.test") == "250 2.0.0 Queuing for node regulus.test started"
    assert client.command("ETRN") == "501 5.5.2 Parameter required"


def test_idle_client_times_out(make_mta, raw_client):
    server = make_mta(idle_timeout=0.5)
    client = raw_client(server.port)
    client.command("EHLO x")
    time.sleep(1.0)
    assert client.reply() == "421 4.4.2 alcyone.test Timeout waiting for input"
    assert client.file.readline() == b""


def test_queue_id_ties_reply_header_and_log(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO regulus.test")
    client.command("MAIL FROM:<a@b.test>")
    client.command("RCPT TO:<john@alcyone.test>")
    client.command("DATA")
    queue_id = client.command(b"Subject: q\r\n\r\nx\r\n.").split()[2]
    [message] = mta.messages("john")
    assert f"with ESMTP id {queue_id}" in message["Received"]
    from_lines = mta.sink.matching(f"{queue_id}: from=<a@b.test>")
    to_lines = mta.sink.matching(f"{queue_id}: to=<john@alcyone.test>")
    assert len(from_lines) == 1
    assert "proto=ESMTP, daemon=MTA-v4, relay=[127.0.0.1]" in from_lines[0]
    assert len(to_lines) == 1
    assert "mailer=local" in to_lines[0]
    assert to_lines[0].endswith("dsn=2.0.0, stat=Sent")


def test_unknown_commands_keep_session(mta, raw_client):
    client = raw_client(mta.port)
    for _ in range(8):
        assert client.command("FROB x") == '500 5.5.1 Command unrecognized: "FROB"'
    assert client.command("NOOP") == "250 2.0.0 OK"


def test_daemon_name_configurable(make_mta):
    server = make_mta(daemon_name="MTA")
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.sendmail("a@b.test", ["john@alcyone.test"], b"Subject: d\r\n\r\nx\r\n")
    server.server.wait_idle()
    [from_line] = server.sink.matching("from=<a@b.test>")
    assert ", daemon=MTA, relay=" in from_line


def test_hosts_file_names_local_client(make_mta, raw_client, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n127.0.0.1\tlocalhost loopback\n127.0.0.1 other\n")
    server = make_mta(hosts_file=hosts)
    client = raw_client(server.port)
    assert client.command("EHLO regulus.test").splitlines()[0] == "250-alcyone.test Hello localhost [127.0.0.1], pleased to meet you"


def test_postmaster_always_accepted(mta, raw_client):
    client = raw_client(mta.port)
    client.command("EHLO x")
    client.command("MAIL FROM:<a@b.test>")
    assert client.command("RCPT TO:<Postmaster>") == "250 2.1.5 <Postmaster>... Recipient ok"
    client.command("DATA")
    assert client.command(b"Subject: abuse\r\n\r\nx\r\n.").startswith("250 ")
    [message] = mta.messages("root")
    assert message["Subject"] == "abuse"
