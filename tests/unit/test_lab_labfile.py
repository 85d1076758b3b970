"""Tests of the lab file loader: defaults, merging, precedence and validation errors."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from labenv.errors import ConfigError
from labenv.lab.labfile import load_lab


def write_lab(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABENV_SUBNET", raising=False)
    monkeypatch.delenv("LABENV_AUTH", raising=False)


def test_defaults_hosts_and_addresses() -> None:
    lab = load_lab(None)

    assert lab.name == "default"
    assert lab.domain == "campus.test"
    assert lab.subnet == ipaddress.IPv4Network("10.77.0.0/24")
    addresses = {host.name: str(host.address) for host in lab.hosts}
    assert addresses == {
        "regulus": "10.77.0.10",
        "alcyone": "10.77.0.20",
        "loghost": "10.77.0.30",
        "spamd": "10.77.0.40",
        "ns": "10.77.0.53",
    }
    assert lab.host_with_role("relay").name == "regulus"
    assert lab.host_with_role("final").fqdn == "alcyone.campus.test"


def test_defaults_users_and_mail_settings() -> None:
    lab = load_lab(None)

    assert [(u.name, u.uid, u.hosts) for u in lab.users] == [
        ("john", 1001, ("regulus", "alcyone")),
        ("jane", 1002, ("regulus", "alcyone")),
    ]
    assert lab.product == "labenv-mta 0.1.0"
    assert lab.timezone == "UTC"
    assert lab.auth_policy == "observe"
    assert [(d.name, d.spf, d.dmarc_policy) for d in lab.foreign_domains] == [
        ("toontown.test", "v=spf1 -all", "reject")
    ]
    assert lab.blocklist_zone == "bl.campus.test"
    assert lab.blocklisted == (ipaddress.IPv4Address("127.0.0.2"),)


def test_file_subnet_moves_default_addresses(tmp_path: Path) -> None:
    path = write_lab(tmp_path, 'subnet = "192.168.44.0/24"\n')

    lab = load_lab(path)

    assert str(lab.host("alcyone").address) == "192.168.44.20"
    assert str(lab.host("ns").address) == "192.168.44.53"


def test_file_renames_host_by_role(tmp_path: Path) -> None:
    path = write_lab(
        tmp_path,
        'domain = "csustan.test"\n[hosts.mailhub]\nrole = "relay"\naddress = "10.77.0.16"\n'
        '[users.mmouse]\nuid = 1003\nhosts = ["mailhub", "alcyone"]\n',
    )

    lab = load_lab(path)

    assert [host.name for host in lab.hosts] == ["alcyone", "loghost", "spamd", "ns", "mailhub"]
    assert lab.host_with_role("relay").fqdn == "mailhub.csustan.test"
    assert str(lab.host("mailhub").address) == "10.77.0.16"
    assert [user.name for user in lab.users] == ["mmouse"]
    assert lab.blocklist_zone == "bl.csustan.test"


def test_precedence_file_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_lab(tmp_path, 'subnet = "10.90.1.0/24"\nauth_policy = "enforce"\n')
    assert load_lab(path).subnet == ipaddress.IPv4Network("10.90.1.0/24")

    monkeypatch.setenv("LABENV_SUBNET", "10.90.2.0/24")
    monkeypatch.setenv("LABENV_AUTH", "observe")
    lab = load_lab(path)
    assert lab.subnet == ipaddress.IPv4Network("10.90.2.0/24")
    assert lab.auth_policy == "observe"

    lab = load_lab(path, overrides={"subnet": "10.90.3.0/24", "auth_policy": "enforce"})
    assert lab.subnet == ipaddress.IPv4Network("10.90.3.0/24")
    assert lab.auth_policy == "enforce"


def test_named_lab_subnet_from_pool() -> None:
    first = load_lab(None, name="second")
    again = load_lab(None, name="second")
    moved = load_lab(None, name="second", taken_subnets=[first.subnet])

    assert first.subnet == again.subnet
    assert first.subnet.subnet_of(ipaddress.IPv4Network("10.78.0.0/16"))
    assert moved.subnet != first.subnet
    assert str(first.host("alcyone").address).endswith(".20")


BAD_FILES = [
    ('subnt = "10.77.0.0/24"\n', ["lab.toml", "subnt", "unknown key", "did you mean 'subnet'"]),
    ('[hosts.alcyone]\nadress = "10.77.0.20"\n', ["hosts.alcyone.adress", "did you mean 'address'"]),
    ('[hosts.alcyone]\naddress = "10.1.2.3"\n',
     ["hosts.alcyone.address", "10.1.2.3", "expected an IPv4 address inside subnet 10.77.0.0/24"]),
    ('[hosts.alcyone]\naddress = "alcyone"\n', ["hosts.alcyone.address", "not an IPv4 address"]),
    ('[hosts.alcyone]\naddress = "10.77.0.1"\n', ["hosts.alcyone.address", "gateway"]),
    ('[hosts.alcyone]\naddress = "10.77.0.10"\n', ["hosts.alcyone.address", "already the address of regulus"]),
    ('[hosts.alcyone]\nrole = "relay"\n', ["hosts", "2 hosts have role 'relay' (regulus, alcyone)", "exactly one host per role"]),
    ('[hosts.extra]\naddress = "10.77.0.99"\n', ["hosts.extra.role", "expected one of relay, final"]),
    ('[hosts.Bad_Name]\nrole = "relay"\n', ["hosts.Bad_Name", "invalid host name"]),
    ('subnet = "10.77.0.0/16"\n', ["subnet", "/16", "expected a private IPv4 /24"]),
    ('subnet = "8.8.8.0/24"\n', ["subnet", "RFC 1918"]),
    ('subnet = "10.77.0.5/24"\n', ["subnet", "host bits"]),
    ('domain = "campus"\n', ["domain", "invalid domain name 'campus'"]),
    ('auth_policy = "strict"\n', ["auth_policy", "'strict'", "observe, enforce"]),
    ('dmarc_policy = "drop"\n', ["dmarc_policy", "none, quarantine, reject"]),
    ('timezone = "Mars/Olympus"\n', ["timezone", "unknown time zone"]),
    ('max_message_size = -1\n', ["max_message_size", "positive integer"]),
    ('dkim_selector = "a.b"\n', ["dkim_selector", "invalid DNS label"]),
    ('[users.john]\nuid = 12\nhosts = ["regulus"]\n', ["users.john.uid", "1000 to 59999"]),
    ('[users.john]\nuid = 1001\nhosts = ["regulus"]\n[users.jane]\nuid = 1001\nhosts = ["regulus"]\n',
     ["users.jane.uid", "already the uid of john"]),
    ('[users.john]\nuid = 1001\nhosts = ["mars"]\n', ["users.john.hosts", "unknown host 'mars'"]),
    ('[users.root]\nuid = 1001\nhosts = ["regulus"]\n', ["users.root", "system account"]),
    ('[users.john]\nuid = 1001\nhosts = []\n', ["users.john.hosts", "list of host names"]),
    ('[foreign_domains."campus.test"]\n', ["foreign_domains.campus.test", "inside the lab domain"]),
    ('[foreign_domains."acme.test"]\nspf = "-all"\n', ["foreign_domains.acme.test.spf", "v=spf1"]),
    ('[blocklist]\nlisted = ["8.8.8.8"]\n', ["blocklist.listed", "8.8.8.8", "real address"]),
    ('hosts = "regulus"\n', ["hosts", "expected a table"]),
    ('domain = \n', ["lab.toml", "invalid TOML"]),
]


@pytest.mark.parametrize(("text", "fragments"), BAD_FILES)
def test_bad_file_names_field(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write_lab(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_lab(path)

    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


def test_missing_file_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lab file .*nope.toml not found"):
        load_lab(tmp_path / "nope.toml")


def test_bad_lab_name_error() -> None:
    with pytest.raises(ConfigError, match="invalid lab name 'Lab_1'"):
        load_lab(None, name="Lab_1")


def test_env_error_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABENV_AUTH", "strict")

    with pytest.raises(ConfigError, match="environment variable LABENV_AUTH: auth_policy"):
        load_lab(None)


def test_override_unknown_key_error() -> None:
    with pytest.raises(ConfigError, match="command line: subnett: unknown key; did you mean 'subnet'"):
        load_lab(None, overrides={"subnett": "10.80.0.0/24"})


def test_docs_example_loads(tmp_path: Path) -> None:
    docs = Path(__file__).parents[2] / "docs" / "lab-file.md"
    example = docs.read_text(encoding="utf-8").split("```toml\n")[1].split("```")[0]

    lab = load_lab(write_lab(tmp_path, example))

    assert lab.domain == "csustan.test"
    assert str(lab.host("alcyone").address) == "192.168.44.165"
    assert lab.auth_policy == "enforce"
    assert [user.name for user in lab.users] == ["john", "mmouse"]
    assert [domain.name for domain in lab.foreign_domains] == ["disney.test"]
    assert [str(address) for address in lab.blocklisted] == ["127.0.0.2", "192.168.44.10"]


def test_default_lab_moves_when_taken(caplog: pytest.LogCaptureFixture) -> None:
    lab = load_lab(None, taken_subnets=[ipaddress.IPv4Network("10.77.0.0/16")])

    assert lab.subnet.subnet_of(ipaddress.IPv4Network("10.78.0.0/16"))
    assert str(lab.host("ns").address) == str(lab.subnet.network_address + 53)
    assert "10.77.0.0/24 is used by another Docker network" in caplog.text
