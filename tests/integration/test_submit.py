"""The sendmail-compatible submission command, run as a process against the lab MTA in a thread."""

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from labenv import submit
from labenv.mta.queueid import looks_like_queue_id

SENDMAIL = Path(sys.executable).parent / "labenv-sendmail"
LOGIN = pwd.getpwuid(os.getuid()).pw_name
HANDOUT_INPUT = b"Subject: Test\nCc: \n\nThis is a test.\n.\n"


@pytest.fixture
def submit_env(tmp_path, mta):
    """Environment for labenv-sendmail pointing at the ``mta`` fixture, as host regulus.test."""
    config = tmp_path / "mta.toml"
    config.write_text('hostname = "regulus.test"\nproduct = "labenv-mta 0.1.0"\n')
    env = dict(os.environ)
    env["LABENV_SMTP_SERVER"] = f"127.0.0.1:{mta.port}"
    env["LABENV_MTA_CONFIG"] = str(config)
    return env


def run_sendmail(args, data, env):
    return subprocess.run([str(SENDMAIL), *args], input=data, env=env, capture_output=True, timeout=60)


def test_verbose_transcript_pipelined(mta, submit_env):
    result = run_sendmail(["-v", "john@alcyone.test"], HANDOUT_INPUT, submit_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    lines = result.stdout.decode().splitlines()

    assert lines[0] == "john@alcyone.test... Connecting to 127.0.0.1 via relay..."
    assert lines[1].startswith("220 alcyone.test ESMTP ")
    assert lines[2] == ">>> EHLO regulus.test"
    assert lines[3].startswith("250-alcyone.test Hello ")
    ehlo_end = next(index for index, line in enumerate(lines) if line.startswith("250 ") and index > 2)
    assert "250-PIPELINING" in lines[3:ehlo_end]
    rest = lines[ehlo_end + 1:]
    assert re.fullmatch(rf">>> MAIL From:<{LOGIN}@regulus.test> SIZE=\d+", rest[0])
    assert rest[1] == f"250 2.1.0 <{LOGIN}@regulus.test>... Sender ok"
    # PIPELINING: RCPT and DATA go out together, before either reply is shown.
    assert rest[2] == ">>> RCPT To:<john@alcyone.test>"
    assert rest[3] == ">>> DATA"
    assert rest[4] == "250 2.1.5 <john@alcyone.test>... Recipient ok"
    assert rest[5] == '354 Enter mail, end with "." on a line by itself'
    assert rest[6] == ">>> ."
    accepted = re.fullmatch(r"250 2\.0\.0 (\S+) Message accepted for delivery", rest[7])
    assert accepted is not None
    qid = accepted.group(1)
    assert rest[8] == f"john@alcyone.test... Sent ({qid} Message accepted for delivery)"
    assert rest[9] == "Closing connection to 127.0.0.1"
    assert rest[10] == ">>> QUIT"
    assert rest[11] == "221 2.0.0 alcyone.test closing connection"
    assert len(rest) == 12


def test_submission_headers_added(mta, submit_env):
    result = run_sendmail(["john@alcyone.test"], HANDOUT_INPUT, submit_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    [message] = mta.messages("john")
    received = message.get_all("Received")
    submission = received[-1]
    match = re.fullmatch(
        rf"\(from {LOGIN}@localhost\)\s+by regulus\.test \(labenv-mta 0\.1\.0/Submit\) id (\S+); (.+)", submission
    )
    assert match is not None, submission
    qid = match.group(1)
    assert looks_like_queue_id(qid)
    assert message["Date"] == match.group(2)
    assert re.fullmatch(rf"<\d{{12}}\.{qid}@regulus\.test>", message["Message-Id"])
    assert message["From"].endswith(f"<{LOGIN}@regulus.test>") or message["From"] == f"{LOGIN}@regulus.test"
    assert message["Subject"] == "Test"
    assert message.get_payload() == "This is a test.\n"


def test_existing_headers_kept(mta, submit_env):
    data = b"From: Someone <someone@else.test>\nDate: Mon, 24 Jan 2005 00:06:46 -0800\nMessage-Id: <x@y>\nSubject: s\n\nbody\n"
    result = run_sendmail(["-i", "john@alcyone.test"], data, submit_env)
    assert result.returncode == 0, result.stderr
    [message] = mta.messages("john")
    assert message.get_all("From") == ["Someone <someone@else.test>"]
    assert message.get_all("Date") == ["Mon, 24 Jan 2005 00:06:46 -0800"]
    assert message.get_all("Message-Id") == ["<x@y>"]


def test_extract_recipients_removes_bcc(mta, submit_env):
    data = b"To: John <john@alcyone.test>\nBcc: jane@alcyone.test,\n  john@alcyone.test\nSubject: t\n\nhidden copy\n"
    result = run_sendmail(["-t", "-v"], data, submit_env)
    assert result.returncode == 0, result.stderr
    transcript = result.stdout.decode()
    assert "RCPT To:<john@alcyone.test>" in transcript
    assert "RCPT To:<jane@alcyone.test>" in transcript
    assert transcript.count("RCPT To:<john@alcyone.test>") == 1
    for user in ("john", "jane"):
        [message] = mta.messages(user)
        assert message["Bcc"] is None
        assert message["To"] == "John <john@alcyone.test>"
        assert b"jane@alcyone.test" not in message.as_bytes().split(b"\n\n", 1)[0].replace(b"Received", b"")


def test_lone_dot_ends_input(mta, submit_env):
    result = run_sendmail(["john@alcyone.test"], b"Subject: d\n\nbefore\n.\nafter\n", submit_env)
    assert result.returncode == 0, result.stderr
    [message] = mta.messages("john")
    assert message.get_payload() == "before\n"


def test_ignore_dots_option(mta, submit_env):
    for flag in ("-i", "-oi"):
        result = run_sendmail([flag, "john@alcyone.test"], b"Subject: d\n\nbefore\n.\n..\nafter\n", submit_env)
        assert result.returncode == 0, result.stderr
    messages = mta.messages("john")
    assert [message.get_payload() for message in messages] == ["before\n.\n..\nafter\n"] * 2


def test_sender_and_full_name(mta, submit_env):
    result = run_sendmail(["-f", "jane@other.test", "-FJane Roe", "-v", "john@alcyone.test"], b"Subject: f\n\nx\n", submit_env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^>>> MAIL From:<jane@other\.test> SIZE=\d+$", result.stdout.decode(), re.MULTILINE)
    [message] = mta.messages("john")
    assert message["From"] == "Jane Roe <jane@other.test>"
    assert message["Return-Path"] == "<jane@other.test>"


def test_crlf_input_same_as_lf(mta, submit_env):
    lf = b"Subject: c\nX-Test: 1\n\nline one\nline two\n"
    for data in (lf, lf.replace(b"\n", b"\r\n")):
        result = run_sendmail(["john@alcyone.test"], data, submit_env)
        assert result.returncode == 0, result.stderr
    first, second = mta.messages("john")
    assert first.get_payload() == second.get_payload() == "line one\nline two\n"
    assert b"\r" not in mta.raw_mbox("john")


def test_unknown_user_exit_code(mta, submit_env):
    result = run_sendmail(["nobody@alcyone.test"], b"Subject: u\n\nx\n", submit_env)
    assert result.returncode == submit.EX_NOUSER
    assert result.stderr.decode() == "nobody@alcyone.test... User unknown\n"


def test_partial_rejection_still_delivers(mta, submit_env):
    result = run_sendmail(["nobody@alcyone.test", "jane@alcyone.test"], b"Subject: p\n\nx\n", submit_env)
    assert result.returncode == submit.EX_NOUSER
    assert len(mta.messages("jane")) == 1


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_down_tempfail(submit_env):
    port = free_port()
    env = dict(submit_env, LABENV_SMTP_SERVER=f"127.0.0.1:{port}")
    result = run_sendmail(["-v", "john@alcyone.test"], b"Subject: x\n\nx\n", env)
    assert result.returncode == submit.EX_TEMPFAIL
    assert result.stdout.decode() == "john@alcyone.test... Connecting to 127.0.0.1 via relay...\n"
    assert result.stderr.decode().startswith(f"john@alcyone.test... Deferred: Connection refused by 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-bp"], "mode -bp is not supported"),
        (["-q"], "queue runs (-q) are not supported"),
        (["-q15m"], "queue runs (-q) are not supported"),
        (["-z", "john@alcyone.test"], "invalid option -z"),
        (["-f"], "option -f requires an argument"),
        ([], "Recipient names must be specified"),
    ],
)
def test_usage_errors(submit_env, args, expected):
    result = run_sendmail(args, b"Subject: x\n\nx\n", submit_env)
    assert result.returncode == submit.EX_USAGE
    assert expected in result.stderr.decode()


