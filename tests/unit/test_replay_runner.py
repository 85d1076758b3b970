"""Tests of the runner: scripted programs on real socket pairs stand in for SSH terminals."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from labenv.lab.model import ForeignDomain, Host, Lab, User
from labenv.runtime.policy import PolicyError
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


POLICY_SCENARIO = """\
[[session]]
key = "enforce"
[[session.step]]
action = "auth-policy"
value = "enforce"
[[session.step]]
host = "regulus"
user = "john"
command = "telnet {hosts.alcyone.fqdn} 25"
timeout = 5
dialog = [{ expect = '^220 .*\\n', send = "QUIT" }]
[[session.step.expect]]
match = '^550 5\\.7\\.1 '
[[session.step]]
action = "auth-policy"
value = "observe"
"""
REJECTED = ["220 alcyone.campus.test ESMTP labenv\r\n", None, "550 5.7.1 Rejected by DMARC policy for toontown.test\r\n"]
ACCEPTED = ["220 alcyone.campus.test ESMTP labenv\r\n", None, "221 2.0.0 closing\r\n"]


class FakePolicy:
    """Stands in for the running lab's MTA: records each policy set and returns the previous one."""

    def __init__(self, policy: str = "observe", fail_on: str | None = None):
        self.policy = policy
        self.fail_on = fail_on
        self.calls: list[str] = []

    def __call__(self, policy: str) -> tuple[str, str]:
        self.calls.append(policy)
        if policy == self.fail_on:
            raise PolicyError(f"sending SIGHUP failed for {policy}")
        previous, self.policy = self.policy, policy
        return previous, f"alcyone labenv-mta[8]: auth policy changed from {previous} to {policy}"


def test_runner_policy_steps():
    lab_policy = FakePolicy()
    opener = Opener({"telnet": [REJECTED]})
    record = runner.replay(parse_scenario(POLICY_SCENARIO, "p.toml"), LAB, opener, set_policy=lab_policy)
    assert record.ok, record.failures()
    assert lab_policy.calls == ["enforce", "observe"]
    assert lab_policy.policy == "observe"
    enforce, telnet, observe = record.sessions[0].steps
    assert enforce.action == "auth-policy"
    assert enforce.command == "labenv policy enforce"
    assert enforce.host == "alcyone"
    assert "auth policy changed from observe to enforce" in enforce.transcript
    assert telnet.policy == "enforce"
    assert telnet.action is None
    assert observe.policy == "observe"


def test_runner_policy_restored_after_stop():
    lab_policy = FakePolicy()

    def interrupted(host, user, command, access):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.replay(parse_scenario(POLICY_SCENARIO, "p.toml"), LAB, interrupted, set_policy=lab_policy)
    assert lab_policy.calls == ["enforce", "observe"]
    assert lab_policy.policy == "observe"


def test_runner_policy_restores_original():
    # A lab created with --auth enforce gets enforce back after the scenario's own observe step.
    lab_policy = FakePolicy("enforce")
    opener = Opener({"telnet": [REJECTED]})
    record = runner.replay(parse_scenario(POLICY_SCENARIO, "p.toml"), LAB, opener, set_policy=lab_policy)
    assert record.ok, record.failures()
    assert lab_policy.calls == ["enforce", "observe", "enforce"]
    assert lab_policy.policy == "enforce"


def test_runner_policy_failed_check_restores():
    scenario = parse_scenario(POLICY_SCENARIO.replace('value = "observe"', 'value = "enforce"'), "p.toml")
    lab_policy = FakePolicy()
    record = runner.replay(scenario, LAB, Opener({"telnet": [ACCEPTED]}), set_policy=lab_policy)
    assert not record.ok
    assert lab_policy.calls == ["enforce", "enforce", "observe"]
    assert lab_policy.policy == "observe"


def test_runner_policy_error_recorded():
    lab_policy = FakePolicy(fail_on="enforce")
    record = runner.replay(parse_scenario(POLICY_SCENARIO, "p.toml"), LAB, Opener({"telnet": [ACCEPTED]}),
                           set_policy=lab_policy)
    enforce, telnet, _ = record.sessions[0].steps
    assert enforce.error.startswith("p.toml:4 (session[0].step[0].action): sending SIGHUP failed")
    assert telnet.policy is None
    assert not record.ok
