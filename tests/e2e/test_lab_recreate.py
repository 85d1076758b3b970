"""Recreating a host through `up` keeps its mailboxes, spool and logs, which live on named volumes."""

from __future__ import annotations

import time

import pytest

from labenv.runtime import lifecycle
from labenv.runtime.containers import find_container
from labenv.runtime.names import LABEL_HOST, LABEL_LAB, LABEL_VERSION
from tests.e2e.conftest import PREFIX, READY_TIMEOUT, running_lab
from tests.e2e.lab_helpers import DELIVERY_TIMEOUT, mailbox_messages, run, wait_for_message

pytestmark = pytest.mark.docker

LAB_NAME = f"{PREFIX}keep"
SPOOL = "/var/spool/labenv-mta"
DELIVERED_SUBJECT = "delivered before recreation"
SPOOLED_SUBJECT = "spooled across recreation"


def _send(client, lab, subject: str) -> None:
    final = lab.host_with_role("final")
    command = f"echo body | mail -s '{subject}' john@{final.fqdn}"
    code, output = run(client, lab.name, lab.host_with_role("relay").name, command, user="john")
    assert code == 0, output


def _spool_messages(client, lab) -> list[str]:
    code, output = run(client, lab.name, lab.host_with_role("final").name, f"ls {SPOOL}")
    assert code == 0, output
    return [name for name in output.split() if name.endswith(".msg")]


def _wait_for_spooled(client, lab) -> list[str]:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not (names := _spool_messages(client, lab)):
        if time.monotonic() > deadline:
            raise AssertionError(f"no message reached {SPOOL} on {lab.host_with_role('final').name}")
        time.sleep(1)
    return names


@pytest.fixture(scope="module")
def recreated(docker_client, state_dir):
    """Deliver one message, hold a second in alcyone's spool with a dotlock, then recreate alcyone via `up`."""
    with running_lab(docker_client, LAB_NAME) as lab:
        final = lab.host_with_role("final")
        _send(docker_client, lab, DELIVERED_SUBJECT)
        wait_for_message(docker_client, lab.name, final.name, "john", DELIVERED_SUBJECT)

        # A dotlock makes every delivery to john wait and then fail temporarily,
        # so the next message stays in the spool.
        code, output = run(docker_client, lab.name, final.name, "touch /var/mail/john.lock")
        assert code == 0, output
        _send(docker_client, lab, SPOOLED_SUBJECT)
        spooled = _wait_for_spooled(docker_client, lab)

        old_id = find_container(docker_client, lab.name, final.name).id
        # A new auth policy changes alcyone's mta.toml, so `up` recreates it.
        changed, source = lifecycle.load_lab_for_up(docker_client, lab.name, None, {"auth_policy": "enforce"})
        lifecycle.up(docker_client, changed, source, timeout=READY_TIMEOUT)
        yield changed, old_id, spooled


def test_recreate_replaces_container(docker_client, recreated):
    lab, old_id, _ = recreated
    assert find_container(docker_client, lab.name, lab.host_with_role("final").name).id != old_id


def test_recreate_keeps_mailbox(docker_client, recreated):
    lab, _, _ = recreated
    messages = mailbox_messages(docker_client, lab.name, lab.host_with_role("final").name, "john")
    assert [message["Subject"] for message in messages] == [DELIVERED_SUBJECT]


def test_recreate_keeps_spool(docker_client, recreated):
    lab, _, spooled = recreated
    assert set(spooled) <= set(_spool_messages(docker_client, lab))


def test_volume_owners_and_modes(docker_client, recreated):
    lab, _, _ = recreated
    final = lab.host_with_role("final").name
    code, output = run(docker_client, lab.name, final, f"stat -c '%U:%G %a' /var/mail {SPOOL}")
    assert code == 0, output
    assert output.splitlines() == ["root:mail 2775", "root:root 755"]


def test_volume_labels(docker_client, recreated):
    lab, _, _ = recreated
    final = lab.host_with_role("final").name
    for purpose in ("mail", "spool", "log"):
        volume = docker_client.volumes.get(f"labenv-{lab.name}-{final}-{purpose}")
        assert volume.attrs["Labels"][LABEL_LAB] == lab.name
        assert volume.attrs["Labels"][LABEL_HOST] == final
        assert LABEL_VERSION in volume.attrs["Labels"]


def test_recreate_keeps_logs(docker_client, recreated):
    lab, _, _ = recreated
    final = lab.host_with_role("final").name
    # rsyslogd logs one "start" line each time it starts; a fresh /var/log would hold one.
    code, output = run(docker_client, lab.name, final, "grep -c 'rsyslogd: .* start$' /var/log/syslog")
    assert code == 0, output
    assert int(output) >= 2


def test_spooled_delivered_after_recreate(docker_client, recreated):
    lab, _, _ = recreated
    final = lab.host_with_role("final").name
    code, output = run(docker_client, lab.name, final, "rm /var/mail/john.lock")
    assert code == 0, output
    wait_for_message(docker_client, lab.name, final, "john", SPOOLED_SUBJECT)
    subjects = [message["Subject"] for message in mailbox_messages(docker_client, lab.name, final, "john")]
    assert subjects == [DELIVERED_SUBJECT, SPOOLED_SUBJECT]
