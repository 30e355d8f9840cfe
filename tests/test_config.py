"""The config file and the flags of `opte-fast run`."""
from __future__ import annotations

import ipaddress
import pathlib
import textwrap

import click
import pytest
from click.testing import CliRunner

from opte_fast.config.flags import run_options
from opte_fast.config.loader import ConfigError, PortSpec, load_config, split_port_arg
from opte_fast.config.options import OPTIONS
from opte_fast.controlplane.startup import choose_hugepages, with_hugepages_chosen
from opte_fast.controlplane.state import V2B, V2P, DesiredState, GuestPort, Nexthop, Route, Tep, Underlay
from tests.support.cli import EXAMPLE_CONFIG

A = ipaddress.ip_address
N = ipaddress.ip_network

MINIMAL = """
[[uplink]]
name = "uplink0"
devargs = "net_null0"

[[uplink]]
name = "uplink1"
devargs = "net_null1"

[[guest]]
name = "guest0"
devargs = "net_null2"
vni = 7
mac = "a8:40:25:f0:00:01"
gateway_mac = "a8:40:25:ff:77:77"
"""
UNDERLAY = '[underlay]\naddr = "fd00:1::1"\n'


def config_with(snippet: str) -> str:
    """MINIMAL plus `snippet`; the [underlay] table is the snippet's if it has one."""
    return MINIMAL + snippet + ("" if "[underlay]" in snippet else UNDERLAY)


def write(tmp_path: pathlib.Path, text: str) -> str:
    path = tmp_path / "opte-fast.toml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_of(path: str | None, flags: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, flags or {})
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the example ------------------------------------------------------------------------


def test_example_config_loads_to_the_exact_desired_state():
    config = load_config(EXAMPLE_CONFIG, {})
    teps = (Tep(A("fd00:99::1"), 99), Tep(A("fd00:99::2"), 99))
    expected = DesiredState(
        underlay=Underlay(addr=A("fd00:1122:3344:101::1")),
        guests=(GuestPort("guest0", 1000, "a8:40:25:f0:00:01", "a8:40:25:ff:77:77",
                          A("172.30.0.5"), A("fd00:1000::5")),),
        v2p=(V2P(1000, A("172.30.0.6"), A("fd00:1122:3344:102::1"), "a8:40:25:f0:00:02"),
             V2P(1000, A("fd00:1000::6"), A("fd00:1122:3344:102::1"), "a8:40:25:f0:00:02")),
        v2b=(V2B(N("0.0.0.0/0"), teps), V2B(N("::/0"), teps)),
        routes=(),  # the example follows the host routing table
    )
    assert config.initial_state() == expected
    assert config.ports == (PortSpec("guest0", "guest", "net_tap2,iface=guest0"),
                            PortSpec("uplink0", "uplink", "net_tap0,iface=dp-uplink0"),
                            PortSpec("uplink1", "uplink", "net_tap1,iface=dp-uplink1"))
    assert config.uplinks == ("uplink0", "uplink1")


def test_example_static_routes_are_used_with_the_static_route_source():
    config = load_config(EXAMPLE_CONFIG, {"route_source": "static"})
    both = (Nexthop("uplink0", A("fe80::1"), "a8:40:25:00:00:01"), Nexthop("uplink1", A("fe80::2"), "a8:40:25:00:00:02"))
    assert config.initial_state().routes == (Route(N("fd00:99::/64"), both), Route(N("fd00:1122:3344::/48"), both))


def test_example_options_are_the_documented_defaults():
    o = load_config(EXAMPLE_CONFIG, {}).options
    for opt in OPTIONS:
        if opt.default is not None:
            assert getattr(o, opt.name) == opt.default, opt.name
    assert o.underlay_addr == A("fd00:1122:3344:101::1")


def test_defaults_fill_what_the_file_leaves_out(tmp_path):
    o = load_config(write(tmp_path, config_with('')), {}).options
    assert (o.burst, o.buckets, o.flow_capacity, o.rebalance, o.route_source) == (32, 4096, 1 << 20, "idle", "netlink")
    assert o.control_socket == "/run/opte-fast/opte-fast.sock"
    assert o.file_prefix.startswith("opte-fast-")


