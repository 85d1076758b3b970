"""Bringing a lab up and taking it down: the orchestration behind `labenv up` and `labenv down`."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from labenv.errors import ConfigError, DockerError
from labenv.lab.labfile import ENVIRONMENT_KEYS, load_lab, read_lab_file
from labenv.lab.model import Host, Lab
from labenv.lab.render import render_host_files
from labenv.lab.secrets import load_or_create_secrets, state_dir_for
from labenv.runtime.archive import FileLike
from labenv.runtime.containers import (
    LABEL_CONFIG_HASH,
    config_hash,
    create_host_container,
    find_container,
    lab_containers,
    remove_container,
    start_host_container,
)
from labenv.runtime.engine import docker_errors
from labenv.runtime.images import base_image_reference, ensure_images, remove_superseded_images
from labenv.lab.subnets import check_overlap
from labenv.runtime.names import LABEL_LAB_FILE, LABEL_OVERRIDES, lab_command, lab_filter
from labenv.runtime.network import ensure_network, find_network, foreign_subnets
from labenv.runtime.readiness import wait_ready
from labenv.runtime.volumes import host_volumes

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

DEFAULT_TIMEOUT = 120.0

# Start order: DNS first because every host resolves through it, the log
# host next so the first log lines of the others reach it, the receiving
# side before the sending side.
START_ORDER = ("dns", "syslog", "spamd", "final", "relay")


@dataclass(frozen=True)
class LabSource:
    """The lab file and overrides a lab was loaded from, stored on its network so later commands can reload it."""

    lab_file: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        labels = {LABEL_OVERRIDES: json.dumps(self.overrides, sort_keys=True)}
        if self.lab_file is not None:
            labels[LABEL_LAB_FILE] = str(self.lab_file.resolve())
        return labels


def load_lab_for_up(
    client: docker.DockerClient,
    name: str,
    lab_file: Path | None,
    overrides: Mapping[str, str],
) -> tuple[Lab, LabSource]:
    """Load and check the lab that `up` starts, before anything is built.

    The lab file and overrides are validated first. A lab that already runs
    keeps its subnet unless a layer sets one, and a set subnet that differs
    from the running one raises ConfigError. A new lab's subnet must overlap
    no other Docker network. The subnet chosen is stored in the returned
    source, so later commands reload exactly this lab.
    """
    used_subnets = foreign_subnets(client, name)
    lab = load_lab(lab_file, name=name, overrides=overrides, taken_subnets=list(used_subnets.values()))
    running_subnet = _network_subnet(find_network(client, name))
    if running_subnet is None:
        check_overlap(lab.subnet, used_subnets)
    elif _sets_subnet(lab_file, overrides):
        if lab.subnet != running_subnet:
            raise ConfigError(
                f"lab {name} runs on {running_subnet}, not {lab.subnet}; "
                f"run '{lab_command('down', name)}' first to change its subnet"
            )
    else:
        overrides = {**overrides, "subnet": str(running_subnet)}
        lab = load_lab(lab_file, name=name, overrides=overrides)
    return lab, LabSource(lab_file, {**overrides, "subnet": str(lab.subnet)})


def _network_subnet(network: Network | None) -> ipaddress.IPv4Network | None:
    if network is None:
        return None
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    if not configs or not configs[0].get("Subnet"):
        return None
    return ipaddress.IPv4Network(configs[0]["Subnet"])


def _sets_subnet(lab_file: Path | None, overrides: Mapping[str, str]) -> bool:
    """Return whether the command line, the environment or the lab file sets the subnet."""
    if "subnet" in overrides:
        return True
    if any(os.environ.get(variable) for variable, key in ENVIRONMENT_KEYS.items() if key == "subnet"):
        return True
    return lab_file is not None and "subnet" in read_lab_file(lab_file)


def up(
    client: docker.DockerClient,
    lab: Lab,
    source: LabSource,
    *,
    offline: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    images: Mapping[str, str] | None = None,
) -> None:
    """Build missing images, create and start every host of ``lab``, and wait until all are ready.

    ``images`` (role to image reference) skips the image check, for callers
    that have just run ensure_images. Running `up` again is harmless: hosts
    that run with the same image and files are kept, stopped ones are
    started, stale ones are recreated.
    """
    say = progress or (lambda message: None)

    # Phase 1: images and secrets. Both are cached, so a warm `up` spends
    # little time here unless the project's code changed since the last build.
    if images is None:
        say("checking images")
        images = ensure_images(client, offline=offline, progress=progress)
        tag_latest(client, images)
        prune_images(client, images)
    secrets = load_or_create_secrets(state_dir_for(lab.name), lab)

    # Phase 2: the network, then one container per host with its files.
    files = {host.name: render_host_files(lab, host, secrets) for host in lab.hosts}
    containers = start_hosts(client, lab, source, images, files, progress)

    # Phase 3: readiness, with one deadline for the whole lab.
    say("waiting for the hosts to be ready")
    wait_ready(lab, containers, timeout, progress)
    log.info("lab %s is up on %s", lab.name, lab.subnet)


def tag_latest(client: docker.DockerClient, images: Mapping[str, str]) -> None:
    """Tag each image also as <repository>:latest, the name the compose file uses."""
    for reference in images.values():
        repository = reference.rsplit(":", 1)[0]
        with docker_errors(f"tagging {reference} as {repository}:latest"):
            client.images.get(reference).tag(repository, "latest")


def prune_images(client: docker.DockerClient, images: Mapping[str, str]) -> list[str]:
    """Remove the superseded labenv image tags and return them.

    Kept: the tags in ``images``, the current base tag and every tag that a
    container on this engine, running or not, was created from.

    NOTE: a tag that another labenv process built from a different source
    tree, and has not yet created containers from, counts as superseded.
    """
    keep = set(images.values()) | {base_image_reference()}
    # The low-level list returns each container's image in one call. The
    # high-level one inspects every container and fails on one removed meanwhile.
    with docker_errors("listing containers to find the images in use"):
        containers = client.api.containers(all=True)
    keep |= {container["Image"] for container in containers}
    with docker_errors("removing superseded labenv images"):
        removed = remove_superseded_images(client, keep)
    for reference in removed:
        log.info("removed superseded image %s", reference)
    return removed


def start_hosts(
    client: docker.DockerClient,
    lab: Lab,
    source: LabSource,
    images: Mapping[str, str],
    files: Mapping[str, Mapping[str, FileLike]],
    progress: Progress | None = None,
) -> dict[str, Container]:
    """Create the lab network and start one container per host, without waiting for readiness.

    ``images`` maps a role to an image reference; ``files`` maps a host name
    to its rendered files.
    """
    ensure_network(client, lab, source.labels())
    containers = {}
    for host in _in_start_order(lab.hosts):
        container, action = _ensure_container(client, lab, host, images[host.role], files[host.name], source)
        containers[host.name] = container
        if progress is not None:
            progress(f"{host.name} {action} ({host.address})")
    return containers


def _in_start_order(hosts: tuple[Host, ...]) -> list[Host]:
    return sorted(hosts, key=lambda host: START_ORDER.index(host.role))


def _ensure_container(
    client: docker.DockerClient,
    lab: Lab,
    host: Host,
    image: str,
    files: Mapping[str, FileLike],
    source: LabSource,
) -> tuple[Container, str]:
    """Return the host's running container and what was done: "created", "recreated", "started" or "kept"."""
    with docker_errors(f"inspecting image {image}"):
        image_id = client.images.get(image).id
    expected_hash = config_hash(image_id, files, host_volumes(lab.name, host))
    container = find_container(client, lab.name, host.name)
    action = "kept"
    if container is not None and container.labels.get(LABEL_CONFIG_HASH) != expected_hash:
        log.info("recreating %s: its image or files changed", container.name)
        remove_container(container)
        container = None
        action = "recreated"
    if container is None:
        container = create_host_container(
            client, lab, host, image, files, {LABEL_CONFIG_HASH: expected_hash, **source.labels()}
        )
        action = "created" if action == "kept" else action
    container.reload()
    if container.status != "running":
        start_host_container(container, files)
        action = "started" if action == "kept" else action
    return container, action


