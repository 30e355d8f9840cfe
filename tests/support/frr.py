"""FRR's bfdd (with the zebra it needs for interfaces) in a test's network namespace.

The Debian service does not start here (no systemd), so the daemons run by hand, each instance with
its own directory for config, pid files and sockets, as the unprivileged `frr` user
(../shared/notes/frr-peer.md). `Bfdd.peers()` reads `show bfd peers json` through vtysh.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from .netns import Netns, run

FRR_LIB = Path("/usr/lib/frr")


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

    def start_bfdd(self) -> None:
        self._daemon("bfdd", "--bfdctl", str(self.dir / "bfdd.sock"))
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
        d = self.dir
        self.ns.run(str(FRR_LIB / name), "-d", "-N", self.ns.name, "-i", str(d / f"{name}.pid"),
                    "-z", str(d / "zserv.api"), "--vty_socket", str(d), "-f", str(d / "frr.conf"),
                    "-u", "frr", "-g", "frr", *extra)
        deadline = time.monotonic() + 10
        while not (d / f"{name}.pid").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start in {self.ns.name} (no pid file in {d})")
            time.sleep(0.02)

    def _kill(self, name: str) -> None:
        pid_file = self.dir / f"{name}.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        pid_file.unlink(missing_ok=True)