# --- one line naming file and key for every kind of mistake -----------------------------

BAD = [
    # (what is added to MINIMAL, key named, words of the expectation)
    ("[dataplane]\nbursts = 64\n", "dataplane.bursts", "unknown key (did you mean 'burst'?)"),
    ("[dataplan]\nburst = 64\n", "dataplan", "unknown table (did you mean 'dataplane'?)"),
    ("[dataplane]\nburst = 1000\n", "dataplane.burst", "expected an integer from 1 to 512, got 1000"),
    ("[dataplane]\nburst = \"64\"\n", "dataplane.burst", "expected an integer from 1 to 512, got string '64'"),
    ("[dataplane]\nbuckets = 1000\n", "dataplane.buckets", "expected a power of two from 1 to 65536, got 1000"),
    ("[dataplane]\nrebalance = \"sometimes\"\n", "dataplane.rebalance",
     "expected one of 'idle', 'never', got string 'sometimes'"),
    ("[eal]\nhugepages = \"yes\"\n", "eal.hugepages", "expected true or false, got string 'yes'"),
    ("[eal]\nlcores = \"1-\"\n", "eal.lcores", "expected an lcore list like 1 or 1-3 or 1,3, got string '1-'"),
    ("[underlay]\naddr = \"fd00:1::1\"\nhop_limit = 0\n", "underlay.hop_limit", "expected an integer from 1 to 255, got 0"),
    ("[underlay]\naddr = \"fd00:1::1\"\nmtu_bytes = 1300\n", "underlay.mtu_bytes",
     "expected an integer from 1350 to 9216, got 1300"),
    ("[underlay]\naddr = \"fd00:1::1\"\nudp_sport_range = \"60000-50000\"\n", "underlay.udp_sport_range", "expected a UDP port range"),
    ("[route_sync]\nsource = \"bgp\"\n", "route_sync.source", "expected one of 'netlink', 'static', 'none'"),
    ("[route_sync]\nnetns = \"no-such-ns-here\"\n", "route_sync.netns", "no network namespace 'no-such-ns-here'"),
    ("[control]\nsocket = \"relative.sock\"\n", "control.socket", "expected an absolute path"),
    ("[[guest]]\nname = \"guest1\"\ndevargs = \"net_null3\"\nvni = 16777216\nmac = \"a8:40:25:f0:00:02\"\n"
     "gateway_mac = \"a8:40:25:ff:77:77\"\n", "guest[1].vni", "expected an integer from 0 to 16777215"),
    ("[[guest]]\nname = \"guest1\"\ndevargs = \"net_null3\"\nvni = 7\nmac = \"a8:40:25:f0:00\"\n"
     "gateway_mac = \"a8:40:25:ff:77:77\"\n", "guest[1].mac", "expected a MAC address like a8:40:25:00:00:01"),
    ("[[guest]]\nname = \"guest1\"\ndevargs = \"net_null3\"\nvni = 7\nmac = \"a8:40:25:f0:00:01\"\n"
     "gateway_mac = \"a8:40:25:ff:77:77\"\n", "guest[1].mac", "expected a MAC unique within VNI 7"),
    ("[[guest]]\nname = \"guest1\"\ndevargs = \"net_null3\"\nvni = 7\nmac = \"a8:40:25:f0:00:02\"\n",
     "guest[1].gateway_mac", "missing"),
    ("[[guest]]\nname = \"guest0\"\ndevargs = \"net_null3\"\n", "guest[1].name",
     "port 'guest0' is already defined by guest[0]"),
    ("[[uplink]]\nname = \"guest0\"\ndevargs = \"net_null3\"\n", "uplink[2].name",
     "port 'guest0' is already defined by guest[0]"),
    ("[[uplink]]\nname = \"uplink-name-too-long\"\ndevargs = \"net_null3\"\n", "uplink[2].name",
     "expected a kernel interface name"),
    ("[[uplink]]\nname = \"uplink2\"\n", "uplink[2].devargs", "missing (give it here or as --uplink uplink2=DEVARGS)"),
    ("[[v2p]]\nvni = 7\nip = \"10.0.0.300\"\nunderlay = \"fd00:2::1\"\nmac = \"a8:40:25:f0:00:09\"\n",
     "v2p[0].ip", "expected an IPv4 or IPv6 address, got string '10.0.0.300'"),
    ("[[v2p]]\nvni = 7\nip = \"10.0.0.3\"\nunderlay = \"fe80::1\"\nmac = \"a8:40:25:f0:00:09\"\n",
     "v2p[0].underlay", "expected a unicast IPv6 address"),
    ("[[v2b]]\nprefix = \"0.0.0.0/0\"\nteps = [\"fd00:99::1\"]\n[[v2b]]\nprefix = \"::/0\"\nteps = [\"fd00:99::1\", \"fd00:99::zz\"]\n",
     "v2b[1].teps[1]", "expected a unicast IPv6 address like fd00:1::1, got string 'fd00:99::zz'"),
    ("[[v2b]]\nprefix = \"10.0.0.1/8\"\nteps = [\"fd00:99::1\"]\n", "v2b[0].prefix", "no host bits set (10.0.0.0/8)"),
    ("[[v2b]]\nprefix = \"::/0\"\nteps = []\n", "v2b[0].teps", "expected a non-empty array of TEP IPv6 addresses"),
    ("[[v2b]]\nprefix = \"::/0\"\nteps = [\"fd00:99::1\"]\ntep = 1\n", "v2b[0].tep", "unknown key (did you mean 'teps'?)"),
    ("[[route]]\nprefix = \"fd00:99::/64\"\nnexthops = [{ uplink = \"uplink9\", gateway = \"fe80::1\", "
     "mac = \"a8:40:25:00:00:01\" }]\n", "route[0].nexthops[0].uplink",
     "no uplink 'uplink9' (expected one of uplink0, uplink1)"),
    ("[[route]]\nprefix = \"fd00:99::/64\"\nnexthops = [{ uplink = \"uplink0\", gateway = \"fe80::1\" }]\n",
     "route[0].nexthops[0].mac", "missing"),
    ("[[route]]\nprefix = \"10.0.0.0/8\"\nnexthops = []\n", "route[0].prefix", "expected an IPv6 prefix"),
    ("[v2b]\nprefix = \"::/0\"\n", "v2b", "expected an array of tables written [[v2b]]"),
]


