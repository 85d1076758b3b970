"""The lab commands' checks of host, user and subnet, against a fake Docker client."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from labenv.cli import cli
from labenv.runtime import engine, lifecycle
from labenv.runtime.names import LABEL_HOST, LABEL_LAB, LABEL_OVERRIDES, container_name, network_name

HOSTS = "regulus, alcyone, loghost, spamd, ns"


@dataclass
class FakeNetwork:
    name: str
    subnet: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def attrs(self):
        return {"Labels": self.labels, "IPAM": {"Config": [{"Subnet": self.subnet}]}}


@dataclass
class FakeContainer:
    """A lab container whose exec_run serves reads of ``files`` (path to bytes)."""

    lab: str
    host: str
    status: str = "running"
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return container_name(self.lab, self.host)

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_LAB: self.lab, LABEL_HOST: self.host}

    def exec_run(self, argv, user=None, demux=False):
        path = argv[-1]
        if path in self.files:
            return SimpleNamespace(exit_code=0, output=(self.files[path], None))
        if argv[0] == "sh":
            return SimpleNamespace(exit_code=0, output=(None, None))
        return SimpleNamespace(exit_code=1, output=(None, f"cat: {path}: No such file or directory".encode()))


def _matches(labels: dict[str, str], filters: dict | None) -> bool:
    for expected in (filters or {}).get("label", []):
        key, _, value = expected.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


class FakeClient:
    """The part of docker.DockerClient that the lab commands call before they build or exec anything."""

    def __init__(self, networks=(), containers=()):
        self.network_list = list(networks)
        self.container_list = list(containers)
        self.networks = SimpleNamespace(list=self._list_networks)
        self.containers = SimpleNamespace(list=self._list_containers)

    def _list_networks(self, filters=None, greedy=False):
        return [network for network in self.network_list if _matches(network.labels, filters)]

    def _list_containers(self, all=False, filters=None):
        return [container for container in self.container_list if _matches(container.labels, filters)]


def lab_network(lab: str, subnet: str) -> FakeNetwork:
    overrides = json.dumps({"subnet": subnet})
    return FakeNetwork(network_name(lab), subnet, {LABEL_LAB: lab, LABEL_OVERRIDES: overrides})


def running_lab(lab: str = "default", subnet: str = "10.77.0.0/24", **files) -> FakeClient:
    """Return a client that sees every host of the default lab model running, alcyone with ``files``."""
    containers = [FakeContainer(lab, host) for host in ("regulus", "loghost", "spamd", "ns")]
    containers.append(FakeContainer(lab, "alcyone", files={f"/var/mail/{user}": data for user, data in files.items()}))
    return FakeClient([lab_network(lab, subnet)], containers)


@pytest.fixture
def use_client(monkeypatch, tmp_path):
    """Return a function that makes `connect()` return the given fake client."""
    monkeypatch.setenv("LABENV_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LABENV_SUBNET", raising=False)

    def use(client: FakeClient) -> FakeClient:
        monkeypatch.setattr(engine, "connect", lambda: client)
        return client

    return use


@pytest.fixture
def execv(monkeypatch):
    """Record the argv that a command would replace its process with."""
    calls = []
    monkeypatch.setattr("os.execv", lambda path, argv: calls.append(argv))
    return calls


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("args", [
    ("ssh", "nosuchhost"),
    ("exec", "nosuchhost", "true"),
    ("logs", "--host", "nosuchhost"),
])
def test_unknown_host_lists_hosts(use_client, execv, args):
    use_client(running_lab())
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.stderr == f"error: lab default has no host nosuchhost; its hosts are {HOSTS}\n"
    assert execv == []


def test_stopped_host_hint_default_lab(use_client, execv):
    client = use_client(running_lab())
    client.container_list[0].status = "exited"
    result = invoke("exec", "regulus", "true")
    assert result.exit_code == 1
    assert "is exited" in result.stderr
    assert "run 'labenv up' to start it" in result.stderr
    assert "--name" not in result.stderr


def test_missing_container_hint_named_lab(use_client, execv):
    client = use_client(running_lab("h13-other", "10.78.5.0/24"))
    client.container_list = client.container_list[1:]
    result = invoke("exec", "--name", "h13-other", "regulus", "true")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: host regulus of lab h13-other has no container; start it with 'labenv up --name h13-other'\n"
    )


def test_lab_not_running_hint(use_client):
    use_client(FakeClient())
    result = invoke("mail", "john")
    assert result.exit_code == 1
    assert result.stderr == "error: lab default is not running; start it with 'labenv up'\n"


def test_ssh_unknown_user(use_client, execv):
    use_client(running_lab())
    result = invoke("ssh", "regulus", "--user", "nobody")
    assert result.exit_code == 1
    assert result.stderr == "error: nobody has no account on regulus; lab users there: john, jane\n"
    assert execv == []


def test_ssh_user_without_account(use_client, execv):
    use_client(running_lab())
    result = invoke("ssh", "loghost", "--user", "john")
    assert result.exit_code == 1
    assert result.stderr == "error: john has no account on loghost; lab users there: none\n"


def test_ssh_lab_user_runs_ssh(use_client, execv):
    use_client(running_lab())
    result = invoke("ssh", "regulus", "--user", "jane", "id")
    assert result.exit_code == 0, result.stderr
    assert len(execv) == 1
    assert execv[0][-2].startswith("regulus.")
    assert execv[0][-1] == "id"
    assert execv[0][execv[0].index("-l") + 1] == "jane"


def test_mail_missing_mailbox(use_client):
    use_client(running_lab())
    result = invoke("mail", "john")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "john's mailbox on alcyone is empty\n"


def test_mail_empty_mailbox(use_client):
    use_client(running_lab(jane=b""))
    result = invoke("mail", "jane")
    assert result.exit_code == 0
    assert result.stderr == "jane's mailbox on alcyone is empty\n"


def test_mail_unknown_user(use_client):
    use_client(running_lab())
    result = invoke("mail", "nobody")
    assert result.exit_code == 1
    assert result.stderr == "error: nobody is not a lab user on alcyone; lab users there: john, jane\n"


def test_mail_prints_messages(use_client):
    mbox = b"From sender@example.test Fri Dec  4 21:00:00 2026\nSubject: hello\n\nbody\n\n"
    use_client(running_lab(john=mbox))
    result = invoke("mail", "john")
    assert result.exit_code == 0
    assert "--- message 1 of 1 ---" in result.stdout
    assert "Subject: hello" in result.stdout
    assert result.stderr == ""


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if `up` gets as far as checking or building images."""
    def build(*args, **kwargs):
        raise AssertionError("up checked images before it checked the lab")

    monkeypatch.setattr(lifecycle, "ensure_images", build)


