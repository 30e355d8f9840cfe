"""BIRD 2's bfd protocol in a test's network namespace: a real BFD peer that does RFC 5880
authentication, which Debian's FRR (8.4, 10.3) bfdd does not.

The Debian service does not start here (no systemd), so `bird` runs by hand with its own config,
control socket and pid file in a temporary directory, and is killed on exit. `Bird.sessions()`
reads `show bfd sessions` through `birdc -s`.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .netns import Netns, run
from .wait import kill_daemon

BIRD = "/usr/sbin/bird"
BIRDC = "/usr/sbin/birdc"
STATES = ("AdminDown", "Down", "Init", "Up")


def bfd_config(*, interface: str, neighbor: str, interval_ms: int, multiplier: int, auth: str,
               key: str, key_id: int) -> str:
    """bird.conf with one single-hop BFD neighbor on `interface`. `auth` is BIRD's spelling after
    `authentication` ("keyed sha1", "meticulous keyed sha1", "none"); the password is `key` with ID
    `key_id`."""
    password = f'\t\tpassword "{key}" {{ id {key_id}; }};\n' if auth != "none" else ""
    return (f"router id 192.0.2.1;\n"
            f"protocol device {{}}\n"
            f"protocol bfd {{\n"
            f'\tinterface "{interface}" {{\n'
            f"\t\tinterval {interval_ms} ms;\n"
            f"\t\tmultiplier {multiplier};\n"
            f"\t\tauthentication {auth};\n"
            f"{password}"
            f"\t}};\n"
            f'\tneighbor {neighbor} dev "{interface}";\n'
            f"}}\n")


class Bird:
    """`bird` in `ns` with `config`; use as a context manager."""

    def __init__(self, ns: Netns, config: str):
        self.ns = ns
        self.dir = Path(tempfile.mkdtemp(prefix=f"{ns.name}-bird-"))
        self.config = config
        self.socket = self.dir / "bird.ctl"
        self.pid_file = self.dir / "bird.pid"

    def _write_config(self) -> None:
        # its log (authentication failures among it) next to the config, for a failing test's message
        (self.dir / "bird.conf").write_text(f'log "{self.dir / "bird.log"}" all;\n{self.config}')

    def __enter__(self) -> Bird:
        self._write_config()
        try:
            # without -f it returns once the config is read and the daemon runs, or exits non-zero with why
            run(["ip", "netns", "exec", self.ns.name, BIRD, "-c", str(self.dir / "bird.conf"),
                 "-s", str(self.socket), "-P", str(self.pid_file)])
            deadline = time.monotonic() + 10
            while not self.socket.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bird in {self.ns.name}: no control socket after 10 s")
                time.sleep(0.02)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        kill_daemon(self.pid_file)
        shutil.rmtree(self.dir, ignore_errors=True)

    def birdc(self, *command: str) -> str:
        return run([BIRDC, "-s", str(self.socket), *command]).stdout

    def reconfigure(self, config: str) -> None:
        """A new config, read by the running daemon (`birdc configure`)."""
        self.config = config
        self._write_config()
        out = self.birdc("configure")
        if "Reconfigured" not in out and "Reconfiguration in progress" not in out:
            raise RuntimeError(f"bird in {self.ns.name} did not take the new config: {out}")

    def sessions(self) -> dict[str, str]:
        """`show bfd sessions`: each neighbor's state, by address."""
        out = self.birdc("show", "bfd", "sessions")
        rows = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] in STATES:
                rows[fields[0]] = fields[2]
        return rows

    def wait_state(self, neighbor: str, state: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while (seen := self.sessions().get(neighbor)) != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"bird in {self.ns.name}: {neighbor} not {state} within {timeout_s} s "
                                     f"(is {seen}); log:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return (self.dir / "bird.log").read_text(errors="replace")
        except OSError:
            return ""
