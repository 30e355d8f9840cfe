"""`opte-fast ctl`: talk to a running opte-fast over its control socket.

A command per operation of OPS (protocol.py), made from it: `v2b.set` is `ctl v2b set`, each
argument a click argument or flag as its Arg says. Aligned tables for people by default,
`--json` for scripts. Any failure is one line on stderr and exit status 2.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from typing import Any

import click

from .client import ControlClient
from .protocol import DEFAULT_SOCKET, OPS, PROTOCOLS, REQUIRED, Arg, ControlError, Op, flatten
from .top import Sample, view

EXIT_ERROR = 2


def _call(op: str, **args: Any) -> Any:
    ctx = click.get_current_context()
    try:
        with ControlClient(ctx.obj["socket"]) as client:
            return client.call(op, **args)
    except ControlError as e:
        click.echo(f"opte-fast ctl: {e}", err=True)
        ctx.exit(EXIT_ERROR)


def _show(result: Any, human) -> None:
    """Print `result` as JSON with --json, else as `human(result)` returns it, and its warning
    (a request that was done but probably not what was meant) on stderr."""
    if click.get_current_context().obj["json"]:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(human(result))
        if isinstance(result, dict) and result.get("warning"):
            click.echo(f"opte-fast ctl: warning: {result['warning']}", err=True)


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Records as an aligned table.

    Nested objects become columns (headed by the last part of their dotted
    name where that is unique); a list of objects (a route's nexthops, a set's
    members) becomes one line per item under its parent. Numbers align right.
    """
    if not rows:
        return "(none)"
    flat = [line for r in rows for line in _lines(r)]
    columns = columns or list(dict.fromkeys(k for r in flat for k in r))
    short = [c.rsplit(".", 1)[-1] for c in columns]
    headers = [(s if short.count(s) == 1 else c).upper() for s, c in zip(short, columns)]
    cells = [[_cell(r.get(c)) for c in columns] for r in flat]
    numeric = [all(r.get(c) in (None, "") or isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                   for r in flat) for c in columns]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(headers), *(line(row) for row in cells)])


def _lines(record: dict) -> list[dict]:
    items = next((k for k, v in record.items()
                  if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)), None)
    parent = flatten({k: v for k, v in record.items() if k != items})
    if items is None:
        return [parent]
    lines = []
    for i, item in enumerate(record[items]):
        child = {(k if k not in parent else f"{items}.{k}"): v for k, v in flatten(item).items()}
        lines.append({**(parent if i == 0 else dict.fromkeys(parent, "")), **child})
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "up" if value else "down"
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value)
    return str(value)


def _changed(result: dict) -> str:
    return "changed" if result.get("changed") else "unchanged (already so)"


