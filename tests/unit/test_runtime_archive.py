"""Tests of the tar archive that carries rendered files into a container."""

import io
import ipaddress
import tarfile

import pytest

from labenv.errors import ConfigError
from labenv.lab.model import Host, Lab, User
from labenv.lab.render import FileSpec
from labenv.runtime.archive import owner_ids, pack_files



def _lab() -> Lab:
    subnet = ipaddress.IPv4Network("10.99.0.0/24")
    hosts = (Host("alcyone", "final", subnet[20], "campus.test"),)
    users = (User("john", 1001, ("alcyone",)),)
    return Lab("unit", "campus.test", subnet, hosts, users, "labenv-mta 0.1.0")


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {member.name: member for member in tar.getmembers()}


def test_pack_files_modes_and_owners():
    files = {
        "/etc/labenv/mta.toml": FileSpec(b"role = 'final'\n"),
        "/home/john/.ssh/authorized_keys": FileSpec(b"ssh-ed25519 AAAA\n", 0o600, "john"),
    }
    members = _members(pack_files(files, owner_ids(_lab())))

    config = members["etc/labenv/mta.toml"]
    assert config.mode == 0o644
    assert config.uid == 0
    assert config.size == len(b"role = 'final'\n")

    keys = members["home/john/.ssh/authorized_keys"]
    assert keys.mode == 0o600
    assert (keys.uid, keys.gid) == (1001, 1001)


def test_pack_files_user_home_dirs():
    files = {"/home/john/.ssh/authorized_keys": FileSpec(b"key\n", 0o600, "john")}
    members = _members(pack_files(files, owner_ids(_lab())))

    home = members["home/john"]
    ssh_dir = members["home/john/.ssh"]
    assert home.isdir()
    assert home.uid == 1001
    assert home.mode == 0o755
    assert ssh_dir.isdir()
    assert ssh_dir.uid == 1001
    assert ssh_dir.mode == 0o700
    # System directories are left to the image, so /etc keeps its mode.
    assert "etc" not in members
    assert "home" not in members


def test_pack_files_content_roundtrip():
    files = {"/etc/labenv/users.sh": FileSpec(b"#!/bin/sh\nuseradd john\n", 0o755)}
    data = pack_files(files, owner_ids(_lab()))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        extracted = tar.extractfile("etc/labenv/users.sh").read()
    assert extracted == b"#!/bin/sh\nuseradd john\n"


def test_pack_files_unknown_owner():
    files = {"/etc/spamassassin/local.cf": FileSpec(b"", owner="debian-spamd")}
    with pytest.raises(ConfigError, match="debian-spamd"):
        pack_files(files, owner_ids(_lab()))


def test_pack_files_relative_path():
    with pytest.raises(ConfigError, match="not absolute"):
        pack_files({"etc/hosts": FileSpec(b"")}, owner_ids(_lab()))
