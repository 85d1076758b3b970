"""Tests of subnet picking from the pool and overlap detection."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from labenv.errors import ConfigError
from labenv.lab.subnets import SUBNET_POOL, check_overlap, pick_subnet


def test_pick_default_lab_fixed() -> None:
    assert pick_subnet("default", []) == IPv4Network("10.77.0.0/24")


def test_pick_default_lab_taken() -> None:
    picked = pick_subnet("default", [IPv4Network("10.77.0.0/16")])

    assert picked.subnet_of(SUBNET_POOL)


def test_pick_deterministic_per_name() -> None:
    assert pick_subnet("alpha", []) == pick_subnet("alpha", [])
    assert pick_subnet("alpha", []).prefixlen == 24
    assert pick_subnet("alpha", []) != pick_subnet("beta", [])


def test_pick_skips_taken_ranges() -> None:
    first = pick_subnet("alpha", [])
    taken = [first, IPv4Network(first.network_address + 256, strict=False).supernet(new_prefix=24)]

    picked = pick_subnet("alpha", taken)

    assert picked not in taken
    assert not any(picked.overlaps(other) for other in taken)


def test_pick_pool_exhausted() -> None:
    with pytest.raises(ConfigError, match="no free /24 left in 10.78.0.0/16"):
        pick_subnet("alpha", [SUBNET_POOL])


def test_overlap_names_network() -> None:
    existing = {"bridge": IPv4Network("172.17.0.0/16"), "corp": IPv4Network("10.77.0.0/20")}

    with pytest.raises(ConfigError) as caught:
        check_overlap(IPv4Network("10.77.0.0/24"), existing)

    assert str(caught.value) == (
        "subnet 10.77.0.0/24 overlaps Docker network corp (10.77.0.0/20); "
        "choose another with --subnet or subnet= in the lab file"
    )


def test_overlap_disjoint_passes() -> None:
    check_overlap(IPv4Network("10.77.0.0/24"), {"bridge": IPv4Network("172.17.0.0/16")})
