"""FRR's bfdd (with the zebra it needs for interfaces) in a test's network namespace.

The Debian service does not start here (no systemd), so the daemons run by hand, each instance with
its own directory for config, pid files, sockets and logs, as the unprivileged `frr` user
(../shared/notes/frr-peer.md). `Bfdd.peers()` reads `show bfd peers json` through vtysh.
The same start works with Debian 12's FRR 8.4 and Debian 13's FRR 10.3.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .netns import Netns, run
from .wait import kill_daemon

FRR_LIB = Path("/usr/lib/frr")
# where a daemon started with `-N NAME` makes NAME's run and state directories, even when every path is given
FRR_PATHSPACE_PARENTS = [Path("/var/run/frr"), Path("/var/lib/frr")]


def peer_config(peer: str, *, interface: str | None = None, local: str | None = None, multihop: bool = False,
                interval_ms: int = 10, multiplier: int = 3) -> str:
    """One `peer` block of bfdd's config: single hop on `interface`, or multi-hop from `local`."""
    where = f" multihop local-address {local}" if multihop else f" interface {interface}"
    return (f" peer {peer}{where}\n  receive-interval {interval_ms}\n  transmit-interval {interval_ms}\n"
            f"  detect-multiplier {multiplier}\n  no shutdown\n")


class Bfdd:
    """zebra and bfdd in `ns` with `peers` (peer_config blocks); use as a context manager."""

    def __init__(self, ns: Netns, peers: list[str]):
        self.ns = ns
        self.dir = Path(tempfile.mkdtemp(prefix=f"{ns.name}-frr-"))
        self.config = "bfd\n" + "".join(peers)

    def __enter__(self) -> Bfdd:
        (self.dir / "frr.conf").write_text(self.config)
        shutil.chown(self.dir, "frr", "frr")
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir / "frr.conf", "frr", "frr")
        try:
            self._daemon("zebra")
            self.start_bfdd()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for name in ("bfdd", "zebra"):
            self._kill(name)
        shutil.rmtree(self.dir, ignore_errors=True)
        for parent in FRR_PATHSPACE_PARENTS:
            shutil.rmtree(parent / self.ns.name, ignore_errors=True)

    def start_bfdd(self) -> None:
        # FRR 8.4's bfdd also opens a control socket, here rather than in FRR's run directory; 10.2 dropped it
        self._daemon("bfdd", *(["--bfdctl", str(self.dir / "bfdd.sock")] if _bfdd_has_control_socket() else []))
        # SCHED_FIFO, as opte-fast's BFD thread: on a machine this busy, bfdd's own timers at 10 ms would
        # otherwise be the first to slip, and the test would measure the peer's scheduling, not ours
        run(["chrt", "-a", "-f", "-p", "1", (self.dir / "bfdd.pid").read_text().strip()])

    def stop_bfdd(self) -> None:
        self._kill("bfdd")

    def peers(self) -> list[dict]:
        out = run(["vtysh", "--vty_socket", str(self.dir), "-c", "show bfd peers json"]).stdout
        return json.loads(out)

    def wait_status(self, status: str, timeout_s: float = 10.0) -> list[dict]:
        """Wait until every peer's status is `status` ("up", "down"); the peers then."""
        deadline = time.monotonic() + timeout_s
        while True:
            peers = self.peers()
            if peers and all(p["status"] == status for p in peers):
                return peers
            if time.monotonic() > deadline:
                raise AssertionError(f"bfdd in {self.ns.name}: peers not {status} within {timeout_s} s: {peers}")
            time.sleep(0.05)

    def _daemon(self, name: str, *extra: str) -> None:
        """Start `name` in the background: with -d it returns once the daemon runs its main loop, or
        exits non-zero with why. Since FRR 9 a daemon keeps stdout and stderr unless they are a terminal,
        so they go to a file: a pipe would see no end of file while the daemon lives."""
        d = self.dir
        with open(d / f"{name}.out", "wb") as out:
            started = subprocess.run(
                ["ip", "netns", "exec", self.ns.name, str(FRR_LIB / name), "-d", "-N", self.ns.name,
                 "-i", str(d / f"{name}.pid"), "-z", str(d / "zserv.api"), "--vty_socket", str(d),
                 "-f", str(d / "frr.conf"), "--log", f"file:{d / f'{name}.log'}", "-u", "frr", "-g", "frr", *extra],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=20)
        if started.returncode != 0 or not (d / f"{name}.pid").exists():
            output = (d / f"{name}.out").read_text(errors="replace").strip()
            raise RuntimeError(f"{name} did not start in {self.ns.name} (exit {started.returncode}): {output}")

    def _kill(self, name: str) -> None:
        kill_daemon(self.dir / f"{name}.pid")


@functools.cache
def _bfdd_has_control_socket() -> bool:
    return "--bfdctl" in subprocess.run([str(FRR_LIB / "bfdd"), "--help"], capture_output=True, text=True).stdout
