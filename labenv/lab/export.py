"""The lab model as plain JSON data, copied into each host for debugging."""

from __future__ import annotations

import json
from typing import Any

from labenv.lab.model import Lab


def lab_to_dict(lab: Lab) -> dict[str, Any]:
    """Return ``lab`` as JSON-compatible data, with addresses and networks as strings."""
    return {
        "name": lab.name,
        "domain": lab.domain,
        "subnet": str(lab.subnet),
        "gateway": str(lab.gateway),
        "hosts": [
            {"name": host.name, "role": host.role, "address": str(host.address), "fqdn": host.fqdn}
            for host in lab.hosts
        ],
        "users": [
            {"name": user.name, "uid": user.uid, "gid": user.gid, "home": user.home, "hosts": list(user.hosts)}
            for user in lab.users
        ],
        "product": lab.product,
        "timezone": lab.timezone,
        "auth_policy": lab.auth_policy,
        "dmarc_policy": lab.dmarc_policy,
        "dkim_selector": lab.dkim_selector,
        "foreign_domains": [
            {"name": domain.name, "spf": domain.spf, "dmarc_policy": domain.dmarc_policy}
            for domain in lab.foreign_domains
        ],
        "blocklist_zone": lab.blocklist_zone,
        "blocklisted": [str(address) for address in lab.blocklisted],
        "max_message_size": lab.max_message_size,
        "labels": dict(lab.labels),
    }


def lab_to_json(lab: Lab) -> str:
    """Return ``lab`` as indented JSON text ending in a newline."""
    return json.dumps(lab_to_dict(lab), indent=2) + "\n"
