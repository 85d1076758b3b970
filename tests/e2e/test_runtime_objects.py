"""The Docker objects of a lab: network, containers, labels, files and removal.

These tests run containers that only sleep, so they check the runtime
without depending on the lab's daemons.
"""

from __future__ import annotations

import io
import ipaddress
import zlib

import pytest

from labenv.errors import ConfigError
from labenv.runtime import lifecycle
from labenv.runtime.engine import connect
from labenv.runtime.lifecycle import LabSource, start_hosts
from labenv.runtime.images import ensure_images, image_exists
from labenv.runtime.names import LABEL_HOST, LABEL_LAB, LABEL_VERSION
from labenv.runtime.volumes import host_volumes
from tests.e2e.conftest import PREFIX
from tests.e2e.runtime_fixtures import build_idle_image, idle_files, idle_lab

pytestmark = pytest.mark.docker

FIRST = f"{PREFIX}rt-first"
SECOND = f"{PREFIX}rt-second"
CLASH = f"{PREFIX}rt-clash"
# Two runs on one engine need different subnets as well as names. The second
# octet comes from the prefix, and a run without a prefix keeps 10.79.
OCTET = 80 + zlib.crc32(PREFIX.encode()) % 40 if PREFIX else 79


@pytest.fixture(scope="module")
def client():
    return connect()


@pytest.fixture(scope="module")
def image(client):
    return build_idle_image(client)


@pytest.fixture(scope="module")
def first_lab(client, image):
    lab = idle_lab(FIRST, f"10.{OCTET}.201.0/24")
    images = {host.role: image for host in lab.hosts}
    lifecycle.down(client, FIRST)
    containers = start_hosts(client, lab, LabSource(), images, idle_files(lab))
    yield lab, images, containers
    lifecycle.down(client, FIRST)


def _exec(container, command):
    result = container.exec_run(command)
    return result.exit_code, result.output.decode()


def test_network_internal_with_subnet(client, first_lab):
    lab, _, _ = first_lab
    network = client.networks.get(f"labenv-{FIRST}")
    assert network.attrs["Internal"] is True
    assert network.attrs["IPAM"]["Config"][0]["Subnet"] == str(lab.subnet)
    assert network.attrs["Labels"][LABEL_LAB] == FIRST


def test_every_joined_network_internal(client, first_lab):
    _, _, containers = first_lab
    for container in containers.values():
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        assert list(networks) == [f"labenv-{FIRST}"]
        for name in networks:
            assert client.networks.get(name).attrs["Internal"] is True, f"{container.name} joins {name}"


def test_containers_addresses_and_names(first_lab):
    lab, _, containers = first_lab
    for host in lab.hosts:
        container = containers[host.name]
        container.reload()
        endpoint = container.attrs["NetworkSettings"]["Networks"][f"labenv-{FIRST}"]
        assert container.name == f"labenv-{FIRST}-{host.name}"
        assert endpoint["IPAddress"] == str(host.address)
        assert container.labels[LABEL_LAB] == FIRST
        assert container.labels[LABEL_HOST] == host.name
        assert LABEL_VERSION in container.labels
        assert _exec(container, ["hostname"]) == (0, host.fqdn + "\n")


def test_rendered_files_in_place(first_lab):
    lab, _, containers = first_lab
    alcyone = containers["alcyone"]
    dns = str(lab.host_with_role("dns").address)

    code, resolv = _exec(alcyone, ["cat", "/etc/resolv.conf"])
    assert code == 0
    assert resolv.splitlines()[0] == f"nameserver {dns}"

    code, listing = _exec(alcyone, ["stat", "-c", "%u %a", "/home/john/.ssh/authorized_keys", "/home/john/.ssh"])
    assert code == 0
    assert listing.split("\n")[:2] == ["1001 600", "1001 700"]


def test_start_again_keeps_containers(client, first_lab):
    lab, images, containers = first_lab
    again = start_hosts(client, lab, LabSource(), images, idle_files(lab))
    for name, container in containers.items():
        assert again[name].id == container.id


def test_changed_files_recreate_container(client, first_lab):
    lab, images, containers = first_lab
    changed = start_hosts(client, lab, LabSource(), images, idle_files(lab, b"two"))
    for name, container in containers.items():
        assert changed[name].id != container.id
    assert _exec(changed["ns"], ["cat", "/etc/labenv/marker"]) == (0, "two\n")
    containers.update(changed)


def test_overlapping_subnet_rejected(client, first_lab, image):
    clash = idle_lab(CLASH, f"10.{OCTET}.201.0/25")
    images = {host.role: image for host in clash.hosts}
    with pytest.raises(ConfigError, match=f"overlaps Docker network labenv-{FIRST}"):
        start_hosts(client, clash, LabSource(), images, idle_files(clash))
    assert client.networks.list(filters={"label": [f"{LABEL_LAB}={CLASH}"]}) == []


def test_down_removes_only_its_lab(client, first_lab, image):
    second = idle_lab(SECOND, f"10.{OCTET}.202.0/24")
    images = {host.role: image for host in second.hosts}
    containers = start_hosts(client, second, LabSource(), images, idle_files(second))
    try:
        # The two labs share nothing: no address of one is on the other's network.
        first_network = ipaddress.IPv4Network(first_lab[0].subnet)
        for host in second.hosts:
            assert host.address not in first_network

        volumes = [name for host in second.hosts for name in host_volumes(SECOND, host)]
        assert volumes, "the idle lab has no host with volumes"
        removed = lifecycle.down(client, SECOND)
        assert sorted(removed) == sorted([c.name for c in containers.values()] + [f"labenv-{SECOND}", *volumes])
        assert client.volumes.list(filters={"label": [f"{LABEL_LAB}={SECOND}"]}) == []
        assert client.containers.list(all=True, filters={"label": [f"{LABEL_LAB}={SECOND}"]}) == []
        assert client.networks.list(filters={"label": [f"{LABEL_LAB}={SECOND}"]}) == []
        remaining = client.containers.list(all=True, filters={"label": [f"{LABEL_LAB}={FIRST}"]})
        assert len(remaining) == len(first_lab[0].hosts)
        assert lifecycle.down(client, SECOND) == []
    finally:
        lifecycle.down(client, SECOND)


def _tagged_image(client, base: str, tag: str) -> str:
    """Build a one-layer image labelled like a labenv role image and return its reference."""
    reference = f"labenv/{PREFIX}prune-test:{tag}"
    dockerfile = f"FROM {base}\nLABEL io.labenv.role=prune-test io.labenv.test={tag}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=reference, rm=True, network_mode="none")
    return reference


def test_prune_images_keeps_used(client, image):
    current = ensure_images(client)
    used = _tagged_image(client, image, "used")
    user = client.containers.create(used, name=f"labenv-{PREFIX}prune-test")
    unused = _tagged_image(client, image, "unused")
    try:
        removed = lifecycle.prune_images(client, current)
        assert used not in removed
        # Another run's `up` on this engine may have pruned the tag first, so
        # the check is that it is gone, not that this call removed it.
        assert not image_exists(client, unused)
        assert image_exists(client, used)
        for reference in current.values():
            assert image_exists(client, reference), reference
    finally:
        user.remove(force=True)
        client.images.remove(used, force=True)