@pytest.mark.parametrize("snippet,key,expected", BAD, ids=[b[1] + ":" + b[2][:30] for b in BAD])
def test_a_bad_value_is_one_line_naming_file_and_key(tmp_path, snippet, key, expected):
    path = write(tmp_path, config_with(snippet))
    message = error_of(path)
    assert message.startswith(f"{path}: {key}: "), message
    assert expected in message


def test_missing_underlay_address_says_where_to_give_it(tmp_path):
    path = write(tmp_path, MINIMAL)
    assert error_of(path) == (f"{path}: underlay.addr: missing (expected this sled's underlay IPv6 address, "
                              "or give --underlay-addr)")


def test_a_toml_syntax_error_names_the_file_and_position(tmp_path):
    path = write(tmp_path, "[dataplane\nburst = 1\n")
    assert error_of(path).startswith(f"{path}: not valid TOML: ") and "line 1" in error_of(path)


def test_an_unreadable_file_is_named(tmp_path):
    assert error_of(str(tmp_path / "nope.toml")) == f"{tmp_path / 'nope.toml'}: cannot read: No such file or directory"


def test_bad_flag_values_name_the_flag():
    base = {"underlay_addr": "fd00:1::1"}
    assert error_of(None, {**base, "burst": "lots"}) == \
        "command line: --burst: expected an integer from 1 to 512, got 'lots'"
    assert error_of(None, {"underlay_addr": "fe80::1"}) == \
        "command line: --underlay-addr: expected a unicast IPv6 address like fd00:1::1, got string 'fe80::1'"
    assert error_of(None, {**base, "uplink": ("net_vhost0,iface=/tmp/vhost.sock",)}).startswith(
        "command line: --uplink: expected a kernel interface name")


def test_a_guest_port_needs_its_guest_entry(tmp_path):
    assert error_of(write(tmp_path, config_with('')), {"guest": ("guest9=net_null9",)}) == (
        "command line: --guest: port 'guest9' has no [[guest]] entry "
        "(expected one with its name, vni, mac and gateway_mac in the config file)")


