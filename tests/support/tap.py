"""net_tap ports: DPDK's tap PMD makes the kernel interface it is given."""
from __future__ import annotations


def tap_devargs(iface: str, mac: str | None = None) -> str:
    """net_tap devargs for kernel interface `iface` (with MAC `mac`, else a random one). The DPDK device
    name must be unique in the process (one EAL for the whole pytest run): it is made of the already
    unique `iface`."""
    return f"net_tap_{iface},iface={iface}" + (f",mac={mac}" if mac else "")
