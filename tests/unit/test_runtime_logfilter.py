"""Tests of the log line filter behind `labenv logs --host/--grep`."""

import pytest

from labenv.errors import ConfigError
from labenv.runtime.hostfiles import filter_log

LINES = [
    "Dec  4 20:10:51 alcyone labenv-mta[41]: j0O893wM000041: from=<mmouse@toontown.test>, size=93",
    "Dec  4 20:10:51 spamd spamd[12]: spamd: clean message (1.7/5.0) for john:1001",
    "Dec  4 20:10:52 regulus labenv-mta[17]: j0O893wL000017: to=<john@alcyone.campus.test>, stat=Sent",
    "Dec 14 20:10:53 alcyone.campus.test labenv-mta[41]: j0O893wM000041: to=<john@alcyone.campus.test>",
    "not a syslog line",
]


def test_filter_log_by_host():
    selected = filter_log(LINES, "alcyone", None)
    assert selected == [LINES[0], LINES[3]]


def test_filter_log_by_pattern():
    selected = filter_log(LINES, None, r"from=<mmouse@")
    assert selected == [LINES[0]]


def test_filter_log_host_and_pattern():
    selected = filter_log(LINES, "alcyone", r"to=<")
    assert selected == [LINES[3]]


def test_filter_log_no_filter():
    assert filter_log(LINES, None, None) == LINES


def test_filter_log_invalid_pattern():
    with pytest.raises(ConfigError, match="invalid --grep pattern"):
        filter_log(LINES, None, "from=(")
