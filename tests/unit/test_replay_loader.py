"""Tests of the scenario loader: values, and errors that name the file, line and field."""

from pathlib import Path

import pytest

from labenv.errors import ScenarioError
from labenv.replay.loader import load_scenario, parse_scenario
from labenv.replay.scenario import LabAction
from labenv.replay.tomllines import TomlLines

GOOD = '''\
title = "two sessions"

[vars]
forged = "mmouse@{forged_domain}"

[[session]]
key = "one"
title = "mail -v"

[[session.step]]
host = "regulus"
user = "john"
command = "mail -v john@{hosts.alcyone.fqdn}"
dialog = [
  { expect = "Subject: ", send = "Test" },
  { send = "{vars.forged}" },
  { expect = 'accepted (?P<qid>[0-9A-Za-z]{14})', send = "." },
]

[[session.step.expect]]
reply = "MAIL From:"
code = 250

[[session.step.expect]]
match = 'id (?P<final_qid>\\w+)'
name = "a queue id"

[[session]]
key = "two"

[[session.step]]
host = "alcyone"
user = "john"
command = "cat /var/mail/john"
retry = 5

[[session.step.expect]]
header = "Received"
index = 0
value = 'id {captured.qid}'

[[session.step.expect]]
log = ': from=<'
fields = { from = "<{vars.forged}>" }

[[relation]]
name = "one queue id"
same = ["qid", "final_qid"]
'''


def lines_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def load_error(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "demo.toml")
    return str(caught.value)


def test_loader_reads_sessions():
    scenario = parse_scenario(GOOD, "demo.toml")
    assert [session.key for session in scenario.sessions] == ["one", "two"]
    step = scenario.sessions[0].steps[0]
    assert step.host == "regulus"
    assert step.command == "mail -v john@{hosts.alcyone.fqdn}"
    assert [action.send for action in step.dialog] == ["Test", "{vars.forged}", "."]
    assert step.dialog[1].expect is None
    assert step.expectations[0].kind == "reply"
    assert step.expectations[0].options == {"code": 250}
    assert step.expectations[1].name == "a queue id"
    assert scenario.sessions[1].steps[0].retry == 5.0
    assert scenario.relations[0].same == ("qid", "final_qid")
    assert scenario.variables == {"forged": "mmouse@{forged_domain}"}


def test_loader_locations():
    scenario = parse_scenario(GOOD, "demo.toml")
    step = scenario.sessions[0].steps[0]
    assert step.dialog[0].location.line == lines_of(GOOD, '{ expect = "Subject: "')
    assert step.dialog[2].location.line == lines_of(GOOD, "accepted (?P<qid>")
    assert step.expectations[0].location.line == lines_of(GOOD, 'reply = "MAIL From:"')
    assert step.expectations[1].location.line == lines_of(GOOD, "match = 'id")
    log_expectation = scenario.sessions[1].steps[0].expectations[1]
    assert log_expectation.location.line == lines_of(GOOD, "log = ': from=<'")
    log_line = lines_of(GOOD, "log = ': from")
    assert str(log_expectation.location) == f"demo.toml:{log_line} (session[1].step[0].expect[1].log)"


def test_loader_typo_names_line():
    text = GOOD.replace('reply = "MAIL From:"\ncode = 250', 'reply = "MAIL From:"\ncdoe = 250')
    message = load_error(text)
    assert f"demo.toml:{lines_of(text, 'cdoe = 250')}" in message
    assert "session[0].step[0].expect[0].cdoe" in message
    assert "unknown field 'cdoe'" in message


def test_loader_typo_in_dialog_item():
    text = GOOD.replace('{ send = "{vars.forged}" }', '{ sned = "{vars.forged}" }')
    message = load_error(text)
    assert f"demo.toml:{lines_of(text, 'sned =')}" in message
    assert "dialog[1].sned" in message


def test_loader_unknown_capture():
    text = GOOD.replace("id {captured.qid}", "id {captured.qidd}")
    message = load_error(text)
    assert f"demo.toml:{lines_of(text, 'captured.qidd')}" in message
    assert "qidd" in message


def test_loader_relation_unknown_capture():
    text = GOOD.replace('same = ["qid", "final_qid"]', 'same = ["qid", "loghost_qid"]')
    message = load_error(text)
    assert "unknown capture 'loghost_qid'" in message
    assert f"demo.toml:{lines_of(text, 'loghost_qid')}" in message


