"""Settings of one MTA instance and the loader of its TOML configuration file."""

from __future__ import annotations

import ipaddress
import pwd
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from labenv import __version__
from labenv.errors import ConfigError

ROLES = ("final", "relay")
DEFAULT_PRODUCT = f"labenv-mta {__version__}"

# Accounts below this uid are system accounts on Debian (adduser.conf FIRST_UID).
FIRST_LOGIN_UID = 1000
NO_LOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")


@dataclass(frozen=True)
class HostPort:
    """A ``HOST:PORT`` pair from a setting."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MtaConfig:
    """Everything one MTA needs to run; see docs/architecture.md for the file format."""

    role: str = "final"
    hostname: str = "localhost"
    listen: HostPort = HostPort("127.0.0.1", 25)
    domains: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    spool: Path = Path("/var/spool/labenv-mta")
    mail_dir: Path = Path("/var/mail")
    resolver: HostPort | None = None
    # Consulted before DNS for client names; None looks in DNS only.
    hosts_file: Path | None = Path("/etc/hosts")
    spamd: HostPort | None = None
    syslog: str = "none"
    syslog_tag: str = "labenv-mta"
    relay_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    product: str = DEFAULT_PRODUCT
    # The daemon= field of the from= log lines; the handout's sendmail (and
    # Debian's sendmail.mc) name the port-25 daemon MTA-v4.
    daemon_name: str = "MTA-v4"
    max_message_size: int = 10 * 1024 * 1024
    # Port of the next hop's SMTP server; tests point the relay at a server on an ephemeral port.
    relay_port: int = 25
    expn: bool = True
    vrfy: bool = True
    # RFC 5321 section 4.5.3.2.7 sets the server idle timeout to at least 5 minutes.
    idle_timeout: float = 300.0
    dns_timeout: float = 5.0
    spamd_timeout: float = 30.0
    # spamc's own default limit (500 KB); larger mail is delivered without a scan.
    spamd_max_size: int = 512_000
    delivery_workers: int = 16
    retry_delays: tuple[float, ...] = (60.0, 300.0, 900.0, 1800.0, 3600.0)
    # How long a message may stay queued before it bounces (sendmail's Timeout.queuereturn).
    max_queue_age: float = 5 * 86400.0
    # Seconds a message may wait before a recipient with NOTIFY=DELAY gets a delay notice.
    delay_warning: float = 4 * 3600.0
    dotlock_timeout: float = 30.0
    # The [auth] and [dkim] tables of the file, kept as read for the sender
    # authentication hooks (labenv.mta.hooks), which check their own keys.
    auth: dict[str, Any] = field(default_factory=dict)
    dkim: dict[str, Any] = field(default_factory=dict)

    def local_users(self) -> frozenset[str]:
        """Return the names that count as local mailboxes."""
        if self.users:
            return frozenset(self.users)
        return frozenset(
            entry.pw_name
            for entry in pwd.getpwall()
            if entry.pw_uid >= FIRST_LOGIN_UID and entry.pw_shell not in NO_LOGIN_SHELLS and entry.pw_name != "nobody"
        )


def parse_host_port(value: str, field_name: str) -> HostPort:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6) for the setting ``field_name``."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"invalid {field_name} {value!r}: expected HOST:PORT with a port from 0 to 65535")
    return HostPort(host.strip("[]"), int(port_text))


def _network(value: str, field_name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ConfigError(f"invalid {field_name} entry {value!r}: expected a network such as 10.77.0.0/24") from None


def _string_list(value: Any, field_name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"invalid {field_name} {value!r}: expected a list of strings")
    return tuple(value)


def _number(value: Any, field_name: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ConfigError(f"invalid {field_name} {value!r}: expected a {kind.__name__}")
    if value < 0:
        raise ConfigError(f"invalid {field_name} {value!r}: expected a value of 0 or more")
    return kind(value)


def _role(value: Any, name: str) -> str:
    if value not in ROLES:
        raise ConfigError(f"invalid role {value!r}: expected one of {', '.join(ROLES)}")
    return value


def _address(value: Any, name: str) -> HostPort | None:
    if value is None or value == "":
        if name == "listen":
            raise ConfigError("missing listen: expected HOST:PORT")
        return None
    if not isinstance(value, str):
        raise ConfigError(f"invalid {name} {value!r}: expected HOST:PORT")
    return parse_host_port(value, name)


def _domains(value: Any, name: str) -> tuple[str, ...]:
    return tuple(item.lower() for item in _string_list(value, name))


def _networks(value: Any, name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(_network(item, name) for item in _string_list(value, name))


def _directory(value: Any, name: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"invalid {name} {value!r}: expected a directory path")
    return Path(value)


def _optional_file(value: Any, name: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"invalid {name} {value!r}: expected a file path, or \"\" for none")
    return Path(value)


def _delays(value: Any, name: str) -> tuple[float, ...]:
    delays = tuple(_number(item, name, float) for item in (value if isinstance(value, list) else [value]))
    if not delays:
        raise ConfigError(f"invalid {name} []: expected at least one delay in seconds")
    return delays


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"invalid {name} {value!r}: expected true or false")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"invalid {name} {value!r}: expected a non-empty string")
    return value


def _table(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"invalid {name} {value!r}: expected a [{name}] table")
    return dict(value)


def _integer(value: Any, name: str) -> int:
    return _number(value, name, int)


def _seconds(value: Any, name: str) -> float:
    return _number(value, name, float)


# The converter of each setting from TOML or the command line; settings not listed are strings.
CONVERTERS = {
    "role": _role,
    "listen": _address,
    "resolver": _address,
    "spamd": _address,
    "domains": _domains,
    "users": _string_list,
    "relay_networks": _networks,
    "spool": _directory,
    "mail_dir": _directory,
    "hosts_file": _optional_file,
    "retry_delays": _delays,
    "max_message_size": _integer,
    "relay_port": _integer,
    "delivery_workers": _integer,
    "spamd_max_size": _integer,
    "idle_timeout": _seconds,
    "dns_timeout": _seconds,
    "spamd_timeout": _seconds,
    "max_queue_age": _seconds,
    "delay_warning": _seconds,
    "dotlock_timeout": _seconds,
    "expn": _flag,
    "auth": _table,
    "dkim": _table,
    "vrfy": _flag,
}


FIELD_NAMES = frozenset(item.name for item in fields(MtaConfig))


def build_config(settings: dict[str, Any], base: MtaConfig | None = None) -> MtaConfig:
    """Apply raw ``settings`` (keys as in the TOML file) over ``base`` or the defaults."""
    unknown = sorted(set(settings) - FIELD_NAMES)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r}: expected one of {', '.join(sorted(FIELD_NAMES))}"
        )
    converted = {name: CONVERTERS.get(name, _text)(value, name) for name, value in settings.items()}
    config = replace(base or MtaConfig(), **converted)
    if config.relay_port == 0:
        raise ConfigError("invalid relay_port 0: expected a port from 1 to 65535")
    return config


def load_config(path: Path | None, overrides: dict[str, Any]) -> MtaConfig:
    """Read the TOML file at ``path`` (if any), then apply ``overrides`` from the command line."""
    settings: dict[str, Any] = {}
    if path is not None:
        try:
            settings = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read MTA configuration {path}: {exc.strerror}; check the --config path") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid TOML in MTA configuration {path}: {exc}") from exc
    settings.update({name: value for name, value in overrides.items() if value is not None})
    return build_config(settings)
