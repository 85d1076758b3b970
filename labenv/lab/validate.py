"""Turning merged lab settings into a checked ``Lab``, with errors that name the field."""

from __future__ import annotations

import ipaddress
import logging
import re
import zoneinfo
from collections.abc import Sequence
from typing import Any, NoReturn

from labenv.errors import ConfigError
from labenv.lab.defaults import DEFAULT_LAB_NAME, DEFAULT_SUBNET, ROLE_HOST_NUMBER
from labenv.lab.model import (
    AUTH_POLICIES,
    DMARC_POLICIES,
    ROLES,
    ForeignDomain,
    Host,
    Lab,
    User,
)
from labenv.lab.subnets import SUBNET_PREFIX, is_private_subnet, pick_subnet

log = logging.getLogger(__name__)

# RFC 1035 section 2.3.1 labels, lower case only so that names compare simply.
DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
HOST_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Debian's useradd accepts these names without --badname.
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# Debian gives uids 1000 to 59999 to ordinary login accounts. Lower and
# higher uids belong to system accounts, the `nobody` account and dynamic users.
UID_RANGE = range(1000, 60000)
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
# Accounts that Debian bookworm and the role packages (nsd, spamd, openssh)
# already create in the lab images.
SYSTEM_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news",
    "uucp", "proxy", "www-data", "backup", "list", "irc", "nobody", "_apt",
    "sshd", "nsd", "debian-spamd",
})


class Sources:
    """The layer (file, variable, command line) that set each field, named in errors."""

    def __init__(self) -> None:
        self._by_field: dict[str, str] = {}

    def record(self, field: str, source: str) -> None:
        self._by_field[field] = source

    def source_of(self, field: str) -> str:
        """Return the layer that set ``field`` or its closest parent, else the defaults."""
        parts = field.split(".")
        while parts:
            source = self._by_field.get(".".join(parts))
            if source is not None:
                return source
            parts.pop()
        return "built-in default lab"

    def fail(self, field: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source_of(field)}: {field}: {problem}")


def build_lab(
    name: str,
    data: dict[str, Any],
    sources: Sources,
    *,
    taken_subnets: Sequence[ipaddress.IPv4Network] = (),
) -> Lab:
    """Check every merged setting and build the Lab, or raise ConfigError."""
    domain = _domain(data["domain"], "domain", sources)
    subnet = _subnet(data.get("subnet"), name, sources, taken_subnets)
    hosts = _hosts(data["hosts"], domain, subnet, sources)
    host_names = {host.name for host in hosts}
    users = _users(data["users"], host_names, sources)
    foreign = _foreign_domains(data.get("foreign_domains", {}), domain, sources)
    blocklist = data.get("blocklist", {})
    blocklist_zone = _domain(blocklist.get("zone", f"bl.{domain}"), "blocklist.zone", sources)
    listed = _blocklisted(blocklist.get("listed", []), subnet, sources)

    return Lab(
        name=name,
        domain=domain,
        subnet=subnet,
        hosts=hosts,
        users=users,
        product=_text(data["product"], "product", sources),
        timezone=_timezone(data["timezone"], sources),
        auth_policy=_choice(data["auth_policy"], "auth_policy", AUTH_POLICIES, sources),
        dmarc_policy=_choice(data["dmarc_policy"], "dmarc_policy", DMARC_POLICIES, sources),
        dkim_selector=_label(data["dkim_selector"], "dkim_selector", sources),
        foreign_domains=foreign,
        blocklist_zone=blocklist_zone,
        blocklisted=listed,
        max_message_size=_positive_int(data["max_message_size"], "max_message_size", sources),
        labels=_labels(data.get("labels", {}), sources),
    )


