"""Running `opte-fast` as a user does: the command line and a config file for the sample sled."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Not the console script: the tests do not depend on PATH, only on the package being importable.
OPTE_FAST = [sys.executable, "-c", "from opte_fast.cli import main; main()"]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = REPO / "docs" / "config-example.toml"  # the documented example, which tests load


def ctl_json(sock: str, *args: str):
    """`opte-fast ctl --json ARGS` against the instance at control socket `sock`: its answer, decoded."""
    p = subprocess.run([*OPTE_FAST, "ctl", "--socket", sock, "--json", *args], cwd=REPO, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, f"opte-fast ctl {' '.join(args)}: {p.stderr.strip()}"
    return json.loads(p.stdout)


STATE_DIR_PREFIX = f"oft-state-{os.getpid()}-"  # tests/conftest.py removes these at the end


def sled_toml(guest_devargs: str, uplinks: dict[str, str], *, static_routes: bool,
              exception_path: bool = False, state_dir: str | None = None) -> str:
    """The sample sled (opte_fast/sample.py) as a config file: one guest, V2B 0.0.0.0/0 to the TEP
    fd00:99::1, and with `static_routes` its route fd00:99::/64 over every uplink (name -> devargs).
    Its saved bucket tables go to `state_dir`, by default a new directory of its own, so that no
    run starts from another test's tables."""
    state_dir = state_dir or tempfile.mkdtemp(prefix=STATE_DIR_PREFIX)
    lines = [
        "[underlay]", 'addr = "fd00:0:f7:101::1"', "",
        "[route_sync]", f'source = "{"static" if static_routes else "netlink"}"', "",
        "[dataplane]", "flow_capacity = 4096", f"exception_path = {str(exception_path).lower()}",
        f'state_dir = "{state_dir}"', "",
        "[eal]", "memory_mb = 1024", "",
        "[[guest]]", 'name = "guest0"', f'devargs = "{guest_devargs}"', "vni = 7", 'mac = "02:00:00:00:00:01"',
        'gateway_mac = "a8:40:25:ff:00:01"', 'ipv4 = "10.0.0.2"', "",
    ]
    for name, devargs in uplinks.items():
        lines += ["[[uplink]]", f'name = "{name}"', f'devargs = "{devargs}"', ""]
    lines += ["[[v2b]]", 'prefix = "0.0.0.0/0"', 'teps = ["fd00:99::1"]', ""]
    if static_routes:
        hops = ", ".join(f'{{ uplink = "{name}", gateway = "fe80::{i + 1:x}", mac = "02:aa:00:00:00:{i + 1:02x}" }}'
                         for i, name in enumerate(uplinks))
        lines += ["[[route]]", 'prefix = "fd00:99::/64"', f"nexthops = [{hops}]", ""]
    return "\n".join(lines)
