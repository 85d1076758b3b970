"""Per-lab keys: the SSH user key, SSH host keys and DKIM signing keys.

Keys are created on first use and kept under the lab's state directory, so
that known_hosts entries and published DKIM records stay valid across
``labenv down`` and ``labenv up``. Every file there is written with mode 0600.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from labenv.auth.dkim_keys import DEFAULT_KEY_BITS, generate_key_pair, public_record_for
from labenv.errors import ConfigError
from labenv.lab.model import Lab

log = logging.getLogger(__name__)

DKIM_KEY_BITS = DEFAULT_KEY_BITS


@dataclass(frozen=True)
class SshKeyPair:
    """An ed25519 key pair: the private key in OpenSSH format, the public key as one line."""

    private_openssh: bytes
    public_line: str


@dataclass(frozen=True)
class DkimKey:
    """The RSA signing key of one domain and the TXT record value that publishes it."""

    domain: str
    selector: str
    private_pem: bytes
    # Base64 of the DER SubjectPublicKeyInfo, the p= tag of RFC 6376 section 3.6.1.
    public_base64: str

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record_text(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_base64}"


@dataclass(frozen=True)
class LabSecrets:
    """Every key of one lab."""

    user_key: SshKeyPair
    host_keys: dict[str, SshKeyPair]
    # Signing keys by domain: the lab domain, whose key regulus holds, and
    # each foreign domain, whose key only appears in DNS.
    dkim_keys: dict[str, DkimKey]

    def known_hosts(self, lab: Lab) -> str:
        """Return known_hosts lines that pin each host key to its names and address."""
        lines = []
        for host in lab.hosts:
            key = self.host_keys[host.name]
            key_type_and_data = " ".join(key.public_line.split()[:2])
            lines.append(f"{host.name},{host.fqdn},{host.address} {key_type_and_data}\n")
        return "".join(lines)


def state_dir_for(lab_name: str) -> Path:
    """Return the state directory of lab ``lab_name``.

    ``$LABENV_STATE_DIR/<lab>`` when that variable is set, otherwise
    ``$XDG_STATE_HOME/labenv/<lab>``, which defaults to ``~/.local/state/labenv/<lab>``.
    """
    root = os.environ.get("LABENV_STATE_DIR")
    if root:
        return Path(root) / lab_name
    xdg_state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg_state) / "labenv" / lab_name


def load_or_create_secrets(state_dir: Path, lab: Lab) -> LabSecrets:
    """Load the keys of ``lab`` from ``state_dir``, creating the ones that are missing."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    comment = f"labenv@{lab.name}"
    user_key = _ssh_key(state_dir / "ssh" / "id_ed25519", comment)
    host_keys = {
        host.name: _ssh_key(state_dir / "ssh" / f"host_{host.name}_ed25519_key", f"root@{host.fqdn}")
        for host in lab.hosts
    }
    signing_domains = [lab.domain] + [foreign.name for foreign in lab.foreign_domains]
    dkim_keys = {
        domain: _dkim_key(state_dir / "dkim" / f"{domain}.{lab.dkim_selector}.key", domain, lab.dkim_selector)
        for domain in signing_domains
    }
    return LabSecrets(user_key=user_key, host_keys=host_keys, dkim_keys=dkim_keys)


def _ssh_key(path: Path, comment: str) -> SshKeyPair:
    # The OpenSSH format contains a random check number, so a key is serialised
    # once and its file bytes are reused, which keeps repeated loads equal.
    if path.exists():
        key = _load_private_key(path, serialization.load_ssh_private_key)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an ed25519 key; delete it and run labenv up to create a new one")
        private = path.read_bytes()
    else:
        log.info("creating SSH key %s", path)
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        _write_private(path, private)

    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public_line = f"{public.decode('ascii')} {comment}"
    pub_path = path.with_name(path.name + ".pub")
    if not pub_path.exists():
        _write_private(pub_path, (public_line + "\n").encode("ascii"))
    return SshKeyPair(private_openssh=private, public_line=public_line)


def _dkim_key(path: Path, domain: str, selector: str) -> DkimKey:
    if path.exists():
        key = _load_private_key(path, lambda data, password: serialization.load_pem_private_key(data, password))
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"{path} is not an RSA key; delete it and run labenv up to create a new one")
        private_pem = _pkcs1_pem(key)
    else:
        log.info("creating DKIM key %s", path)
        private_pem = generate_key_pair(DKIM_KEY_BITS).private_key_pem
        _write_private(path, private_pem)

    # public_record_for returns "v=DKIM1; k=rsa; p=<base64>".
    public_base64 = public_record_for(private_pem).rpartition("p=")[2]
    return DkimKey(domain=domain, selector=selector, private_pem=private_pem, public_base64=public_base64)


def _pkcs1_pem(key: rsa.RSAPrivateKey) -> bytes:
    # dkimpy 1.1 (dkim.crypto.parse_pem_private_key) reads only the PKCS#1
    # RSAPrivateKey form of RFC 8017, not PKCS#8.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _load_private_key(path: Path, loader):  # type: ignore[no-untyped-def]
    try:
        return loader(path.read_bytes(), None)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"cannot read key {path}: {error}; delete it and run labenv up to create a new one"
        ) from error


def _write_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` with mode 0600 from the start, replacing it atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(content)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
