"""The committed compose folder must equal what `labenv compose-file` writes for the default lab."""

import json
import tomllib
from pathlib import Path

from labenv.lab.labfile import load_lab
from labenv.runtime.compose import PUBLIC_KEYS_FILE, render_compose

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
REGENERATE = "run 'labenv compose-file' and commit compose/"


def _expected() -> dict[str, bytes]:
    lab = load_lab(None, name="default")
    keys = json.loads((COMPOSE_DIR / lab.name / PUBLIC_KEYS_FILE).read_text())
    return render_compose(lab, keys)


def _committed() -> dict[str, bytes]:
    return {
        str(path.relative_to(COMPOSE_DIR)): path.read_bytes() for path in COMPOSE_DIR.rglob("*") if path.is_file()
    }


def test_compose_files_match_generator():
    expected = _expected()
    committed = _committed()
    for relative, content in sorted(expected.items()):
        assert relative in committed, f"compose/{relative} is missing; {REGENERATE}"
        assert committed[relative] == content, f"compose/{relative} differs from the generator; {REGENERATE}"


def test_compose_no_stale_files():
    stale = sorted(set(_committed()) - set(_expected()))
    assert stale == [], f"files no generator writes: {stale}; delete them and {REGENERATE}"


def test_compose_holds_no_private_key():
    for relative, content in _committed().items():
        assert b"PRIVATE KEY" not in content, f"compose/{relative} contains a private key"


def test_compose_relay_without_dkim():
    config = tomllib.loads((COMPOSE_DIR / "default/regulus/files/etc/labenv/mta.toml").read_text())
    assert config["role"] == "relay"
    assert "dkim" not in config
    assert config["auth"]["policy"] == "observe"


def test_compose_network_internal():
    text = (COMPOSE_DIR / "docker-compose.yml").read_text()
    network = text[text.index("\nnetworks:\n"):]
    assert "    internal: true\n" in network
    assert '        - subnet: "10.77.0.0/24"\n' in network
