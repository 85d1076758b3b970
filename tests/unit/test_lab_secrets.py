"""Tests of per-lab key creation, storage and reuse."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from labenv.errors import ConfigError
from labenv.lab.labfile import load_lab
from labenv.lab.secrets import load_or_create_secrets, state_dir_for


@pytest.fixture(scope="module")
def lab():
    return load_lab(None)


def test_secrets_persist_across_calls(tmp_path: Path, lab) -> None:
    first = load_or_create_secrets(tmp_path, lab)
    second = load_or_create_secrets(tmp_path, lab)

    assert first.user_key == second.user_key
    assert first.host_keys == second.host_keys
    assert first.dkim_keys == second.dkim_keys


def test_secrets_files_mode_0600(tmp_path: Path, lab) -> None:
    load_or_create_secrets(tmp_path, lab)

    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) == 2 + 2 * len(lab.hosts) + 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in [tmp_path / "ssh", tmp_path / "dkim"]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_secrets_key_types(tmp_path: Path, lab) -> None:
    secrets = load_or_create_secrets(tmp_path, lab)

    user_key = serialization.load_ssh_private_key(secrets.user_key.private_openssh, None)
    assert isinstance(user_key, ed25519.Ed25519PrivateKey)
    assert secrets.user_key.private_openssh.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert secrets.user_key.public_line.startswith("ssh-ed25519 ")
    assert secrets.user_key.public_line.endswith(" labenv@default")
    assert sorted(secrets.host_keys) == sorted(host.name for host in lab.hosts)

    dkim = secrets.dkim_keys["campus.test"]
    private = serialization.load_pem_private_key(dkim.private_pem, None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    assert dkim.private_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert dkim.record_name == "lab2026._domainkey.campus.test"
    public = serialization.load_der_public_key(base64.b64decode(dkim.public_base64))
    assert public.public_numbers() == private.public_key().public_numbers()
    assert secrets.dkim_keys["toontown.test"].public_base64 != dkim.public_base64


def test_secrets_known_hosts_lines(tmp_path: Path, lab) -> None:
    secrets = load_or_create_secrets(tmp_path, lab)

    lines = secrets.known_hosts(lab).splitlines()

    assert len(lines) == len(lab.hosts)
    names, key_type, key_data = lines[1].split(" ")
    assert names == "alcyone,alcyone.campus.test,10.77.0.20"
    assert key_type == "ssh-ed25519"
    assert secrets.host_keys["alcyone"].public_line.split()[1] == key_data


def test_secrets_corrupt_key_error(tmp_path: Path, lab) -> None:
    load_or_create_secrets(tmp_path, lab)
    (tmp_path / "ssh" / "id_ed25519").write_bytes(b"garbage")

    with pytest.raises(ConfigError, match="id_ed25519.*delete it and run labenv up"):
        load_or_create_secrets(tmp_path, lab)


def test_state_dir_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABENV_STATE_DIR", str(tmp_path))
    assert state_dir_for("second") == tmp_path / "second"

    monkeypatch.delenv("LABENV_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir_for("second") == tmp_path / "xdg" / "labenv" / "second"

    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir_for("default") == tmp_path / "home" / ".local" / "state" / "labenv" / "default"
