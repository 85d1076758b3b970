"""Loading a lab: built-in defaults, the lab file, environment and command line.

Each layer overrides the one before it:
defaults < lab file (TOML) < environment (LABENV_SUBNET, LABENV_AUTH) < overrides.

Merging rules, applied to the lab file and to overrides alike:
- top-level values and ``[blocklist]``/``[labels]`` keys replace the ones below;
- ``[hosts.NAME]`` updates host NAME; a new host that names a role replaces
  the default host of that role, which is how a lab file renames hosts;
- ``[users]`` and ``[foreign_domains]``, when given, replace the whole table.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import logging
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labenv.errors import ConfigError
from labenv.lab.defaults import DEFAULT_LAB, DEFAULT_LAB_NAME
from labenv.lab.model import Lab
from labenv.lab.validate import Sources, build_lab

log = logging.getLogger(__name__)

# A lab name becomes part of Docker object names (labenv-<lab>-<host>).
LAB_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")

# Environment variables the loader reads, and the lab file key each one sets.
ENVIRONMENT_KEYS = {
    "LABENV_SUBNET": "subnet",
    "LABENV_AUTH": "auth_policy",
}

# The keys a lab file may contain. A nested dict describes a table, and its
# "*" key matches any name the user chooses, such as a host or user name.
SCHEMA: dict[str, Any] = {
    "domain": None,
    "subnet": None,
    "product": None,
    "timezone": None,
    "auth_policy": None,
    "dmarc_policy": None,
    "dkim_selector": None,
    "max_message_size": None,
    "hosts": {"*": {"role": None, "address": None}},
    "users": {"*": {"uid": None, "hosts": None}},
    "foreign_domains": {"*": {"spf": None, "dmarc_policy": None}},
    "blocklist": {"zone": None, "listed": None},
    "labels": {"*": None},
}


def load_lab(
    path: Path | None,
    *,
    name: str = DEFAULT_LAB_NAME,
    overrides: Mapping[str, Any] | None = None,
    taken_subnets: Sequence[ipaddress.IPv4Network] = (),
) -> Lab:
    """Load lab ``name`` from the defaults, the lab file at ``path`` and the overrides.

    ``overrides`` has the shape of a lab file (for example ``{"subnet":
    "10.80.0.0/24"}``) and comes from the command line. When no layer sets a
    subnet, a lab other than the default one gets one from
    ``pick_subnet(name, taken_subnets)``. Raises ConfigError naming the
    source, the field and the fix.
    """
    check_lab_name(name)
    data = copy.deepcopy(DEFAULT_LAB)
    sources = Sources()

    if path is not None:
        file_data = read_lab_file(path)
        check_keys(file_data, SCHEMA, source=str(path), prefix="")
        merge_layer(data, file_data, sources, source=str(path))

    for variable, key in ENVIRONMENT_KEYS.items():
        value = os.environ.get(variable)
        if value:
            log.debug("%s=%s sets %s", variable, value, key)
            merge_layer(data, {key: value}, sources, source=f"environment variable {variable}")

    if overrides:
        check_keys(overrides, SCHEMA, source="command line", prefix="")
        merge_layer(data, dict(overrides), sources, source="command line")

    return build_lab(name, data, sources, taken_subnets=taken_subnets)


def check_lab_name(name: str) -> None:
    """Raise ConfigError unless ``name`` can be part of a Docker object name."""
    if not LAB_NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"invalid lab name {name!r}; expected 1 to 31 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )


def read_lab_file(path: Path) -> dict[str, Any]:
    """Parse the TOML lab file at ``path``."""
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(
            f"lab file {path} not found; check the path or leave it out to use the default lab"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read lab file {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}; fix the syntax at that line") from error


def check_keys(table: Mapping[str, Any], schema: Mapping[str, Any], *, source: str, prefix: str) -> None:
    """Raise ConfigError for the first key of ``table`` that ``schema`` does not allow."""
    for key, value in table.items():
        field = f"{prefix}{key}"
        if key in schema:
            expected = schema[key]
        elif "*" in schema:
            expected = schema["*"]
        else:
            raise ConfigError(f"{source}: {field}: unknown key{_suggestion(key, schema)}")

        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{source}: {field}: expected a table ([{field}]), got {type(value).__name__}"
                )
            check_keys(value, expected, source=source, prefix=f"{field}.")


def merge_layer(data: dict[str, Any], layer: Mapping[str, Any], sources: Sources, *, source: str) -> None:
    """Merge one configuration layer into ``data`` and remember where each value came from."""
    for key, value in layer.items():
        if key == "hosts":
            _merge_hosts(data["hosts"], value, sources, source)
        elif key in ("blocklist", "labels"):
            data.setdefault(key, {}).update(value)
            for inner in value:
                sources.record(f"{key}.{inner}", source)
        else:
            # users and foreign_domains are replaced as a whole, so that a lab
            # file lists exactly the accounts and domains it wants.
            data[key] = copy.deepcopy(value)
        sources.record(key, source)


def _merge_hosts(
    hosts: dict[str, dict[str, Any]], layer: Mapping[str, Any], sources: Sources, source: str
) -> None:
    for host_name, fields in layer.items():
        if host_name not in hosts and "role" in fields:
            # A new host with a role takes the place of the host that had it.
            for old_name in [n for n, h in hosts.items() if h.get("role") == fields["role"]]:
                log.debug("host %s replaces %s as %s", host_name, old_name, fields["role"])
                del hosts[old_name]
        hosts.setdefault(host_name, {}).update(fields)
        sources.record(f"hosts.{host_name}", source)


def _suggestion(key: str, schema: Mapping[str, Any]) -> str:
    allowed = sorted(k for k in schema if k != "*")
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of {', '.join(allowed)}"
