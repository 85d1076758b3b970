"""LabAuthHooks built from the MTA configuration tables."""

import asyncio

import pytest

from labenv.auth.dkim_keys import generate_key_pair
from labenv.auth.mta_hooks import LabAuthHooks
from labenv.errors import ConfigError
from labenv.mta.spool import Envelope

MESSAGE = b"From: john@campus.test\r\nTo: jane@alcyone.campus.test\r\nSubject: hi\r\n\r\nhello\r\n"


def envelope() -> Envelope:
    return Envelope(queue_id="q1", sender="john@campus.test", recipients=[], received_at=0.0)


def test_hooks_from_settings_sign(tmp_path):
    key_path = tmp_path / "campus.test.key"
    key_path.write_bytes(generate_key_pair(bits=1024).private_key_pem)
    hooks = LabAuthHooks.from_settings(
        hostname="regulus.campus.test", resolver=None, auth={"policy": "enforce"},
        dkim={"domain": "campus.test", "selector": "lab2026", "key_file": str(key_path)},
    )
    assert hooks.mode == "enforce"
    [signature] = asyncio.run(hooks.sign_outgoing(envelope(), MESSAGE))
    assert signature.startswith(b"DKIM-Signature: ")
    assert b"s=lab2026" in signature


def test_hooks_without_key_sign_nothing():
    hooks = LabAuthHooks.from_settings(hostname="alcyone.campus.test", resolver=None, auth=None, dkim=None)
    assert asyncio.run(hooks.sign_outgoing(envelope(), MESSAGE)) == []
    assert asyncio.run(hooks.verify_incoming(envelope(), MESSAGE)) == []


def test_hooks_missing_key_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read DKIM key .*missing.key"):
        LabAuthHooks.from_settings(
            hostname="regulus.campus.test", resolver=None, auth=None,
            dkim={"domain": "campus.test", "selector": "lab", "key_file": str(tmp_path / "missing.key")},
        )


def test_hooks_incomplete_dkim_table():
    with pytest.raises(ConfigError, match="missing selector, key_file"):
        LabAuthHooks.from_settings(hostname="regulus.campus.test", resolver=None, auth=None, dkim={"domain": "campus.test"})


def test_hooks_invalid_mode():
    with pytest.raises(ConfigError, match="invalid auth policy 'strict'"):
        LabAuthHooks.from_settings(hostname="alcyone.campus.test", resolver=None, auth={"policy": "strict"}, dkim=None)


def test_hooks_bad_key_sends_unsigned():
    hooks = LabAuthHooks(authserv_id="x", dkim_domain="campus.test", dkim_selector="lab", dkim_key_pem=b"not a key")
    assert asyncio.run(hooks.sign_outgoing(envelope(), MESSAGE)) == []
