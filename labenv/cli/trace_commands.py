"""The trace command: where a delivered message really came from."""

from __future__ import annotations

from pathlib import Path

import click

from labenv.lab.defaults import DEFAULT_LAB_NAME


@click.command()
@click.option("--name", "lab_name", default=None,
              help=f"Lab whose mailbox, mail log and DNS to use [default: {DEFAULT_LAB_NAME}, or none with FILE].")
@click.option("--user", default="john", show_default=True, help="Mailbox on the receiving host to read the message from.")
@click.option("--index", type=int, default=None,
              help="Message number in the mailbox: 1 is the oldest, -1 the newest [default: newest].")
@click.option("--resolver", "resolver_address", default=None,
              help="DNS server HOST:PORT for recomputing SPF, DKIM and DMARC [default: the lab's name server].")
@click.option("--dns-timeout", type=float, default=3.0, show_default=True, help="Seconds one DNS lookup may take.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.argument("message_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def trace(
    lab_name: str | None, user: str, index: int | None, resolver_address: str | None,
    dns_timeout: float, as_json: bool, message_file: Path | None,
) -> None:
    """Explain where a delivered message came from and whether it is from whom it claims.

    Reads the newest message in USER's mailbox on the lab's receiving host,
    or MESSAGE_FILE (a message or an mbox) when given.
    """
    from labenv import trace as tracing
    from labenv.trace_report import render_text

    evidence = client = lab = None
    if message_file is None or lab_name is not None:
        evidence, client, lab = tracing.lab_evidence(lab_name or DEFAULT_LAB_NAME)

    if message_file is not None:
        content = message_file.read_bytes()
        source = str(message_file)
    else:
        content = tracing.read_lab_mailbox(client, lab, user)
        source = f"/var/mail/{user} on {evidence.receiver}"
    messages = tracing.split_mbox(content)
    message, source = tracing.select_message(messages, index, source)

    address = resolver_address or (evidence.resolver_address if evidence else None)
    resolver = tracing.resolver_for(address, dns_timeout)
    report = tracing.trace_message(message, source=source, evidence=evidence, resolver=resolver, resolver_text=address)
    click.echo(report.to_json() if as_json else render_text(report), nl=not as_json)


COMMANDS = [trace]
