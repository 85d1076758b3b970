"""Tests of the Docker engine connection errors, against a socket path where no engine listens."""

import pytest
from click.testing import CliRunner

from labenv.cli import cli
from labenv.errors import DockerError
from labenv.runtime.engine import connect


@pytest.fixture
def missing_engine(tmp_path, monkeypatch):
    address = f"unix://{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    return address


def test_connect_missing_engine(missing_engine):
    with pytest.raises(DockerError) as caught:
        connect()
    message = str(caught.value)
    assert f"at {missing_engine} (DOCKER_HOST)" in message
    assert "no such socket" in message
    assert "set DOCKER_HOST" in message


def test_cli_missing_engine_one_line(missing_engine):
    result = CliRunner().invoke(cli, ["status", "--name", "unit"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot reach the Docker engine at ")
