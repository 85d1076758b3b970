"""The policy command: switch a running lab between observing and enforcing DMARC."""

from __future__ import annotations

import click

from labenv.auth.mta_hooks import MODES
from labenv.lab.defaults import DEFAULT_LAB_NAME


@click.command()
@click.argument("policy", type=click.Choice(MODES))
@click.option("--name", "lab_name", default=DEFAULT_LAB_NAME, show_default=True, help="Lab whose receiving host to switch.")
def policy(policy: str, lab_name: str) -> None:
    """Set the [auth] POLICY of the lab's receiving MTA without restarting it.

    observe delivers forged mail with the failures in its headers; enforce
    rejects a DMARC reject with 550 5.7.1. Queued mail and mailboxes are kept.
    """
    from labenv.runtime.policy import MTA_CONFIG, set_lab_policy

    change, lab = set_lab_policy(lab_name, policy)
    click.echo(f"{change.container}: {change.message}")
    click.echo(f"confirmed by /var/log/mail.log: {change.log_line}")
    if policy != lab.auth_policy:
        click.echo(
            f"note: {MTA_CONFIG} in {change.container} now differs from the lab's rendered file (policy "
            f"{lab.auth_policy}). 'labenv up' keeps this container, and so this policy, while its image and "
            f"rendered files are unchanged, because it compares the config-hash label and not the file; "
            f"a recreated alcyone runs {lab.auth_policy} again."
        )


COMMANDS = [policy]
