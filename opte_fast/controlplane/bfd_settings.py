"""BFD's settings: what [bfd], --bfd-* and [[bfd_uplink]] ask for, checked.

Apart from bfd.py, which runs the sessions, so that loading a configuration
(every CLI command does) needs neither the follower thread nor Prometheus.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("off", "on", "require")
MULTIHOP_ENCAPS = ("geneve", "plain")
# RFC 5880 6.7.4's Auth Types by name, as csrc/bfd.h numbers them
AUTH_TYPES = {"none": 0, "keyed-sha1": 4, "meticulous-keyed-sha1": 5}
AUTH_KEY_MAX = 20


@dataclass(frozen=True)
class BfdSettings:
    """BFD on one uplink: `mode` off, on (a failed session marks down), or require (only an Up session
    lets its member be used); intervals in milliseconds, 10 at least. `auth` (RFC 5880 6.7.4) signs every
    packet and takes only packets signed with key `auth_key_id`, whose secret is the file `auth_key_file`
    (read into `auth_key` by `with_key`; never shown, never logged)."""
    mode: str = "off"
    desired_min_tx_ms: int = 50
    required_min_rx_ms: int = 50
    detect_multiplier: int = 3
    auth: str = "none"
    auth_key_id: int = 1
    auth_key_file: str | None = None
    auth_key: bytes = field(default=b"", repr=False)

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
        if self.auth not in AUTH_TYPES:
            raise ValueError(f"BFD auth {self.auth!r}: expected one of {', '.join(AUTH_TYPES)}")
        if not isinstance(self.auth_key_id, int) or isinstance(self.auth_key_id, bool) or \
                not 0 <= self.auth_key_id <= 255:
            raise ValueError(f"BFD auth_key_id {self.auth_key_id!r}: expected an integer from 0 to 255")
        if self.auth_key_file is not None and \
                (not isinstance(self.auth_key_file, str) or not self.auth_key_file.startswith("/")):
            raise ValueError(f"BFD auth_key_file {self.auth_key_file!r}: expected an absolute file path")
        if self.auth != "none" and self.auth_key_file is None:
            raise ValueError(f"BFD auth {self.auth}: needs auth_key_file, a file holding the secret "
                             f"(1 to {AUTH_KEY_MAX} bytes)")

    def with_key(self) -> BfdSettings:
        """These settings with `auth_key` read from `auth_key_file`: the file's bytes less one trailing
        newline, 1 to 20 of them. ValueError says what is wrong with the file, never what it holds."""
        if self.auth == "none":
            return dataclasses.replace(self, auth_key=b"")
        try:
            key = Path(self.auth_key_file).read_bytes()
        except OSError as e:
            raise ValueError(f"BFD auth_key_file {self.auth_key_file}: cannot read: {e.strerror}") from None
        key = key[:-2] if key.endswith(b"\r\n") else key[:-1] if key.endswith(b"\n") else key
        if not 1 <= len(key) <= AUTH_KEY_MAX:
            raise ValueError(f"BFD auth_key_file {self.auth_key_file}: holds {len(key)} bytes (less a trailing "
                             f"newline), expected 1 to {AUTH_KEY_MAX}")
        return dataclasses.replace(self, auth_key=key)

    @property
    def peer_args(self) -> tuple[int, int, int]:
        return self.desired_min_tx_ms * 1000, self.required_min_rx_ms * 1000, self.detect_multiplier

    @property
    def auth_args(self) -> tuple[int, int, bytes]:
        """What a session is given for authentication: (Auth Type, key ID, key)."""
        return AUTH_TYPES[self.auth], self.auth_key_id, self.auth_key


@dataclass(frozen=True)
class BfdConfig:
    """`default` for every uplink not in `uplinks`; multi-hop sessions to TEPs (with `default`'s settings,
    its authentication among them) when `multihop` and `default.mode` is not off, through Geneve or plainly
    to the TEP's address as `multihop_encap` says."""
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
    (its keys default to [bfd]'s). `fail(key, message)` makes the error to raise. Keys are read from their
    files here, once."""
    try:
        default = BfdSettings(options.bfd, options.bfd_tx_ms, options.bfd_rx_ms, options.bfd_multiplier,
                              options.bfd_auth, options.bfd_auth_key_id, options.bfd_auth_key_file).with_key()
    except ValueError as err:
        raise fail("bfd", str(err)) from None
    per_uplink: dict[str, BfdSettings] = {}
    for key, e in entries:
        name = e.get("name")
        if name not in uplinks:
            raise fail(f"{key}.name", f"no uplink {name!r} (expected one of {', '.join(uplinks) or 'none'})")
        if name in per_uplink:
            raise fail(f"{key}.name", f"uplink {name!r} has a [[bfd_uplink]] entry already")
        try:
            per_uplink[name] = dataclasses.replace(default, **{k: v for k, v in e.items() if k != "name"}).with_key()
        except (TypeError, ValueError) as err:
            raise fail(key, str(err)) from None
    return BfdConfig(default, tuple(per_uplink.items()), options.bfd_multihop, options.bfd_multihop_encap)
