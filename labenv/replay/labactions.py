"""Lab-level steps of a replay, such as switching the receiving MTA's auth policy, and undoing them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from labenv.errors import LabenvError
from labenv.lab.model import Lab
from labenv.replay.record import StepRecord
from labenv.replay.scenario import LabAction

log = logging.getLogger(__name__)

# Sets the auth policy of the lab's receiving MTA and returns (previous policy, confirming log line).
PolicySetter = Callable[[str], tuple[str, str]]


def lab_policy_setter(lab: Lab) -> PolicySetter:
    """Return a setter that switches ``lab`` through labenv.runtime.policy (docker exec and SIGHUP)."""

    def set_policy(policy: str) -> tuple[str, str]:
        from labenv.runtime.engine import connect
        from labenv.runtime.policy import set_policy as set_running_policy

        client = connect()
        try:
            change = set_running_policy(client, lab, policy)
        finally:
            client.close()
        return change.previous, change.log_line

    return set_policy


class PolicySwitch:
    """Runs auth-policy steps and remembers the policy the lab had before the first one."""

    def __init__(self, host: str, set_policy: PolicySetter):
        self.host = host
        self._set_policy = set_policy
        # The policy before the replay changed it; None until an auth-policy step succeeds.
        self.original: str | None = None
        # The policy the last successful step set; None while the replay has set none.
        self.current: str | None = None

    def run(self, step: LabAction) -> StepRecord:
        """Apply ``step`` and return its record; a failure becomes the record's error."""
        started = time.monotonic()
        record = StepRecord(host=self.host, user="root", command=f"labenv policy {step.value}", transcript="",
                            exit_status=None, seconds=0.0, action=step.action)
        try:
            previous, log_line = self._set_policy(step.value)
        except LabenvError as exc:
            record.error = f"{step.location}: {exc}"
            return record
        if self.original is None:
            self.original = previous
        self.current = step.value
        record.transcript = f"{log_line}\n"
        record.exit_status = 0
        record.policy = step.value
        record.seconds = round(time.monotonic() - started, 2)
        return record

    def restore(self) -> None:
        """Set the policy the lab had before the replay, if a step left another one; log a failure."""
        if self.original is None or self.current == self.original:
            return
        log.info("restoring auth policy %s on %s", self.original, self.host)
        try:
            self._set_policy(self.original)
        except LabenvError as exc:
            log.error("restoring auth policy %s on %s failed: %s; run 'labenv policy %s'",
                      self.original, self.host, exc, self.original)
            return
        self.current = self.original
