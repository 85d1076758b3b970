"""Settings shared by every test tier.

In CI (``CI=true``) a Docker-marked test that skips is turned into a failure,
because those tests are the only proof that the lab works in real containers.
"""

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("docker") is not None:
        report.outcome = "failed"
        report.longrepr = f"Docker test skipped in CI: {report.longrepr}"
