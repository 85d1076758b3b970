"""The lab commands' errors for a mistyped host, user or subnet, against a running lab."""

from __future__ import annotations

import pytest

from labenv.errors import ConfigError
from labenv.runtime import lifecycle
from labenv.runtime.containers import find_container
from labenv.runtime.hostfiles import read_host_file
from tests.e2e.test_lab_access import labenv

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("args", [("ssh", "nosuchhost"), ("exec", "nosuchhost", "true"), ("logs", "--host", "nosuchhost")])
def test_unknown_host_lists_hosts(lab, args):
    result = labenv(args[0], "--name", lab.name, *args[1:])
    hosts = ", ".join(host.name for host in lab.hosts)
    assert result.returncode == 1
    assert result.stderr == f"error: lab {lab.name} has no host nosuchhost; its hosts are {hosts}\n"


def test_ssh_user_without_account(lab):
    relay = lab.host_with_role("relay").name
    result = labenv("ssh", "--name", lab.name, "--user", "nobody", relay, "true")
    users = ", ".join(user.name for user in lab.users_on(relay))
    assert result.returncode == 1
    assert result.stderr == f"error: nobody has no account on {relay}; lab users there: {users}\n"


def test_mail_unknown_user(lab):
    final = lab.host_with_role("final").name
    result = labenv("mail", "--name", lab.name, "nobody")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: nobody is not a lab user on {final}; lab users there: ")


def test_read_missing_file_as_empty(lab, docker_client):
    container = find_container(docker_client, lab.name, lab.host_with_role("final").name)
    assert read_host_file(container, "/var/mail/no-such-mailbox", missing_ok=True) == b""
    assert read_host_file(container, "/etc/hostname", missing_ok=True).strip() != b""


def test_up_changed_subnet(lab, docker_client):
    with pytest.raises(ConfigError) as error:
        lifecycle.load_lab_for_up(docker_client, lab.name, None, {"subnet": "10.79.250.0/24"})
    assert str(error.value) == (
        f"lab {lab.name} runs on {lab.subnet}, not 10.79.250.0/24; "
        f"run 'labenv down --name {lab.name}' first to change its subnet"
    )


def test_up_keeps_running_subnet(lab, docker_client):
    reloaded, source = lifecycle.load_lab_for_up(docker_client, lab.name, None, {})
    assert reloaded.subnet == lab.subnet
    assert source.overrides["subnet"] == str(lab.subnet)
