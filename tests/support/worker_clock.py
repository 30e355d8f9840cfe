"""Deadlines in the workers' own time. A test that waits for the data plane gives its worker threads
so many seconds on their CPUs, not so many seconds of wall clock: a machine that keeps a worker off
its CPU (other processes' pollers pinned to the same CPU; run-queue waits of 2.4 s were measured
with the suites of several engineers running) then slows the test down but cannot fail it, while a
worker that runs and does not do the work still fails it as soon as before. A worker that neither
runs nor waits for its CPU (blocked, which a poll loop never is) fails at the wall-clock limit."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from opte_fast.tools.threads import threads_named

WORKER_THREAD = re.compile(r"worker-?(\d+)$")   # the EAL's lcore threads: rte-worker-1 (22.11), dpdk-worker1 (24.11)
WALL_LIMIT_FACTOR = 20                          # a blocked worker: fail after this many times the budget


class WorkerClock:
    """CPU time of the threads of worker lcores `lcores` of this process."""

    def __init__(self, lcores: list[int]):
        self.tids = {int(m.group(1)): tid for tid, m in threads_named("self", WORKER_THREAD).items()
                     if int(m.group(1)) in lcores}
        assert sorted(self.tids) == sorted(lcores), f"no thread of worker lcores {lcores} among this process's"

    def cpu_s(self) -> float:
        """The least CPU time of the workers: each of them has run at least this long. Exact to the call
        (the thread's CPU clock, which a process may read for its own threads)."""
        return min(time.clock_gettime_ns((~tid << 3) | 6) for tid in self.tids.values()) / 1e9  # CPUCLOCK_SCHED

    def waited_s(self) -> float:
        """The most time a worker has spent runnable but off its CPU (schedstat's run delay)."""
        return max(int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1])
                   for tid in self.tids.values()) / 1e9


def wait_on_workers(clock: WorkerClock, cond: Callable[[], bool], budget_s: float, what: Callable[[], str],
                    step_s: float = 0.001) -> float:
    """Poll until cond() holds; the monotonic time it first did. Fails with what() once every worker
    has had budget_s on its CPU since the call, or WALL_LIMIT_FACTOR times that on the wall clock."""
    cpu0, wall0, waited0 = clock.cpu_s(), time.monotonic(), clock.waited_s()
    while not cond():
        ran, wall = clock.cpu_s() - cpu0, time.monotonic() - wall0
        assert ran < budget_s and wall < WALL_LIMIT_FACTOR * budget_s, (
            f"{what()} after {ran:.2f} s on the worker's CPU ({wall:.2f} s of wall clock, "
            f"{clock.waited_s() - waited0:.2f} s waiting for its CPU)")
        time.sleep(step_s)
    return time.monotonic()
