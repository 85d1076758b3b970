"""Sender authentication: SPF, DKIM and DMARC checks and signing.

The MTA calls ``verify_message`` on final delivery and ``sign_message`` on
the relay, usually through ``labenv.auth.mta_hooks.LabAuthHooks``. Every
check takes a dnspython resolver (see ``labenv.auth.resolver``), so the lab
DNS and a test server are queried alike.
"""

from labenv.auth.verify import AuthVerdict, sign_message, verify_message

__all__ = ["AuthVerdict", "sign_message", "verify_message"]
