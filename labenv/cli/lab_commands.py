"""Commands that build, start, inspect and stop a lab."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from labenv.lab.defaults import DEFAULT_LAB_NAME
from labenv.lab.labfile import load_lab
from labenv.lab.model import AUTH_POLICIES
from labenv.runtime.names import lab_command

name_option = click.option(
    "--name", "lab_name", default=DEFAULT_LAB_NAME, show_default=True, help="Name of the lab."
)


def _echo_progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


@click.command()
@click.option("--offline", is_flag=True, help="Build without network access inside any image build.")
def build(offline: bool) -> None:
    """Build the lab images that are missing or out of date."""
    from labenv.runtime.engine import connect
    from labenv.runtime.images import ensure_images
    from labenv.runtime.lifecycle import prune_images, tag_latest

    client = connect()
    images = ensure_images(client, offline=offline, progress=_echo_progress)
    tag_latest(client, images)
    for reference in prune_images(client, images):
        _echo_progress(f"removed superseded image {reference}")
    for role, image in sorted(images.items()):
        click.echo(f"{role:8} {image}")


@click.command()
@name_option
@click.option("--file", "lab_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Lab file (TOML) to load on top of the built-in defaults.")
@click.option("--subnet", help="IPv4 subnet of the lab network in CIDR form, e.g. 10.80.0.0/24.")
@click.option("--auth", type=click.Choice(AUTH_POLICIES), help="What the receiving MTA does with failed SPF/DKIM/DMARC.")
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Seconds to wait for every host to be ready after start.")
@click.option("--offline", is_flag=True, help="Build missing images without network access inside the builds.")
def up(lab_name: str, lab_file: Path | None, subnet: str | None, auth: str | None, timeout: float, offline: bool) -> None:
    """Build what is missing, start the lab and wait until every host is ready."""
    from labenv.runtime import lifecycle
    from labenv.runtime.engine import connect
    from labenv.runtime.status import lab_status

    client = connect()
    overrides = {}
    if subnet:
        overrides["subnet"] = subnet
    if auth:
        overrides["auth_policy"] = auth
    lab, source = lifecycle.load_lab_for_up(client, lab_name, lab_file, overrides)
    click.echo(f"starting lab {lab.name} on {lab.subnet}", err=True)
    lifecycle.up(client, lab, source, offline=offline, timeout=timeout, progress=_echo_progress)

    _print_hosts(lab_status(client, lab.name))
    relay = lab.host_with_role("relay").name
    user = lab.users[0].name if lab.users else "root"
    click.echo(f"\nlog in:     {lab_command(f'ssh {relay} --user {user}', lab.name)}")
    click.echo(f"read mail:  {lab_command(f'mail {user}', lab.name)}")
    click.echo(f"mail log:   {lab_command('logs --file mail', lab.name)}")
    click.echo(f"stop:       {lab_command('down', lab.name)}")


@click.command()
@click.option("--name", "lab_name", default=None, help=f"Name of the lab to remove [default: {DEFAULT_LAB_NAME}].")
@click.option("--all", "all_labs", is_flag=True, help="Remove every lab on this Docker engine.")
def down(lab_name: str | None, all_labs: bool) -> None:
    """Remove a lab's containers, network and volumes (found by their labels only)."""
    from labenv.runtime import lifecycle
    from labenv.runtime.engine import connect

    if all_labs and lab_name:
        raise click.UsageError("give either --name or --all, not both")
    target = None if all_labs else (lab_name or DEFAULT_LAB_NAME)
    removed = lifecycle.down(connect(), target)
    if removed:
        click.echo(f"removed {len(removed)} objects: {', '.join(removed)}")
    else:
        click.echo(f"nothing to remove for {'any lab' if target is None else 'lab ' + target}")


@click.command()
@name_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(lab_name: str, as_json: bool) -> None:
    """Show a lab's hosts, addresses, roles and health."""
    from labenv.errors import ConfigError
    from labenv.runtime.engine import connect
    from labenv.runtime.status import lab_names, lab_status

    client = connect()
    result = lab_status(client, lab_name)
    if result is None:
        others = [name for name in lab_names(client) if name != lab_name]
        hint = f" (running labs: {', '.join(others)})" if others else ""
        raise ConfigError(f"lab {lab_name} is not running{hint}; start it with '{lab_command('up', lab_name)}'")
    if as_json:
        click.echo(result.to_json())
        return
    click.echo(f"lab {result.name}: domain {result.domain}, network {result.network} {result.subnet}")
    _print_hosts(result)
    for host in result.hosts:
        if host.health != "ready":
            click.echo(f"{host.name} is not ready: read 'docker logs {host.container}'; "
                       f"'{lab_command('up', result.name)}' starts stopped hosts again")


