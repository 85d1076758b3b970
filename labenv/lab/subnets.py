"""Choosing a lab subnet that no other Docker network on this machine uses."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping

from labenv.errors import ConfigError
from labenv.lab.defaults import DEFAULT_LAB_NAME, DEFAULT_SUBNET

# Labs other than the default one take a /24 from this pool, so that several
# labs can run side by side without anyone choosing addresses by hand.
SUBNET_POOL = ipaddress.IPv4Network("10.78.0.0/16")
SUBNET_PREFIX = 24

# RFC 1918 private ranges: a lab network must never use a routable address.
PRIVATE_RANGES = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)


def is_private_subnet(subnet: ipaddress.IPv4Network) -> bool:
    """Return whether ``subnet`` lies inside one of the RFC 1918 ranges."""
    return any(subnet.subnet_of(private) for private in PRIVATE_RANGES)


def pick_subnet(name: str, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """Pick the subnet of lab ``name`` that overlaps none of ``taken``.

    The default lab keeps DEFAULT_SUBNET while it is free. Other names start
    at a /24 of SUBNET_POOL chosen by a hash of the name and probe the next
    ones in order. The same name therefore gets the same subnet on every run
    while the machine's other networks stay the same.
    """
    taken = list(taken)
    if name == DEFAULT_LAB_NAME and not _overlaps_any(DEFAULT_SUBNET, taken):
        return DEFAULT_SUBNET

    candidates = list(SUBNET_POOL.subnets(new_prefix=SUBNET_PREFIX))
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    start = int.from_bytes(digest[:4], "big") % len(candidates)
    for step in range(len(candidates)):
        candidate = candidates[(start + step) % len(candidates)]
        if not _overlaps_any(candidate, taken):
            return candidate
    raise ConfigError(
        f"no free /{SUBNET_PREFIX} left in {SUBNET_POOL} for lab {name!r}; "
        "remove unused Docker networks or set subnet= in the lab file"
    )


def check_overlap(
    subnet: ipaddress.IPv4Network, existing: Mapping[str, ipaddress.IPv4Network]
) -> None:
    """Raise ConfigError if ``subnet`` overlaps one of the ``existing`` Docker networks.

    ``existing`` maps a Docker network name to its subnet. The caller leaves
    out the lab's own network when it already exists.
    """
    for network_name, other in sorted(existing.items()):
        if subnet.overlaps(other):
            raise ConfigError(
                f"subnet {subnet} overlaps Docker network {network_name} ({other}); "
                "choose another with --subnet or subnet= in the lab file"
            )


def _overlaps_any(
    subnet: ipaddress.IPv4Network, taken: Iterable[ipaddress.IPv4Network]
) -> bool:
    return any(subnet.overlaps(other) for other in taken)
