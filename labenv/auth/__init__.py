"""Sender authentication: SPF, DKIM and DMARC checks and signing."""
