"""Tests of scripts/install-host-deps with dpkg-query, id and apt-get replaced by stubs."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-host-deps"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run(tmp_path: Path, missing: str, uid: int) -> subprocess.CompletedProcess:
    """Run the script with ``missing`` reported as not installed and id -u printing ``uid``."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    _stub(stubs, "dpkg-query", f'[ "$4" = "{missing}" ] && exit 1; echo "install ok installed"')
    _stub(stubs, "id", f"echo {uid}")
    _stub(stubs, "apt-get", f'echo "$@" >> {tmp_path}/apt-get.calls')
    _stub(stubs, "docker", "true")
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, check=False)


def test_host_deps_present_needs_nothing(tmp_path):
    result = _run(tmp_path, missing="", uid=1000)
    assert result.returncode == 0
    assert "all host packages are installed already" in result.stdout
    assert not (tmp_path / "apt-get.calls").exists()


def test_host_deps_missing_needs_root(tmp_path):
    result = _run(tmp_path, missing="swaks", uid=1000)
    assert result.returncode == 1
    assert "missing packages: swaks" in result.stderr
    assert "run as root" in result.stderr
    assert not (tmp_path / "apt-get.calls").exists()
