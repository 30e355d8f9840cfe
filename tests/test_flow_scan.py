"""Reading the flow table (`ctl flows`) while the control plane works: the scan runs in C without
the GIL and gives the GIL up every thousand flows, so commits (route sync's) go on during a scan
of every flow; a scan that filters reads the tables a chunk at a time and misses no flow."""
import threading
import time

from opte_fast.api.protocol import FLOWS_LIMIT_MAX
from opte_fast.api.server import ControlAPI
from opte_fast.controlplane.controller import Controller
from opte_fast.controlplane.routesync import NoRoutes
from tests.support.frames import guest_udp4_headers
from tests.support.sled import default_state, ring_sled, with_nexthop_up

N_FLOWS = FLOWS_LIMIT_MAX


def fill(sled, n: int) -> None:
    """n distinct UDP flows from the guest, to 10.x.y.z:53 from port 1000."""
    frames = [guest_udp4_headers(bytes([10]) + i.to_bytes(3, "big"), 1000, 53, payload_bytes=0) for i in range(n)]
    for start in range(0, n, 4096):
        sled.send("guest0", frames[start:start + 4096])
        sled.drain("uplink0"), sled.drain("uplink1")
    assert sled.dp.flow_count() == n


def test_commits_complete_during_one_scan_of_every_flow(eal):
    state = default_state(2)
    with ring_sled(state, flow_capacity=1 << 17) as sled:
        fill(sled, N_FLOWS)
        scans: list[tuple[float, float, int]] = []
        stop = threading.Event()

        def scan() -> None:
            while not stop.is_set():
                t0 = time.monotonic()
                flows, cursor = sled.dp._core.flows(N_FLOWS)  # one call: what `ctl flows --limit 65536` did
                scans.append((t0, time.monotonic(), len(flows)))
                assert cursor is None or len(flows) == N_FLOWS

        scanner = threading.Thread(target=scan)
        scanner.start()
        commits: list[tuple[float, float]] = []
        try:
            while len(scans) < 3:
                t0 = time.monotonic()
                sled.dp.commit(with_nexthop_up(state, 1, len(commits) % 2 == 1))
                commits.append((t0, time.monotonic()))
        finally:
            stop.set()
            scanner.join()
    assert all(n == N_FLOWS for _, _, n in scans)
    during = [c for c in commits if any(s0 < c[0] and c[1] < s1 for s0, s1, _ in scans)]
    assert during, f"no commit of {len(commits)} completed inside any of {len(scans)} scans"


def test_a_filtered_scan_reads_every_flow_a_chunk_at_a_time(eal):
    state = default_state(2)
    n = 10_000  # more than two chunks (FLOW_SCAN_CHUNK)
    with ring_sled(state) as sled:
        fill(sled, n)
        api = ControlAPI(Controller(sled.dp, state, ("uplink0", "uplink1")), sled.dp, NoRoutes())
        last = f"10.0.{(n - 1) >> 8}.{(n - 1) & 0xFF}"
        assert [f["dst"] for f in api.flows(FLOWS_LIMIT_MAX, {"dst": last})] == [last]
        everything = api.flows(FLOWS_LIMIT_MAX, {})
        assert len({f["dst"] for f in everything}) == n
        # each filtered scan gives exactly the flows of the whole scan that match, in table order
        for uplink in ("uplink0", "uplink1"):
            chosen = [f["dst"] for f in api.flows(FLOWS_LIMIT_MAX, {"uplink": uplink})]
            assert chosen == [f["dst"] for f in everything if f["uplink"] == uplink]
            assert 0 < len(chosen) < n
        assert len(api.flows(5, {"uplink": "uplink1"})) == 5
