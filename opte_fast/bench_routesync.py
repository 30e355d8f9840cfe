"""Route sync latency: kernel route event to callback, over many route changes.

    python3 -m opte_fast.bench_routesync [--changes 200]

Makes a network namespace with two uplinks (veth pairs) and known
neighbours, starts `NetlinkRouteSync` in it, and plays a routing daemon
through one `ip -batch` process: each change alternates the multipath route
fd00:99::/64 between both paths and one path, and waits for the callback
before the next. Prints two distributions: event receipt to callback (what
route sync costs) and command written to callback (what a daemon sees,
including `ip` and the kernel). Needs root; the namespace is removed at exit.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time

import click

from .routesync import NetlinkRouteSync

CHANGES = ("route replace fd00:99::/64 nexthop via fe80::1 dev uplink0 nexthop via fe80::2 dev uplink1",
           "route replace fd00:99::/64 via fe80::1 dev uplink0")


def _setup(ns: str) -> None:
    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", ns, *args], check=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0"], check=True)
    for i in (0, 1):
        ip("link", "add", f"uplink{i}", "type", "veth", "peer", "name", f"peer{i}")
        ip("link", "set", f"uplink{i}", "up")
        ip("link", "set", f"peer{i}", "up")
        ip("-6", "neigh", "replace", f"fe80::{i + 1}", "lladdr", f"a8:40:25:00:00:0{i + 1}",
           "dev", f"uplink{i}", "nud", "permanent")


def _summary(name: str, samples_us: list[float]) -> str:
    s = sorted(samples_us)
    q = statistics.quantiles(s, n=100)
    return (f"{name:<28} n={len(s)}  min {s[0]:7.0f}  p50 {q[49]:7.0f}  p90 {q[89]:7.0f}  "
            f"p99 {q[98]:7.0f}  max {s[-1]:7.0f}  (microseconds)")


def measure(changes: int, timeout_s: float = 2.0) -> tuple[list[float], list[float]]:
    """(event->callback, command->callback) latencies in microseconds, one per change."""
    ns = f"of-bench-{os.getpid()}"
    delivered = threading.Event()
    done_at = [0]

    def callback(routes) -> None:
        done_at[0] = time.monotonic_ns()
        delivered.set()

    _setup(ns)
    sync = NetlinkRouteSync(("uplink0", "uplink1"), callback, ns)
    batch = None
    try:
        sync.start()
        batch = subprocess.Popen(["ip", "-n", ns, "-6", "-force", "-batch", "-"], stdin=subprocess.PIPE,
                                 text=True, bufsize=1)
        sync.latencies_us.clear()
        end_to_end = []
        for i in range(changes):
            delivered.clear()
            t0 = time.monotonic_ns()
            batch.stdin.write(CHANGES[i % 2] + "\n")
            batch.stdin.flush()
            if not delivered.wait(timeout_s):
                raise click.ClickException(f"change {i}: no callback within {timeout_s} s")
            end_to_end.append((done_at[0] - t0) / 1000)
        return list(sync.latencies_us), end_to_end
    finally:
        if batch is not None:
            batch.stdin.close()
            batch.wait()
        sync.stop()
        subprocess.run(["ip", "netns", "del", ns], check=False)


@click.command()
@click.option("--changes", type=click.IntRange(2, 100_000), default=200, show_default=True,
              help="route changes to time")
def main(changes: int) -> None:
    """Time route sync from kernel route event to callback."""
    event, end_to_end = measure(changes)
    click.echo(_summary("event -> callback", event))
    click.echo(_summary("command written -> callback", end_to_end))


if __name__ == "__main__":
    main()