# --- ports from flags ---------------------------------------------------------------------


@pytest.mark.parametrize("arg,name,devargs", [
    ("net_tap0,iface=up0", "up0", "net_tap0,iface=up0"),
    ("net_null0", "net_null0", "net_null0"),
    ("net_null0,size=64", "net_null0", "net_null0,size=64"),
    ("up0=net_pcap0,rx_pcap=a.pcap", "up0", "net_pcap0,rx_pcap=a.pcap"),
])
def test_port_name_defaults_to_iface_or_device_name(arg, name, devargs):
    assert split_port_arg(arg) == (name, devargs)


def test_flag_ports_add_to_and_replace_file_ports(tmp_path):
    config = load_config(write(tmp_path, config_with('')), {"uplink": ("uplink1=net_tap1,iface=uplink1", "net_tap2,iface=up2"),
                                                    "guest": ("guest0=net_ring0",), "exception_path": False})
    assert config.ports == (PortSpec("guest0", "guest", "net_ring0"),
                            PortSpec("uplink0", "uplink", "net_null0"),
                            PortSpec("uplink1", "uplink", "net_tap1,iface=uplink1"),
                            PortSpec("up2", "uplink", "net_tap2,iface=up2"))


def test_an_uplink_tap_named_like_its_exception_tap_is_refused(tmp_path):
    path = write(tmp_path, config_with(''))
    assert error_of(path, {"uplink": ("net_tap1,iface=up1",)}) == (
        "command line: --uplink: iface=up1 is already the exception-path tap of uplink 'up1' "
        "(with exception_path on, name the DPDK side's tap otherwise, e.g. iface=dp-up1)")
    assert load_config(path, {"uplink": ("up1=net_tap1,iface=dp-up1",)}).ports[-1] == \
        PortSpec("up1", "uplink", "net_tap1,iface=dp-up1")


def test_two_ports_on_one_kernel_interface_are_refused(tmp_path):
    path = write(tmp_path, config_with('').replace('devargs = "net_null2"', 'devargs = "net_tap0,iface=shared0"'))
    assert error_of(path, {"uplink": ("up1=net_tap1,iface=shared0",), "exception_path": False}) == (
        "command line: --uplink: iface=shared0 is already the interface of guest port 'guest0'")


def test_file_may_leave_devargs_to_the_flags(tmp_path):
    path = write(tmp_path, config_with("").replace('devargs = "net_null0"\n', ""))
    assert load_config(path, {"uplink": ("uplink0=net_null7",)}).ports[1] == PortSpec("uplink0", "uplink", "net_null7")


# --- flags through click ---------------------------------------------------------------------


@click.command()
@run_options
def show(config) -> None:
    o = config.options
    click.echo(f"burst={o.burst} hugepages={o.hugepages} flow_label={o.flow_label} "
               f"range={o.udp_sport_range} duration={o.duration_s} eal={list(o.eal_args)} "
               f"uplinks={','.join(config.uplinks)}")


def test_flags_override_the_file(tmp_path):
    path = write(tmp_path, config_with("[dataplane]\nburst = 64\n[eal]\nhugepages = true\n"))
    runner = CliRunner()
    plain = runner.invoke(show, ["--config", path])
    assert plain.exit_code == 0, plain.output
    assert "burst=64 hugepages=True flow_label=True range=(49152, 65535)" in plain.output
    flagged = runner.invoke(show, ["--config", path, "--burst", "128", "--no-hugepages", "--no-flow-label",
                                   "--udp-sport-range", "50000-50999", "--duration-s", "1.5",
                                   "--eal-arg", "--log-level=lib.eal:error", "--eal-arg", "--no-pci",
                                   "--uplink", "up9=net_null9"])
    assert flagged.exit_code == 0, flagged.output
    assert flagged.output.strip() == ("burst=128 hugepages=False flow_label=False range=(50000, 50999) "
                                      "duration=1.5 eal=['--log-level=lib.eal:error', '--no-pci'] "
                                      "uplinks=uplink0,uplink1,up9")


