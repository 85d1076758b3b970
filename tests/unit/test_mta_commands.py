"""The ``labenv mta`` command line."""

from __future__ import annotations

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
