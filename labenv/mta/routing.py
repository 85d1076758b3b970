"""Recipient routing: a local mailbox, a remote domain, or no route at all."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from labenv.mta.config import MtaConfig


POSTMASTER_MAILBOX = "root"


@dataclass(frozen=True)
class Route:
    """The delivery route of one recipient: ``user`` for local mailboxes, ``domain`` for remote ones."""

    user: str | None = None
    domain: str | None = None

    @property
    def is_local(self) -> bool:
        """Whether the recipient has a mailbox on this host."""
        return self.user is not None


class Router:
    """Classifies recipients and clients for one MTA configuration."""

    def __init__(self, config: MtaConfig) -> None:
        self._config = config
        self._users = config.local_users()
        self._local_domains = {domain.lower() for domain in config.domains} | {config.hostname.lower(), "localhost"}

    def is_local_domain(self, domain: str) -> bool:
        """Tell whether mail for ``domain`` is delivered on this host."""
        return domain.lower().rstrip(".") in self._local_domains

    def local_user(self, local_part: str) -> str | None:
        """Return the mailbox name for ``local_part``, or None when no such user exists."""
        if local_part in self._users:
            return local_part
        lowered = local_part.lower()
        return lowered if lowered in self._users else None

    def route(self, address: str) -> Route | None:
        """Return the route of ``address``, or None for a local domain without that user."""
        local_part, at, domain = address.rpartition("@")
        if not at:
            local_part, domain = address, ""
        if not domain or self.is_local_domain(domain):
            user = self.local_user(local_part)
            if user is None and local_part.lower() == "postmaster":
                # RFC 5321 section 4.5.1: every host accepts mail for postmaster.
                # sendmail's default aliases send it to root.
                user = POSTMASTER_MAILBOX
            return Route(user=user) if user else None
        return Route(domain=domain.lower().rstrip("."))

    def may_relay(self, client_ip: str) -> bool:
        """Tell whether a client at ``client_ip`` may send mail to remote domains."""
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self._config.relay_networks)
