"""Build the base root filesystem without Docker: debootstrap, then apt-get in a chroot, then a tarball.

This path needs no network inside any Docker build, only on the host (or a
cached tarball), which is what `labenv build --offline` relies on. It must run
as root because debootstrap, chroot and mount do.
"""

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from labenv.errors import BuildError
from labenv.runtime.build_steps import run_step

log = logging.getLogger(__name__)

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"

# Folder inside the root filesystem where the package list and scripts are copied.
STAGING_DIR = "labenv-build"

# A policy-rc.d that exits with 101 makes invoke-rc.d skip every service start,
# so postinst scripts (sshd, rsyslog, nsd, spamd) do not launch daemons on the host.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"


def require_root() -> None:
    """Raise BuildError unless the process runs as root."""
    if os.geteuid() != 0:
        raise BuildError(
            "building the base image with debootstrap needs root (debootstrap, chroot and mount do); "
            "run the build as root once, or load debian:bookworm-slim into Docker and build without --offline"
        )


def minbase_tarball(cache_dir: Path, progress: Callable[[str], None]) -> Path:
    """Return a tarball of a minimal Debian root with python3, running debootstrap when none is cached."""
    tarball = cache_dir / f"{SUITE}-minbase.tar"
    if tarball.exists():
        log.debug("reusing the cached minimal root %s", tarball)
        return tarball

    workdir = cache_dir / f"minbase-work-{os.getpid()}"
    rootfs = workdir / "rootfs"
    progress(f"debootstrap {SUITE} from {MIRROR} (one to two minutes)")
    try:
        rootfs.mkdir(parents=True)
        run_step(
            "debootstrap",
            ["debootstrap", "--variant=minbase", "--include=python3", SUITE, rootfs, MIRROR],
        )
        write_tarball(rootfs, tarball)
    finally:
        remove_root(workdir)
    return tarball


def build_base_tarball(
    cache_dir: Path, source_dir: Path, tarball: Path, progress: Callable[[str], None]
) -> None:
    """Write the base root filesystem to tarball: the minimal root plus the packages listed in source_dir.

    source_dir is images/base: packages.txt, install-packages.sh and mta-dummy/.
    """
    require_root()
    cache_dir.mkdir(parents=True, exist_ok=True)
    minbase = minbase_tarball(cache_dir, progress)

    workdir = cache_dir / f"base-work-{os.getpid()}"
    rootfs = workdir / "rootfs"
    try:
        rootfs.mkdir(parents=True)
        progress("unpacking the minimal root")
        run_step("unpack the minimal root", ["tar", "-C", rootfs, "--numeric-owner", "-xpf", minbase])
        progress("installing the lab's Debian packages in a chroot (about a minute)")
        install_in_chroot(rootfs, source_dir)
        progress("packing the base root filesystem")
        write_tarball(rootfs, tarball)
    finally:
        remove_root(workdir)

    # Each package-list change leaves a tarball of about 300 MB behind.
    for old in tarball.parent.glob("base-*.tar"):
        if old != tarball:
            log.debug("deleting the superseded base tarball %s", old)
            old.unlink()


def install_in_chroot(rootfs: Path, source_dir: Path) -> None:
    """Run install-packages.sh inside a chroot of rootfs with /proc mounted and services blocked."""
    staging = rootfs / STAGING_DIR
    shutil.copytree(source_dir, staging)
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    # apt in the chroot resolves the mirror with the host's resolver.
    resolv = rootfs / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)

    proc = rootfs / "proc"
    run_step("mount /proc in the chroot", ["mount", "-t", "proc", "proc", proc])
    try:
        run_step(
            "apt-get install in the chroot",
            ["chroot", rootfs, "/bin/sh", f"/{STAGING_DIR}/install-packages.sh", f"/{STAGING_DIR}"],
        )
    finally:
        run_step("unmount /proc in the chroot", ["umount", proc])

    shutil.rmtree(staging)
    policy.unlink()
    # Docker mounts its own resolv.conf into every container; the image keeps none of the host's.
    resolv.write_text("")


def write_tarball(rootfs: Path, tarball: Path) -> None:
    """Pack rootfs into tarball, writing a temporary file first so a cached tarball is never partial."""
    partial = tarball.with_name(tarball.name + ".partial")
    run_step("pack the root filesystem", ["tar", "-C", rootfs, "--numeric-owner", "-cf", partial, "."])
    partial.replace(tarball)


def remove_root(workdir: Path) -> None:
    """Delete a work folder unless something is still mounted inside it."""
    if not workdir.exists():
        return
    # Deleting through a live mount would delete the host's files behind it.
    proc = workdir / "rootfs/proc"
    if os.path.ismount(proc):
        log.warning("leaving %s in place because %s is still mounted; unmount it and delete the folder", workdir, proc)
        return
    shutil.rmtree(workdir)
