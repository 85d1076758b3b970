"""Commands that run the lab MTA outside containers."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from labenv.mta.config import load_config

log = logging.getLogger(__name__)


@click.group()
def mta() -> None:
    """Run the lab MTA."""


@mta.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="TOML file whose keys match these options; options given here override it.")
@click.option("--role", type=click.Choice(["final", "relay"]), help="Role of this host: final delivers to local mailboxes, relay also forwards mail for remote domains by MX.")
@click.option("--hostname", help="Host name used in the banner, the Received fields and the DSNs.")
@click.option("--listen", help="HOST:PORT to accept SMTP on.")
@click.option("--domain", "domains", multiple=True, help="Domain delivered locally (repeatable).")
@click.option("--user", "users", multiple=True, help="Local mailbox user (repeatable); none means the system's login users.")
@click.option("--spool", help="Spool directory.")
@click.option("--mail-dir", help="Directory holding the mbox files.")
@click.option("--resolver", help="HOST:PORT of the DNS server for PTR, MX and A lookups.")
@click.option("--spamd", help="HOST:PORT of spamd; without it, no spam check is made.")
@click.option("--syslog", help='Syslog target: "/dev/log", "udp:HOST:PORT", "tcp:HOST:PORT" or "none".')
@click.option("--relay-network", "relay_networks", multiple=True, help="CIDR of clients allowed to relay (repeatable).")
@click.pass_context
def serve(ctx: click.Context, config_path: Path | None, domains: tuple[str, ...], users: tuple[str, ...], relay_networks: tuple[str, ...], **options: str | None) -> None:
    """Run the MTA in the foreground until SIGTERM or Ctrl-C; SIGHUP re-reads the [auth] policy of --config."""
    overrides: dict[str, object] = dict(options)
    overrides["mail_dir"] = overrides.pop("mail_dir", None)
    if domains:
        overrides["domains"] = list(domains)
    if users:
        overrides["users"] = list(users)
    if relay_networks:
        overrides["relay_networks"] = list(relay_networks)
    config = load_config(config_path, overrides)
    if not (ctx.obj or {}).get("debug"):
        # aiosmtpd logs every command line at INFO on "mail.log"; the MTA's
        # own mail log already has one line per message.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(_serve(config, config_path))


async def _serve(config, config_path: Path | None = None) -> None:
    from labenv.mta.server import MtaServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    hooks = _auth_hooks(config, lambda: server)
    server = MtaServer(config, hooks=hooks)
    if config_path is not None:
        # SIGHUP re-reads only the [auth] policy; the other settings need a restart.
        loop.add_signal_handler(signal.SIGHUP, _reload_auth_policy, config_path, hooks, lambda: server)
    await server.serve(stop)


def _reload_auth_policy(config_path: Path, hooks, get_server) -> None:
    """Apply the [auth] policy of the file at ``config_path`` to ``hooks``; keep the old one if the file is bad."""
    from labenv.auth.mta_hooks import check_mode
    from labenv.errors import LabenvError
    from labenv.mta.events import LOG_ERR, LOG_INFO

    server = get_server()
    maillog = server.services.maillog if server is not None and server.services is not None else None

    def report(severity: int, text: str) -> None:
        # MailLog.emit also logs through Python logging, so log directly only without it.
        if maillog is not None:
            maillog.emit(severity, text)
        elif severity <= LOG_ERR:
            log.error("%s", text)
        else:
            log.info("%s", text)

    try:
        policy = check_mode(load_config(config_path, {}).auth.get("policy", "observe"))
    except LabenvError as exc:
        report(LOG_ERR, f"auth policy reload failed, keeping {hooks.mode}: {exc}")
        return
    if policy == hooks.mode:
        report(LOG_INFO, f"auth policy unchanged: {policy}")
        return
    previous, hooks.mode = hooks.mode, policy
    report(LOG_INFO, f"auth policy changed from {previous} to {policy}")


def _auth_hooks(config, get_server):
    """Build the SPF/DKIM/DMARC hooks from the [auth] and [dkim] tables of the configuration."""
    from labenv.auth.mta_hooks import LabAuthHooks

    def note(queue_id: str, text: str) -> None:
        server = get_server()
        if server is not None and server.services is not None:
            server.services.maillog.note(queue_id, text)

    verifies = config.role == "final" and config.resolver is not None and bool(config.auth)
    return LabAuthHooks.from_settings(
        hostname=config.hostname,
        resolver=str(config.resolver) if verifies else None,
        auth=config.auth,
        dkim=config.dkim if config.role == "relay" else None,
        dns_timeout=config.dns_timeout,
        note=note,
    )


COMMANDS = [mta]