def down(client: docker.DockerClient, lab_name: str | None) -> list[str]:
    """Remove the containers, network and volumes labelled with ``lab_name`` (every lab when None).

    Returns the names of what was removed. Nothing to remove is not an
    error, so `down` can run twice.
    """
    removed = []
    for container in lab_containers(client, lab_name):
        remove_container(container)
        removed.append(container.name)

    with docker_errors("listing lab networks"):
        networks = client.networks.list(filters=lab_filter(lab_name))
    for network in networks:
        _remove(network, "network")
        removed.append(network.name)

    with docker_errors("listing lab volumes"):
        volumes = client.volumes.list(filters=lab_filter(lab_name))
    for volume in volumes:
        _remove(volume, "volume")
        removed.append(volume.name)

    if not removed:
        log.info("nothing to remove for %s", f"lab {lab_name}" if lab_name else "any lab")
    return removed


def _remove(obj, kind: str) -> None:
    try:
        obj.remove()
    except docker.errors.NotFound:
        log.debug("%s %s was already removed", kind, obj.name)
        return
    except docker.errors.APIError as exc:
        raise DockerError(
            f"removing {kind} {obj.name} failed: {exc.explanation or exc}; "
            f"try 'docker {kind} rm {obj.name}'"
        ) from exc
    log.info("removed %s %s", kind, obj.name)
