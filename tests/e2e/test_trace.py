"""labenv trace on a real lab: the forged message of the handout, a genuine one, and the forgery under enforce."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from labenv.cli import cli
from labenv.runtime import policy
from labenv.runtime.containers import find_container
from tests.e2e.lab_helpers import run, wait_for_message

pytestmark = pytest.mark.docker

FORGED_SENDER = "mmouse@toontown.test"
MADE_UP_HELO = "foobar.yech.test"
FORGED_SUBJECT = "A bogus message to trace"
GENUINE_SUBJECT = "A genuine message to trace"


def forge_script(recipient: str, host: str, subject: str) -> str:
    """Return a Python program that types the handout's forged SMTP session, with a From: field."""
    return (
        "import smtplib, sys\n"
        f"s = smtplib.SMTP({host!r}, 25, local_hostname={MADE_UP_HELO!r})\n"
        "s.helo()\n"
        "try:\n"
        f"    s.sendmail({FORGED_SENDER!r}, [{recipient!r}], "
        f"'From: {FORGED_SENDER}\\r\\nSubject: {subject}\\r\\n\\r\\nHi John,\\r\\nRocky says hello.\\r\\n')\n"
        "except smtplib.SMTPDataError as exc:\n"
        "    print(exc.smtp_code, exc.smtp_error.decode())\n"
        "    sys.exit(3)\n"
        "s.quit()\n"
    )


def send_forged(docker_client, lab, subject: str) -> tuple[int, str]:
    relay = lab.host_with_role("relay")
    final = lab.host_with_role("final")
    script = forge_script(f"john@{final.fqdn}", final.fqdn, subject)
    return run(docker_client, lab.name, relay.name, f"python3 -c {shlex.quote(script)}", user="john")


def trace_newest(lab) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "labenv", "trace", "--name", lab.name, "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def forged_trace(docker_client, lab):
    code, output = send_forged(docker_client, lab, FORGED_SUBJECT)
    assert code == 0, output
    wait_for_message(docker_client, lab.name, lab.host_with_role("final").name, "john", FORGED_SUBJECT)
    return trace_newest(lab)


@pytest.fixture(scope="module")
def genuine_trace(docker_client, lab, forged_trace):
    final = lab.host_with_role("final")
    command = f"echo 'This is a test.' | mail -s '{GENUINE_SUBJECT}' john@{final.fqdn}"
    code, output = run(docker_client, lab.name, lab.host_with_role("relay").name, command, user="john")
    assert code == 0, output
    wait_for_message(docker_client, lab.name, final.name, "john", GENUINE_SUBJECT)
    return trace_newest(lab)


def test_trace_forged_hop(lab, forged_trace):
    relay = lab.host_with_role("relay")
    final = lab.host_with_role("final")
    hop = forged_trace["hops"][0]
    assert forged_trace["headers"]["subject"] == FORGED_SUBJECT
    assert hop["status"] == "observed"
    assert hop["by"] == final.fqdn
    assert hop["address"] == str(relay.address)
    assert hop["reverse_name"] == relay.fqdn
    assert hop["helo"] == MADE_UP_HELO


def test_trace_forged_helo_claim(lab, forged_trace):
    comparison = next(c for c in forged_trace["comparisons"] if c["label"] == "HELO and reverse DNS")
    assert comparison["left"] == MADE_UP_HELO
    assert comparison["right"] == lab.host_with_role("relay").fqdn
    assert comparison["agree"] is False


def test_trace_forged_auth(forged_trace):
    auth = forged_trace["auth"]
    assert auth["spf"]["result"] == "fail"
    assert auth["spf"]["domain"] == "toontown.test"
    assert auth["dmarc"]["result"] == "fail"
    assert auth["dmarc"]["header_from"] == "toontown.test"
    assert auth["dmarc"]["policy"] == "reject"
    assert auth["action"] == "reject"


def test_trace_genuine_passes(lab, genuine_trace):
    # mail on regulus writes john@regulus.campus.test; the relay signs for campus.test,
    # which aligns with it under DMARC's relaxed (organizational domain) rule.
    relay = lab.host_with_role("relay")
    auth = genuine_trace["auth"]
    assert genuine_trace["headers"]["subject"] == GENUINE_SUBJECT
    assert auth["spf"]["result"] == "pass"
    assert auth["spf"]["domain"] == relay.fqdn
    assert [item["result"] for item in auth["dkim"]] == ["pass"]
    assert auth["dkim"][0]["domain"] == lab.domain
    assert auth["dmarc"]["result"] == "pass"
    assert auth["dmarc"]["header_from"] == relay.fqdn
    assert auth["action"] == "accept"


@pytest.fixture
def enforcing(docker_client, lab, genuine_trace):
    """Switch the lab to enforce for one test and always set observe again."""
    change = policy.set_policy(docker_client, lab, "enforce")
    try:
        yield change
    finally:
        policy.set_policy(docker_client, lab, "observe")


def test_trace_enforce_rejects(docker_client, lab, enforcing):
    assert enforcing.previous == "observe"
    assert enforcing.message == "auth policy changed from observe to enforce"

    code, output = send_forged(docker_client, lab, "Rejected under enforce")
    assert code == 3, output
    assert output.strip() == "550 5.7.1 Rejected by DMARC policy for toontown.test"

    final = lab.host_with_role("final")
    assert policy.read_policy(find_container(docker_client, lab.name, final.name)) == "enforce"


def test_trace_observe_restored(docker_client, lab, genuine_trace):
    # Runs after the enforce test: its fixture must have left the lab observing.
    final = lab.host_with_role("final")
    assert policy.read_policy(find_container(docker_client, lab.name, final.name)) == "observe"


def test_policy_command_output(lab, genuine_trace):
    result = CliRunner().invoke(cli, ["policy", "observe", "--name", lab.name])
    final = lab.host_with_role("final")
    assert result.exit_code == 0, result.output
    assert f"labenv-{lab.name}-{final.name}: auth policy unchanged: observe" in result.output
    assert "confirmed by /var/log/mail.log: " in result.output
    # The lab itself was created with observe, so there is nothing to warn about.
    assert "note:" not in result.output
