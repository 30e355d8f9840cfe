"""Open vSwitch run by hand in a network namespace: ovsdb-server and ovs-vswitchd as our children,
every file (db, sockets, logs) in a private temporary directory that `stop()` removes, and every
control command pointed at this instance's own sockets (`--db=unix:…`, `ovs-appctl -t <ctl>`), never
at a system OVS. The bench's peer (bench_ovs.py, OVS with DPDK) and the tests' boundary-services
switches (tests/support/ovs.py, kernel veths) are each one of these.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


class OvsError(RuntimeError):
    pass


def run_ovs(argv: list[str], env: dict[str, str] | None = None, timeout: float = 20.0) -> str:
    """`argv`'s output; a failure is an OvsError naming the command and what it said."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise OvsError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip() or f'status {proc.returncode}'}")
    return proc.stdout


class Ovs:
    """ovsdb-server + `vswitchd` in network namespace `netns` (which must exist when `start()` runs),
    state in a temporary directory named after `netns`, commands run with `env` (default: ours).
    Use as a context manager, or `start()`/`stop()`."""

    VSWITCHD_START_S = 10.0   # how long ovs-vswitchd may take to answer

    def __init__(self, netns: str, vswitchd: str, env: dict[str, str] | None = None) -> None:
        self.netns = netns
        self.vswitchd = vswitchd
        self.dir = Path(tempfile.mkdtemp(prefix=f"{netns}-ovs-"))
        self.env = {**(os.environ if env is None else env), "OVS_RUNDIR": str(self.dir / "run"),
                    "OVS_DBDIR": str(self.dir / "db"), "OVS_LOGDIR": str(self.dir / "log"),
                    "OVS_SYSCONFDIR": str(self.dir / "etc")}
        self.db_socket = self.dir / "run" / "db.sock"
        self.ctl = self.dir / "run" / "ovs-vswitchd.ctl"
        self.log = self.dir / "log" / "ovs-vswitchd.log"
        self.stderr = self.dir / "log" / "ovs-vswitchd.stderr"
        self._daemons: list[tuple[subprocess.Popen[bytes], Path, list[str]]] = []

    @property
    def vswitchd_pid(self) -> int:
        """ovs-vswitchd's pid (`ip netns exec` execs the daemon in place)."""
        return next(d for d, ctl, _ in self._daemons if ctl == self.ctl).pid

    # -- life cycle -----------------------------------------------------------------------------
    def __enter__(self) -> Ovs:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        for sub in ("run", "db", "log", "etc"):
            (self.dir / sub).mkdir()
        db = self.dir / "db" / "conf.db"
        run_ovs(["ovsdb-tool", "create", str(db), str(SCHEMA)])
        self._spawn(self.dir / "run" / "ovsdb-server.ctl", [], "ovsdb-server", str(db),
                    f"--remote=punix:{self.db_socket}", f"--log-file={self.dir / 'log' / 'ovsdb-server.log'}")
        self._until(lambda: self.vsctl("--no-wait", "init"), "ovsdb-server")
        self._before_vswitchd()
        self._spawn(self.ctl, ["--cleanup"], self.vswitchd, f"unix:{self.db_socket}", f"--log-file={self.log}")
        self._until(lambda: self.appctl("version"), "ovs-vswitchd", timeout=self.VSWITCHD_START_S)

    def _before_vswitchd(self) -> None:
        """What the database must hold before ovs-vswitchd reads it (DPDK's settings)."""

    def stop(self) -> None:
        """vswitchd exits with --cleanup (its datapath and ports go), then the db server; each is
        waited for (killed after 10 s), and the directory is removed."""
        try:
            for daemon, ctl, exit_args in reversed(self._daemons):
                if daemon.poll() is None:
                    subprocess.run(["ovs-appctl", "-t", str(ctl), "exit", *exit_args], env=self.env,
                                   capture_output=True, timeout=20, check=False)
                try:
                    daemon.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
            self._daemons.clear()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- control ---------------------------------------------------------------------------------
    def vsctl(self, *args: str) -> str:
        return run_ovs(["ovs-vsctl", f"--db=unix:{self.db_socket}", "--timeout=30", *args], env=self.env, timeout=40)

    def ofctl(self, *args: str) -> str:
        return run_ovs(["ovs-ofctl", *args], env=self.env)

    def appctl(self, *args: str) -> str:
        return run_ovs(["ovs-appctl", "-t", str(self.ctl), *args], env=self.env)

    def diagnostics(self) -> str:
        """The last lines of ovs-vswitchd's stderr and log, for an error message."""
        parts = []
        for log in (self.stderr, self.log):
            try:
                parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
            except OSError:
                pass
        return "\n".join(parts)

    def _spawn(self, ctl: Path, exit_args: list[str], *argv: str) -> None:
        """A daemon in the foreground (our child), inside the namespace, its control socket at `ctl`."""
        with open(self.dir / "log" / f"{Path(argv[0]).name.replace('-dpdk', '')}.stderr", "wb") as out:
            daemon = subprocess.Popen(["ip", "netns", "exec", self.netns, *argv, f"--unixctl={ctl}", "-vconsole:off",
                                       "--no-chdir"], env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                      start_new_session=True)
        self._daemons.append((daemon, ctl, exit_args))

    def _until(self, attempt: Callable[[], object], what: str, timeout: float = 10.0,
               errors: tuple[type[BaseException], ...] = (OvsError,)) -> None:
        """`attempt` until it does not raise `errors`; an OvsError with diagnostics once `timeout` s
        have passed or a daemon has exited."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                attempt()
                return
            except errors as e:
                dead = [d for d, _, _ in self._daemons if d.poll() is not None]
                if time.monotonic() > deadline or dead:
                    why = "it exited" if dead else f"not within {timeout:.0f} s"
                    raise OvsError(f"Open vSwitch: {what} not ready ({why}): {e}\n{self.diagnostics()}") from None
                time.sleep(0.05)
