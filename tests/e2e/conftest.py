"""The lab the end-to-end tests share: brought up once per session and always torn down.

Other e2e modules use the ``lab`` fixture (a running Lab) and ``docker_client``.
Keys go to a temporary state directory so the tests never touch a user's labs.
"""

from __future__ import annotations

import os

import pytest

from labenv.runtime import lifecycle
from labenv.runtime.engine import connect

E2E_LAB = "e2e"
# A cold start builds every image, which takes minutes; a warm one takes seconds.
READY_TIMEOUT = 300.0


@pytest.fixture(scope="session")
def docker_client():
    return connect()


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("labenv-state")
    previous = os.environ.get("LABENV_STATE_DIR")
    os.environ["LABENV_STATE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("LABENV_STATE_DIR", None)
    else:
        os.environ["LABENV_STATE_DIR"] = previous


def start_lab(client, name: str):
    """Start lab ``name`` from the built-in defaults and return its model; the caller must take it down."""
    lab, source = lifecycle.load_lab_for_up(client, name, None, {})
    lifecycle.up(client, lab, source, timeout=READY_TIMEOUT)
    return lab


@pytest.fixture(scope="session")
def lab(docker_client, state_dir):
    lifecycle.down(docker_client, E2E_LAB)
    try:
        yield start_lab(docker_client, E2E_LAB)
    finally:
        lifecycle.down(docker_client, E2E_LAB)
