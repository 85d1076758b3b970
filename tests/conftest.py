"""Settings shared by every test tier.

In CI (``CI=true``) a skipped test is turned into a failure. Tests skip only
when a real program (Docker, spamd, rsyslogd, swaks, bsd-mailx, s-nail) is
missing, and .ci/run installs all of them, so a skip there means an install
step is missing and the test proved nothing.
"""

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"test skipped in CI, where every program it needs is installed: {report.longrepr}"
