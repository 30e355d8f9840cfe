"""BFD authentication (RFC 5880 6.7.4, Keyed SHA1 and Meticulous Keyed SHA1) against BIRD 2's bfd
protocol, a real and independent implementation (Debian's FRR has no BFD authentication).

The data plane's net_tap uplink goes into a switch namespace whose kernel side has the switch's
gateway address and runs `bird` with one single-hop neighbor at the sled's link-local address, both
sides at 100 ms x 3 (tests/support/bfd_lab.py's LAB says why not faster here).

- With the same key and key ID the session comes Up on both sides, and no packet of BIRD's fails
  our checks.
- Our key changed to a wrong one (a running session, reconfigured as of_dp_bfd_set allows): both sides
  go Down and stay Down, and our rx_auth_bad_digest grows; a wrong key ID, rx_auth_bad_key_id.
- The right key back: Up again on both sides.
- BIRD without authentication: our authenticated session takes none of its packets (rx_auth_missing).

Config errors of the [bfd] auth keys are in test_bfd.py's settings tests.
"""
from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opte_fast.controlplane.bfd import AUTH_NAMES
from opte_fast.controlplane.bfd_settings import BfdSettings
from opte_fast.controlplane.dataplane import Dataplane, DataplaneOptions
from opte_fast.controlplane.state import mac_bytes
from opte_fast.tools.sample import anycast_state, switch_gateway, switch_mac, uplink_name
from tests.support.bfd_lab import LAB, link_local
from tests.support.bird import Bird, bfd_config
from tests.support.netns import Netns, namespace, run
from tests.support.tap import tap_devargs
from tests.support.tools import needs_root, needs_tools
from tests.support.wait import wait_for

KEY = "opte-fast"
KEY_ID = 7
BIRD_AUTH = {"keyed-sha1": "keyed sha1", "meticulous-keyed-sha1": "meticulous keyed sha1"}
UP, DOWN = 3, 1


@dataclass
class AuthLab:
    dp: Dataplane
    switch: Netns
    bird: Bird
    ifname: str
    ours: str       # our link-local address on the uplink: BIRD's neighbor

    def set_session(self, settings: BfdSettings) -> None:
        """Our one session to the switch, with `settings` (a running session keeps its state and
        discriminator and takes the new authentication at once)."""
        self.dp.bfd_set([(False, switch_gateway(0).packed, self.dp.port_index(uplink_name(0)),
                          mac_bytes(switch_mac(0)), *settings.peer_args, False, 0, *settings.auth_args)])

    def our_state(self) -> int:
        return self.dp.bfd_sessions()[0]["state"]

    def bird_config(self, auth: str, key: str = KEY, key_id: int = KEY_ID) -> str:
        return bfd_config(interface=self.ifname, neighbor=self.ours, interval_ms=LAB.desired_min_tx_ms,
                          multiplier=LAB.detect_multiplier, auth=auth, key=key, key_id=key_id)


def key_file(tmp_path: Path, name: str, key: str) -> str:
    path = tmp_path / name
    path.write_text(key + "\n")  # as `echo` writes it: one trailing newline is not part of the key
    return str(path)


@contextlib.contextmanager
def bird_lab(bird_auth: str) -> Iterator[AuthLab]:
    """The data plane with uplink0 as a tap in a switch namespace running BIRD (`bird_auth`, KEY, KEY_ID),
    and no session of ours yet."""
    tag = secrets.token_hex(3)
    ifname, mac = f"ofa0{tag}", "02:5e:00:00:00:01"
    with contextlib.ExitStack() as stack:
        switch = stack.enter_context(namespace("bfdauth"))
        state = anycast_state(1)
        dp = Dataplane(DataplaneOptions(underlay_addr=state.underlay.addr, flow_capacity=4096, n_mbufs=8191))
        stack.callback(dp.close)
        dp.add_ring_port("guest0", "guest")
        dp.add_port(uplink_name(0), tap_devargs(ifname, mac), "uplink")
        dp.commit(state)
        dp.start([1])
        run(["ip", "link", "set", ifname, "netns", switch.name])
        switch.ip("link", "set", ifname, "address", switch_mac(0), "up")
        switch.add_address(ifname, f"{switch_gateway(0)}/64")
        ours = str(link_local(mac))
        lab = AuthLab(dp, switch, None, ifname, ours)  # type: ignore[arg-type]
        lab.bird = stack.enter_context(Bird(switch, lab.bird_config(bird_auth)))
        yield lab