def up_with_file(tmp_path, text: str):
    """Run `labenv up` on the default lab with a lab file containing ``text``."""
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text(text)
    return invoke("up", "--file", str(lab_file))


def test_up_invalid_subnet_in_file(use_client, no_build, tmp_path):
    use_client(running_lab())
    result = up_with_file(tmp_path, "subnet = 10.77\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "subnet" in result.stderr
    assert "10.77" in result.stderr


def test_up_changed_subnet_in_file(use_client, no_build, tmp_path):
    use_client(running_lab())
    result = up_with_file(tmp_path, 'subnet = "10.80.0.0/24"\n')
    assert result.exit_code == 1
    assert result.stderr == (
        "error: lab default runs on 10.77.0.0/24, not 10.80.0.0/24; run 'labenv down' first to change its subnet\n"
    )


def test_up_changed_subnet_option(use_client, no_build):
    use_client(running_lab("h13-sub", "10.78.9.0/24"))
    result = invoke("up", "--name", "h13-sub", "--subnet", "10.78.10.0/24")
    assert result.exit_code == 1
    assert "run 'labenv down --name h13-sub' first" in result.stderr


def test_up_overlap_before_build(use_client, no_build):
    use_client(running_lab())
    result = invoke("up", "--name", "h13-new", "--subnet", "10.77.0.0/24")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: subnet 10.77.0.0/24 overlaps Docker network labenv-default (10.77.0.0/24); "
        "choose another with --subnet or subnet= in the lab file\n"
    )


def test_load_keeps_running_subnet(use_client, tmp_path):
    client = running_lab("h13-keep", "10.78.200.0/24")
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text('auth_policy = "enforce"\n')
    lab, source = lifecycle.load_lab_for_up(client, "h13-keep", lab_file, {})
    assert str(lab.subnet) == "10.78.200.0/24"
    assert source.overrides["subnet"] == "10.78.200.0/24"


def test_load_same_subnet_in_file(use_client, tmp_path):
    client = running_lab()
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text('subnet = "10.77.0.0/24"\n')
    lab, _ = lifecycle.load_lab_for_up(client, "default", lab_file, {})
    assert str(lab.subnet) == "10.77.0.0/24"
