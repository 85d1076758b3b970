"""Prepare the wheelhouse that role images install from: dependency wheels and the project wheel.

Role images install with `pip install --no-index`, so every wheel is made here
on the host and no docker build needs a package index. pip picks wheels for the
host's Python, so the host's Python must match the containers' (3.11).
"""

import hashlib
import logging
import platform
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import labenv
from labenv.errors import BuildError
from labenv.runtime.build_steps import run_step

log = logging.getLogger(__name__)

# Dependencies that only the host side uses (Docker API, SSH sessions); the lab
# hosts run the MTA and the submission command, which need neither.
HOST_ONLY_DEPENDENCIES = frozenset({"docker", "fabric"})

# Debian bookworm's python3 and libc6, which every wheel must run on.
CONTAINER_PYTHON = (3, 11)
CONTAINER_GLIBC = (2, 36)
# Legacy manylinux names and the glibc version each stands for (PEP 600).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def project_root() -> Path:
    """Return the source checkout that contains the labenv package and pyproject.toml."""
    root = Path(labenv.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise BuildError(
            f"pyproject.toml not found in {root}: building images needs labenv installed from a source "
            "checkout (pip install -e .)"
        )
    return root


def requirement_name(requirement: str) -> str:
    """Return the distribution name of a requirement string such as 'dnspython>=2.4'."""
    name = requirement
    for separator in "<>=!~;[ @":
        name = name.split(separator, 1)[0]
    return name.strip().lower().replace("_", "-")


def container_requirements(root: Path) -> list[str]:
    """Return the project's dependencies that the lab hosts need, read from pyproject.toml."""
    with open(root / "pyproject.toml", "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    return [req for req in dependencies if requirement_name(req) not in HOST_ONLY_DEPENDENCIES]


def project_files(root: Path) -> Iterator[Path]:
    """Yield the files a project wheel is built from, in a stable order."""
    for name in ("pyproject.toml", "README.md"):
        if (root / name).is_file():
            yield root / name
    for path in sorted((root / "labenv").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def project_source_hash(root: Path) -> str:
    """Return a hash of the project's source files, which changes whenever the project wheel would."""
    digest = hashlib.sha256()
    for path in project_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def requirements_hash(requirements: list[str]) -> str:
    """Return a hash of a requirement list and the host's Python version, naming a dependency wheelhouse."""
    text = "\n".join(sorted(requirements)) + f"\npython{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def python_tag_fits(python_tag: str, abi_tag: str) -> bool:
    """Return True when a wheel's Python and ABI tags accept the containers' CPython 3.11."""
    major, minor = CONTAINER_PYTHON
    for tag in python_tag.split("."):
        if tag in ("py3", f"py{major}{minor}") and abi_tag == "none":
            return True
        if tag == f"cp{major}{minor}" and abi_tag in (f"cp{major}{minor}", "abi3", "none"):
            return True
        # A stable-ABI wheel built for an older CPython 3 also loads in 3.11.
        if tag.startswith("cp3") and abi_tag == "abi3" and tag[3:].isdigit() and int(tag[3:]) <= minor:
            return True
    return False


def platform_tag_fits(platform_tag: str) -> bool:
    """Return True when a wheel's platform tag accepts Debian bookworm on this machine's architecture."""
    suffix = "_" + platform.machine()
    for tag in platform_tag.split("."):
        if tag == "any":
            return True
        if not tag.endswith(suffix):
            continue
        name = tag.removesuffix(suffix)
        if name in LEGACY_MANYLINUX and LEGACY_MANYLINUX[name] <= CONTAINER_GLIBC:
            return True
        parts = name.split("_")
        if len(parts) == 3 and parts[0] == "manylinux" and parts[1].isdigit() and parts[2].isdigit():
            if (int(parts[1]), int(parts[2])) <= CONTAINER_GLIBC:
                return True
    return False


def wheel_fits_container(filename: str) -> bool:
    """Return True when the wheel file name says it installs on the lab hosts' Python 3.11 on bookworm."""
    # name-version(-build)?-python-abi-platform.whl
    python_tag, abi_tag, platform_tag = filename.removesuffix(".whl").split("-")[-3:]
    return python_tag_fits(python_tag, abi_tag) and platform_tag_fits(platform_tag)


def check_wheels_fit(wheel_dir: Path) -> None:
    """Raise BuildError when wheel_dir contains a wheel that does not install on the lab hosts."""
    for wheel in sorted(wheel_dir.glob("*.whl")):
        if not wheel_fits_container(wheel.name):
            raise BuildError(
                f"wheel {wheel.name} does not install on the lab hosts, which run Debian bookworm's "
                f"CPython {CONTAINER_PYTHON[0]}.{CONTAINER_PYTHON[1]} with glibc "
                f"{CONTAINER_GLIBC[0]}.{CONTAINER_GLIBC[1]}; run labenv build with a Python "
                f"{CONTAINER_PYTHON[0]}.{CONTAINER_PYTHON[1]} virtual environment on the host"
            )


def dependency_wheels(cache_dir: Path, requirements: list[str], progress: Callable[[str], None]) -> Path:
    """Return a folder of wheels for requirements and all their dependencies, building it when not cached.

    pip needs a package index (or its own cache) on the host the first time.
    """
    target = cache_dir / "wheels" / f"deps-{requirements_hash(requirements)}"
    if target.is_dir():
        log.debug("reusing the dependency wheels in %s", target)
        return target

    progress(f"pip wheel {len(requirements)} dependencies into {target}")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    run_step("pip wheel the dependencies", [sys.executable, "-m", "pip", "wheel", "-q", "-w", partial, *requirements])
    check_wheels_fit(partial)
    partial.replace(target)
    return target


def project_wheel(root: Path, out_dir: Path, progress: Callable[[str], None]) -> Path:
    """Build the labenv wheel into out_dir, without its dependencies, and return its path.

    out_dir is named by the project's source hash, so a wheel already there is
    reused, and the folders of older sources next to it are deleted.
    """
    existing = sorted(out_dir.glob("labenv-*.whl"))
    if len(existing) == 1:
        log.debug("reusing the project wheel %s", existing[0])
        return existing[0]
    for old in out_dir.parent.glob("project-*"):
        if old != out_dir:
            shutil.rmtree(old, ignore_errors=True)

    progress("building the labenv wheel")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    # Building from a copy keeps build/ and egg-info folders out of the checkout.
    with tempfile.TemporaryDirectory(prefix="labenv-wheel-") as scratch:
        source = Path(scratch) / "src"
        for path in project_files(root):
            destination = source / path.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
        run_step(
            "pip wheel the project",
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out_dir, source],
        )
    wheels = sorted(out_dir.glob("labenv-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one labenv wheel in {out_dir}, found {len(wheels)}; delete the folder and build again")
    check_wheels_fit(out_dir)
    return wheels[0]