def test_invalid_server_setting(submit_env):
    env = dict(submit_env, LABENV_SMTP_SERVER="localhost:smtp")
    result = run_sendmail(["john@alcyone.test"], b"x\n", env)
    assert result.returncode == submit.EX_CONFIG
    assert "invalid LABENV_SMTP_SERVER 'localhost:smtp'" in result.stderr.decode()


def read_reply(stream):
    lines = []
    while True:
        line = stream.readline().decode().rstrip("\r\n")
        lines.append(line)
        if line[3:4] != "-":
            return lines


def test_smtp_on_stdin(mta, submit_env):
    process = subprocess.Popen(
        [str(SENDMAIL), "-bs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=submit_env
    )
    dialogue = [
        (b"EHLO client.test\n", "250 HELP"),
        (b"MAIL FROM:<a@b.test>\n", "250 2.1.0 <a@b.test>... Sender ok"),
        (b"RCPT TO:<john@alcyone.test>\n", "250 2.1.5 <john@alcyone.test>... Recipient ok"),
        (b"DATA\n", '354 Enter mail, end with "." on a line by itself'),
        (b"Subject: bs\n\nvia -bs\n.\n", None),
        (b"QUIT\n", "221 2.0.0 alcyone.test closing connection"),
    ]
    try:
        assert read_reply(process.stdout)[0].startswith("220 alcyone.test ESMTP")
        for line, expected in dialogue:
            process.stdin.write(line)
            process.stdin.flush()
            reply = read_reply(process.stdout)
            if expected is None:
                assert re.fullmatch(r"250 2\.0\.0 \S+ Message accepted for delivery", reply[-1])
            else:
                assert reply[-1] == expected
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
    [message] = mta.messages("john")
    assert message.get_payload() == "via -bs\n"


class RecordingHandler:
    """An aiosmtpd handler that keeps the envelopes it receives."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 2.0.0 Ok: queued as TESTID"


@pytest.fixture
def plain_server():
    """An aiosmtpd server that advertises no PIPELINING."""
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


def test_transcript_without_pipelining(plain_server, submit_env):
    controller, handler = plain_server
    env = dict(submit_env, LABENV_SMTP_SERVER=f"127.0.0.1:{controller.port}")
    result = run_sendmail(["-v", "john@alcyone.test", "jane@alcyone.test"], b"Subject: np\n\nx\n", env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert "250-PIPELINING" not in lines
    start = lines.index(">>> RCPT To:<john@alcyone.test>")
    assert lines[start + 1].startswith("250 ")
    assert lines[start + 2] == ">>> RCPT To:<jane@alcyone.test>"
    assert lines[start + 3].startswith("250 ")
    assert lines[start + 4] == ">>> DATA"
    assert lines[start + 5].startswith("354 ")
    assert "john@alcyone.test... Sent (Ok: queued as TESTID)" in lines
    assert "jane@alcyone.test... Sent (Ok: queued as TESTID)" in lines
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["john@alcyone.test", "jane@alcyone.test"]
    size = re.search(r"SIZE=(\d+)", result.stdout.decode())
    assert size is not None
    assert int(size.group(1)) == len(envelope.original_content)


def test_bsd_mailx_uses_it(mta, submit_env, tmp_path):
    mailx = shutil.which("bsd-mailx")
    if mailx is None:
        pytest.skip("bsd-mailx is not installed (apt-get install bsd-mailx)")
    # bsd-mailx reads "set sendmail=PATH" from $MAILRC and calls "PATH -i -t -v".
    mailrc = tmp_path / "mailrc"
    mailrc.write_text(f"set sendmail={SENDMAIL}\n")
    env = dict(submit_env, MAILRC=str(mailrc), HOME=str(tmp_path))
    result = subprocess.run(
        [mailx, "-v", "-s", "Test", "john@alcyone.test"],
        input=b"This is a test.\n",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    transcript = result.stdout.decode()
    assert "john@alcyone.test... Connecting to 127.0.0.1 via relay..." in transcript
    assert ">>> DATA" in transcript
    [message] = mta.messages("john")
    assert message["Subject"] == "Test"
    assert message["To"] == "john@alcyone.test"
    assert message.get_payload() == "This is a test.\n"


def test_s_nail_uses_it(mta, submit_env, tmp_path):
    snail = shutil.which("s-nail")
    if snail is None:
        pytest.skip("s-nail is not installed (apt-get install s-nail)")
    env = dict(submit_env, HOME=str(tmp_path))
    # -:/ loads no resource files; s-nail calls "$mta -i -v -- RECIPIENT".
    result = subprocess.run(
        [snail, "-:/", "-S", f"mta={SENDMAIL}", "-v", "-s", "Test", "john@alcyone.test"],
        input=b"This is a test.\n",
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "john@alcyone.test... Connecting to 127.0.0.1 via relay..." in result.stdout.decode()
    [message] = mta.messages("john")
    assert message["Subject"] == "Test"
    assert message["User-Agent"].startswith("s-nail")
    assert message.get_payload() == "This is a test.\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-oi", "-v", "a@b"], dict(ignore_dots=True, verbose=True, recipients=["a@b"])),
        (["-ti", "-odi", "-oem"], dict(extract_recipients=True, ignore_dots=True, recipients=[])),
        (["-fjohn", "-F", "John Doe", "--", "-x@y"], dict(sender="john", full_name="John Doe", recipients=["-x@y"])),
        (["-r", "r@s", "a@b,c@d", "e@f"], dict(sender="r@s", recipients=["a@b", "c@d", "e@f"])),
        (["-bs"], dict(mode="s")),
        (["-B", "8bitmime", "-N", "never", "-m", "x@y"], dict(body_type="8BITMIME", recipients=["x@y"])),
    ],
)
def test_parse_args_cases(argv, expected):
    options = submit.parse_args(argv)
    for name, value in expected.items():
        assert getattr(options, name) == value


def test_prepare_message_size_and_order():
    identity = submit.Identity(login="john", full_name="John Doe", hostname="regulus.test", product="p 1")
    options = submit.Options(recipients=["jane"])
    submission = submit.prepare_message(b"body only\n", options, identity, "j0O86kpL009580", 1106554006)
    assert submission.sender == "john@regulus.test"
    assert submission.recipients == ["jane@regulus.test"]
    message = submission.message
    lines = message.split(b"\r\n")
    assert lines[0] == b"Received: (from john@localhost)"
    assert lines[1].startswith(b"\tby regulus.test (p 1/Submit) id j0O86kpL009580; ")
    assert lines[2].startswith(b"Date: ")
    assert lines[3] == b"From: John Doe <john@regulus.test>"
    assert lines[4] == b"Message-Id: <200501240806.j0O86kpL009580@regulus.test>"
    assert lines[5] == b""
    assert lines[6] == b"body only"
    assert message.endswith(b"body only\r\n")


@pytest.mark.parametrize(
    ("flag", "expected"), [("<>", ""), ("", ""), ("<jane@x.test>", "jane@x.test"), ("jane", "jane@regulus.test")]
)
def test_prepare_message_sender(flag, expected):
    identity = submit.Identity(login="john", full_name="", hostname="regulus.test", product="p")
    options = submit.Options(sender=flag, recipients=["a@b.test"])
    submission = submit.prepare_message(b"Subject: s\n\nx\n", options, identity, "j0O86kpL009580", 1106554006)
    assert submission.sender == expected


def test_null_sender_transcript(scripted):
    server, env = scripted()
    result = run_sendmail(["-f", "<>", "john@alcyone.test"], b"Subject: n\n\nx\n", env)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"MAIL From:<> SIZE=\d+", server.commands[1])


def test_dot_stuffing():
    assert submit.dot_stuff(b".a\r\nb\r\n.\r\n..\r\n") == b"..a\r\nb\r\n..\r\n...\r\n"


class ScriptedSmtp:
    """A one-connection SMTP server in a thread that replies to each command verb from a table."""

    DEFAULT_REPLIES = {
        "EHLO": "250-scripted.test\r\n250-8BITMIME\r\n250 SIZE 1000000",
        "HELO": "250 scripted.test",
        "MAIL": "250 2.1.0 Ok",
        "RCPT": "250 2.1.5 Ok",
        "DATA": "354 go ahead",
        ".": "250 2.0.0 QUEUED1 accepted",
        "QUIT": "221 2.0.0 bye",
    }

    def __init__(self, **replies):
        self.replies = dict(self.DEFAULT_REPLIES, **replies)
        self.commands = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        with conn, conn.makefile("rb") as reader:
            conn.sendall(b"220 scripted.test ESMTP\r\n")
            in_data = False
            for raw in reader:
                line = raw.decode().rstrip("\r\n")
                if in_data and line != ".":
                    continue
                in_data = False
                verb = line.split(" ", 1)[0].upper() if line != "." else "."
                self.commands.append(line)
                reply = self.replies.get(verb, "500 5.5.1 unknown")
                if reply is None:
                    return
                conn.sendall(reply.encode() + b"\r\n")
                in_data = verb == "DATA" and reply.startswith("354")
                if verb == "QUIT":
                    return

    def close(self):
        self.server.close()
        self.thread.join(timeout=10)


@pytest.fixture
def scripted(submit_env):
    servers = []

    def start(**replies):
        server = ScriptedSmtp(**replies)
        servers.append(server)
        return server, dict(submit_env, LABENV_SMTP_SERVER=f"127.0.0.1:{server.port}")

    yield start
    for server in servers:
        server.close()


def test_helo_fallback(scripted):
    server, env = scripted(EHLO="502 5.5.2 no EHLO here")
    result = run_sendmail(["-v", "john@alcyone.test"], b"Subject: h\n\nx\n", env)
    assert result.returncode == 0, result.stderr
    assert server.commands[:3] == ["EHLO regulus.test", "HELO regulus.test", f"MAIL From:<{LOGIN}@regulus.test>"]
    assert "john@alcyone.test... Sent (QUEUED1 accepted)" in result.stdout.decode().splitlines()


def test_body_type_when_advertised(scripted):
    server, env = scripted()
    result = run_sendmail(["-B8BITMIME", "john@alcyone.test"], b"Subject: b\n\n\xc3\xa9\n", env)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(rf"MAIL From:<{LOGIN}@regulus\.test> SIZE=\d+ BODY=8BITMIME", server.commands[1])


@pytest.mark.parametrize(
    ("replies", "exit_code", "message"),
    [
        (dict(MAIL="553 5.1.8 <x>... Domain of sender address does not exist"), submit.EX_UNAVAILABLE,
         f"<{LOGIN}@regulus.test>... Domain of sender address does not exist"),
        (dict(RCPT="450 4.2.0 <john@alcyone.test>... Mailbox busy"), submit.EX_TEMPFAIL,
         "john@alcyone.test... Mailbox busy"),
        (dict(DATA="554 5.5.1 no valid recipients"), submit.EX_UNAVAILABLE,
         "john@alcyone.test... no valid recipients"),
        ({".": "451 4.3.0 try again later"}, submit.EX_TEMPFAIL, "john@alcyone.test... try again later"),
        ({".": None}, submit.EX_TEMPFAIL, "john@alcyone.test... connection closed by the server"),
    ],
)
def test_rejections_exit_codes(scripted, replies, exit_code, message):
    server, env = scripted(**replies)
    result = run_sendmail(["john@alcyone.test"], b"Subject: r\n\nx\n", env)
    assert result.returncode == exit_code
    assert result.stderr.decode().splitlines() == [message]