def test_flags_alone_are_enough():
    result = CliRunner().invoke(show, ["--underlay-addr", "fd00:1::1", "--uplink", "net_null0"])
    assert result.exit_code == 0, result.output
    assert "burst=32" in result.output and "uplinks=net_null0" in result.output


def test_a_bad_flag_prints_one_line_and_exits_2(tmp_path):
    result = CliRunner().invoke(show, ["--config", write(tmp_path, config_with('')), "--buckets", "3"])
    assert result.exit_code == 2
    assert result.output == "opte-fast: command line: --buckets: expected a power of two from 1 to 65536, got 3\n"


def test_a_bad_file_prints_one_line_and_exits_2(tmp_path):
    path = write(tmp_path, config_with("[[v2b]]\nprefix = \"::/0\"\nteps = [\"nope\"]\n"))
    result = CliRunner().invoke(show, ["--config", path])
    assert result.exit_code == 2
    assert result.output == (f"opte-fast: {path}: v2b[0].teps[0]: expected a unicast IPv6 address like fd00:1::1, "
                             "got string 'nope'\n")


def test_every_option_has_a_flag_with_its_unit_and_file_key():
    help_text = CliRunner().invoke(show, ["--help"], terminal_width=200).output
    for opt in OPTIONS:
        assert opt.flag_name in help_text
        assert f"file: [{opt.table}] {opt.toml_key}" in help_text
    for flag in ("--tcp-idle-timeout-s", "--rebalance-idle-ms", "--memory-mb", "--duration-s", "--stats-interval-s"):
        assert flag in help_text


# --- a guest's addresses and what its gateway hands out ----------------------------------

GUEST1 = ('[[guest]]\nname = "guest1"\ndevargs = "net_null3"\nvni = 7\nmac = "a8:40:25:f0:00:02"\n'
          'gateway_mac = "a8:40:25:ff:77:77"\n')

GUEST_BAD = [
    ('ipv4 = "10.0.0.5"\nmtu_bytes = 9216\n', "mtu_bytes", "expected an integer from 1280 to 9000, got 9216"),
    ('ipv4 = "10.0.0.5"\nmtu_bytes = 1000\n', "mtu_bytes", "expected an integer from 1280 to 9000, got 1000"),
    ('ipv4 = "10.0.0.5"\nipv4_prefix_len = 33\n', "ipv4_prefix_len", "expected an integer from 1 to 32, got 33"),
    ('ipv4 = "10.0.0.5"\nipv4_gateway = "10.0.1.1"\n', "ipv4_gateway",
     "expected an address inside the guest's subnet 10.0.0.0/24, got 10.0.1.1"),
    ('ipv4 = "10.0.0.5"\nipv4_gateway = "10.0.0.5"\n', "ipv4_gateway",
     "expected an address other than the guest's own (10.0.0.5)"),
    ('ipv4 = "10.0.0.5"\nipv4_prefix_len = 32\n', "ipv4_gateway", "missing: 10.0.0.5/32 has no first address"),
    ('ipv4_gateway = "10.0.0.1"\n', "ipv4_gateway", "given without ipv4 (the address it goes with)"),
    ('dns_servers = ["10.0.0.53", "dns.example"]\n', "dns_servers", "expected an IPv4 or IPv6 address"),
    ('dns_servers = "10.0.0.53"\n', "dns_servers", "expected an array of IP addresses, got string '10.0.0.53'"),
    ('dns_servers = ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4", "9.9.9.9"]\n', "dns_servers",
     "expected at most 4 IPv4 DNS servers, got 5"),
    ('domain = "vpc..example"\n', "domain", "expected a domain name like vpc.example"),
    ('lease_time_s = 10\n', "lease_time_s", "expected an integer from 60 to 4294967295, got 10"),
    ('ra_managed = "yes"\n', "ra_managed", "expected true or false, got string 'yes'"),
    ('ra_router_lifetime_s = 70000\n', "ra_router_lifetime_s", "expected an integer from 0 to 65535, got 70000"),
    ('ra_prefix = "fd77::/48"\n', "ra_prefix", "expected a /64 (autoconfiguration needs 64-bit interface identifiers)"),
    ('ra_prefix = "10.0.0.0/24"\n', "ra_prefix", "expected an IPv6 prefix like fd00:99::/64"),
    ('allowed_prefixes = ["192.168.0.1/16"]\n', "allowed_prefixes", "no host bits set (192.168.0.0/16)"),
    ('allowed_prefixes = ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16", "10.5.0.0/16", '
     '"10.6.0.0/16", "10.7.0.0/16", "10.8.0.0/16", "10.9.0.0/16"]\n', "allowed_prefixes",
     "expected at most 8 prefixes, got 9"),
]