def hold(lab: AuthLab, state: int, seconds: float) -> None:
    """Our session stays in `state` for `seconds` (several detection times)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert lab.our_state() == state, lab.dp.bfd_sessions()[0]
        time.sleep(0.02)


def refused(lab: AuthLab, counter: str, n: int, timeout_s: float = 5.0) -> None:
    """`n` more of BIRD's packets refused as `counter` while our session stays Down. A peer that is Down
    sends once a second (RFC 5880 6.8.3), so this takes about n seconds."""
    start = lab.dp.bfd_stats()[counter]
    deadline = time.monotonic() + timeout_s
    while lab.dp.bfd_stats()[counter] - start < n:
        assert lab.our_state() == DOWN, lab.dp.bfd_sessions()[0]
        assert time.monotonic() < deadline, f"{counter}: {lab.dp.bfd_stats()[counter] - start} in {timeout_s} s"
        time.sleep(0.02)


@needs_root("taps, namespaces and BIRD")
@needs_tools("bird", "birdc")
@pytest.mark.parametrize("auth", ["keyed-sha1", "meticulous-keyed-sha1"])
def test_an_authenticated_session_comes_up_with_bird_only_with_the_same_key_and_key_id(eal, tmp_path, auth):
    right = BfdSettings("on", LAB.desired_min_tx_ms, LAB.required_min_rx_ms, LAB.detect_multiplier, auth, KEY_ID,
                        key_file(tmp_path, "key", KEY)).with_key()
    wrong_key = dataclasses.replace(right, auth_key_file=key_file(tmp_path, "wrong", "opte-slow")).with_key()
    wrong_id = dataclasses.replace(right, auth_key_id=KEY_ID + 1)
    with bird_lab(BIRD_AUTH[auth]) as lab:
        dp = lab.dp
        lab.set_session(right)
        wait_for(lambda: lab.our_state() == UP, timeout_s=10, what="our session Up")
        lab.bird.wait_state(lab.ours, "Up")
        s = dp.bfd_sessions()[0]
        assert (AUTH_NAMES[s["auth_type"]], s["auth_key_id"]) == (auth, KEY_ID)
        hold(lab, UP, 1.0)
        stats = dp.bfd_stats()
        assert {k: v for k, v in stats.items() if k.startswith("rx_auth_")} == dict.fromkeys(
            ("rx_auth_missing", "rx_auth_unexpected", "rx_auth_bad_type", "rx_auth_bad_key_id", "rx_auth_bad_seq",
             "rx_auth_bad_digest"), 0), stats

        # -- a wrong key: neither side takes the other's packets -----------------------------------
        lab.set_session(wrong_key)
        wait_for(lambda: lab.our_state() == DOWN, timeout_s=3, what="our session Down")
        lab.bird.wait_state(lab.ours, "Down", timeout_s=3)
        # BIRD, Down too, now sends once a second: as many refusals as time allows, not a count by the clock
        refused(lab, "rx_auth_bad_digest", 2)
        assert dp.bfd_sessions()[0]["diag"] == 1  # the detection time ran out: nothing of BIRD's got through
        assert "wrong authentication code" in lab.bird.log()  # and BIRD refused ours for the same reason

        # -- the right key with a wrong key ID ------------------------------------------------------
        lab.set_session(wrong_id)
        refused(lab, "rx_auth_bad_key_id", 2)
        assert lab.bird.sessions()[lab.ours] == "Down"
        assert "no suitable password found" in lab.bird.log()

        # -- the right key again: Up on both sides --------------------------------------------------
        lab.set_session(right)
        wait_for(lambda: lab.our_state() == UP, timeout_s=10, what="our session Up again")
        lab.bird.wait_state(lab.ours, "Up")
        assert dp.bfd_sessions()[0]["ups"] == 2


@needs_root("taps, namespaces and BIRD")
@needs_tools("bird", "birdc")
def test_an_authenticated_session_takes_nothing_from_a_peer_without_authentication(eal, tmp_path):
    ours = BfdSettings("on", LAB.desired_min_tx_ms, LAB.required_min_rx_ms, LAB.detect_multiplier, "keyed-sha1",
                       KEY_ID, key_file(tmp_path, "key", KEY)).with_key()
    with bird_lab("none") as lab:
        lab.set_session(ours)
        refused(lab, "rx_auth_missing", 2)
        assert lab.dp.bfd_sessions()[0]["rx_packets"] == 0
        assert lab.bird.sessions()[lab.ours] == "Down"
        # and the other way: our session without authentication refuses BIRD's with it
        lab.bird.reconfigure(lab.bird_config("keyed sha1"))
        lab.set_session(dataclasses.replace(ours, auth="none", auth_key_file=None).with_key())
        refused(lab, "rx_auth_unexpected", 2)
        assert lab.dp.bfd_sessions()[0]["rx_packets"] == 0
