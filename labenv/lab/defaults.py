"""The built-in default lab, written in the same shape as a lab file.

``labenv up`` without a lab file runs this lab. A lab file is merged on top
of it by ``labenv.lab.labfile``, so every key here is also a valid lab file key.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from labenv import __version__
from labenv.lab.model import Role

DEFAULT_LAB_NAME = "default"

# The default lab has a fixed subnet so that addresses in docs and scenarios
# stay the same; other labs get one from labenv.lab.subnets.SUBNET_POOL.
DEFAULT_SUBNET = ipaddress.IPv4Network("10.77.0.0/24")

# Host part of each role's address inside the lab subnet. The first address
# (.1) is the gateway that Docker gives the bridge.
ROLE_HOST_NUMBER: dict[Role, int] = {
    "relay": 10,
    "final": 20,
    "syslog": 30,
    "spamd": 40,
    "dns": 53,
}

DEFAULT_LAB: dict[str, Any] = {
    "domain": "campus.test",
    "product": f"labenv-mta {__version__}",
    "timezone": "UTC",
    "auth_policy": "observe",
    "dmarc_policy": "none",
    "dkim_selector": "lab2026",
    "max_message_size": 10 * 1024 * 1024,
    "hosts": {
        "regulus": {"role": "relay"},
        "alcyone": {"role": "final"},
        "loghost": {"role": "syslog"},
        "spamd": {"role": "spamd"},
        "ns": {"role": "dns"},
    },
    "users": {
        "john": {"uid": 1001, "hosts": ["regulus", "alcyone"]},
        "jane": {"uid": 1002, "hosts": ["regulus", "alcyone"]},
    },
    # The organisation a forged sender claims to be. It publishes that it
    # sends no mail at all, so every claim in its name fails SPF and DMARC.
    "foreign_domains": {
        "toontown.test": {"spf": "v=spf1 -all", "dmarc_policy": "reject"},
    },
    # 127.0.0.2 is the entry every DNS blocklist lists for testing (RFC 5782),
    # so a lab check can query it without listing a real address.
    # The zone name defaults to bl.<domain>, filled in by the loader.
    "blocklist": {
        "listed": ["127.0.0.2"],
    },
}
