"""Measure how fast SMTP servers on loopback accept mail and deliver it to an mbox.

Servers, each started fresh for every round and stopped afterwards:

  aiosmtpd-sink  stock aiosmtpd with its Sink handler, which stores nothing
  smtp-sink      Postfix's smtp-sink test server, which stores nothing
  postfix        a private Postfix instance: smtpd into its queue, local(8) into an mbox
  labenv         the lab MTA in the final role: durable spool, then an mbox

One asyncio client, the same for every server, opens --sessions SMTP sessions
that share --messages messages of --size bytes. It speaks plain SMTP without
PIPELINING: it waits for the reply to each command. The accept rate counts the
250 replies to DATA. For servers that deliver, a watcher polls the mbox for the
X-Bench-Id header of each message, which yields the delivery rate and the
latency from the 250 to the message being in the mbox. A second, light-load
round sends --light-messages messages over one session to show that latency
without a queue backlog.

Run as root from the repository root (Postfix needs root):

  .venv/bin/python benchmarks/mta_throughput.py --repeat 3

The table is Markdown. Figures vary with whatever else runs on the machine,
so the load average is printed beside each run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import postfix_lab  # noqa: E402  (sibling module, found through the path above)
from labenv.errors import LabenvError  # noqa: E402

log = logging.getLogger("mta_throughput")

DOMAIN = "bench.test"
USER = "benchuser"
SENDER = "loadgen@client.test"
SERVERS = ("aiosmtpd-sink", "smtp-sink", "postfix", "labenv")


class BenchmarkError(LabenvError):
    """A server under test replied to a benchmark session with an unexpected code, or hung up."""


# ---------------------------------------------------------------------------
# The client


def build_message(size: int) -> tuple[bytes, bytes]:
    """Return the header prefix and the rest of a message of about ``size`` bytes.

    The X-Bench-Id header goes between them. Body lines are 76 letters long and
    never start with a dot, so the client needs no dot-stuffing (RFC 5321 4.5.2).
    """
    head = f"From: <{SENDER}>\r\nTo: <{USER}@{DOMAIN}>\r\nSubject: benchmark message\r\n".encode()
    line = b"abcdefghijklmnopqrstuvwxyz" * 2 + b"ABCDEFGHIJKLMNOPQRSTUVWX" + b"\r\n"
    header_room = len(head) + len("X-Bench-Id: light-000000\r\n\r\n")
    body = line * max(1, (size - header_room) // len(line))
    return head, b"\r\n" + body


async def read_reply(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes]:
    """Read one SMTP reply, multi-line or not, and return its code and last line."""
    async with asyncio.timeout(timeout):
        while True:
            line = await reader.readline()
            if not line:
                raise BenchmarkError("the server closed the connection in the middle of a session")
            # A hyphen after the code marks a continuation line (RFC 5321 4.2.1).
            if line[3:4] != b"-":
                return int(line[:3]), line.rstrip()


async def expect(reader: asyncio.StreamReader, code: int, command: str, timeout: float) -> bytes:
    """Read a reply and raise BenchmarkError unless its code is ``code``."""
    got, line = await read_reply(reader, timeout)
    if got != code:
        raise BenchmarkError(
            f"{command} got {line[:120]!r}, expected {code}; "
            "rerun with --keep and read the server's log in its temporary folder"
        )
    return line


async def run_session(
    port: int,
    sequence: Iterator[int],
    prefix: str,
    message: tuple[bytes, bytes],
    accepted: dict[int, float],
    reply_timeout: float,
) -> None:
    """Send messages over one SMTP session until ``sequence``, shared by all sessions, runs out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await expect(reader, 220, "connect", reply_timeout)
        writer.write(b"EHLO loadgen.client.test\r\n")
        await expect(reader, 250, "EHLO", reply_timeout)
        head, rest = message
        for number in sequence:
            writer.write(f"MAIL FROM:<{SENDER}>\r\n".encode())
            await expect(reader, 250, "MAIL FROM", reply_timeout)
            writer.write(f"RCPT TO:<{USER}@{DOMAIN}>\r\n".encode())
            await expect(reader, 250, "RCPT TO", reply_timeout)
            writer.write(b"DATA\r\n")
            await expect(reader, 354, "DATA", reply_timeout)
            writer.writelines((head, f"X-Bench-Id: {prefix}-{number:06d}\r\n".encode(), rest, b".\r\n"))
            await expect(reader, 250, "end of DATA", reply_timeout)
            accepted[number] = time.monotonic()
        writer.write(b"QUIT\r\n")
        await expect(reader, 221, "QUIT", reply_timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class MailboxWatcher:
    """Poll an mbox and record when each X-Bench-Id with one prefix first shows up in it."""

    def __init__(self, path: Path, prefix: str, interval: float):
        self.path = path
        self.interval = interval
        self.pattern = re.compile(rb"^X-Bench-Id: " + re.escape(prefix.encode()) + rb"-(\d+)\r?$", re.M)
        self.seen: dict[int, float] = {}
        # Start at the current end: earlier rounds were fully delivered before this one.
        self.offset = path.stat().st_size if path.exists() else 0
        self.partial = b""

    def poll(self) -> None:
        try:
            with self.path.open("rb") as mbox:
                mbox.seek(self.offset)
                chunk = mbox.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        now = time.monotonic()
        self.offset += len(chunk)
        # Keep an unfinished last line for the next poll.
        complete, _, self.partial = (self.partial + chunk).rpartition(b"\n")
        for match in self.pattern.finditer(complete):
            self.seen.setdefault(int(match.group(1)), now)

    async def wait_for(self, numbers: set[int], timeout: float) -> None:
        """Poll until every number in ``numbers`` was seen or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while not numbers <= self.seen.keys() and time.monotonic() < deadline:
            self.poll()
            await asyncio.sleep(self.interval)


# ---------------------------------------------------------------------------
# One measured run


@dataclass
class RunResult:
    """The figures of one run: one server, one load, one round."""

    server: str
    load: str
    round: int
    sessions: int
    requested: int
    accepted: int = 0
    accept_seconds: float = 0.0
    accept_rate: float = 0.0
    client_cpu_share: float = 0.0
    server_cpu_ms_per_message: float | None = None
    delivered: int | None = None
    delivery_seconds: float | None = None
    delivery_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    load_average_before: float = 0.0
    load_average_after: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class RunSettings:
    """Client settings shared by every run."""

    size: int
    max_seconds: float
    delivery_timeout: float
    reply_timeout: float
    poll_interval: float


async def measure(server: "RunningServer", result: RunResult, prefix: str, settings: RunSettings) -> RunResult:
    """Send ``result.requested`` messages to ``server`` and fill in ``result``."""
    accepted: dict[int, float] = {}
    sequence = iter(range(result.requested))
    message = build_message(settings.size)
    watcher = MailboxWatcher(server.mailbox, prefix, settings.poll_interval) if server.mailbox else None

    result.load_average_before = os.getloadavg()[0]
    server_cpu_before = server.cpu_seconds()
    client_cpu_before = time.process_time()
    started = time.monotonic()

    # The watcher polls while the client sends, so early deliveries get their real time.
    watching = asyncio.create_task(watcher.wait_for(set(range(result.requested)), settings.max_seconds)) if watcher else None
    sessions = [
        asyncio.create_task(run_session(server.port, sequence, prefix, message, accepted, settings.reply_timeout))
        for _ in range(result.sessions)
    ]
    try:
        async with asyncio.timeout(settings.max_seconds):
            await asyncio.gather(*sessions)
    except TimeoutError:
        result.error = f"sending stopped after --max-seconds {settings.max_seconds:.0f}"
    except (BenchmarkError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        # After the first failure, stop the other sessions before counting.
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
    accept_end = max(accepted.values(), default=time.monotonic())
    client_cpu = time.process_time() - client_cpu_before

    result.accepted = len(accepted)
    result.accept_seconds = accept_end - started
    result.accept_rate = result.accepted / result.accept_seconds if result.accepted else 0.0
    result.client_cpu_share = client_cpu / result.accept_seconds if result.accept_seconds else 0.0

    if watcher:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await watcher.wait_for(set(accepted), settings.delivery_timeout)
        fill_delivery(result, accepted, watcher.seen, started)

    server_cpu_after = server.cpu_seconds()
    if server_cpu_before is not None and server_cpu_after is not None and result.accepted:
        result.server_cpu_ms_per_message = 1000 * (server_cpu_after - server_cpu_before) / result.accepted
    result.load_average_after = os.getloadavg()[0]
    return result


def fill_delivery(result: RunResult, accepted: dict[int, float], seen: dict[int, float], started: float) -> None:
    """Compute the delivery rate and the 250-to-mbox latency of the accepted messages."""
    delivered = [number for number in accepted if number in seen]
    result.delivered = len(delivered)
    if len(delivered) < len(accepted):
        result.notes.append(f"{len(accepted) - len(delivered)} accepted messages not in the mbox in time")
    if not delivered:
        return
    result.delivery_seconds = max(seen[number] for number in delivered) - started
    result.delivery_rate = len(delivered) / result.delivery_seconds
    # A message can show up before the client has read its 250, so clamp at 0.
    latencies = sorted(max(0.0, seen[number] - accepted[number]) * 1000 for number in delivered)
    result.latency_p50_ms = statistics.median(latencies)
    result.latency_p99_ms = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    result.latency_max_ms = latencies[-1]


# ---------------------------------------------------------------------------
# Servers


@dataclass
class RunningServer:
    """A started server: its port, the mbox it delivers to, and the process to charge CPU to."""

    name: str
    port: int
    mailbox: Path | None
    pid_source: Callable[[], int | None]

    def cpu_seconds(self) -> float | None:
        pid = self.pid_source()
        return process_tree_cpu_seconds(pid) if pid else None


def process_tree_cpu_seconds(root_pid: int) -> float | None:
    """Return the CPU time of a process, its live descendants and the children it reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # The fields after the command name start at field 3 (state) of proc(5),
        # so indexes 11 to 14 are utime, stime, cutime and cstime, in clock ticks.
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(value) for value in fields[11:15]) / ticks
    if root_pid not in times:
        return None
    total = 0.0
    for pid in times:
        ancestor = pid
        while ancestor not in (root_pid, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root_pid:
            total += times[pid]
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def python_server(name: str, command: list[str], port: int, root: Path, mailbox: Path | None) -> Iterator[RunningServer]:
    """Run a Python SMTP server as a child process, so it does not share the client's GIL."""
    log_path = root / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            try:
                postfix_lab.wait_for_banner(port, 30, f"{name} (log {log_path})", process)
            except postfix_lab.ServerExited as exc:
                last_lines = log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise postfix_lab.BenchServerError(f"{exc}; its last output: {' | '.join(last_lines)}") from exc
            yield RunningServer(name, port, mailbox, lambda: process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM; killing it", name, process.pid)
                process.kill()
                process.wait(timeout=10)


@contextlib.contextmanager
def start_server(name: str, root: Path, profile: Path | None = None) -> Iterator[RunningServer]:
    """Start server ``name`` with its files under ``root`` and stop it on exit.

    With ``profile``, the labenv MTA runs under cProfile, which writes that file
    when the MTA exits on SIGTERM. Only the event-loop thread is profiled.
    """
    port = free_port()
    if name == "aiosmtpd-sink":
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"]
        with python_server(name, command, port, root, None) as server:
            yield server
    elif name == "smtp-sink":
        sink = postfix_lab.SmtpSink(port)
        sink.start()
        try:
            yield RunningServer(name, port, None, lambda: sink.process.pid if sink.process else None)
        finally:
            sink.stop()
    elif name == "postfix":
        instance = postfix_lab.PostfixInstance(root, port, DOMAIN)
        try:
            instance.start()
            yield RunningServer(name, port, instance.mailbox(USER), instance.master_pid)
        finally:
            instance.stop()
    elif name == "labenv":
        mail_dir = root / "mail"
        mail_dir.mkdir(mode=0o1777)
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
        command = [
            sys.executable, *profiler, "-m", "labenv", "mta", "serve",
            "--role", "final", "--hostname", "labenv-bench.test",
            "--listen", f"127.0.0.1:{port}", "--domain", DOMAIN, "--user", USER,
            "--spool", str(root / "spool"), "--mail-dir", str(mail_dir), "--syslog", "none",
        ]  # fmt: skip
        with python_server(name, command, port, root, mail_dir / USER) as server:
            yield server
    else:
        raise ValueError(f"unknown server {name!r}")


def missing_reason(name: str) -> str | None:
    """Return why server ``name`` cannot run on this machine, or None."""
    if name in ("smtp-sink", "postfix"):
        return postfix_lab.postfix_missing_reason()
    if name == "labenv" and importlib.util.find_spec("labenv.mta.server") is None:
        return "labenv.mta.server is missing from this checkout"
    return None


# ---------------------------------------------------------------------------
# Rounds and the report


def run_server_round(name: str, round_number: int, args: argparse.Namespace, settings: RunSettings) -> list[RunResult]:
    """Start ``name`` fresh, warm it up, run the loaded and the light run, and stop it."""
    results = []
    root = Path(tempfile.mkdtemp(prefix=f"mta-bench-{name}-"))
    try:
        profile = args.profile / f"{name}-round{round_number}.prof" if args.profile else None
        with start_server(name, root, profile) as server:
            if args.warmup:
                warm = RunResult(name, "warm-up", round_number, args.sessions, args.warmup)
                asyncio.run(measure(server, warm, "warm", settings))
                if warm.error:
                    return [warm]
            loaded = RunResult(name, "loaded", round_number, args.sessions, args.messages)
            results.append(asyncio.run(measure(server, loaded, "load", settings)))
            if server.mailbox and args.light_messages:
                light = RunResult(name, "light", round_number, 1, args.light_messages)
                results.append(asyncio.run(measure(server, light, "light", settings)))
    except LabenvError as exc:
        failed = RunResult(name, "start", round_number, args.sessions, args.messages, error=str(exc))
        results.append(failed)
    finally:
        if args.keep:
            log.warning("kept %s", root)
        else:
            postfix_lab.remove_tree(root)
    return results


def format_number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(results: list[RunResult]) -> None:
    print("| server | load | round | sessions | accepted | accept msg/s | client CPU % "
          "| server CPU ms/msg | delivered | delivered msg/s | latency p50 ms | p99 ms | max ms | load avg before/after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.server} | {r.load} | {r.round} | {r.sessions} | {r.accepted}/{r.requested} "
            f"| {format_number(r.accept_rate)} | {format_number(100 * r.client_cpu_share)} "
            f"| {format_number(r.server_cpu_ms_per_message, 2)} | {format_number(r.delivered)} "
            f"| {format_number(r.delivery_rate)} | {format_number(r.latency_p50_ms, 1)} "
            f"| {format_number(r.latency_p99_ms, 1)} | {format_number(r.latency_max_ms, 1)} "
            f"| {r.load_average_before:.2f}/{r.load_average_after:.2f} |"
        )
    for r in results:
        for text in ([r.error] if r.error else []) + r.notes:
            print(f"- {r.server} {r.load} round {r.round}: {text}")


def summarize(results: list[RunResult], metric: str, load: str) -> dict[str, tuple[float, float, float]]:
    """Return median, min and max of ``metric`` per server over the error-free runs of one load."""
    values: dict[str, list[float]] = {}
    for r in results:
        value = getattr(r, metric)
        if r.load == load and not r.error and value is not None:
            values.setdefault(r.server, []).append(value)
    return {name: (statistics.median(v), min(v), max(v)) for name, v in values.items()}


def print_summary(results: list[RunResult]) -> None:
    rows = [
        ("accept msg/s, loaded", "accept_rate", "loaded"),
        ("delivered msg/s, loaded", "delivery_rate", "loaded"),
        ("latency p50 ms, loaded", "latency_p50_ms", "loaded"),
        ("latency p50 ms, light", "latency_p50_ms", "light"),
        ("latency p99 ms, light", "latency_p99_ms", "light"),
    ]
    print("\n| figure | server | median | min | max |")
    print("|---|---|---|---|---|")
    ratios = []
    for title, metric, load in rows:
        summary = summarize(results, metric, load)
        for name, (median, low, high) in summary.items():
            print(f"| {title} | {name} | {median:.1f} | {low:.1f} | {high:.1f} |")
        if "labenv" in summary and "postfix" in summary and summary["postfix"][0]:
            ratios.append((title, summary["labenv"][0] / summary["postfix"][0]))
    if ratios:
        print("\n| labenv / postfix (medians) | ratio |")
        print("|---|---|")
        for title, ratio in ratios:
            print(f"| {title} | {ratio:.2f} |")

    # The client caps every figure: its messages per client CPU-second is the
    # most it could send on one core. smtp-sink costs the server least.
    sink = [r for r in results if r.server == "smtp-sink" and r.load == "loaded" and not r.error]
    if sink:
        ceiling = statistics.median(r.accept_rate / r.client_cpu_share for r in sink if r.client_cpu_share)
        print(f"\nclient ceiling (smtp-sink runs): about {ceiling:.0f} msg/s per client CPU core")


def source_commit() -> str:
    """Return the short commit id of the checkout, with "+changes" if files differ from it."""
    repository = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repository), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(repository), "status", "--porcelain", "labenv"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+changes" if changed else commit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated subset of {', '.join(SERVERS)}")
    parser.add_argument("--messages", type=int, default=2000, help="messages in the loaded run (default 2000)")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent SMTP sessions in the loaded run (default 20)")
    parser.add_argument("--size", type=int, default=10240, help="message size in bytes (default 10240)")
    parser.add_argument("--light-messages", type=int, default=200,
                        help="messages sent over one session for the light-load latency, 0 to skip (default 200)")
    parser.add_argument("--warmup", type=int, default=100, help="messages sent before each measured run (default 100)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over all servers (default 1)")
    parser.add_argument("--max-seconds", type=float, default=300, help="limit on sending time per run, in seconds (default 300)")
    parser.add_argument("--delivery-timeout", type=float, default=300,
                        help="seconds to wait after the last 250 for the mbox to contain every message (default 300)")
    parser.add_argument("--reply-timeout", type=float, default=60, help="seconds to wait for each SMTP reply (default 60)")
    parser.add_argument("--poll-interval", type=float, default=0.002, help="mbox poll interval in seconds (default 0.002)")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this JSON file")
    parser.add_argument("--profile", type=Path, help="run the labenv MTA under cProfile and write one .prof file per round to this folder")
    parser.add_argument("--keep", action="store_true", help="keep each server's temporary directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="log server starts and stops")
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",")) - set(SERVERS)
    if unknown:
        parser.error(f"unknown server(s) {', '.join(sorted(unknown))}; choose from {', '.join(SERVERS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = RunSettings(args.size, args.max_seconds, args.delivery_timeout, args.reply_timeout, args.poll_interval)

    names = [name for name in SERVERS if name in args.servers.split(",")]
    for name in list(names):
        reason = missing_reason(name)
        if reason:
            print(f"skipping {name}: {reason}")
            names.remove(name)
    if "postfix" in names or "labenv" in names:
        try:
            postfix_lab.ensure_local_user(USER)
        except LabenvError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: list[RunResult] = []
    for round_number in range(1, args.repeat + 1):
        for name in names:
            results.extend(run_server_round(name, round_number, args, settings))

    print(f"\nstarted {started}, {os.cpu_count()} CPUs, commit {source_commit()}, "
          f"{args.messages} messages of {args.size} bytes over {args.sessions} sessions, "
          f"light load {args.light_messages} over 1 session")
    print(f"command: {' '.join(sys.argv)}\n")
    print_table(results)
    print_summary(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
