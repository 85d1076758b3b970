"""Tests of the runner: scripted programs on real socket pairs stand in for SSH terminals."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from labenv.lab.model import ForeignDomain, Host, Lab, User
from labenv.replay import runner
from labenv.replay.loader import parse_scenario
from labenv.replay.testing import ScriptedTerminal

LAB = Lab(
    name="unit",
    domain="campus.test",
    subnet=IPv4Network("10.77.0.0/24"),
    hosts=(
        Host("regulus", "relay", IPv4Address("10.77.0.10"), "campus.test"),
        Host("alcyone", "final", IPv4Address("10.77.0.20"), "campus.test"),
    ),
    users=(User("john", 1001, ("regulus", "alcyone")),),
    product="labenv-mta 0.1.0",
    foreign_domains=(ForeignDomain("toontown.test"),),
)

SCENARIO = """\
[vars]
forged = "mmouse@{forged_domain}"

[[session]]
key = "smtp"
[[session.step]]
host = "regulus"
user = "john"
command = "telnet {hosts.alcyone.fqdn} 25"
timeout = 5
dialog = [
  { expect = '^220 .*\\n', send = "MAIL From:<{vars.forged}>" },
  { expect = '^250 2\\.0\\.0 (?P<qid>\\w{14}) ', send = "QUIT" },
]
[[session.step.expect]]
reply = "MAIL From:"
code = 250

[[session]]
key = "logs"
[[session.step]]
host = "alcyone"
user = "john"
command = "grep {captured.qid} /var/log/syslog"
access = "exec"
retry = 5
[[session.step.expect]]
match = '(?P<log_qid>\\w{14}): from=<{vars.forged}>'

[[relation]]
same = ["qid", "log_qid"]
"""


class Opener:
    """Plays a list of scripts per command prefix, one per call, and records the calls."""

    def __init__(self, scripts):
        self.scripts = scripts
        self.calls = []

    def __call__(self, host, user, command, access):
        self.calls.append((host, user, command, access))
        for prefix, queue in self.scripts.items():
            if command.startswith(prefix):
                return ScriptedTerminal(queue.pop(0))
        raise AssertionError(f"unexpected command {command!r}")


TELNET = [
    "Connected to alcyone.campus.test.\r\n220 alcyone.campus.test ESMTP labenv\r\n",
    None,
    "250 2.1.0 <mmouse@toontown.test>... Sender ok\r\n",
    "250 2.0.0 wB4KA0xY000042 Message accepted for delivery\r\n",
    None,
    "221 2.0.0 alcyone.campus.test closing connection\r\n",
]
LOG_LINE = "Dec  4 20:10:01 alcyone labenv-mta[42]: wB4KA0xY000042: from=<mmouse@toontown.test>, size=52\r\n"


@pytest.fixture(autouse=True)
def fast_retry(monkeypatch):
    monkeypatch.setattr(runner, "RETRY_PAUSE", 0.05)


def test_runner_captures_flow():
    opener = Opener({"telnet": [TELNET], "grep": [[LOG_LINE]]})
    record = runner.replay(parse_scenario(SCENARIO, "s.toml"), LAB, opener)
    assert record.ok, record.failures()
    assert opener.calls[0] == ("regulus", "john", "telnet alcyone.campus.test 25", "ssh")
    assert opener.calls[1] == ("alcyone", "john", "grep wB4KA0xY000042 /var/log/syslog", "exec")
    assert record.captures == {"qid": "wB4KA0xY000042", "log_qid": "wB4KA0xY000042"}
    transcript = record.sessions[0].steps[0].transcript
    assert "MAIL From:<mmouse@toontown.test>\n250 2.1.0" in transcript
    assert record.relations[0].ok
    assert record.variables == {"forged": "mmouse@toontown.test"}


def test_runner_retries_until_pass():
    opener = Opener({"telnet": [TELNET], "grep": [["\r\n"], ["\r\n"], [LOG_LINE]]})
    record = runner.replay(parse_scenario(SCENARIO, "s.toml"), LAB, opener)
    step = record.sessions[1].steps[0]
    assert step.ok
    assert step.attempts == 3
    assert len(opener.calls) == 4


def test_runner_dialog_timeout_names_item():
    silent = ["Connected to alcyone.campus.test.\r\n", None]
    opener = Opener({"telnet": [silent], "grep": [[LOG_LINE]]})
    scenario = parse_scenario(SCENARIO.replace("timeout = 5", "timeout = 0.5"), "s.toml")
    record = runner.replay(scenario, LAB, opener)
    step = record.sessions[0].steps[0]
    assert not record.ok
    assert step.error.startswith("s.toml:12 (session[0].step[0].dialog[0]): waiting for /^220 .*\\n/")
    # The queue id was never captured, so the relation names the missing value.
    assert "qid=(not captured)" in record.relations[0].actual
    logs = record.sessions[1].steps[0]
    assert logs.attempts == 1
    assert "{captured.qid}" in logs.error
