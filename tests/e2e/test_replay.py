"""End-to-end tests of labenv replay: the handout scenario on a real lab of containers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from labenv.cli import cli
from tests.e2e.conftest import PREFIX

LAB_NAME = f"{PREFIX}replay-e2e"

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def lab():
    """Start a lab of our own for this module and remove it afterwards."""
    from labenv.runtime import lifecycle
    from labenv.runtime.engine import connect

    client = connect()
    lab, source = lifecycle.load_lab_for_up(client, LAB_NAME, None, {})
    try:
        lifecycle.up(client, lab, source, timeout=300)
        yield lab
    finally:
        lifecycle.down(client, LAB_NAME)
        client.close()


def replay(report_dir: Path):
    result = CliRunner().invoke(cli, ["replay", "--name", LAB_NAME, "--report-dir", str(report_dir)])
    record = json.loads((report_dir / "run.json").read_text()) if (report_dir / "run.json").exists() else None
    return result, record


def failed_names(record) -> list[str]:
    names = [check["name"] for session in record["sessions"] for step in session["steps"]
             for check in step["checks"] if not check["ok"]]
    return names + [check["name"] for check in record["relations"] if not check["ok"]]


def test_replay_handout_passes(lab, tmp_path):
    result, record = replay(tmp_path / "report")
    assert result.exit_code == 0, result.output
    assert failed_names(record) == []
    captures = record["captures"]
    assert captures["final_qid"] == captures["received_qid"] == captures["loghost_log_qid"]
    assert captures["received_helo"] == "foobar.yech.test"
    assert captures["received_address"] == str(lab.host("regulus").address)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert f"### {captures['final_qid']} (the examined message)" in markdown
    assert (tmp_path / "report" / "report.html").read_text().startswith("<!DOCTYPE html>")


def alcyone_policy() -> str:
    from labenv.runtime.containers import find_container
    from labenv.runtime.engine import connect
    from labenv.runtime.policy import read_policy

    client = connect()
    try:
        return read_policy(find_container(client, LAB_NAME, "alcyone"))
    finally:
        client.close()


def test_replay_enforce_session(lab, tmp_path):
    result, record = replay(tmp_path / "report")
    assert result.exit_code == 0, result.output
    enforce = next(session for session in record["sessions"] if session["key"] == "enforce")
    switch_on, telnet, switch_off = enforce["steps"]
    assert "auth policy changed from observe to enforce" in switch_on["transcript"]
    assert telnet["policy"] == "enforce"
    assert "550 5.7.1 Rejected by DMARC policy for toontown.test" in telnet["transcript"]
    assert "auth policy changed from enforce to observe" in switch_off["transcript"]
    closing = (tmp_path / "report" / "report.md").read_text().split("### With the defences on", 1)
    assert len(closing) == 2
    assert "550 5.7.1 Rejected by DMARC policy for toontown.test" in closing[1]
    assert alcyone_policy() == "observe"


def test_replay_without_spamd_fails(lab, tmp_path):
    from labenv.runtime.containers import find_container
    from labenv.runtime.engine import connect

    client = connect()
    spamd = find_container(client, LAB_NAME, "spamd")
    spamd.stop()
    try:
        result, record = replay(tmp_path / "report")
    finally:
        spamd.start()
        client.close()
    assert result.exit_code == 1
    assert "spamd scored the message" in failed_names(record)
    assert "spamd scored the message" in result.output
    assert "expectation(s) failed" in result.output
    # The failed checks must not leave alcyone enforcing.
    assert alcyone_policy() == "observe"
