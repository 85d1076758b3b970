"""The ``labenv mta`` command line."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from labenv.cli import cli


def test_serve_missing_config_file(tmp_path):
    result = CliRunner().invoke(cli, ["mta", "serve", "--config", str(tmp_path / "absent.toml")])
    assert result.exit_code == 1
    assert "error: cannot read MTA configuration" in result.output
    assert "absent.toml" in result.output


def test_serve_invalid_listen():
    result = CliRunner().invoke(cli, ["mta", "serve", "--listen", "nowhere"])
    assert result.exit_code == 1
    assert "invalid listen 'nowhere'" in result.output


def test_serve_invalid_role():
    result = CliRunner().invoke(cli, ["mta", "serve", "--role", "hub"])
    assert result.exit_code == 2


def test_serve_missing_mail_dir(tmp_path):
    arguments = ["mta", "serve", "--listen", "127.0.0.1:0", "--spool", str(tmp_path / "spool"), "--mail-dir", str(tmp_path / "absent")]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1
    assert f"mail directory {tmp_path / 'absent'} does not exist" in result.output


def test_serve_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        arguments = ["mta", "serve", "--listen", f"127.0.0.1:{port}", "--spool", str(tmp_path / "spool"), "--mail-dir", str(tmp_path)]
        result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
