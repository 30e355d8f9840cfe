"""The flow hash recomputed apart from the C code (csrc/flow_hash.h), for expected frames."""
import ipaddress
import struct

from opte_fast.controlplane.dataplane import DataplaneOptions

M64 = (1 << 64) - 1
# A fixed key for tests that predict hashes (a run gets a random one).
TEST_HASH_KEY = bytes(range(0x40, 0x80))


def _mum(a: int, b: int) -> int:
    r = a * b
    return (r & M64) ^ (r >> 64)


def _words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]


def keyed_hash(key48: bytes, hash_key: bytes = TEST_HASH_KEY) -> int:
    """The 32-bit flow hash of a 48-byte flow key under a 64-byte secret."""
    w, k = _words(key48), _words(hash_key)
    k[7] |= 1
    h = _mum(w[0] ^ k[0], w[1] ^ k[1]) ^ _mum(w[2] ^ k[2], w[3] ^ k[3]) ^ _mum(w[4] ^ k[4], w[5] ^ k[5])
    h = _mum(h ^ k[6], k[7])
    return (h ^ (h >> 32)) & 0xFFFFFFFF


def nexthop_hash(h: int) -> int:
    """csrc/tables.h of_nexthop_hash: the flow hash rotated by 16 bits, which picks the nexthop's
    bucket (the TEP's comes from the hash itself), so that the two choices are independent."""
    return ((h << 16) | (h >> 16)) & 0xFFFFFFFF


def entropy_port(h: int, sport_min: int = 49152, sport_max: int = 65535) -> int:
    """csrc/outbound.c: the outer UDP source port of a flow with hash `h`, the hash scaled onto the range."""
    return sport_min + ((h * (sport_max - sport_min + 1)) >> 32)


N_BUCKETS = DataplaneOptions.n_buckets  # a resilient table's buckets, unless a test asks for others


def tep_bucket(h: int) -> int:
    """The V2B entry's bucket of a flow with hash `h`: which of its TEPs the flow takes."""
    return h & (N_BUCKETS - 1)


def nexthop_bucket(h: int) -> int:
    """The route's bucket of a flow with hash `h`: which of its nexthops the flow takes."""
    return nexthop_hash(h) & (N_BUCKETS - 1)


def mapped(ip) -> bytes:
    ip = ipaddress.ip_address(ip)
    return (b"\0" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip.packed


def flow_key(vni: int, proto: int, src, dst, sport: int, dport: int) -> bytes:
    """csrc/flow_key.h, byte for byte: host-order VNI and ports, v4-mapped addresses."""
    key = struct.pack("<IB3x16s16sHHI", vni, proto, mapped(src), mapped(dst), sport, dport, 0)
    assert len(key) == 48
    return key


def flow_hash(vni: int, proto: int, src, dst, sport: int, dport: int, hash_key: bytes = TEST_HASH_KEY) -> int:
    return keyed_hash(flow_key(vni, proto, src, dst, sport, dport), hash_key)