def test_loader_bad_regex():
    text = GOOD.replace("match = 'id (?P<final_qid>\\w+)'", "match = 'id (?P<final_qid>\\w+'")
    message = load_error(text)
    assert "invalid regular expression" in message
    assert f"demo.toml:{lines_of(text, 'match = ')}" in message


def test_loader_two_kinds():
    text = GOOD.replace('reply = "MAIL From:"\ncode = 250', 'reply = "MAIL From:"\nline = "x"\ncode = 250')
    message = load_error(text)
    assert "exactly one of" in message
    assert "found line, reply" in message


def test_loader_option_of_other_kind():
    text = GOOD.replace("header = \"Received\"\nindex = 0", "header = \"Received\"\ncode = 0")
    message = load_error(text)
    assert "'code' does not apply to a 'header'" in message


def test_loader_wrong_type():
    text = GOOD.replace("retry = 5", 'retry = "5"')
    message = load_error(text)
    assert f"demo.toml:{lines_of(text, 'retry =')}" in message
    assert "expected int or float" in message


def test_loader_unknown_placeholder_root():
    text = GOOD.replace("{hosts.alcyone.fqdn}", "{host.alcyone.fqdn}")
    message = load_error(text)
    assert "unknown placeholder {host.alcyone.fqdn}" in message


def test_loader_invalid_access():
    text = GOOD.replace("retry = 5", 'retry = 5\naccess = "docker"')
    message = load_error(text)
    assert f"demo.toml:{lines_of(text, 'access =')}" in message
    assert "invalid access 'docker': expected one of ssh, exec" in message


def test_loader_invalid_toml():
    message = load_error('title = "x\n')
    assert message.startswith("demo.toml: invalid TOML")


def test_loader_missing_file(tmp_path: Path):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(tmp_path / "absent.toml")
    assert "absent.toml" in str(caught.value)


def test_tomllines_nested_arrays():
    text = "[[a]]\nx = 1\n[[a.b]]\ny = 2\n[[a.b]]\ny = 3\n[[a]]\n[[a.b]]\ny = 4\n"
    lines = TomlLines(text)
    assert lines.line_of(("a", 0, "b", 1, "y")) == 6
    assert lines.line_of(("a", 1, "b", 0, "y")) == 9
    assert lines.line_of(("a", 0, "x")) == 2


def test_tomllines_item_after_brace_in_string():
    text = 'k = [\n  "a{b",\n  { s = "}" },\n  "c",\n]\n'
    lines = TomlLines(text)
    assert lines.line_of(("k", 1)) == 3
    assert lines.line_of(("k", 2)) == 4
    assert lines.line_of(("k", 1, "s")) == 3


ACTION_STEP = '''
[[session.step]]
name = "enforce"
action = "auth-policy"
value = "enforce"
'''


def test_loader_reads_lab_action():
    scenario = parse_scenario(GOOD + ACTION_STEP, "demo.toml")
    action = scenario.sessions[-1].steps[-1]
    assert isinstance(action, LabAction)
    assert action.action == "auth-policy"
    assert action.value == "enforce"
    assert action.name == "enforce"
    assert action.location.line == lines_of(GOOD + ACTION_STEP, 'action = "auth-policy"')


def test_loader_unknown_action():
    text = GOOD + ACTION_STEP.replace('"auth-policy"', '"reboot"')
    message = load_error(text)
    assert f"demo.toml:{lines_of(text, 'action =')}" in message
    assert "unknown action 'reboot'; expected one of: auth-policy" in message


def test_loader_invalid_action_value():
    text = GOOD + ACTION_STEP.replace('value = "enforce"', 'value = "strict"')
    message = load_error(text)
    line = lines_of(text, "strict")
    assert f"demo.toml:{line}" in message
    assert "invalid auth-policy value 'strict'; expected one of: observe, enforce" in message


def test_loader_action_with_host_key():
    text = GOOD + ACTION_STEP + 'host = "alcyone"\n'
    message = load_error(text)
    assert f"demo.toml:{len(text.splitlines())}" in message
    assert "unknown field 'host'" in message


def test_loader_handout_fifth_session():
    scenario = load_scenario(Path(__file__).parents[2] / "scenarios" / "handout.toml")
    enforce = scenario.sessions[4]
    assert enforce.key == "enforce"
    assert [step.value for step in enforce.steps if isinstance(step, LabAction)] == ["enforce", "observe"]
    assert "telnet" in enforce.steps[1].command
