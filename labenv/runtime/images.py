"""Build and tag the lab's Docker images: labenv/base and one image per role, tagged by content hash.

A tag is a hash of everything that goes into its image, so `ensure_images`
builds only images whose tag is missing from the engine. Role images are
layered so that a change to the project's code rebuilds only the layer that
installs the project wheel.
"""

import collections
import concurrent.futures
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors

from labenv import __version__
from labenv.errors import BuildError, DockerError
from labenv.runtime import bootstrap, wheels
from labenv.runtime.build_steps import TAIL_LINES, format_tail

log = logging.getLogger(__name__)

REPOSITORY = "labenv"
SLIM_IMAGE = "debian:bookworm-slim"

# Role name -> folder under images/ whose Dockerfile builds it. relay and final
# share one Dockerfile and differ only in the LABENV_ROLE their entrypoint reads.
ROLE_DOCKERFILES = {
    "relay": "mailhost",
    "final": "mailhost",
    "syslog": "service",
    "spamd": "service",
    "dns": "service",
}
# Roles whose image contains the /opt/labenv virtual environment.
PYTHON_ROLES = frozenset({"relay", "final"})

ENTRYPOINT = "entrypoint/labenv-entrypoint"  # relative to images/

Progress = Callable[[str], None]


def cache_dir() -> Path:
    """Return the folder for bootstrap tarballs, wheels and build contexts.

    $LABENV_CACHE_DIR if set, else $XDG_CACHE_HOME/labenv, else ~/.cache/labenv.
    """
    if os.environ.get("LABENV_CACHE_DIR"):
        return Path(os.environ["LABENV_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "labenv"


def images_dir() -> Path:
    """Return the images/ folder of the source checkout."""
    folder = wheels.project_root() / "images"
    if not folder.is_dir():
        raise BuildError(f"{folder} not found: building images needs a labenv source checkout")
    return folder


def hash_files(paths: list[Path], extra: list[str]) -> str:
    """Return a short hash of file names, file contents and extra strings."""
    digest = hashlib.sha256()
    for text in extra:
        digest.update(text.encode() + b"\0")
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def folder_files(folder: Path) -> list[Path]:
    """Return every file under folder, sorted by path."""
    return sorted(path for path in folder.rglob("*") if path.is_file())


def base_image_reference() -> str:
    """Return labenv/base:<tag>, where tag is a hash of images/base (package list, install script, placeholder MTA)."""
    tag = hash_files(folder_files(images_dir() / "base"), [bootstrap.SUITE])
    return f"{REPOSITORY}/base:{tag}"


def role_image_reference(role: str, base: str, project_hash: str, deps_hash: str) -> str:
    """Return labenv/<role>:<tag> for an image built on base; Python roles also hash the wheels' sources."""
    folder = images_dir()
    files = [folder / ROLE_DOCKERFILES[role] / "Dockerfile", folder / ENTRYPOINT]
    extra = [role, base]
    if role in PYTHON_ROLES:
        extra += [project_hash, deps_hash]
    return f"{REPOSITORY}/{role}:{hash_files(files, extra)}"


def image_labels(role: str) -> dict[str, str]:
    """Return the labels every labenv image carries."""
    return {"io.labenv.version": __version__, "io.labenv.role": role}


def image_exists(client: docker.DockerClient, reference: str) -> bool:
    """Return True when the engine has an image with this reference."""
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        raise DockerError(f"inspecting image {reference} failed: {exc}") from exc
    return True


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock so that two labenv processes on this machine do not build at once."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def docker_build(
    client: docker.DockerClient,
    context: Path,
    reference: str,
    progress: Progress,
    *,
    labels: dict[str, str] | None = None,
    buildargs: dict[str, str] | None = None,
    network_mode: str | None = None,
) -> None:
    """Build context/Dockerfile as reference, passing each Dockerfile step to progress."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    step = f"docker build of {reference}"
    try:
        chunks = client.api.build(
            path=str(context),
            tag=reference,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            labels=labels,
            buildargs=buildargs,
            network_mode=network_mode,
        )
        for chunk in chunks:
            for line in chunk.get("stream", "").splitlines():
                if not line.strip():
                    continue
                tail.append(line)
                log.debug("%s: %s", step, line)
                if line.startswith("Step "):
                    progress(f"{reference}: {line}")
            if "error" in chunk:
                tail.append(chunk["error"].strip())
                raise BuildError(f"{step} failed: {chunk['error'].strip()}\nlast output lines:\n{format_tail(tail)}")
    except docker.errors.APIError as exc:
        raise BuildError(f"{step} failed: {exc}\nlast output lines:\n{format_tail(tail)}") from exc


def build_base(client: docker.DockerClient, reference: str, offline: bool, progress: Progress) -> None:
    """Build labenv/base from debian:bookworm-slim when allowed and present, else from a debootstrap tarball."""
    source = images_dir() / "base"
    if not offline and image_exists(client, SLIM_IMAGE):
        progress(f"building {reference} from {SLIM_IMAGE} (apt-get inside the build)")
        docker_build(client, source, reference, progress, labels=image_labels("base"))
        return

    tarball = cache_dir() / "bootstrap" / f"base-{reference.rpartition(':')[2]}.tar"
    if tarball.exists():
        progress(f"reusing the cached root filesystem {tarball}")
    else:
        progress(f"building {reference} from a debootstrap of Debian {bootstrap.SUITE}")
        bootstrap.build_base_tarball(tarball.parent, source, tarball, progress)
    import_base(client, tarball, reference, progress)


def import_base(client: docker.DockerClient, tarball: Path, reference: str, progress: Progress) -> None:
    """Import a root filesystem tarball as the base image, with the labels and settings a build would set."""
    progress(f"importing {tarball} as {reference}")
    repository, _, tag = reference.rpartition(":")
    changes = [f"LABEL {key}={value}" for key, value in image_labels("base").items()]
    changes += [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["/bin/bash"]',
    ]
    try:
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
    except docker.errors.APIError as exc:
        raise BuildError(f"docker import of {tarball} as {reference} failed: {exc}") from exc
    if not image_exists(client, reference):
        raise BuildError(f"docker import of {tarball} reported no error, but {reference} is missing; delete the tarball and build again")


def stage_context(role: str, context: Path, deps_dir: Path | None, project_wheel: Path | None) -> None:
    """Fill a build context folder with the role's Dockerfile, rootfs/ and, for Python roles, the wheels.

    rootfs/ is copied onto / in one step: the entrypoint, an empty /etc/labenv
    where the runtime puts the host's configuration files and, for Python
    roles, the project wheel in /tmp/labenv-wheel. The dependency wheels go to
    wheels/deps, which an earlier layer installs.
    """
    folder = images_dir()
    shutil.rmtree(context, ignore_errors=True)
    rootfs = context / "rootfs"
    (rootfs / "usr/local/sbin").mkdir(parents=True, mode=0o755)
    (rootfs / "etc/labenv").mkdir(parents=True, mode=0o755)
    shutil.copyfile(folder / ROLE_DOCKERFILES[role] / "Dockerfile", context / "Dockerfile")
    entrypoint = rootfs / "usr/local/sbin/labenv-entrypoint"
    shutil.copyfile(folder / ENTRYPOINT, entrypoint)
    entrypoint.chmod(0o755)
    if deps_dir is not None and project_wheel is not None:
        shutil.copytree(deps_dir, context / "wheels" / "deps")
        # /tmp keeps its sticky, world-writable mode, which COPY would otherwise reset.
        (rootfs / "tmp").mkdir(mode=0o777)
        (rootfs / "tmp").chmod(0o1777)
        (rootfs / "tmp/labenv-wheel").mkdir()
        shutil.copyfile(project_wheel, rootfs / "tmp/labenv-wheel" / project_wheel.name)


def build_role(
    client: docker.DockerClient,
    role: str,
    reference: str,
    base: str,
    wheel_files: tuple[Path, Path] | None,
    progress: Progress,
) -> None:
    """Stage the build context of one role and build its image with networking disabled."""
    context = cache_dir() / "contexts" / role
    deps_dir, project_wheel = wheel_files if role in PYTHON_ROLES and wheel_files else (None, None)
    stage_context(role, context, deps_dir, project_wheel)
    progress(f"building {reference}")
    docker_build(
        client,
        context,
        reference,
        progress,
        buildargs={"BASE": base, "ROLE": role, "VERSION": __version__},
        # Role builds install only from the staged wheels, so they never need a network.
        network_mode="none",
    )
    shutil.rmtree(context, ignore_errors=True)


def build_roles(
    client: docker.DockerClient,
    references: dict[str, str],
    base: str,
    wheel_files: tuple[Path, Path] | None,
    progress: Progress,
) -> None:
    """Build the role images in references, in parallel where they do not share layers.

    The first role of each Dockerfile builds the layers its roles share. The
    other roles of that Dockerfile wait for it and then reuse those layers from
    Docker's build cache.
    """
    first: list[str] = []
    rest: list[str] = []
    for role in references:
        dockerfile = ROLE_DOCKERFILES[role]
        earlier = [other for other in first if ROLE_DOCKERFILES[other] == dockerfile]
        (rest if earlier else first).append(role)

    for batch in (first, rest):
        if not batch:
            continue
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(batch)) as pool:
            futures = [
                pool.submit(build_role, client, role, references[role], base, wheel_files, progress) for role in batch
            ]
            # result() raises the first failure; the pool still waits for the other builds to end.
            for future in futures:
                future.result()


def remove_superseded_images(client: docker.DockerClient, keep: set[str]) -> list[str]:
    """Untag the labenv/<name>:<hash> images that keep does not contain and return the removed references.

    Docker deletes an image once its last tag is gone. An image that a
    container still uses, stopped or running, is kept, and so is every
    :latest tag, which labenv does not set.
    """
    removed = []
    for image in client.images.list(filters={"label": "io.labenv.role"}):
        for reference in image.tags:
            if not reference.startswith(f"{REPOSITORY}/") or reference in keep or reference.endswith(":latest"):
                continue
            try:
                client.images.remove(reference)
            except docker.errors.APIError as exc:
                log.debug("kept image %s: %s", reference, exc)
                continue
            removed.append(reference)
    return removed


def ensure_images(
    client: docker.DockerClient, *, offline: bool = False, progress: Progress | None = None
) -> dict[str, str]:
    """Build the base and role images that are missing and return role -> image reference.

    With offline=True no docker build uses the network: the base comes from a
    debootstrap tarball (built on the host, which needs root and host network
    unless cached) and role builds run with networking disabled in any case.
    Raises BuildError naming the failing step, or DockerError when the engine
    is unreachable.
    """
    report = progress or (lambda message: log.info("%s", message))
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerError(f"the Docker engine did not respond to a ping: {exc}; start Docker or set DOCKER_HOST") from exc

    root = wheels.project_root()
    cache = cache_dir()
    with build_lock(cache):
        base = base_image_reference()
        if image_exists(client, base):
            log.debug("base image %s is present", base)
        else:
            build_base(client, base, offline, report)

        requirements = wheels.container_requirements(root)
        project_hash = wheels.project_source_hash(root)
        deps_hash = wheels.requirements_hash(requirements)
        references = {role: role_image_reference(role, base, project_hash, deps_hash) for role in ROLE_DOCKERFILES}
        missing = {role: ref for role, ref in references.items() if not image_exists(client, ref)}
        if not missing:
            report("all lab images are up to date")
            return references

        wheel_files = None
        if PYTHON_ROLES.intersection(missing):
            deps_dir = wheels.dependency_wheels(cache, requirements, report)
            project_wheel = wheels.project_wheel(root, cache / "wheels" / f"project-{project_hash}", report)
            wheel_files = (deps_dir, project_wheel)
        build_roles(client, missing, base, wheel_files, report)
    return references
