"""Tests of the files rendered for each lab host, read back with tomllib, json and parsers."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from labenv.lab.labfile import load_lab
from labenv.lab.render import FileSpec, render_host_files
from labenv.lab.secrets import load_or_create_secrets
from labenv.mta.config import build_config


@pytest.fixture(scope="module")
def lab():
    return load_lab(None)


@pytest.fixture(scope="module")
def secrets(lab, tmp_path_factory):
    return load_or_create_secrets(tmp_path_factory.mktemp("state"), lab)


@pytest.fixture(scope="module")
def files(lab, secrets) -> dict[str, dict[str, FileSpec]]:
    return {host.name: render_host_files(lab, host, secrets) for host in lab.hosts}


def text(files, host: str, path: str) -> str:
    return files[host][path].content.decode("utf-8")


def config_lines(content: str) -> list[str]:
    return [line.strip() for line in content.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_render_paths_per_role(files) -> None:
    common = {"/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/etc/labenv/lab.json", "/etc/rsyslog.conf"}
    for host_files in files.values():
        assert common <= set(host_files)

    assert "/etc/labenv/dkim/campus.test.key" in files["regulus"]
    assert "/etc/labenv/dkim/campus.test.key" not in files["alcyone"]
    assert "/etc/labenv/mta.toml" not in files["spamd"]
    assert "/etc/spamassassin/local.cf" in files["spamd"]
    assert "/etc/nsd/zones/campus.test.zone" in files["ns"]
    assert set(files["loghost"]) == common


def test_render_resolv_conf(files) -> None:
    for host in files:
        assert config_lines(text(files, host, "/etc/resolv.conf")) == [
            "nameserver 10.77.0.53",
            "search campus.test",
            "options timeout:1 attempts:2",
        ]


def test_render_etc_hosts(files) -> None:
    lines = config_lines(text(files, "alcyone", "/etc/hosts"))

    assert "127.0.0.1\tlocalhost" in lines
    assert "10.77.0.20\talcyone.campus.test alcyone" in lines
    assert not any("regulus" in line for line in lines)
    assert text(files, "alcyone", "/etc/hostname") == "alcyone\n"


def test_render_lab_json(files) -> None:
    data = json.loads(text(files, "ns", "/etc/labenv/lab.json"))

    assert data["subnet"] == "10.77.0.0/24"
    assert {host["name"]: host["address"] for host in data["hosts"]}["alcyone"] == "10.77.0.20"
    assert data["users"][0] == {"name": "john", "uid": 1001, "gid": 1001, "home": "/home/john",
                                "hosts": ["regulus", "alcyone"]}


def test_render_relay_mta_toml(files) -> None:
    settings = tomllib.loads(text(files, "regulus", "/etc/labenv/mta.toml"))

    assert settings["role"] == "relay"
    assert settings["hostname"] == "regulus.campus.test"
    assert settings["listen"] == "127.0.0.1:25"
    assert settings["relay_networks"] == ["127.0.0.0/8"]
    assert settings["resolver"] == "10.77.0.53:53"
    assert settings["users"] == ["john", "jane"]
    assert settings["syslog"] == "/dev/log"
    assert settings["product"] == "labenv-mta 0.1.0"
    assert "spamd" not in settings
    assert settings["auth"] == {"policy": "observe"}
    assert settings["dkim"] == {
        "domain": "campus.test",
        "selector": "lab2026",
        "key_file": "/etc/labenv/dkim/campus.test.key",
    }


def test_render_final_mta_toml(files) -> None:
    settings = tomllib.loads(text(files, "alcyone", "/etc/labenv/mta.toml"))

    assert settings["role"] == "final"
    assert settings["listen"] == "0.0.0.0:25"
    assert settings["domains"] == ["alcyone.campus.test", "campus.test"]
    assert settings["spamd"] == "10.77.0.40:783"
    assert settings["relay_networks"] == []
    assert "dkim" not in settings


def test_render_mta_toml_loads_in_mta(files) -> None:
    for host in ("regulus", "alcyone"):
        settings = tomllib.loads(text(files, host, "/etc/labenv/mta.toml"))
        top_level = {key: value for key, value in settings.items() if not isinstance(value, dict)}

        config = build_config(top_level)

        assert config.hostname == f"{host}.campus.test"
        assert str(config.resolver) == "10.77.0.53:53"


def test_render_enforce_policy(tmp_path: Path, secrets) -> None:
    lab = load_lab(None, overrides={"auth_policy": "enforce"})

    rendered = render_host_files(lab, lab.host("alcyone"), secrets)

    assert tomllib.loads(rendered["/etc/labenv/mta.toml"].content.decode())["auth"] == {"policy": "enforce"}


def test_render_dkim_key_file(files, secrets) -> None:
    spec = files["regulus"]["/etc/labenv/dkim/campus.test.key"]

    assert spec.mode == 0o600
    assert spec.owner == "root"
    key = serialization.load_pem_private_key(spec.content, None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    zone = text(files, "ns", "/etc/nsd/zones/campus.test.zone")
    published = "".join(re.findall(r'"([^"]*)"', zone.split("lab2026._domainkey")[1].splitlines()[0]))
    assert published == "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def test_render_ssh_files(files, secrets) -> None:
    sshd = config_lines(text(files, "alcyone", "/etc/ssh/sshd_config.d/labenv.conf"))
    host_key = files["alcyone"]["/etc/ssh/ssh_host_ed25519_key"]
    authorized = files["alcyone"]["/home/jane/.ssh/authorized_keys"]

    assert "PasswordAuthentication no" in sshd
    assert "PermitRootLogin no" in sshd
    assert "AllowUsers john jane" in sshd
    assert host_key.mode == 0o600
    assert host_key.content == secrets.host_keys["alcyone"].private_openssh
    assert text(files, "alcyone", "/etc/ssh/ssh_host_ed25519_key.pub") == secrets.host_keys["alcyone"].public_line + "\n"
    assert authorized.owner == "jane"
    assert authorized.mode == 0o600
    assert authorized.content.decode() == secrets.user_key.public_line + "\n"


def test_render_users_script(files) -> None:
    script = text(files, "alcyone", "/etc/labenv/users.sh")

    assert files["alcyone"]["/etc/labenv/users.sh"].mode == 0o755
    assert script.startswith("#!/bin/sh\n")
    assert "add_user john 1001 /home/john" in script
    assert "add_user jane 1002 /home/jane" in script
    assert subprocess.run(["sh", "-n"], input=script.encode(), check=False).returncode == 0


def test_render_spamd_users(files) -> None:
    script = text(files, "spamd", "/etc/labenv/users.sh")

    assert "add_user john 1001 /home/john" in script
    assert "add_user jane 1002 /home/jane" in script


def test_render_spamd_local_cf(files) -> None:
    lines = config_lines(text(files, "spamd", "/etc/spamassassin/local.cf"))

    assert "trusted_networks 10.77.0.20" in lines
    assert "internal_networks 10.77.0.20" in lines
    assert "dns_server 10.77.0.53" in lines
    assert "dns_available yes" in lines
    assert "skip_rbl_checks 0" in lines
    assert "askdns RCVD_IN_LABBL _LASTEXTERNALREVIP_.bl.campus.test. A 127.0.0.2" in lines
    assert "score RCVD_IN_LABBL 3.0" in lines
    assert "use_bayes 0" in lines
    assert not any("10.77.0.10" in line for line in lines)


def test_render_spamd_args(files) -> None:
    arguments = text(files, "spamd", "/etc/labenv/spamd.args").split()

    assert "--listen=0.0.0.0:783" in arguments
    assert "--allowed-ips=10.77.0.0/24,127.0.0.1" in arguments
    assert "--syslog=mail" in arguments
    assert not any(argument.startswith(("-u", "--username")) for argument in arguments)


def test_render_rsyslog_client(files) -> None:
    conf = text(files, "alcyone", "/etc/rsyslog.conf")
    lines = config_lines(conf)

    assert 'localHostname="alcyone"' in conf
    assert 'template="RSYSLOG_TraditionalFileFormat"' in conf
    assert any(line.endswith("/var/log/syslog") for line in lines)
    assert any(line.startswith("mail.*") and line.endswith("/var/log/mail.log") for line in lines)
    forward = re.search(r'action\(type="omfwd"([^)]*)\)', conf, re.DOTALL).group(1)
    assert 'target="10.77.0.30"' in forward
    assert 'port="514"' in forward
    assert 'protocol="tcp"' in forward
    assert 'queue.type="LinkedList"' in forward
    assert 'action.resumeRetryCount="-1"' in forward
    assert "queue.filename" not in forward


def test_render_rsyslog_loghost(files) -> None:
    conf = text(files, "loghost", "/etc/rsyslog.conf")

    assert 'input(type="imudp" port="514")' in conf
    assert 'input(type="imtcp" port="514")' in conf
    assert 'template="RSYSLOG_TraditionalFileFormat"' in conf
    assert "omfwd" not in conf
    assert any(line.startswith("mail.*") for line in config_lines(conf))


def test_render_ns_files(files) -> None:
    conf = text(files, "ns", "/etc/nsd/nsd.conf")

    assert "ip-address: 10.77.0.53" in conf
    assert "name: bl.campus.test" in conf
    assert "10 IN PTR regulus.campus.test." in text(files, "ns", "/etc/nsd/zones/0.77.10.in-addr.arpa.zone")


def test_render_renamed_lab(tmp_path: Path) -> None:
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text(
        'domain = "csustan.test"\nsubnet = "10.90.5.0/24"\n'
        '[hosts.mailhub]\nrole = "relay"\n'
        '[users.mmouse]\nuid = 1003\nhosts = ["mailhub", "alcyone"]\n',
        encoding="utf-8",
    )
    lab = load_lab(lab_file)
    secrets = load_or_create_secrets(tmp_path / "state", lab)

    relay_files = render_host_files(lab, lab.host("mailhub"), secrets)
    spamd_files = render_host_files(lab, lab.host("spamd"), secrets)

    settings = tomllib.loads(relay_files["/etc/labenv/mta.toml"].content.decode())
    assert settings["hostname"] == "mailhub.csustan.test"
    assert settings["users"] == ["mmouse"]
    assert settings["dkim"]["key_file"] == "/etc/labenv/dkim/csustan.test.key"
    assert "/home/mmouse/.ssh/authorized_keys" in relay_files
    assert "add_user mmouse 1003 /home/mmouse" in spamd_files["/etc/labenv/users.sh"].content.decode()
    assert "_LASTEXTERNALREVIP_.bl.csustan.test. A" in spamd_files["/etc/spamassassin/local.cf"].content.decode()
