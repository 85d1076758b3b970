"""Print how long a lab takes to build, start and stop, and how much memory labs use.

Usage: .venv/bin/python benchmarks/lab_lifecycle.py [--labs N] [--cold]

--cold removes every labenv image and the build cache first, so the build
time printed is a build from nothing. Without it the build step is the
warm check that finds nothing to do. The labs are named bench-1 .. bench-N and are removed
at the end, also when a step fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from contextlib import contextmanager

from labenv.runtime import lifecycle
from labenv.runtime.containers import lab_containers
from labenv.runtime.engine import connect
from labenv.runtime.images import cache_dir, ensure_images

READY_TIMEOUT = 600.0


@contextmanager
def timed(label: str, results: dict[str, float]):
    start = time.monotonic()
    yield
    results[label] = time.monotonic() - start
    print(f"{label:40} {results[label]:8.1f} s", flush=True)


def container_rss_bytes(container) -> int:
    """Return the resident memory of a container's processes from one docker stats sample.

    cgroup v1 reports it as "rss", cgroup v2 as "anon" (anonymous memory,
    which excludes the page cache just like rss).
    """
    stats = container.stats(stream=False)["memory_stats"].get("stats", {})
    return int(stats.get("rss", stats.get("anon", 0)))


def lab_rss_bytes(client, lab_name: str) -> int:
    return sum(container_rss_bytes(container) for container in lab_containers(client, lab_name))


def remove_images(client) -> None:
    """Remove every image labenv built (found by its label) and the build cache folder."""
    for image in client.images.list(filters={"label": "io.labenv.version"}):
        for tag in image.tags:
            client.images.remove(tag, force=True)
    shutil.rmtree(cache_dir(), ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, default=5, help="number of labs to run side by side")
    parser.add_argument("--cold", action="store_true", help="remove labenv images and the build cache first")
    args = parser.parse_args()

    client = connect()
    results: dict[str, float] = {}
    names = [f"bench-{number}" for number in range(1, args.labs + 1)]
    with tempfile.TemporaryDirectory() as state:
        os.environ["LABENV_STATE_DIR"] = state
        try:
            if args.cold:
                remove_images(client)
            with timed("build (cold)" if args.cold else "build", results):
                ensure_images(client)
            # A second check finds every image built, which is the image step of a warm `up`.
            with timed("image check with every image built", results):
                images = ensure_images(client)

            # The image check is timed above, so the up timings below leave it out.
            lab, source = lifecycle.load_lab_for_up(client, names[0], None, {})
            with timed("up, first start until ready", results):
                lifecycle.up(client, lab, source, timeout=READY_TIMEOUT, images=images)
            with timed("up again (already running)", results):
                lifecycle.up(client, lab, source, timeout=READY_TIMEOUT, images=images)
            print(f"{'memory of one lab (sum of RSS)':40} {lab_rss_bytes(client, names[0]) / 2**20:8.0f} MiB")
            with timed("down", results):
                lifecycle.down(client, names[0])

            with timed(f"{args.labs} labs up one after another", results):
                for name in names:
                    lab, source = lifecycle.load_lab_for_up(client, name, None, {})
                    lifecycle.up(client, lab, source, timeout=READY_TIMEOUT, images=images)
            total = sum(lab_rss_bytes(client, name) for name in names)
            print(f"{f'memory of {args.labs} labs (sum of RSS)':40} {total / 2**20:8.0f} MiB")
            with timed(f"{args.labs} labs down", results):
                for name in names:
                    lifecycle.down(client, name)
        finally:
            for name in names:
                lifecycle.down(client, name)


if __name__ == "__main__":
    main()
