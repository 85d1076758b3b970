"""The lab model: hosts, addresses, users and mail domains of one lab.

Everything else is generated from these objects: zone files, rsyslog, spamd
and MTA configuration, the compose file and the Docker runtime. The model is
plain data; loading and validating a lab file lives in ``labenv.lab.labfile``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

# Each host plays exactly one role. The role decides which programs run in it.
Role = Literal["relay", "final", "syslog", "spamd", "dns"]
ROLES: tuple[Role, ...] = ("relay", "final", "syslog", "spamd", "dns")

AuthPolicy = Literal["observe", "enforce"]
AUTH_POLICIES: tuple[AuthPolicy, ...] = ("observe", "enforce")

# The p= tag of a DMARC record (RFC 7489 section 6.3).
DmarcPolicy = Literal["none", "quarantine", "reject"]
DMARC_POLICIES: tuple[DmarcPolicy, ...] = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class User:
    """A lab user: a login account on the hosts named in ``hosts``."""

    name: str
    uid: int
    hosts: tuple[str, ...]

    @property
    def gid(self) -> int:
        return self.uid

    @property
    def home(self) -> str:
        return f"/home/{self.name}"


@dataclass(frozen=True)
class Host:
    """One container of the lab."""

    name: str
    role: Role
    address: ipaddress.IPv4Address
    domain: str

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.domain}"


@dataclass(frozen=True)
class ForeignDomain:
    """A mail domain owned by another organisation, which a forged sender can claim.

    It has no host in the lab; the lab DNS still publishes its SPF, DKIM and
    DMARC records so that a receiver can check a claim made in its name.
    """

    name: str
    spf: str = "v=spf1 -all"
    dmarc_policy: DmarcPolicy = "reject"


@dataclass(frozen=True)
class Lab:
    """A whole lab: its name, network, hosts, users and mail settings."""

    name: str
    domain: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[Host, ...]
    users: tuple[User, ...]
    # Product string in SMTP banners and Received lines, e.g. "labenv-mta 0.1.0".
    product: str
    timezone: str = "UTC"
    auth_policy: AuthPolicy = "observe"
    foreign_domains: tuple[ForeignDomain, ...] = ()
    # DMARC policy the lab DNS publishes for the lab domain itself.
    dmarc_policy: DmarcPolicy = "none"
    # DKIM selector of every signing key, published as <selector>._domainkey.<domain>.
    dkim_selector: str = "lab2026"
    # Name of the DNS blocklist zone the lab DNS serves and spamd queries.
    blocklist_zone: str = "bl.test"
    # Addresses listed in the blocklist zone.
    blocklisted: tuple[ipaddress.IPv4Address, ...] = ()
    # Maximum message size in bytes, advertised with the SMTP SIZE keyword.
    max_message_size: int = 10 * 1024 * 1024
    labels: dict[str, str] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        """Return the host called ``name``, or raise KeyError."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def host_with_role(self, role: Role) -> Host:
        """Return the single host that plays ``role``, or raise KeyError."""
        for host in self.hosts:
            if host.role == role:
                return host
        raise KeyError(role)

    def users_on(self, host_name: str) -> tuple[User, ...]:
        """Return the users that have an account on ``host_name``."""
        return tuple(user for user in self.users if host_name in user.hosts)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The Docker bridge address of the lab network (first address of the subnet)."""
        return next(self.subnet.hosts())