def _print_hosts(result) -> None:
    for host in result.hosts:
        ports = " ports " + ",".join(host.published_ports) if host.published_ports else ""
        click.echo(f"  {host.name:9} {host.role:7} {host.address:15} {host.fqdn:28} {host.health}{ports}")


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@name_option
@click.option("--user", "-u", default="root", show_default=True, help="User to run the command as.")
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def exec_(lab_name: str, user: str, host: str, command: tuple[str, ...]) -> None:
    """Run COMMAND (a login shell when empty) in HOST with docker exec."""
    from labenv.runtime.access import exec_argv
    from labenv.runtime.engine import connect
    from labenv.runtime.hostfiles import host_container
    from labenv.runtime.status import load_running_lab

    client = connect()
    host_container(client, load_running_lab(client, lab_name), host)
    argv = exec_argv(lab_name, host, command, user, interactive=sys.stdin.isatty())
    os.execv(argv[0], argv)


@click.command()
@name_option
@click.option("--user", "-u", default=None, help="Lab user to log in as [default: the lab's first user].")
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh(lab_name: str, user: str | None, host: str, command: tuple[str, ...]) -> None:
    """Log into HOST over SSH with the lab's key, tunnelled through docker exec."""
    from labenv.runtime.access import ssh_argv
    from labenv.runtime.engine import connect
    from labenv.runtime.hostfiles import host_container
    from labenv.runtime.lookup import require_account
    from labenv.runtime.status import load_running_lab

    client = connect()
    lab = load_running_lab(client, lab_name)
    host_container(client, lab, host)
    login = user or (lab.users[0].name if lab.users else "root")
    # sshd would only reject the key with "Permission denied (publickey)".
    require_account(lab, host, login)
    argv = ssh_argv(lab, host, login, command)
    os.execv(argv[0], argv)


@click.command()
@name_option
@click.option("--host", "host_filter", help="Show only lines written by this host (short name).")
@click.option("--grep", "pattern", help="Show only lines matching this regular expression.")
@click.option("--file", "log_file", type=click.Choice(["syslog", "mail"]), default="syslog", show_default=True,
              help="Which log of the log host to read: /var/log/syslog or /var/log/mail.log.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
def logs(lab_name: str, host_filter: str | None, pattern: str | None, log_file: str, follow: bool) -> None:
    """Print the central log of the lab, kept by its log host."""
    from labenv.runtime.engine import connect
    from labenv.runtime.hostfiles import LOG_FILES, filter_log, follow_log, host_container, read_host_file
    from labenv.runtime.lookup import require_host
    from labenv.runtime.status import load_running_lab

    client = connect()
    lab = load_running_lab(client, lab_name)
    if host_filter is not None:
        require_host(lab, host_filter)
    container = host_container(client, lab, lab.host_with_role("syslog").name)
    path = LOG_FILES[log_file]
    text = read_host_file(container, path).decode(errors="replace")
    for line in filter_log(text.splitlines(), host_filter, pattern):
        click.echo(line)
    if follow:
        try:
            for line in follow_log(container, path, host_filter, pattern):
                click.echo(line)
        except KeyboardInterrupt:
            return


@click.command()
@name_option
@click.option("--raw", is_flag=True, help="Print the mbox file as stored, with its From_ separator lines.")
@click.argument("user")
def mail(lab_name: str, raw: bool, user: str) -> None:
    """Print USER's mailbox on the receiving host with full headers."""
    import mailbox as mailbox_module
    import tempfile

    from labenv.runtime.engine import connect
    from labenv.runtime.hostfiles import host_container, read_host_file
    from labenv.runtime.lookup import require_mail_user
    from labenv.runtime.status import load_running_lab

    client = connect()
    lab = load_running_lab(client, lab_name)
    final = lab.host_with_role("final").name
    require_mail_user(lab, final, user)
    container = host_container(client, lab, final)
    content = read_host_file(container, f"/var/mail/{user}", missing_ok=True)
    if not content:
        click.echo(f"{user}'s mailbox on {final} is empty", err=True)
        return
    if raw:
        click.echo(content.decode(errors="replace"), nl=False)
        return
    with tempfile.NamedTemporaryFile(suffix=".mbox") as copy:
        copy.write(content)
        copy.flush()
        box = mailbox_module.mbox(copy.name, create=False)
        try:
            messages = list(box)
        finally:
            box.close()
    for number, message in enumerate(messages, 1):
        click.echo(f"--- message {number} of {len(messages)} ---")
        click.echo(message.as_bytes().decode(errors="replace"))


@click.command(name="compose-file")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("compose"), show_default=True,
              help="Folder to write docker-compose.yml and the hosts' files into.")
def compose_file(output: Path) -> None:
    """Write the default lab as a docker-compose file with its hosts' files."""
    from labenv.runtime.compose import load_or_create_public_keys, write_compose

    lab = load_lab(None, name=DEFAULT_LAB_NAME)
    written = write_compose(output, lab, load_or_create_public_keys(output, lab))
    click.echo(f"wrote {len(written)} files under {output}")


COMMANDS = [build, up, down, status, exec_, ssh, logs, mail, compose_file]
