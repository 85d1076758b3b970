"""AuthHooks for the lab MTA: DKIM signing on the relay, SPF/DKIM/DMARC checks on the final host."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labenv.auth.dkim_sign import DkimSigningError
from labenv.auth.resolver import make_resolver
from labenv.auth.verify import AuthVerdict, sign_message, verify_message
from labenv.errors import ConfigError
from labenv.mta.hooks import AuthHooks
from labenv.mta.spool import Envelope

log = logging.getLogger(__name__)

MODES = ("observe", "enforce")
# Verdicts are kept per queue id so that a message with several local
# recipients, checked again at delivery, costs one set of DNS lookups.
VERDICT_CACHE_SIZE = 256


def check_mode(mode: Any) -> str:
    """Return ``mode`` if it is a known auth policy, else raise ConfigError."""
    if mode not in MODES:
        raise ConfigError(
            f"invalid auth policy {mode!r}: expected one of {', '.join(MODES)}; "
            "set [auth] policy in the MTA configuration"
        )
    return mode


class LabAuthHooks(AuthHooks):
    """Signs outgoing mail when a DKIM key is given, and checks incoming mail when a resolver is given.

    ``mode`` "observe" only reports the DMARC action in headers and logs;
    "enforce" rejects (through ``reject_reply``) and marks quarantined mail.
    ``note(queue_id, text)`` receives one summary line per checked message.
    """

    def __init__(
        self,
        *,
        authserv_id: str,
        resolver_address: str | None = None,
        mode: str = "observe",
        dkim_domain: str | None = None,
        dkim_selector: str | None = None,
        dkim_key_pem: bytes | None = None,
        dns_timeout: float = 5.0,
        note: Callable[[str, str], None] | None = None,
    ):
        self.authserv_id = authserv_id
        # The one switch between observe and enforce; the MTA sets it again on SIGHUP.
        self.mode = check_mode(mode)
        self.resolver = make_resolver(resolver_address, timeout=dns_timeout) if resolver_address else None
        self.dkim_domain = dkim_domain
        self.dkim_selector = dkim_selector
        self.dkim_key_pem = dkim_key_pem
        self.note = note
        self._verdicts: OrderedDict[str, AuthVerdict] = OrderedDict()

    @classmethod
    def from_settings(
        cls,
        *,
        hostname: str,
        resolver: str | None,
        auth: dict[str, Any] | None,
        dkim: dict[str, Any] | None,
        dns_timeout: float = 5.0,
        note: Callable[[str, str], None] | None = None,
    ) -> "LabAuthHooks":
        """Build the hooks from the ``[auth]`` and ``[dkim]`` tables of the MTA configuration file."""
        mode = (auth or {}).get("policy", "observe")
        key_pem = None
        if dkim:
            missing = [key for key in ("domain", "selector", "key_file") if not dkim.get(key)]
            if missing:
                raise ConfigError(f"missing {', '.join(missing)} in the [dkim] table of the MTA configuration")
            key_path = Path(dkim["key_file"])
            try:
                key_pem = key_path.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read DKIM key {key_path}: {exc.strerror}; check [dkim] key_file in the MTA configuration"
                ) from exc
        return cls(
            authserv_id=hostname,
            resolver_address=resolver,
            mode=mode,
            dkim_domain=(dkim or {}).get("domain"),
            dkim_selector=(dkim or {}).get("selector"),
            dkim_key_pem=key_pem,
            dns_timeout=dns_timeout,
            note=note,
        )

    # -- final host -------------------------------------------------------------

    async def check(self, envelope: Envelope, message: bytes) -> AuthVerdict | None:
        """Return the verdict on ``message``, computed once per queue id; None without a resolver."""
        if self.resolver is None:
            return None
        verdict = self._verdicts.get(envelope.queue_id)
        if verdict is None:
            loop = asyncio.get_running_loop()
            # The checks use blocking DNS lookups, so they run off the event loop.
            verdict = await loop.run_in_executor(None, self._verify, envelope, message)
            self._verdicts[envelope.queue_id] = verdict
            while len(self._verdicts) > VERDICT_CACHE_SIZE:
                self._verdicts.popitem(last=False)
            summary = f"{verdict.log_fields()} mode={self.mode}"
            log.info("%s: %s", envelope.queue_id, summary)
            if self.note is not None:
                self.note(envelope.queue_id, summary)
        return verdict

    def _verify(self, envelope: Envelope, message: bytes) -> AuthVerdict:
        return verify_message(
            message,
            client_ip=envelope.client_ip,
            helo=envelope.helo,
            mail_from=envelope.sender,
            resolver=self.resolver,
            authserv_id=self.authserv_id,
        )

    async def reject_reply(self, envelope: Envelope, message: bytes) -> str | None:
        """Return the 550 reply when the mode is enforce and the DMARC action is reject, else None."""
        # Under observe the check waits for delivery, off the SMTP reply path.
        if self.mode != "enforce":
            return None
        verdict = await self.check(envelope, message)
        if verdict is None or verdict.action != "reject":
            return None
        return verdict.reject_reply()

    async def verify_incoming(self, envelope: Envelope, message: bytes) -> list[bytes]:
        """Return Received-SPF and Authentication-Results, plus the quarantine mark under enforce."""
        verdict = await self.check(envelope, message)
        if verdict is None:
            return []
        fields = verdict.header_lines()
        if self.mode == "enforce" and verdict.action == "quarantine":
            fields.append(verdict.quarantine_field())
        return fields

    # -- relay --------------------------------------------------------------------

    async def sign_outgoing(self, envelope: Envelope, message: bytes) -> list[bytes]:
        """Return a DKIM-Signature for the configured domain, or nothing without a key.

        Every message leaving the relay is signed with the relay's domain,
        whatever its From: field contains. The signature then vouches for the
        relay's handling, and DMARC still fails when From: names another domain.
        """
        if not (self.dkim_key_pem and self.dkim_domain and self.dkim_selector):
            return []
        loop = asyncio.get_running_loop()
        # dkimpy signs in pure Python (about 60 ms for a 2048-bit key on one
        # EPYC core), too long to block the event loop.
        sign = functools.partial(
            sign_message, message,
            domain=self.dkim_domain, selector=self.dkim_selector, private_key_pem=self.dkim_key_pem,
        )
        try:
            signature = await loop.run_in_executor(None, sign)
        except DkimSigningError as exc:
            log.warning("%s: sending unsigned: %s", envelope.queue_id, exc)
            return []
        return [signature]
