"""Run a private Postfix instance and smtp-sink on loopback for the MTA benchmark.

The instance has its own config, queue, data and mail spool directories under
one temporary root, so the host's own mail setup (if any) is neither read nor
changed. It needs root, because the Postfix master daemon starts as root and
drops to the ``postfix`` user, and the Debian ``postfix`` package (tested with
Postfix 3.7.11 on Debian 12).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from labenv.errors import LabenvError

log = logging.getLogger(__name__)

POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"

# Every service runs unchrooted ("n" in the fifth column): a chrooted Postfix
# daemon would need copies of /etc/passwd, /etc/hosts and the resolver files
# inside the temporary queue directory. The services are those the Debian
# master.cf enables, minus tlsmgr, lmtp, virtual and the pipe examples, which
# a plain SMTP-in, local-delivery setup never calls.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""

# Defaults are kept wherever they do not touch the network or the host, so
# the figures are those of a stock Postfix: in_flow_delay, the local delivery
# concurrency and fsync of each queue file before the 250 stay as shipped.
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
myorigin = $myhostname
mydestination = {domain}, $myhostname, localhost
append_dot_mydomain = no
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_recipient_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# Skip the reverse lookup of the client address, so that smtpd sends no DNS
# query that could leave the loopback.
smtpd_peername_lookup = no
# Mail for any other domain bounces at once instead of leaving the machine.
default_transport = error:the benchmark instance delivers only to {domain}
relay_transport = error:the benchmark instance delivers only to {domain}
relayhost =
mail_spool_directory = {root}/mail
home_mailbox =
mailbox_command =
mailbox_size_limit = 0
alias_maps =
alias_database =
local_recipient_maps = unix:passwd.byname
biff = no
# Log to a file through postlogd, so nothing reaches the host's syslog.
# Postfix accepts a maillog_file only under one of maillog_file_prefixes.
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
"""


class BenchServerError(LabenvError):
    """A benchmark server (Postfix, smtp-sink or a Python SMTP server) failed to start or stop."""


class ServerExited(BenchServerError):
    """A benchmark server process exited while it was expected to start."""


def postfix_missing_reason() -> str | None:
    """Return why Postfix cannot run here, or None when it can."""
    if not (os.access(POSTFIX, os.X_OK) and os.access(SMTP_SINK, os.X_OK)):
        return (
            f"{POSTFIX} or {SMTP_SINK} not found; install them with "
            "'DEBIAN_FRONTEND=noninteractive apt-get install -y postfix' "
            "(answer 'No configuration')"
        )
    if os.geteuid() != 0:
        return "the private Postfix instance needs root, because its master daemon starts as root"
    return None


def ensure_local_user(name: str) -> pwd.struct_passwd:
    """Return the passwd entry of ``name``, creating a system user without a home if it is missing.

    Postfix local(8) delivers only to users it finds in the passwd database.
    """
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    log.info("creating system user %s for local delivery", name)
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BenchServerError(
            f"creating the delivery user failed: {' '.join(command)} exited "
            f"{completed.returncode}: {completed.stderr.strip()}; create the user by hand"
        )
    return pwd.getpwnam(name)


def wait_for_banner(port: int, timeout: float, server_name: str, process: subprocess.Popen | None = None) -> None:
    """Wait until 127.0.0.1:``port`` sends an SMTP 220 greeting, or ``process`` exits."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerExited(f"{server_name} exited {process.returncode} before sending its greeting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                greeting = sock.recv(512)
                if greeting.startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
                last_error = ValueError(f"greeting {greeting[:60]!r}")
        except OSError as exc:
            last_error = exc
        time.sleep(0.1)
    raise BenchServerError(
        f"{server_name} on 127.0.0.1:{port} sent no 220 greeting within {timeout:.0f} s "
        f"(last error: {last_error}); see its log"
    )


def processes_with_cwd_under(root: Path) -> list[int]:
    """Return the ids of processes whose working directory lies under ``root``.

    Postfix daemons chdir to the queue directory, so this finds every daemon
    of the instance, including any that outlived the master.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(root) or cwd.startswith(f"{root}/"):
            found.append(int(entry.name))
    return found


