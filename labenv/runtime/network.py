"""The lab network: one internal Docker bridge network per lab."""

from __future__ import annotations

import ipaddress
import logging

import docker
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from labenv.errors import ConfigError
from labenv.lab.model import Lab
from labenv.lab.subnets import check_overlap
from labenv.runtime.engine import docker_errors
from labenv.runtime.names import lab_command, lab_filter, lab_labels, network_name

log = logging.getLogger(__name__)


def docker_subnets(client: docker.DockerClient) -> dict[str, ipaddress.IPv4Network]:
    """Return the IPv4 subnets of every Docker network, keyed by network name."""
    subnets: dict[str, ipaddress.IPv4Network] = {}
    with docker_errors("listing Docker networks"):
        networks = client.networks.list(greedy=True)
    for network in networks:
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            if not config.get("Subnet"):
                continue
            subnet = ipaddress.ip_network(config["Subnet"], strict=False)
            if isinstance(subnet, ipaddress.IPv4Network):
                subnets[network.name] = subnet
    return subnets


def foreign_subnets(client: docker.DockerClient, lab_name: str) -> dict[str, ipaddress.IPv4Network]:
    """Return the subnets of every Docker network except this lab's own."""
    own = network_name(lab_name)
    return {name: subnet for name, subnet in docker_subnets(client).items() if name != own}


def find_network(client: docker.DockerClient, lab_name: str) -> Network | None:
    """Return the lab's network, found by its labels, or None."""
    with docker_errors(f"looking up the network of lab {lab_name!r}"):
        networks = client.networks.list(filters=lab_filter(lab_name))
    return networks[0] if networks else None


def ensure_network(client: docker.DockerClient, lab: Lab, extra_labels: dict[str, str]) -> Network:
    """Return the lab's network, creating it when missing.

    The network is internal, so Docker gives it no route out and publishes
    no ports into it: the lab cannot reach anything outside itself.
    """
    existing = find_network(client, lab.name)
    if existing is not None:
        _check_existing(existing, lab)
        return existing

    # Docker refuses an overlapping pool with a terse message; the lab
    # helper's check names the other network and the fix.
    check_overlap(lab.subnet, foreign_subnets(client, lab.name))
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(lab.subnet), gateway=str(lab.gateway))])
    labels = {**lab_labels(lab.name), **extra_labels}
    with docker_errors(f"creating network {network_name(lab.name)} ({lab.subnet})"):
        network = client.networks.create(
            network_name(lab.name), driver="bridge", internal=True, ipam=ipam, labels=labels
        )
    log.info("created network %s with subnet %s", network.name, lab.subnet)
    return network


def _check_existing(network: Network, lab: Lab) -> None:
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    subnets = {config.get("Subnet") for config in configs}
    if str(lab.subnet) not in subnets:
        raise ConfigError(
            f"lab {lab.name} runs on {', '.join(sorted(s for s in subnets if s))}, "
            f"not {lab.subnet}; run '{lab_command('down', lab.name)}' first to change its subnet"
        )
