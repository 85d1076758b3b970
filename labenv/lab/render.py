"""Every file a lab host needs, rendered from the lab model and its keys.

The runtime copies these files into a host's container before it starts
(or, for the files Docker manages, right after). Paths are absolute paths
inside the container.

| role | files beyond the common ones |
|---|---|
| relay | mta.toml, DKIM key, users.sh, sshd drop-in, SSH host key, authorized_keys |
| final | mta.toml, users.sh, sshd drop-in, SSH host key, authorized_keys |
| syslog | rsyslog receiver configuration |
| spamd | local.cf, spamd.args, users.sh |
| dns | nsd.conf and zone files |
"""

from __future__ import annotations

from dataclasses import dataclass

from labenv.lab import accounts, mtaconf, spamdconf
from labenv.lab.export import lab_to_json
from labenv.lab.model import Host, Lab
from labenv.lab.rsyslog import render_rsyslog_client, render_rsyslog_server
from labenv.lab.secrets import LabSecrets
from labenv.lab.zones import render_nsd_conf, render_zones

LAB_JSON_PATH = "/etc/labenv/lab.json"


@dataclass(frozen=True)
class FileSpec:
    """The content, permission bits and owning user (a name) of one rendered file."""

    content: bytes
    mode: int = 0o644
    owner: str = "root"


def text_file(text: str, mode: int = 0o644, owner: str = "root") -> FileSpec:
    """Return a FileSpec holding ``text`` encoded as UTF-8."""
    return FileSpec(text.encode("utf-8"), mode, owner)


def render_host_files(lab: Lab, host: Host, secrets: LabSecrets) -> dict[str, FileSpec]:
    """Render every file ``host`` needs, keyed by its absolute path in the container."""
    files = _common_files(lab, host)
    if host.role == "syslog":
        files["/etc/rsyslog.conf"] = text_file(render_rsyslog_server(lab, host))
    else:
        files["/etc/rsyslog.conf"] = text_file(render_rsyslog_client(lab, host))

    if host.role in ("relay", "final"):
        files.update(_mail_host_files(lab, host, secrets))
    elif host.role == "spamd":
        files[spamdconf.LOCAL_CF_PATH] = text_file(spamdconf.render_local_cf(lab))
        files[spamdconf.SPAMD_ARGS_PATH] = text_file(spamdconf.render_spamd_args(lab))
        files[accounts.USERS_SCRIPT_PATH] = text_file(accounts.render_users_script(lab, host), 0o755)
    elif host.role == "dns":
        zones = render_zones(lab, secrets)
        files["/etc/nsd/nsd.conf"] = text_file(render_nsd_conf(lab, zones))
        for zone in zones:
            files[zone.path] = text_file(zone.text)
    return files


def _common_files(lab: Lab, host: Host) -> dict[str, FileSpec]:
    ns = lab.host_with_role("dns")
    # The lab DNS is the only name server, so nothing resolves outside the lab.
    # timeout:1 attempts:2 makes a lookup that cannot succeed fail in seconds.
    resolv_conf = f"nameserver {ns.address}\nsearch {lab.domain}\noptions timeout:1 attempts:2\n"
    # Only the host's own name is here; every other name comes from the lab DNS,
    # so students see the same lookups the MTA makes.
    hosts = (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{host.address}\t{host.fqdn} {host.name}\n"
    )
    return {
        "/etc/resolv.conf": text_file(resolv_conf),
        "/etc/hosts": text_file(hosts),
        "/etc/hostname": text_file(f"{host.name}\n"),
        LAB_JSON_PATH: text_file(lab_to_json(lab)),
    }


def _mail_host_files(lab: Lab, host: Host, secrets: LabSecrets) -> dict[str, FileSpec]:
    host_key = secrets.host_keys[host.name]
    files = {
        mtaconf.MTA_CONFIG_PATH: text_file(mtaconf.render_mta_toml(lab, host)),
        accounts.USERS_SCRIPT_PATH: text_file(accounts.render_users_script(lab, host), 0o755),
        accounts.SSHD_CONFIG_PATH: text_file(accounts.render_sshd_config(lab, host)),
        accounts.HOST_KEY_PATH: FileSpec(host_key.private_openssh, 0o600),
        accounts.HOST_KEY_PATH + ".pub": text_file(host_key.public_line + "\n"),
    }
    if host.role == "relay":
        # Only the relay signs, so only the relay gets the lab domain's private key.
        dkim = secrets.dkim_keys[lab.domain]
        files[mtaconf.dkim_key_path(lab.domain)] = FileSpec(dkim.private_pem, 0o600)

    authorized_keys = secrets.user_key.public_line + "\n"
    for user in lab.users_on(host.name):
        files[f"{user.home}/.ssh/authorized_keys"] = text_file(authorized_keys, 0o600, user.name)
    return files