class PostfixInstance:
    """A Postfix with its own directories under ``root``, listening on 127.0.0.1:``port``."""

    def __init__(self, root: Path, port: int, domain: str, hostname: str = "postfix-bench.test"):
        self.root = root
        self.port = port
        self.domain = domain
        self.hostname = hostname
        self.config_dir = root / "etc"

    def mailbox(self, user: str) -> Path:
        """Return the mbox path that local(8) appends to for ``user``."""
        return self.root / "mail" / user

    @property
    def log_file(self) -> Path:
        return self.root / "maillog"

    def master_pid(self) -> int | None:
        """Return the master daemon's process id from its pid file, or None."""
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, create the queue and start the master daemon."""
        # Postfix daemons run as the postfix user and must traverse the root.
        self.root.chmod(0o755)
        self.config_dir.mkdir(parents=True)
        (self.config_dir / "main.cf").write_text(
            MAIN_CF.format(root=self.root, hostname=self.hostname, domain=self.domain)
        )
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(port=self.port))

        # local(8) writes a dot-lock beside the mbox with the recipient's rights;
        # a sticky, world-writable spool lets it do so, like Debian's /var/mail.
        mail_dir = self.root / "mail"
        mail_dir.mkdir()
        mail_dir.chmod(0o1777)

        # "postfix check" creates the subdirectories of the queue, and the data
        # directory, with the owners and modes listed in
        # /etc/postfix/postfix-files, but fails if the queue root is missing.
        (self.root / "queue").mkdir(mode=0o755)
        self._postfix("check")
        self._postfix("start")
        wait_for_banner(self.port, timeout, f"Postfix smtpd (log {self.log_file})")
        log.info("Postfix started under %s on 127.0.0.1:%d", self.root, self.port)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the master daemon and make sure no daemon of this instance is left."""
        master = self.master_pid()
        if master is not None:
            self._postfix("stop", check=False)
            if not _wait_gone(master, timeout):
                log.warning("Postfix master %d still running after %.0f s; aborting it", master, timeout)
                self._postfix("abort", check=False)
        # Daemons exit on their own soon after the master, when they notice it is gone.
        deadline = time.monotonic() + 10.0
        leftovers = processes_with_cwd_under(self.root)
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.1)
            leftovers = [pid for pid in processes_with_cwd_under(self.root) if _is_running(pid)]
        for pid in leftovers:
            log.warning("killing leftover Postfix process %d", pid)
            _kill(pid)
        remaining = [pid for pid in leftovers if not _wait_gone(pid, 5.0)]
        if remaining:
            raise BenchServerError(
                f"Postfix processes {remaining} under {self.root} did not exit; kill them by id"
            )
        log.info("Postfix under %s stopped", self.root)

    def _postfix(self, verb: str, check: bool = True) -> None:
        command = [POSTFIX, "-c", str(self.config_dir), verb]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0 and check:
            raise BenchServerError(
                f"'{' '.join(command)}' exited {completed.returncode}: "
                f"{completed.stderr.strip()[-400:]}; see {self.log_file}"
            )
        if completed.stderr.strip():
            log.debug("postfix %s: %s", verb, completed.stderr.strip())


class SmtpSink:
    """Postfix's smtp-sink test server, which replies 250 to the mail and discards it."""

    def __init__(self, port: int, backlog: int = 256):
        self.port = port
        self.backlog = backlog
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        # -c prints running counters on stdout, which goes to /dev/null here.
        command = [SMTP_SINK, "-c", f"127.0.0.1:{self.port}", str(self.backlog)]
        if os.geteuid() == 0:
            # smtp-sink exits when started as root without -u USER to switch to.
            command[1:1] = ["-u", "nobody"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_banner(self.port, timeout, "smtp-sink", self.process)
        except ServerExited as exc:
            raise BenchServerError(f"{exc}: {self.process.stderr.read().strip()}") from exc

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


def remove_tree(root: Path) -> None:
    """Delete the instance root, logging rather than raising if part of it stays."""
    shutil.rmtree(root, onerror=lambda _func, path, exc: log.warning("could not remove %s: %s", path, exc[1]))


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_running(pid):
            return True
        time.sleep(0.05)
    return False


def _is_running(pid: int) -> bool:
    """Tell whether ``pid`` exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name, which is in parentheses.
    return stat.rpartition(")")[2].split()[0] != "Z"


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
