"""Packing rendered files into a tar archive for Docker's put_archive."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Mapping
from typing import Protocol

from labenv.errors import ConfigError
from labenv.lab.model import Lab


class FileLike(Protocol):
    content: bytes
    mode: int
    owner: str


def owner_ids(lab: Lab) -> dict[str, int]:
    """Return the uid of every owner a rendered file may name: root and the lab users.

    The ids are numeric in the archive because the users only exist after
    the entry point runs users.sh, and that script creates them with these ids.
    """
    ids = {"root": 0}
    for user in lab.users:
        ids[user.name] = user.uid
    return ids


def pack_files(files: Mapping[str, FileLike], ids: Mapping[str, int]) -> bytes:
    """Return a tar archive, rooted at /, holding ``files`` with their modes and owners.

    Directories under a user's home are added with that user as owner, so
    that sshd's StrictModes accepts ``~/.ssh`` and the user can write to the
    home. Docker creates other missing parents as root with mode 0755.
    """
    buffer = io.BytesIO()
    now = time.time()
    added_dirs: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(files):
            spec = files[path]
            uid = _uid(ids, spec.owner, path)
            for directory in _home_dirs(path, spec.owner):
                if directory in added_dirs:
                    continue
                added_dirs.add(directory)
                mode = 0o700 if posixpath.basename(directory) == ".ssh" else 0o755
                tar.addfile(_entry(directory, tarfile.DIRTYPE, mode, uid, now))
            entry = _entry(path, tarfile.REGTYPE, spec.mode, uid, now)
            entry.size = len(spec.content)
            tar.addfile(entry, io.BytesIO(spec.content))
    return buffer.getvalue()


def _uid(ids: Mapping[str, int], owner: str, path: str) -> int:
    if owner not in ids:
        raise ConfigError(
            f"rendered file {path} is owned by {owner!r}, which is neither root nor a lab user; "
            "add the user to the lab file or render the file as root"
        )
    return ids[owner]


def _home_dirs(path: str, owner: str) -> list[str]:
    """Return the directories between /home/<owner> and ``path``, outermost first."""
    home = f"/home/{owner}"
    if owner == "root" or not path.startswith(home + "/"):
        return []
    dirs = [home]
    for part in posixpath.dirname(path)[len(home) + 1 :].split("/"):
        if part:
            dirs.append(posixpath.join(dirs[-1], part))
    return dirs


def _entry(path: str, kind: bytes, mode: int, uid: int, mtime: float) -> tarfile.TarInfo:
    if not path.startswith("/"):
        raise ConfigError(f"rendered file path {path!r} is not absolute; render absolute container paths")
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = kind
    info.mode = mode
    info.uid = info.gid = uid
    info.mtime = int(mtime)
    return info
