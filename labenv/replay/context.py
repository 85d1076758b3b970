"""The values a scenario's placeholders take on one lab."""

from __future__ import annotations

from typing import Any

from labenv.lab.model import Lab
from labenv.replay import template
from labenv.replay.record import HostFacts
from labenv.replay.scenario import Scenario


def forged_domain(lab: Lab) -> str:
    """Return the domain a forged sender claims: the lab's first foreign domain."""
    if lab.foreign_domains:
        return lab.foreign_domains[0].name
    # NOTE: a lab file without foreign domains gets a name under .test (RFC 2606)
    # that the lab DNS does not serve, so SPF for it comes out "none".
    return "forged.test"


def lab_context(lab: Lab, scenario: Scenario) -> dict[str, Any]:
    """Build the placeholder values for ``scenario`` on ``lab``; ``captured`` starts empty."""
    context: dict[str, Any] = {
        "lab": {"name": lab.name},
        "domain": lab.domain,
        "forged_domain": forged_domain(lab),
        "hosts": {
            host.name: {"name": host.name, "fqdn": host.fqdn, "address": str(host.address), "role": host.role}
            for host in lab.hosts
        },
        "users": {user.name: {"name": user.name, "uid": str(user.uid)} for user in lab.users},
        "captured": {},
    }
    # Variables may use the lab's names, but not each other or captures.
    context["vars"] = {
        name: template.render(value, context, where=f"{scenario.path} (vars.{name})")
        for name, value in scenario.variables.items()
    }
    return context


def host_facts(lab: Lab) -> list[HostFacts]:
    """Return the name, fqdn, address and role of each host, for the run record."""
    return [HostFacts(host.name, host.fqdn, str(host.address), host.role) for host in lab.hosts]
