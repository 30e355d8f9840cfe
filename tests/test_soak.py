"""bench/soak.py, short: it runs, reports, and finds no frame sent to a member after its removal.

The soak runs its own EAL in a subprocess, so it needs no `eal` fixture."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).parent.parent / "bench" / "soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_windows_forbid_exactly_from_removal_to_return():
    w = load_soak().Windows()
    w.removed(100)
    assert w.forbids(100) and w.forbids(10**9)  # still removed: everything after the commit
    w.restored(250)
    w.removed(400)
    assert [s for s in (99, 100, 249, 250, 399, 400, 401) if w.forbids(s)] == [100, 249, 400, 401]
    w.restored(300)  # a return begun before any frame of this removal: nothing forbidden
    assert not w.forbids(400)


def test_soak_short_run_misroutes_nothing():
    # each flow comes round every 0.8 s, longer than the soak's rebalance idle time (0.5 s)
    run = subprocess.run([sys.executable, str(SOAK), "--duration-s", "8", "--flows", "16384", "--rate-pps", "20000",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    r = json.loads(run.stdout.splitlines()[-1])
    assert r["misrouted"] == {"nexthop_b": 0, "tep2": 0}
    # the check had something to check: both members carried traffic, and won flows back after each return
    assert r["through"]["nexthop_b"] > 0 and r["through"]["tep2"] > 0
    assert r["flows_migrated"] > 0 and r["flows_rebalanced"] > 0
    assert r["route_flaps"] > 10 and r["tep_flips"] > 4 and r["commits"] == r["route_flaps"] + r["tep_flips"]
    assert r["packets_in"] > 0 and r["packets_out"] > 0 and r["dropped"] == {}
    assert r["ctl_reads"] > 100 and r["ctl_errors"] == 0
