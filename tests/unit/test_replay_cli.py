"""Tests of the replay command line that need no lab: scenario errors and help."""

from click.testing import CliRunner

from labenv.cli import cli
from labenv.cli.replay_commands import default_scenario
from labenv.replay.loader import load_scenario


def test_cli_scenario_error_names_line(tmp_path):
    scenario = tmp_path / "typo.toml"
    scenario.write_text('[[session]]\nkey = "s"\n[[session.step]]\nhost = "regulus"\nusr = "john"\n')
    result = CliRunner().invoke(cli, ["replay", str(scenario), "--name", "absent"])
    assert result.exit_code == 1
    assert f"error: {scenario}:5 (session[0].step[0].usr): unknown field 'usr'" in result.output


def test_cli_default_scenario_loads():
    scenario = load_scenario(default_scenario())
    assert [session.key for session in scenario.sessions] == ["mail-v", "telnet", "read", "logs", "enforce"]
    assert scenario.relations[0].same == ("final_qid", "received_qid", "alcyone_log_qid", "loghost_log_qid")