class OneLineErrors(click.Group):
    """A mistyped subcommand, option or value is one line on stderr and exit 2, as every other
    failure of ctl is, not click's usage block: scripts read the line, people get the hint."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else ctx.command_path
            click.echo(f"opte-fast ctl: {e.format_message()} (see {where} --help)", err=True)
            ctx.exit(EXIT_ERROR)


@click.group("ctl", cls=OneLineErrors)
@click.option("--socket", "socket_path", default=DEFAULT_SOCKET, show_default=True, envvar="OPTE_FAST_SOCKET",
              metavar="PATH", help="control socket of the running opte-fast")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
@click.pass_context
def ctl(ctx: click.Context, socket_path: str, as_json: bool) -> None:
    """Inspect and change a running opte-fast."""
    ctx.obj = {"socket": socket_path, "json": as_json}


def worker_rows(workers: list[dict]) -> list[dict]:
    """Per worker since the start: the busy share is the polls that found frames over all polls."""
    return [{"lcore": w["lcore"], "busy": f"{100 * w['busy_polls'] / max(w['polls'], 1):.1f}%",
             "polls": w["polls"], "busy_polls": w["busy_polls"], "rx_packets": w["rx_packets"],
             "flows": f"{w['flows']}/{w['flow_capacity']}"} for w in workers]


def _stats(r: dict) -> str:
    counters = [{"counter": k, "value": v} for k, v in r["counters"].items() if v]
    sync = ", ".join(f"{k} {v}" for k, v in flatten(r["route_sync"]).items())
    tables = ", ".join(f"{v} {k}" for k, v in r["tables"].items())
    cap, mem = r["memory"]["capacity"], r["memory"]["bytes"]
    holds = (f"memory holds: {cap['flows_per_worker']:,} flows per worker, {cap['v2b_prefixes']:,} V2B and "
             f"{cap['route_prefixes']:,} route prefixes, {cap['v2p_entries']:,} V2P entries "
             f"({mem['free'] / 2**20:.0f} of {mem['heap'] / 2**20:.0f} MiB free)")
    return "\n\n".join([f"up {r['uptime_s']:.0f} s; tables: {tables}; route sync: {sync}\n{holds}",
                        table(r["ports"]), table(worker_rows(r["workers"])),
                        table(counters) if counters else "(all counters zero)"])


PROTO_NAMES = {number: name for name, number in PROTOCOLS.items()}


def trace_line(r: dict) -> str:
    """One traced frame: the flow, what the tables answered, the decision and the path taken."""
    f = r["flow"]
    proto = PROTO_NAMES.get(f["proto"], str(f["proto"]))
    head = (f"lcore {r['lcore']}  {r['direction']:<3}  {proto} {f['src']}:{f['src_port']} > "
            f"{f['dst']}:{f['dst_port']} vni {f['vni']}")
    if r["direction"] == "in":
        parts = [head, f"from {r['sender']} on {r['uplink']}"]
        if r["drop"]:
            return "  ".join(parts) + f"  => dropped: {r['drop']} (vni {f['vni']}, mac {r['inner_dst_mac']})"
        return "  ".join(parts) + f"  => delivered: guest {r['guest']} (vni {f['vni']}, mac {r['inner_dst_mac']})"
    parts = [head, f"flow {r['flow_table']}"]
    if r["matched"] == "v2p":
        parts.append(f"v2p -> sled {r['to']}")
    elif r["v2b"]:
        parts.append(f"v2b {r['v2b']['prefix']} bucket {r['v2b']['bucket']} -> {r['v2b']['bucket_tep'] or 'none live'}")
    else:
        parts.append("no v2p or v2b match")
    if r["route"]:
        parts.append(f"route {r['route']['prefix']} bucket {r['route']['bucket']} -> "
                     f"{r['route']['bucket_nexthop'] or 'none live'}")
    if r["drop"]:
        return "  ".join(parts) + f"  => dropped: {r['drop']}"
    why = r["decision"]
    if r["from"]:
        why += f" from {r['from']['tep'] + ' via ' if r['from']['tep'] else ''}{r['from']['nexthop']}"
    where = f"tep {r['tep']} via {r['nexthop']}" if r["tep"] else f"sled {r['to']} via {r['nexthop']}"
    return "  ".join(parts) + f"  => {why}: {where}"


def _trace(result: dict) -> str:
    lines = [trace_line(r) for r in result["records"]]
    if not result["complete"]:
        lines.append(f"({len(result['records'])} frames matched before the trace timed out)")
    return "\n".join(lines)


def _instance(r: dict) -> str:
    attach = "DPDK's tools can attach" if r["capturable"] else "DPDK's tools cannot attach (no hugepages)"
    return f"pid {r['pid']}, file prefix {r['file_prefix']}, {'hugepages' if r['hugepages'] else 'no hugepages'}: " \
           f"{attach}"


def _tep_result(r: dict) -> str:
    where = f"in {r['entries']} V2B entries" if r["entries"] else "in no V2B entry yet (kept for later entries)"
    return f"{r['addr']} {'up' if r['up'] else 'down'} {where}"


def _bfd(r: dict) -> str:
    columns = ["kind", "uplink", "peer", "state", "remote_state", "member_up", "local_disc", "remote_disc",
               "tx_interval_ms", "detect_ms", "last_change_s_ago", "diag", "auth", "auth_key_id", "rx_packets",
               "tx_packets"]
    t = r["thread"]
    thread = "BFD thread: not running" if not t else (
        f"BFD thread: {'SCHED_FIFO' if t['realtime'] else 'SCHED_OTHER'}, latest wake-up "
        f"{t['late_max_ns'] / 1e6:.2f} ms late, {t['late_over_1ms']} over 1 ms; rx {t['rx_packets']} "
        f"({t['rx_geneve_packets']} from inside Geneve; no session {t['rx_no_session']}, "
        f"malformed {t['rx_malformed']}, bad checksum {t['rx_bad_checksum']}, "
        f"bad hop limit {t['rx_bad_hop_limit']}, invalid {t['rx_invalid']}; authentication: missing "
        f"{t['rx_auth_missing']}, unexpected {t['rx_auth_unexpected']}, bad type {t['rx_auth_bad_type']}, "
        f"bad key ID {t['rx_auth_bad_key_id']}, bad sequence {t['rx_auth_bad_seq']}, "
        f"bad digest {t['rx_auth_bad_digest']}), tx {t['tx_packets']} (failed {t['tx_failed']})")
    return "\n\n".join([table(r["sessions"], columns), thread])


# How each operation's result reads for people; the rest are tables.
HUMAN = {
    "stats": _stats,
    "v2b.set": _changed, "v2b.clear": _changed,
    "v2p.set": _changed, "v2p.clear": _changed, "v2p.dump": lambda rows: table(rows, ["vni", "ip", "underlay", "mac"]),
    "tep.up": _tep_result, "tep.down": _tep_result,
    "route.set": _changed, "route.clear": _changed,
    "trace": _trace, "instance": _instance, "bfd": _bfd,
}
GROUPS = {
    "v2b": "Boundary services: prefix -> TEP set.",
    "v2p": "Guests on other sleds: (vni, ip) -> sled.",
    "tep": "Mark a boundary services TEP up or down.",
    "port": "Ports.",
    "route": "Change underlay routes by hand (route source static or none).",
}


def _param(arg: Arg) -> click.Parameter:
    if not arg.flag:
        return click.Argument([arg.name], type=arg.cli_type, nargs=-1 if arg.many else 1, required=True)
    default = None if arg.default is REQUIRED or arg.many else arg.default
    return click.Option([arg.flag, arg.name], type=arg.cli_type, multiple=arg.many, default=default,
                        required=arg.default is REQUIRED, show_default=default is not None, metavar=arg.metavar,
                        help=arg.help)


def _command(op: Op) -> click.Command:
    def run(**given: Any) -> None:
        args = {}
        for a in op.args:
            try:
                args[a.name] = a.from_cli(given[a.name]) if a.from_cli else given[a.name]
            except ValueError as e:
                click.echo(f"opte-fast ctl: {a.flag or a.name.upper()}: {e}", err=True)
                click.get_current_context().exit(EXIT_ERROR)
        _show(_call(op.name, **args), HUMAN.get(op.name, table))
    return click.Command(op.name.rpartition(".")[2], callback=run, params=[_param(a) for a in op.args], help=op.help)


for _op in OPS.values():
    _group, _, _ = _op.name.rpartition(".")
    if _group and _group not in ctl.commands:
        ctl.add_command(click.Group(_group, help=GROUPS[_group]))
    (ctl.commands[_group] if _group else ctl).add_command(_command(_op))


# --- commands made of several operations ----------------------------------------------------------

COMPOSED = {"top": ("stats", "nexthops"), "capture": ("instance", "port.list")}  # command -> the ops it calls


@ctl.command()
@click.option("--interval-s", type=click.FloatRange(0.1, 3600), default=1.0, show_default=True,
              help="seconds between refreshes")
@click.option("--iterations", type=click.IntRange(0), default=0, show_default=True,
              help="views to show, then stop (0: until interrupted)")
def top(interval_s: float, iterations: int) -> None:
    """A refreshing view: each worker's busy share, rates per port and per nexthop, drops per
    second by reason, flows moved, flow-table fill. On a terminal the screen is redrawn; otherwise
    each view follows the last, after a line of dashes."""
    tty = sys.stdout.isatty()

    def sample() -> Sample:
        return Sample(time.monotonic(), _call("stats"), _call("nexthops"))
    before, shown = sample(), 0
    try:
        while iterations == 0 or shown < iterations:
            time.sleep(interval_s)
            now = sample()
            text = view(before, now, table)
            click.echo(("\x1b[H\x1b[2J" if tty else ("---\n" if shown else "")) + text)
            before, shown = now, shown + 1
    except KeyboardInterrupt:
        pass


@ctl.command()
@click.option("--port", "port_name", required=True, metavar="NAME", help="the port to capture (ctl port list)")
@click.option("-w", "--write", "path", required=True, metavar="FILE.pcapng", help="where dpdk-dumpcap writes")
@click.option("--count", type=click.IntRange(1), default=None, help="stop after this many frames")
@click.option("--duration-s", type=click.IntRange(1), default=None, help="stop after this many seconds")
@click.option("--filter", "bpf", default=None, metavar="EXPR", help="a pcap filter expression, as tcpdump takes")
def capture(port_name: str, path: str, count: int | None, duration_s: int | None, bpf: str | None) -> None:
    """Capture a port of the running instance, both directions, with dpdk-dumpcap (a DPDK secondary
    process run here with the instance's file prefix). The instance must run on hugepages."""
    ctx = click.get_current_context()

    def fail(message: str) -> None:
        click.echo(f"opte-fast ctl: capture: {message}", err=True)
        ctx.exit(EXIT_ERROR)
    inst = _call("instance")
    if not inst["capturable"]:
        fail("the instance runs without hugepages, and DPDK's secondary processes (dpdk-dumpcap) cannot "
             "attach to such a process; restart it with --hugepages")
    ports = {p["name"]: p["ethdev"] for p in _call("port.list")}
    if port_name not in ports:
        fail(f"no port {port_name!r} (ports: {', '.join(ports)})")
    dumpcap = shutil.which("dpdk-dumpcap")
    if dumpcap is None:
        fail("dpdk-dumpcap not found; install it with: apt-get install dpdk-dev")
    argv = [dumpcap, "--file-prefix", inst["file_prefix"], "-i", ports[port_name], "-w", path]
    argv += ["-c", str(count)] if count else []
    argv += ["-a", f"duration:{duration_s}"] if duration_s else []
    argv += ["-f", bpf] if bpf else []
    rc = subprocess.call(argv)
    if rc != 0:
        fail(f"dpdk-dumpcap exited {rc}")
