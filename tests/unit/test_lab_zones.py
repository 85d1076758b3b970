"""Tests of the generated DNS zones and NSD configuration, read back with dnspython."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from labenv.errors import ConfigError
from labenv.lab.labfile import load_lab
from labenv.lab.secrets import load_or_create_secrets
from labenv.lab.zones import Zone, check_zone, render_nsd_conf, render_zones, reverse_zone_name, txt_rdata


@pytest.fixture(scope="module")
def lab():
    return load_lab(None)


@pytest.fixture(scope="module")
def secrets(lab, tmp_path_factory):
    return load_or_create_secrets(tmp_path_factory.mktemp("state"), lab)


@pytest.fixture(scope="module")
def zones(lab, secrets) -> dict[str, dns.zone.Zone]:
    parsed = {}
    for zone in render_zones(lab, secrets):
        parsed[zone.name] = dns.zone.from_text(zone.text, origin=zone.name + ".", relativize=False)
    return parsed


def values(zone: dns.zone.Zone, name: str, rdtype: str) -> list[str]:
    rdataset = zone.get_rdataset(name + ".", rdtype)
    if rdataset is None:
        return []
    return sorted(rdata.to_text() for rdata in rdataset)


def joined_txt(zone: dns.zone.Zone, name: str) -> list[str]:
    rdataset = zone.get_rdataset(name + ".", dns.rdatatype.TXT)
    return sorted(b"".join(rdata.strings).decode("ascii") for rdata in rdataset)


def test_zones_names(zones) -> None:
    assert sorted(zones) == ["0.77.10.in-addr.arpa", "bl.campus.test", "campus.test", "toontown.test"]


def test_lab_zone_addresses(zones) -> None:
    zone = zones["campus.test"]

    assert values(zone, "regulus.campus.test", "A") == ["10.77.0.10"]
    assert values(zone, "alcyone.campus.test", "A") == ["10.77.0.20"]
    assert values(zone, "loghost.campus.test", "A") == ["10.77.0.30"]
    assert values(zone, "spamd.campus.test", "A") == ["10.77.0.40"]
    assert values(zone, "ns.campus.test", "A") == ["10.77.0.53"]
    assert values(zone, "campus.test", "NS") == ["ns.campus.test."]
    assert values(zone, "campus.test", "SOA")[0].startswith("ns.campus.test. hostmaster.campus.test. 1 ")


def test_lab_zone_mx(zones) -> None:
    zone = zones["campus.test"]

    assert values(zone, "campus.test", "MX") == ["10 alcyone.campus.test."]
    assert values(zone, "alcyone.campus.test", "MX") == ["10 alcyone.campus.test."]
    assert values(zone, "regulus.campus.test", "MX") == []


def test_lab_zone_spf_dmarc(zones) -> None:
    zone = zones["campus.test"]

    assert joined_txt(zone, "campus.test") == ["v=spf1 ip4:10.77.0.10 -all"]
    assert joined_txt(zone, "regulus.campus.test") == ["v=spf1 ip4:10.77.0.10 -all"]
    assert joined_txt(zone, "alcyone.campus.test") == ["v=spf1 ip4:10.77.0.20 -all"]
    assert joined_txt(zone, "loghost.campus.test") == ["v=spf1 -all"]
    assert joined_txt(zone, "_dmarc.campus.test") == ["v=DMARC1; p=none; adkim=r; aspf=r"]


def test_lab_zone_dkim_split(zones, secrets) -> None:
    rdataset = zones["campus.test"].get_rdataset("lab2026._domainkey.campus.test.", "TXT")
    strings = list(rdataset)[0].strings

    assert len(strings) == 2
    assert len(strings[0]) == 255
    assert b"".join(strings).decode() == f"v=DKIM1; k=rsa; p={secrets.dkim_keys['campus.test'].public_base64}"


def test_reverse_zone_ptr(zones) -> None:
    zone = zones["0.77.10.in-addr.arpa"]

    assert values(zone, "10.0.77.10.in-addr.arpa", "PTR") == ["regulus.campus.test."]
    assert values(zone, "20.0.77.10.in-addr.arpa", "PTR") == ["alcyone.campus.test."]
    assert values(zone, "53.0.77.10.in-addr.arpa", "PTR") == ["ns.campus.test."]


def test_foreign_zone_records(zones, secrets) -> None:
    zone = zones["toontown.test"]
    own_key = secrets.dkim_keys["toontown.test"].public_base64

    assert joined_txt(zone, "toontown.test") == ["v=spf1 -all"]
    assert joined_txt(zone, "_dmarc.toontown.test") == ["v=DMARC1; p=reject; adkim=r; aspf=r"]
    assert joined_txt(zone, "lab2026._domainkey.toontown.test") == [f"v=DKIM1; k=rsa; p={own_key}"]
    assert own_key != secrets.dkim_keys["campus.test"].public_base64
    assert values(zone, "toontown.test", "A") == []


def test_blocklist_zone_entries(zones) -> None:
    zone = zones["bl.campus.test"]

    assert values(zone, "2.0.0.127.bl.campus.test", "A") == ["127.0.0.2"]
    assert joined_txt(zone, "2.0.0.127.bl.campus.test") == [
        "127.0.0.2 is listed in the lab blocklist bl.campus.test"
    ]
    assert values(zone, "1.0.0.127.bl.campus.test", "A") == []
    assert values(zones["campus.test"], "bl.campus.test", "NS") == ["ns.campus.test."]


def test_txt_rdata_split_and_escape() -> None:
    assert txt_rdata("a" * 300) == '"' + "a" * 255 + '" "' + "a" * 45 + '"'
    assert txt_rdata('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert txt_rdata("") == '""'


def test_reverse_zone_name_other_subnet() -> None:
    assert reverse_zone_name(ipaddress.IPv4Network("192.168.44.0/24")) == "44.168.192.in-addr.arpa"


def test_check_zone_invalid() -> None:
    broken = Zone("campus.test", "$ORIGIN campus.test.\n@ IN A 10.77.0.999\n")

    with pytest.raises(ConfigError, match="generated zone campus.test is invalid"):
        check_zone(broken)


def test_check_zone_without_soa() -> None:
    with pytest.raises(ConfigError, match="campus.test"):
        check_zone(Zone("campus.test", "$ORIGIN campus.test.\nwww IN A 10.77.0.9\n"))


def test_nsd_conf_listens_and_zones(lab, secrets) -> None:
    zones = render_zones(lab, secrets)

    conf = render_nsd_conf(lab, zones)

    lines = [line.strip() for line in conf.splitlines()]
    assert "ip-address: 10.77.0.53" in lines
    assert "ip-address: 127.0.0.1" in lines
    assert 'zonesdir: "/etc/nsd/zones"' in lines
    for zone in zones:
        assert f"name: {zone.name}" in lines
        assert f'zonefile: "/etc/nsd/zones/{zone.name}.zone"' in lines


def test_zones_follow_lab_file(tmp_path: Path) -> None:
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text('domain = "csustan.test"\nsubnet = "192.168.44.0/24"\n', encoding="utf-8")
    lab = load_lab(lab_file)

    zones = {zone.name: zone.text for zone in render_zones(lab, load_or_create_secrets(tmp_path / "state", lab))}

    reverse = dns.zone.from_text(zones["44.168.192.in-addr.arpa"], origin="44.168.192.in-addr.arpa.", relativize=False)
    assert values(reverse, "20.44.168.192.in-addr.arpa", "PTR") == ["alcyone.csustan.test."]
    forward = dns.zone.from_text(zones["csustan.test"], origin="csustan.test.", relativize=False)
    assert values(forward, "csustan.test", "MX") == ["10 alcyone.csustan.test."]
    assert "bl.csustan.test" in zones
