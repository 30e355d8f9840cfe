"""A sled on ring ports: the real data plane, fed and drained from the test."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace

from opte_fast import _dataplane
from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.state import DesiredState, Route
from opte_fast.tools.sample import (
    GATEWAY_MAC,
    GUEST_IP4,
    GUEST_IP6,
    GUEST_MAC,
    GUEST_VNI,
    TEP,
    UNDERLAY,
    anycast_state,
    switch_gateway,
    switch_mac,
    uplink_name,
)
from tests.support.flowhash import TEST_HASH_KEY
from tests.support.worker_clock import WorkerClock, wait_on_workers

SWITCH_MACS = [switch_mac(i) for i in range(16)]
gateway = switch_gateway
uplink = uplink_name
default_state = anycast_state
DROP_COUNTERS = tuple(name for name, drop in zip(_dataplane.counter_names(), _dataplane.counter_drops()) if drop)


def drops(counters: dict[str, int]) -> dict[str, int]:
    """The drop counters (csrc/counters.def's OF_DROP) that are not zero (of all counters, or of a `delta`)."""
    return {name: counters[name] for name in DROP_COUNTERS if counters.get(name)}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """The counters that changed from `before` to `after`, by how much."""
    return {k: v - before[k] for k, v in after.items() if v != before[k]}


def with_nexthop_up(state: DesiredState, index: int, up: bool) -> DesiredState:
    """`state` with nexthop `index` of its first route marked up or down."""
    route = state.routes[0]
    nhs = tuple(replace(n, up=up) if i == index else n for i, n in enumerate(route.nexthops))
    return state.replace(routes=(Route(route.prefix, nhs), *state.routes[1:]))


class Sled:
    def __init__(self, dp: Dataplane):
        self.dp = dp
        self._clock: WorkerClock | None = None

    @property
    def clock(self) -> WorkerClock:
        """The CPU time of the started data plane's workers (tests/support/worker_clock.py)."""
        if self._clock is None:
            self._clock = WorkerClock([w["lcore"] for w in self.dp.workers()])
        return self._clock

    def wait_for(self, cond: Callable[[], bool], budget_s: float = 3.0) -> float:
        """Poll until cond() holds, giving the workers budget_s on their CPUs; the monotonic time it first did."""
        return wait_on_workers(self.clock, cond, budget_s, lambda: "condition not reached")

    def counters(self) -> dict[str, int]:
        return self.dp.counters()

    def send(self, port: str, frames: list[bytes], timeout_s: float = 5.0, **chained) -> None:
        """Inject frames and return once the workers have received and finished them: within
        timeout_s of the workers' time on their CPUs, however long a busy machine keeps them off.
        With one worker only: a frame handed to another worker may still wait on its ring (wait for
        what leaves instead, as tests/test_multi_worker.py does). `chained`: segment_bytes,
        tso_segsz, csum_partial (Dataplane.inject)."""
        clock = self.clock
        before = self._received()
        assert self.dp.inject(port, frames, **chained) == len(frames), "ring full"
        wait_on_workers(clock, lambda: self._received() >= before + len(frames), timeout_s,
                        lambda: f"data plane took {len(frames)} frames but processed {self._received() - before}")
        self.dp.quiesce()

    def recv(self, port: str) -> list[bytes]:
        return self.dp.collect(port)

    def drain(self, port: str) -> list[bytes]:
        """Every frame waiting on ring port `port`, 4096 a call into a buffer of 256 bytes a frame: cheap
        for the small frames of many flows (`recv` makes room for 4096 of the largest)."""
        out: list[bytes] = []
        while True:
            got = self.dp.collect(port, 4096, 256)
            out += got
            if len(got) < 4096:
                return out

    def _received(self) -> int:
        c = self.dp.counters()
        return c["rx_guest_packets"] + c["rx_uplink_packets"] + c["rx_exception_packets"]


@contextmanager
def ring_sled(state: DesiredState | None = None, n_uplinks: int = 2, workers: tuple[int, ...] = (1,),
              guest_rx_queues: int = 1, state_dir: str | None = None, **options):
    """A started data plane with ring ports guest0 (with `guest_rx_queues` RX queues), uplink0..n-1,
    tables from `state`, on worker lcores `workers` (conftest's EAL has lcores 1 and 2), bucket
    tables saved in `state_dir` (if given). The flow hash has the key tests predict hashes with
    (tests/support/flowhash.py); `hash_key=None` takes the state directory's instead."""
    state = state or default_state(n_uplinks)
    options.setdefault("hash_key", TEST_HASH_KEY)
    opts = DataplaneOptions(underlay_addr=state.underlay.addr, flow_capacity=options.pop("flow_capacity", 65536),
                            n_mbufs=options.pop("n_mbufs", 8191), **options)
    dp = Dataplane(opts, state_dir=state_dir)
    try:
        dp.add_ring_port("guest0", "guest", rx_queues=guest_rx_queues)
        for i in range(n_uplinks):
            dp.add_ring_port(uplink(i), "uplink")
        dp.commit(state)
        dp.start(list(workers))
        yield Sled(dp)
    finally:
        dp.close()


__all__ = ["Sled", "ring_sled", "default_state", "replace", "DROP_COUNTERS", "drops", "with_nexthop_up", "UNDERLAY", "GUEST_MAC", "GUEST_IP4", "GUEST_IP6",
           "GATEWAY_MAC", "GUEST_VNI", "TEP", "SWITCH_MACS", "gateway", "uplink"]
