"""Helpers for runtime tests that need containers but not the lab's daemons."""

from __future__ import annotations

import io
import ipaddress
import os

import docker

from labenv.lab.model import Host, Lab, User
from labenv.lab.render import FileSpec

IDLE_IMAGE = "labenv-test/idle:latest"



def build_idle_image(client: docker.DockerClient) -> str:
    """Build an image from the lab base image that only sleeps, so containers stay up without daemons."""
    from labenv.runtime.images import base_image_reference

    base = os.environ.get("LABENV_TEST_BASE_IMAGE") or base_image_reference()
    dockerfile = f'FROM {base}\nENTRYPOINT []\nCMD ["sleep", "infinity"]\n'
    client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=IDLE_IMAGE,
        rm=True,
        network_mode="none",
        labels={"io.labenv.test": "idle"},
    )
    return IDLE_IMAGE


def idle_lab(name: str, subnet: str) -> Lab:
    network = ipaddress.IPv4Network(subnet)
    numbers = {"relay": 10, "final": 20, "syslog": 30, "spamd": 40, "dns": 53}
    names = {"relay": "regulus", "final": "alcyone", "syslog": "loghost", "spamd": "spamd", "dns": "ns"}
    hosts = tuple(Host(names[role], role, network[number], "campus.test") for role, number in numbers.items())
    users = (User("john", 1001, ("regulus", "alcyone")),)
    return Lab(name, "campus.test", network, hosts, users, "labenv-mta test")


def idle_files(lab: Lab, marker: bytes = b"one") -> dict[str, dict[str, FileSpec]]:
    dns = str(lab.host_with_role("dns").address).encode()
    files = {}
    for host in lab.hosts:
        files[host.name] = {
            "/etc/resolv.conf": FileSpec(b"nameserver " + dns + b"\nsearch campus.test\n"),
            "/etc/labenv/marker": FileSpec(marker + b"\n"),
            "/home/john/.ssh/authorized_keys": FileSpec(b"ssh-ed25519 AAAA test\n", 0o600, "john"),
        }
    return files
