"""Reading the tables from a control thread while another thread commits.

Every member-only commit rebuilds the nexthop group's bucket table and frees the previous one once
no reader holds it. A reader outside the workers (`ctl buckets`, `ctl nexthops`) must therefore be
waited for like a worker is: here one thread commits in a loop while this one reads in a loop. A
read of a freed table shows up as a bucket table that is neither of the two states committed (and
under AddressSanitizer, ci/sanitized-tests.sh, as a heap-use-after-free).
"""
from __future__ import annotations

import collections
import dataclasses
import threading

from opte_fast.tools.sample import TEP_PREFIX
from tests.support.sled import default_state, ring_sled

N_UPLINKS = 4
BUCKETS = 4096


def with_nexthop_down(state, index: int):
    (route,) = state.routes
    hops = tuple(dataclasses.replace(h, up=i != index) for i, h in enumerate(route.nexthops))
    return state.replace(routes=(dataclasses.replace(route, nexthops=hops),))


def test_bucket_and_path_reads_beside_a_committing_thread_see_only_committed_tables(eal):
    all_up = default_state(N_UPLINKS)
    one_down = with_nexthop_down(all_up, 3)
    commits = 2000
    with ring_sled(all_up, n_uplinks=N_UPLINKS, n_buckets=BUCKETS) as sled:
        dp = sled.dp
        ids = {dp.nexthop_id(TEP_PREFIX, h.uplink, h.gateway) for h in all_up.routes[0].nexthops}
        down_id = dp.nexthop_id(TEP_PREFIX, "uplink3", all_up.routes[0].nexthops[3].gateway)
        failure: list[BaseException] = []

        def commit_loop() -> None:
            try:
                for i in range(commits):
                    dp.commit(one_down if i % 2 == 0 else all_up)
            except BaseException as e:  # reported by the reading thread
                failure.append(e)

        committer = threading.Thread(target=commit_loop)
        seen = collections.Counter()
        committer.start()
        try:
            while committer.is_alive():
                counts = collections.Counter(int(m) for m in dp.bucket_table("nexthop", TEP_PREFIX))
                members = frozenset(counts)
                assert members in (ids, ids - {down_id}), counts
                assert sum(counts.values()) == BUCKETS
                # Each live member holds floor(B/n) or ceil(B/n) buckets.
                assert max(counts.values()) - min(counts.values()) <= 1, counts
                seen[len(members)] += 1
                (groups,) = [b for b in dp.buckets() if b["kind"] == "nexthop"]
                assert sum(m["buckets"] for m in groups["members"]) == BUCKETS
                assert len(dp.paths()["nexthops"]) == N_UPLINKS
        finally:
            committer.join()
        assert not failure, failure
        assert dp.table_swaps() >= commits
        # Both states were read, so the reads did overlap the commits.
        assert seen[N_UPLINKS] > 0 and seen[N_UPLINKS - 1] > 0, seen
