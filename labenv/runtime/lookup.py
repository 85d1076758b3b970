"""Checks of a host or user name against a lab model, before any command reaches a container."""

from __future__ import annotations

from labenv.errors import ConfigError
from labenv.lab.model import Host, Lab


def require_host(lab: Lab, host_name: str) -> Host:
    """Return the host called ``host_name``, or raise ConfigError listing the lab's hosts."""
    for host in lab.hosts:
        if host.name == host_name:
            return host
    names = ", ".join(host.name for host in lab.hosts)
    raise ConfigError(f"lab {lab.name} has no host {host_name}; its hosts are {names}")


def require_account(lab: Lab, host_name: str, user_name: str) -> None:
    """Raise ConfigError unless ``user_name`` is a lab user with an account on ``host_name``, the check before SSH."""
    users = _users_on(lab, host_name)
    if user_name not in users:
        raise ConfigError(f"{user_name} has no account on {host_name}; lab users there: {_listed(users)}")


def require_mail_user(lab: Lab, host_name: str, user_name: str) -> None:
    """Raise ConfigError unless ``user_name`` is a lab user on ``host_name``, so has a mailbox there."""
    users = _users_on(lab, host_name)
    if user_name not in users:
        raise ConfigError(f"{user_name} is not a lab user on {host_name}; lab users there: {_listed(users)}")


def _users_on(lab: Lab, host_name: str) -> list[str]:
    require_host(lab, host_name)
    return [user.name for user in lab.users_on(host_name)]


def _listed(names: list[str]) -> str:
    return ", ".join(names) if names else "none"