def _subnet(
    value: Any, lab_name: str, sources: Sources, taken: Sequence[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network:
    if value is None:
        subnet = pick_subnet(lab_name, taken)
        if lab_name == DEFAULT_LAB_NAME and subnet != DEFAULT_SUBNET:
            log.warning(
                "%s is used by another Docker network, so the default lab uses %s; "
                "set subnet= in a lab file to choose",
                DEFAULT_SUBNET,
                subnet,
            )
        return subnet

    expected = f"expected a private IPv4 /{SUBNET_PREFIX} such as {DEFAULT_SUBNET}"
    if not isinstance(value, str):
        sources.fail("subnet", f"{value!r} is not a string; {expected}")
    try:
        subnet = ipaddress.IPv4Network(value)
    except ValueError:
        sources.fail("subnet", f"{value!r} is not an IPv4 network with host bits zero; {expected}")
    # The reverse zone is one in-addr.arpa zone per /24, and the role
    # addresses (.10 to .53) need the room.
    if subnet.prefixlen != SUBNET_PREFIX:
        sources.fail("subnet", f"{value!r} is a /{subnet.prefixlen}; {expected}")
    if not is_private_subnet(subnet):
        sources.fail("subnet", f"{value!r} is not in an RFC 1918 private range; {expected}")
    return subnet


def _hosts(
    table: dict[str, Any], domain: str, subnet: ipaddress.IPv4Network, sources: Sources
) -> tuple[Host, ...]:
    hosts: list[Host] = []
    for host_name, fields in table.items():
        field = f"hosts.{host_name}"
        if not HOST_NAME.fullmatch(host_name):
            sources.fail(field, "invalid host name; expected a-z, 0-9 and '-', starting with a letter")
        role = _choice(fields.get("role"), f"{field}.role", ROLES, sources)
        if "address" in fields:
            address = _host_address(fields["address"], f"{field}.address", subnet, sources)
        else:
            address = subnet.network_address + ROLE_HOST_NUMBER[role]
        hosts.append(Host(name=host_name, role=role, address=address, domain=domain))

    for role in ROLES:
        players = [host.name for host in hosts if host.role == role]
        if len(players) != 1:
            sources.fail(
                "hosts",
                f"{len(players)} hosts have role {role!r} ({', '.join(players) or 'none'}); "
                "expected exactly one host per role",
            )
    seen: dict[ipaddress.IPv4Address, str] = {}
    for host in hosts:
        if host.address in seen:
            sources.fail(
                f"hosts.{host.name}.address",
                f"{host.address} is already the address of {seen[host.address]}; "
                "give each host its own address",
            )
        seen[host.address] = host.name
    return tuple(hosts)


def _host_address(
    value: Any, field: str, subnet: ipaddress.IPv4Network, sources: Sources
) -> ipaddress.IPv4Address:
    expected = f"expected an IPv4 address inside subnet {subnet}"
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        sources.fail(field, f"{value!r} is not an IPv4 address; {expected}")
    if address not in subnet:
        sources.fail(field, f"{address} is outside the lab subnet; {expected}")
    gateway = subnet.network_address + 1
    if address in (subnet.network_address, subnet.broadcast_address, gateway):
        sources.fail(
            field,
            f"{address} is the network, broadcast or gateway address; "
            f"expected an address from {gateway + 1} to {subnet.broadcast_address - 1}",
        )
    return address


def _users(table: dict[str, Any], host_names: set[str], sources: Sources) -> tuple[User, ...]:
    users: list[User] = []
    uids: dict[int, str] = {}
    for user_name, fields in table.items():
        field = f"users.{user_name}"
        if not USER_NAME.fullmatch(user_name):
            sources.fail(field, "invalid user name; expected a-z, 0-9, '_' and '-', at most 32 characters")
        if user_name in SYSTEM_ACCOUNTS:
            sources.fail(field, f"{user_name!r} is a system account of the lab images; choose another name")
        uid = fields.get("uid")
        if isinstance(uid, bool) or not isinstance(uid, int) or uid not in UID_RANGE:
            sources.fail(f"{field}.uid", f"{uid!r} is not a valid uid; expected an integer from 1000 to 59999")
        if uid in uids:
            sources.fail(f"{field}.uid", f"{uid} is already the uid of {uids[uid]}; give each user its own uid")
        uids[uid] = user_name
        hosts = fields.get("hosts")
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
            sources.fail(f"{field}.hosts", f"{hosts!r} is not a list of host names; expected e.g. [\"regulus\"]")
        for host in hosts:
            if host not in host_names:
                sources.fail(
                    f"{field}.hosts",
                    f"unknown host {host!r}; expected one of {', '.join(sorted(host_names))}",
                )
        users.append(User(name=user_name, uid=uid, hosts=tuple(hosts)))
    return tuple(users)


def _foreign_domains(table: dict[str, Any], lab_domain: str, sources: Sources) -> tuple[ForeignDomain, ...]:
    domains: list[ForeignDomain] = []
    for name, fields in table.items():
        field = f"foreign_domains.{name}"
        domain = _domain(name, field, sources)
        if domain == lab_domain or domain.endswith(f".{lab_domain}"):
            sources.fail(field, f"{domain} is inside the lab domain {lab_domain}; expected another organisation's domain")
        spf = fields.get("spf", "v=spf1 -all")
        if not isinstance(spf, str) or not spf.startswith("v=spf1"):
            sources.fail(f"{field}.spf", f"{spf!r} is not an SPF record; expected text starting with 'v=spf1'")
        policy = _choice(fields.get("dmarc_policy", "reject"), f"{field}.dmarc_policy", DMARC_POLICIES, sources)
        domains.append(ForeignDomain(name=domain, spf=spf, dmarc_policy=policy))
    return tuple(domains)


def _blocklisted(
    values: Any, subnet: ipaddress.IPv4Network, sources: Sources
) -> tuple[ipaddress.IPv4Address, ...]:
    expected = f"expected addresses in 127.0.0.0/8 or the lab subnet {subnet}"
    if not isinstance(values, list):
        sources.fail("blocklist.listed", f"{values!r} is not a list; {expected}")
    listed: list[ipaddress.IPv4Address] = []
    for value in values:
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            sources.fail("blocklist.listed", f"{value!r} is not an IPv4 address; {expected}")
        # Only test and lab addresses: the lab never publishes a claim about a real host.
        if address not in LOOPBACK and address not in subnet:
            sources.fail("blocklist.listed", f"{address} is a real address; {expected}")
        listed.append(address)
    return tuple(listed)


def _domain(value: Any, field: str, sources: Sources) -> str:
    if not isinstance(value, str):
        sources.fail(field, f"{value!r} is not a string; expected a domain name such as campus.test")
    labels = value.rstrip(".").split(".")
    if len(labels) < 2 or len(value) > 200 or not all(DNS_LABEL.fullmatch(label) for label in labels):
        sources.fail(
            field,
            f"invalid domain name {value!r}; expected two or more lower-case labels such as campus.test",
        )
    return ".".join(labels)


def _label(value: Any, field: str, sources: Sources) -> str:
    if not isinstance(value, str) or not DNS_LABEL.fullmatch(value):
        sources.fail(field, f"invalid DNS label {value!r}; expected a-z, 0-9 and '-', such as lab2026")
    return value


def _choice(value: Any, field: str, choices: Sequence[str], sources: Sources) -> Any:
    if value not in choices:
        sources.fail(field, f"invalid value {value!r}; expected one of {', '.join(choices)}")
    return value


def _text(value: Any, field: str, sources: Sources) -> str:
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        sources.fail(field, f"{value!r} is not printable one-line text; expected e.g. 'labenv-mta 0.1.0'")
    return value


def _timezone(value: Any, sources: Sources) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        sources.fail("timezone", f"unknown time zone {value!r}; expected an IANA name such as UTC or America/Los_Angeles")
    return value


def _positive_int(value: Any, field: str, sources: Sources) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        sources.fail(field, f"{value!r} is not a positive integer; expected a size in bytes such as 10485760")
    return value


def _labels(table: dict[str, Any], sources: Sources) -> dict[str, str]:
    for key, value in table.items():
        if not isinstance(value, str):
            sources.fail(f"labels.{key}", f"{value!r} is not a string; expected text")
    return dict(table)
