"""BFD's settings: what [bfd], --bfd-* and [[bfd_uplink]] ask for, checked.

Apart from bfd.py, which runs the sessions, so that loading a configuration
(every CLI command does) needs neither the follower thread nor Prometheus.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MODES = ("off", "on", "require")
MULTIHOP_ENCAPS = ("geneve", "plain")


@dataclass(frozen=True)
class BfdSettings:
    """BFD on one uplink: `mode` off, on (a failed session marks down), or require (only an Up session
    lets its member be used); intervals in milliseconds, 10 at least."""
    mode: str = "off"
    desired_min_tx_ms: int = 50
    required_min_rx_ms: int = 50
    detect_multiplier: int = 3

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"BFD mode {self.mode!r}: expected one of {', '.join(MODES)}")
        for name in ("desired_min_tx_ms", "required_min_rx_ms", "detect_multiplier"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"BFD {name} {getattr(self, name)!r}: expected an integer")
        for name in ("desired_min_tx_ms", "required_min_rx_ms"):
            if not 10 <= getattr(self, name) <= 60_000:
                raise ValueError(f"BFD {name} {getattr(self, name)}: expected 10 to 60000")
        if not 1 <= self.detect_multiplier <= 255:
            raise ValueError(f"BFD detect_multiplier {self.detect_multiplier}: expected 1 to 255")

    @property
    def peer_args(self) -> tuple[int, int, int]:
        return self.desired_min_tx_ms * 1000, self.required_min_rx_ms * 1000, self.detect_multiplier


@dataclass(frozen=True)
class BfdConfig:
    """`default` for every uplink not in `uplinks`; multi-hop sessions to TEPs (with `default`'s settings)
    when `multihop` and `default.mode` is not off, through Geneve or plainly to the TEP's address as
    `multihop_encap` says."""
    default: BfdSettings = BfdSettings()
    uplinks: tuple[tuple[str, BfdSettings], ...] = ()
    multihop: bool = True
    multihop_encap: str = "geneve"

    def __post_init__(self) -> None:
        if self.multihop_encap not in MULTIHOP_ENCAPS:
            raise ValueError(f"BFD multihop_encap {self.multihop_encap!r}: expected one of "
                             f"{', '.join(MULTIHOP_ENCAPS)}")

    def for_uplink(self, uplink: str) -> BfdSettings:
        return dict(self.uplinks).get(uplink, self.default)

    @property
    def off(self) -> bool:
        return self.default.mode == "off" and all(s.mode == "off" for _, s in self.uplinks)


def bfd_config(options: Any, entries: list[tuple[str, dict]], uplinks: list[str],
               fail: Callable[[str, str], Exception]) -> BfdConfig:
    """The run's BFD: the [bfd] options for every uplink, and a [[bfd_uplink]] entry per uplink that differs
    (its keys default to [bfd]'s). `fail(key, message)` makes the error to raise."""
    default = BfdSettings(options.bfd, options.bfd_tx_ms, options.bfd_rx_ms, options.bfd_multiplier)
    per_uplink: dict[str, BfdSettings] = {}
    for key, e in entries:
        name = e.get("name")
        if name not in uplinks:
            raise fail(f"{key}.name", f"no uplink {name!r} (expected one of {', '.join(uplinks) or 'none'})")
        if name in per_uplink:
            raise fail(f"{key}.name", f"uplink {name!r} has a [[bfd_uplink]] entry already")
        try:
            per_uplink[name] = dataclasses.replace(default, **{k: v for k, v in e.items() if k != "name"})
        except (TypeError, ValueError) as err:
            raise fail(key, str(err)) from None
    return BfdConfig(default, tuple(per_uplink.items()), options.bfd_multihop, options.bfd_multihop_encap)
