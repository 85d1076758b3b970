"""The MTA configuration loader."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from labenv.errors import ConfigError
from labenv.mta.config import HostPort, build_config, load_config

EXAMPLE = """
role = "final"
hostname = "alcyone.campus.test"
listen = "0.0.0.0:25"
domains = ["Alcyone.Campus.Test"]
users = ["john"]
spool = "/var/spool/labenv-mta"
mail_dir = "/var/mail"
resolver = "10.77.0.53:53"
spamd = "spamd.campus.test:783"
syslog = "/dev/log"
syslog_tag = "labenv-mta"
relay_networks = ["127.0.0.0/8"]
product = "labenv-mta 0.1.0"
max_message_size = 10485760
"""


def test_example_file_loads(tmp_path):
    path = tmp_path / "mta.toml"
    path.write_text(EXAMPLE)
    config = load_config(path, {})
    assert config.listen == HostPort("0.0.0.0", 25)
    assert config.domains == ("alcyone.campus.test",)
    assert config.resolver == HostPort("10.77.0.53", 53)
    assert config.spamd == HostPort("spamd.campus.test", 783)
    assert config.relay_networks == (ipaddress.ip_network("127.0.0.0/8"),)
    assert config.mail_dir == Path("/var/mail")


def test_command_line_overrides_file(tmp_path):
    path = tmp_path / "mta.toml"
    path.write_text(EXAMPLE)
    config = load_config(path, {"listen": "127.0.0.1:2525", "role": "relay", "hostname": None})
    assert config.listen == HostPort("127.0.0.1", 2525)
    assert config.role == "relay"
    assert config.hostname == "alcyone.campus.test"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"role": "hub"}, "role"),
        ({"listen": "nowhere"}, "listen"),
        ({"resolver": "10.0.0.1:99999"}, "resolver"),
        ({"relay_networks": ["10.0.0.0/33"]}, "relay_networks"),
        ({"max_message_size": "big"}, "max_message_size"),
        ({"max_message_size": -1}, "max_message_size"),
        ({"expn": "yes"}, "expn"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_setting_named(settings, named):
    with pytest.raises(ConfigError) as caught:
        build_config(settings)
    assert named in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml", {})
    assert "absent.toml" in str(caught.value)


def test_invalid_toml(tmp_path):
    path = tmp_path / "mta.toml"
    path.write_text("role = ")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "invalid TOML" in str(caught.value)


def test_hosts_file_empty_means_none():
    assert build_config({"hosts_file": ""}).hosts_file is None
    assert build_config({"hosts_file": "/etc/hosts.lab"}).hosts_file == Path("/etc/hosts.lab")
    assert build_config({}).hosts_file == Path("/etc/hosts")


def test_generated_lab_file_loads(tmp_path):
    from labenv.lab.labfile import load_lab
    from labenv.lab.mtaconf import render_mta_toml

    lab = load_lab(None)
    for role in ("relay", "final"):
        path = tmp_path / f"{role}.toml"
        path.write_text(render_mta_toml(lab, lab.host_with_role(role)))
        config = load_config(path, {})
        assert config.role == role
        assert config.auth == {"policy": lab.auth_policy}
        assert bool(config.dkim) == (role == "relay")
