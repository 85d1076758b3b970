"""Status of a running lab as Docker reports it, and its model reloaded from labels."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
from docker.models.containers import Container

from labenv.errors import ConfigError
from labenv.lab.labfile import load_lab
from labenv.lab.model import Host, Lab
from labenv.runtime.containers import lab_containers
from labenv.runtime.names import (
    LABEL_DOMAIN,
    LABEL_FQDN,
    LABEL_HOST,
    LABEL_LAB,
    LABEL_LAB_FILE,
    LABEL_OVERRIDES,
    LABEL_ROLE,
    lab_command,
    network_name,
)
from labenv.runtime.network import find_network
from labenv.runtime.readiness import failing_probes


@dataclass(frozen=True)
class HostStatus:
    """One host of a running lab as Docker reports it."""

    name: str
    fqdn: str
    role: str
    address: str
    container: str
    state: str
    # "ready", "not ready: <failing probes>", or "exited (code N)".
    health: str
    published_ports: list[str]


@dataclass(frozen=True)
class LabStatus:
    """A lab as Docker reports it: its network and every host container."""

    name: str
    domain: str
    subnet: str
    network: str
    hosts: list[HostStatus]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def lab_names(client: docker.DockerClient) -> list[str]:
    """Return the names of every lab that has at least one container or network in Docker."""
    names = {container.labels[LABEL_LAB] for container in lab_containers(client, None)}
    for network in client.networks.list(filters={"label": [LABEL_LAB]}):
        names.add(network.attrs.get("Labels", {})[LABEL_LAB])
    return sorted(names)


def lab_status(client: docker.DockerClient, lab_name: str, *, probe: bool = True) -> LabStatus | None:
    """Return the status of ``lab_name``, or None when Docker has nothing of it.

    With ``probe`` each running host's readiness probes run once, which
    takes about a second for the whole lab.
    """
    containers = lab_containers(client, lab_name)
    network = find_network(client, lab_name)
    if not containers and network is None:
        return None
    subnet = ""
    if network is not None:
        configs = (network.attrs.get("IPAM") or {}).get("Config") or []
        subnet = configs[0].get("Subnet", "") if configs else ""
    hosts = [_host_status(container, lab_name, probe) for container in containers]
    hosts.sort(key=lambda status: ipaddress.IPv4Address(status.address or "0.0.0.0"))
    domain = containers[0].labels.get(LABEL_DOMAIN, "") if containers else ""
    return LabStatus(lab_name, domain, subnet, network_name(lab_name), hosts)


def _host_status(container: Container, lab_name: str, probe: bool) -> HostStatus:
    labels = container.labels
    address = container_address(container, lab_name)
    state = container.status
    if state == "running" and probe and address:
        host = Host(labels[LABEL_HOST], labels[LABEL_ROLE], ipaddress.IPv4Address(address), labels[LABEL_DOMAIN])
        failing = failing_probes(host, container)
        health = "ready" if not failing else "not ready: " + ", ".join(failing)
    elif state == "running":
        health = "running"
    else:
        health = f"{state} (exit code {container.attrs['State'].get('ExitCode')})"
    return HostStatus(
        name=labels.get(LABEL_HOST, ""),
        fqdn=labels.get(LABEL_FQDN, ""),
        role=labels.get(LABEL_ROLE, ""),
        address=address,
        container=container.name,
        state=state,
        health=health,
        published_ports=_published_ports(container),
    )


def container_address(container: Container, lab_name: str) -> str:
    """Return the container's address on the lab network, or "" when it has none."""
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    endpoint = networks.get(network_name(lab_name)) or {}
    configured = (endpoint.get("IPAMConfig") or {}).get("IPv4Address", "")
    return endpoint.get("IPAddress") or configured


def _published_ports(container: Container) -> list[str]:
    ports = []
    for container_port, bindings in sorted((container.ports or {}).items()):
        for binding in bindings or []:
            ports.append(f"{binding.get('HostIp')}:{binding.get('HostPort')}->{container_port}")
    return ports


def load_running_lab(client: docker.DockerClient, lab_name: str) -> Lab:
    """Reload the model of a running lab from the lab file and overrides stored on its network.

    Raises ConfigError when the lab does not run, naming the command that starts it.
    """
    network = find_network(client, lab_name)
    if network is None:
        raise ConfigError(f"lab {lab_name} is not running; start it with '{lab_command('up', lab_name)}'")
    labels = network.attrs.get("Labels") or {}
    lab_file = Path(labels[LABEL_LAB_FILE]) if labels.get(LABEL_LAB_FILE) else None
    overrides = json.loads(labels.get(LABEL_OVERRIDES) or "{}")
    return load_lab(lab_file, name=lab_name, overrides=overrides)