@pytest.mark.parametrize("snippet,key,expected", GUEST_BAD, ids=[b[1] + ":" + b[2][:30] for b in GUEST_BAD])
def test_a_bad_guest_network_value_is_one_line_naming_file_and_key(tmp_path, snippet, key, expected):
    path = write(tmp_path, config_with(GUEST1 + snippet))
    message = error_of(path)
    assert message.startswith(f"{path}: guest[1].{key}: "), message
    assert expected in message


def test_a_guest_network_loads_every_key(tmp_path):
    snippet = GUEST1 + textwrap.dedent("""\
        ipv4 = "10.0.16.5"
        ipv4_prefix_len = 20
        ipv6 = "fd77::5"
        dns_servers = ["10.0.16.53", "fd77::53"]
        domain = "vpc.example"
        lease_time_s = 3600
        mtu_bytes = 9000
        ra_managed = false
        ra_other = false
        ra_router_lifetime_s = 600
        ra_prefix = "fd77::/64"
        allowed_prefixes = ["192.168.0.0/16", "2001:db8:5::/48"]
        """)
    guest = load_config(write(tmp_path, config_with(snippet)), {}).guests[1]
    assert guest == GuestPort("guest1", 7, "a8:40:25:f0:00:02", "a8:40:25:ff:77:77", A("10.0.16.5"), A("fd77::5"),
                              ipv4_prefix_len=20, dns_servers=(A("10.0.16.53"), A("fd77::53")), domain="vpc.example",
                              lease_time_s=3600, mtu_bytes=9000, ra_managed=False, ra_other=False,
                              ra_router_lifetime_s=600, ra_prefix=N("fd77::/64"),
                              allowed_prefixes=(N("192.168.0.0/16"), N("2001:db8:5::/48")))
    assert guest.gateway_ipv4 == A("10.0.16.1")  # the first address of 10.0.16.0/20


MEMINFO_2M = "MemTotal: 24000000 kB\nHugePages_Total:    1024\nHugePages_Free:     1024\nHugepagesize:       2048 kB\n"
DEV_HUGEPAGES = "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"


@pytest.mark.parametrize(("memory_mb", "meminfo", "mounts", "chosen"), [
    (2048, MEMINFO_2M, DEV_HUGEPAGES, (True, "2048 MB of hugepages free in /dev/hugepages: running on hugepages")),
    (2048, MEMINFO_2M, "none /mnt/h hugetlbfs rw,relatime 0 0\n",  # no pagesize option: the default size
     (True, "2048 MB of hugepages free in /mnt/h: running on hugepages")),
    (2048, MEMINFO_2M.replace("Free:     1024", "Free:     1023"), DEV_HUGEPAGES,
     (False, "2046 MB of hugepages free, fewer than --memory-mb 2048: --no-huge -m 2048")),
    (2048, MEMINFO_2M, "none /mnt/g hugetlbfs rw,relatime,pagesize=1024M 0 0\n",
     (False, "no hugetlbfs of 2 MB pages mounted: --no-huge -m 2048")),
    (512, MEMINFO_2M, "proc /proc proc rw 0 0\n", (False, "no hugetlbfs of 2 MB pages mounted: --no-huge -m 512")),
])
def test_hugepages_by_default_when_a_mounted_hugetlbfs_has_memory_mb_of_them_free(memory_mb, meminfo, mounts, chosen):
    assert choose_hugepages(memory_mb, meminfo, mounts) == chosen


def test_hugepages_given_either_way_is_kept(tmp_path):
    for flag, expected in (("--hugepages", True), ("--no-hugepages", False)):
        config = load_config(write(tmp_path, config_with("")), {"hugepages": expected})
        assert with_hugepages_chosen(config).options.hugepages is expected, flag
