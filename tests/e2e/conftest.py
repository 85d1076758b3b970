"""The lab the end-to-end tests share: brought up once per session and always torn down.

Other e2e modules use the ``lab`` fixture (a running Lab) and ``docker_client``.
Keys go to a temporary state directory so the tests never touch a user's labs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from labenv.lab.model import Lab
from labenv.runtime import lifecycle
from labenv.runtime.engine import connect

# LABENV_TEST_PREFIX keeps two test runs on one Docker engine apart.
PREFIX = os.environ.get("LABENV_TEST_PREFIX", "")
E2E_LAB = f"{PREFIX}e2e"
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


@contextlib.contextmanager
def running_lab(client, name: str) -> Iterator[Lab]:
    """Start lab ``name`` from the built-in defaults, yield its model, and always remove it afterwards."""
    lifecycle.down(client, name)
    try:
        lab, source = lifecycle.load_lab_for_up(client, name, None, {})
        lifecycle.up(client, lab, source, timeout=READY_TIMEOUT)
        yield lab
    finally:
        lifecycle.down(client, name)


@pytest.fixture(scope="session")
def lab(docker_client, state_dir):
    with running_lab(docker_client, E2E_LAB) as started:
        yield started
