"""`opte-fast ctl top`: a refreshing view of a running instance, as `ovs-appctl
dpif-netdev/pmd-stats-show` meets top: each worker's busy share, packet and bit rates per port
and per nexthop, drops per second by reason, flows moved, and how full the flow tables are.
Rates are differences of two samples of `stats` and `nexthops` over the time between them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..controlplane.events import MOVES


@dataclass(frozen=True)
class Sample:
    """What one refresh reads: the stats and nexthops operations' results, and when (seconds)."""
    at_s: float
    stats: dict
    nexthops: list[dict]


def _rate(now: int, before: int, dt_s: float) -> float:
    return max(0, now - before) / dt_s


def _fmt(rate: float) -> str:
    return f"{rate:,.0f}"


def _mbps(byte_rate: float) -> str:
    return f"{byte_rate * 8 / 1e6:,.1f}"


def view(before: Sample, now: Sample, table: Any) -> str:
    """The view of the interval between two samples; `table` lays records out (ctl's table)."""
    dt = max(now.at_s - before.at_s, 1e-9)
    s, b = now.stats, before.stats
    workers = {w["lcore"]: w for w in b["workers"]}
    busy = []
    flows = capacity = 0
    for w in s["workers"]:
        old = workers.get(w["lcore"], w)
        polls = w["polls"] - old["polls"]
        share = 100 * (w["busy_polls"] - old["busy_polls"]) / polls if polls > 0 else 0.0
        busy.append({"lcore": w["lcore"], "busy": f"{share:.2f}%", "rx_pps": _fmt(_rate(w["rx_packets"],
                                                                                          old["rx_packets"], dt)),
                     "flows": w["flows"], "capacity": w["flow_capacity"]})
        flows += w["flows"]
        capacity += w["flow_capacity"]
    fill = f"{100 * flows / capacity:.1f}%" if capacity else "-"
    head = f"up {s['uptime_s']:.0f} s, every {dt:.1f} s; flows {flows:,} of {capacity:,} ({fill} full)"

    old_ports = {p["name"]: p for p in b["ports"]}
    ports = []
    for p in s["ports"]:
        o = old_ports.get(p["name"], p)
        ports.append({"port": p["name"], "role": p["role"],
                      "rx_pps": _fmt(_rate(p["rx_packets"], o["rx_packets"], dt)),
                      "tx_pps": _fmt(_rate(p["tx_packets"], o["tx_packets"], dt)),
                      "rx_mbps": _mbps(_rate(p["rx_bytes"], o["rx_bytes"], dt)),
                      "tx_mbps": _mbps(_rate(p["tx_bytes"], o["tx_bytes"], dt)),
                      "missed_ps": _fmt(_rate(p["rx_missed"], o["rx_missed"], dt))})

    old_hops = {(n["prefix"], n["uplink"], n["gateway"]): n for n in before.nexthops}
    hops = []
    for n in now.nexthops:
        o = old_hops.get((n["prefix"], n["uplink"], n["gateway"]), n)
        hops.append({"nexthop": f"{n['prefix']} via {n['gateway']} dev {n['uplink']}", "up": n["up"],
                     "flows": n["flows"], "pps": _fmt(_rate(n["packets"], o["packets"], dt)),
                     "mbps": _mbps(_rate(n["bytes"], o["bytes"], dt))})

    c, oc = s["counters"], b["counters"]
    drops = [{"drop": name, "per_s": _fmt(_rate(c[name], oc.get(name, 0), dt)), "total": c[name]}
             for name in s["drops"] if c.get(name, 0) != oc.get(name, 0)]
    moves = ", ".join(f"{_fmt(_rate(c[m], oc.get(m, 0), dt))}/s {m[len('flows_'):]}" for m in MOVES)
    return "\n\n".join([head, table(busy), table(ports), table(hops) if hops else "(no nexthops)",
                        f"flows moved: {moves}",
                        table(drops) if drops else "drops: none in this interval"])
