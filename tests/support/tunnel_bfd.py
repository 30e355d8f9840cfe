"""A BFD endpoint inside a switch's Geneve tunnel (RFC 9521's management VAP), for the OVS lab of ovs.py.

    switch ns                                                      bfd ns (one per switch)
    br-tun:  gnv0 --decap (table 0)--> table 1 --BFD to the TEP--> bt0 ──veth── bfd0: TEP/128, bfdd
                                              └--anything else---> inet0 (the internet, as before)
             bt0 --BFD from bfdd--> tun_ipv6_dst=sled, tun_id=99 --> gnv0

The decapsulation is one flow, table 0's `in_port=gnv0,tun_id=99` (it replaces ovs.py's flow of the same
match), so removing it breaks the switch's decap for guest traffic and BFD alike while br-ul, the TEP
address on it and the sled's route to it stay: what a switch whose Geneve pipeline fails looks like.
bfdd runs in the bfd namespace, whose only interface holds the TEP's address and reaches the sled only
through the tunnel, so its answers leave encapsulated by OVS.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .geneve import BOUNDARY_VNI
from .netns import Netns, namespace, veth
from .ovs import GENEVE_OFPORT, INTERNET_OFPORT, Uplink

BFD_OFPORT = 3
MULTI_HOP_PORT = 4784
BFD_MAC = "02:bf:d0:00:00:01"


def decap_flow(vni: int = BOUNDARY_VNI) -> str:
    """The match of the switch's one decapsulation flow (for `ovs-ofctl del-flows --strict br-tun`)."""
    return f"table=0,in_port={GENEVE_OFPORT},tun_id={vni}"


@contextlib.contextmanager
def tunnel_bfd_endpoint(link: Uplink, sled_address: str) -> Iterator[Netns]:
    """The bfd namespace of `link`'s switch, wired into its br-tun as above; bfdd is the caller's to start."""
    switch = link.switch
    decap = switch.ofctl("dump-flows", "--no-stats", "br-tun", decap_flow()).split()
    to_internet = next(word for word in decap if word.startswith("actions="))
    assert f"output:{INTERNET_OFPORT}" in to_internet or "output:inet0" in to_internet, decap
    with namespace("bfd") as ns:
        veth(switch.ns, "bt0", ns, "bfd0", b_mac=BFD_MAC)
        switch.ns.sysctl(net__ipv6__conf__bt0__disable_ipv6=1)
        # bfdd's UDP leaves the kernel with a partial checksum otherwise, and OVS reads it through AF_PACKET
        ns.disable_tx_checksum_offload("bfd0")
        ns.add_address("bfd0", f"{link.tep}/128")
        ns.ip("-6", "route", "add", f"{sled_address}/128", "dev", "bfd0")
        ns.neighbour("bfd0", sled_address, link.mac)  # whatever it is: OVS puts it in the tunnel as it is
        switch.vsctl("add-port", "br-tun", "bt0", "--", "set", "interface", "bt0", f"ofport_request={BFD_OFPORT}")
        for flow in (
                f"{decap_flow()},actions=goto_table:1",
                f"table=1,priority=100,udp6,ipv6_dst={link.tep},tp_dst={MULTI_HOP_PORT},"
                f"actions=mod_dl_dst:{BFD_MAC},output:{BFD_OFPORT}",
                f"table=1,priority=0,{to_internet}",
                f"table=0,in_port={BFD_OFPORT},udp6,tp_dst={MULTI_HOP_PORT},"
                f"actions=set_field:{sled_address}->tun_ipv6_dst,set_field:{BOUNDARY_VNI}->tun_id,"
                f"output:{GENEVE_OFPORT}"):
            switch.ofctl("add-flow", "br-tun", flow)
        yield ns
