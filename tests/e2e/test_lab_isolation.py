"""Labs side by side stay apart, every lab network is internal, and down leaves nothing labelled."""

from __future__ import annotations

import pytest

from labenv.runtime import lifecycle
from labenv.runtime.names import LABEL_LAB
from tests.e2e.conftest import PREFIX, running_lab
from tests.e2e.lab_helpers import mailbox_messages, run, wait_for_message

pytestmark = pytest.mark.docker

SECOND_LAB = f"{PREFIX}e2e-two"
SUBJECT = "Only in the second lab"


@pytest.fixture(scope="module")
def second_lab(docker_client, lab):
    with running_lab(docker_client, SECOND_LAB) as started:
        yield started


def _labelled(client, lab_name: str) -> dict[str, list[str]]:
    label = {"label": [f"{LABEL_LAB}={lab_name}"]}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=label)],
        "networks": [n.name for n in client.networks.list(filters=label)],
        "volumes": [v.name for v in client.volumes.list(filters=label)],
    }


def test_lab_networks_internal(docker_client, lab):
    for container in docker_client.containers.list(all=True, filters={"label": [f"{LABEL_LAB}={lab.name}"]}):
        for name in container.attrs["NetworkSettings"]["Networks"]:
            network = docker_client.networks.get(name)
            assert network.attrs["Internal"] is True, f"{container.name} joins {name}, which is not internal"


def test_second_lab_mail_stays_there(docker_client, lab, second_lab):
    final = second_lab.host_with_role("final")
    relay = second_lab.host_with_role("relay")
    command = f"echo 'lab two' | mail -s '{SUBJECT}' john@{final.fqdn}"
    code, output = run(docker_client, second_lab.name, relay.name, command, user="john")
    assert code == 0, output

    wait_for_message(docker_client, second_lab.name, final.name, "john", SUBJECT)
    first_lab_subjects = [m["Subject"] for m in mailbox_messages(docker_client, lab.name, final.name, "john")]
    assert SUBJECT not in first_lab_subjects


def test_labs_cannot_reach_each_other(docker_client, lab, second_lab):
    other_final = second_lab.host_with_role("final")
    probe = f"timeout 5 bash -c 'exec 3<>/dev/tcp/{other_final.address}/25' && echo connected || echo unreachable"
    code, output = run(docker_client, lab.name, lab.host_with_role("relay").name, probe)
    assert output.strip().splitlines()[-1] == "unreachable", output


def test_down_leaves_nothing(docker_client, second_lab):
    assert _labelled(docker_client, SECOND_LAB)["containers"], "the second lab should be running before down"
    removed = lifecycle.down(docker_client, SECOND_LAB)
    assert f"labenv-{SECOND_LAB}" in removed
    assert _labelled(docker_client, SECOND_LAB) == {"containers": [], "networks": [], "volumes": []}
    assert lifecycle.down(docker_client, SECOND_LAB) == []
