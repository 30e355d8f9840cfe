"""`ctl top`'s view of two samples: rates are differences over the time between them."""
from opte_fast.api.ctl import table
from opte_fast.api.top import Sample, view


def stats(uptime_s: float, polls: int, busy: int, rx: int, tx: int, not_ip: int, migrated: int) -> dict:
    port = {"rx_packets": 0, "tx_packets": 0, "rx_bytes": 0, "tx_bytes": 0, "rx_missed": 0}
    return {"uptime_s": uptime_s,
            "workers": [{"lcore": 1, "polls": polls, "busy_polls": busy, "rx_packets": rx, "flows": 3,
                         "flow_capacity": 1000}],
            "ports": [{**port, "name": "guest0", "role": "guest", "rx_packets": rx, "rx_bytes": 100 * rx},
                      {**port, "name": "uplink0", "role": "uplink", "tx_packets": tx, "tx_bytes": 170 * tx}],
            "counters": {"not_ip": not_ip, "no_route": 5, "flows_migrated": migrated, "flows_rebalanced": 0,
                         "flows_rerouted": 0},
            "drops": ["no_route", "not_ip"]}


def hops(packets: int, up: bool = True) -> list[dict]:
    return [{"prefix": "fd00:99::/64", "uplink": "uplink0", "gateway": "fe80::1", "up": up, "flows": 3,
             "packets": packets, "bytes": 100 * packets}]


def test_rates_busy_share_and_fill_over_two_seconds():
    before = Sample(10.0, stats(100, polls=1000, busy=100, rx=50, tx=40, not_ip=1, migrated=0),
                    hops(40))
    now = Sample(12.0, stats(102, polls=3000, busy=600, rx=2050, tx=2040, not_ip=11, migrated=6),
                 hops(2040, up=False))
    assert view(before, now, table) == "\n\n".join([
        "up 102 s, every 2.0 s; flows 3 of 1,000 (0.3% full)",
        "LCORE  BUSY    RX_PPS  FLOWS  CAPACITY\n    1  25.00%  1,000       3      1000",
        "PORT     ROLE    RX_PPS  TX_PPS  RX_MBPS  TX_MBPS  MISSED_PS\n"
        "guest0   guest   1,000   0       0.8      0.0      0\n"
        "uplink0  uplink  0       1,000   0.0      1.4      0",
        "NEXTHOP                               UP    FLOWS  PPS    MBPS\n"
        "fd00:99::/64 via fe80::1 dev uplink0  down      3  1,000  0.8",
        "flows moved: 3/s migrated, 0/s rebalanced, 0/s rerouted",
        "DROP    PER_S  TOTAL\nnot_ip  5         11"])
