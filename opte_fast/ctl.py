"""`opte-fast ctl`: talk to a running opte-fast over its control socket.

Aligned tables for people by default, `--json` for scripts. Any failure is
one line on stderr and exit status 2.
"""
from __future__ import annotations

import json
from typing import Any

import click

from .control import DEFAULT_SOCKET, ControlClient, ControlError, flatten

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


@ctl.command()
def stats() -> None:
    """Counters, ports and route sync."""
    def human(r: dict) -> str:
        counters = [{"counter": k, "value": v} for k, v in r["counters"].items() if v]
        sync = ", ".join(f"{k} {v}" for k, v in flatten(r["route_sync"]).items())
        tables = ", ".join(f"{v} {k}" for k, v in r["tables"].items())
        return "\n\n".join([f"up {r['uptime_s']:.0f} s; tables: {tables}; route sync: {sync}",
                            table(r["ports"]), table(counters) if counters else "(all counters zero)"])
    _show(_call("stats"), human)


@ctl.command()
@click.option("--limit", type=click.IntRange(1, 1 << 24), default=100, show_default=True, help="most flows to show")
@click.option("--match", "matches", multiple=True, metavar="FIELD=VALUE",
              help="only flows whose FIELD equals VALUE (repeatable; addresses compare as addresses)")
def flows(limit: int, matches: tuple[str, ...]) -> None:
    """Active flows and the path each is pinned to."""
    match = {}
    for m in matches:
        field, eq, value = m.partition("=")
        if not eq or not field:
            click.echo(f"opte-fast ctl: --match: expected FIELD=VALUE, got {m!r}", err=True)
            click.get_current_context().exit(EXIT_ERROR)
        match[field] = value
    _show(_call("flows", limit=limit, match=match), table)


@ctl.command()
def routes() -> None:
    """Underlay routes, a line per nexthop."""
    _show(_call("routes"), table)


@ctl.command()
def nexthops() -> None:
    """Nexthops in the data plane: up, flows pinned, traffic."""
    _show(_call("nexthops"), table)


@ctl.command()
def teps() -> None:
    """TEPs in the data plane: up, flows pinned, traffic."""
    _show(_call("teps"), table)


@ctl.command()
def buckets() -> None:
    """Bucket counts per member of each TEP set and nexthop group."""
    _show(_call("buckets"), table)


@ctl.group()
def v2b() -> None:
    """Boundary services: prefix -> TEP set."""


@v2b.command("set")
@click.argument("prefix")
@click.argument("teps", nargs=-1, required=True)
@click.option("--vni", type=int, default=99, show_default=True, help="VNI toward boundary services")
def v2b_set(prefix: str, teps: tuple[str, ...], vni: int) -> None:
    """Send destinations under PREFIX through one of TEPS."""
    _show(_call("v2b.set", prefix=prefix, teps=list(teps), vni=vni), _changed)


@v2b.command("clear")
@click.argument("prefix")
def v2b_clear(prefix: str) -> None:
    """Remove the entry for PREFIX."""
    _show(_call("v2b.clear", prefix=prefix), _changed)


@v2b.command("dump")
def v2b_dump() -> None:
    """Every V2B entry, a line per TEP."""
    _show(_call("v2b.dump"), table)


@ctl.group()
def v2p() -> None:
    """Guests on other sleds: (vni, ip) -> sled."""


@v2p.command("set")
@click.argument("vni", type=int)
@click.argument("ip")
@click.argument("underlay")
@click.argument("mac")
def v2p_set(vni: int, ip: str, underlay: str, mac: str) -> None:
    """Guest IP of VPC VNI is behind sled UNDERLAY with MAC."""
    _show(_call("v2p.set", vni=vni, ip=ip, underlay=underlay, mac=mac), _changed)


@v2p.command("clear")
@click.argument("vni", type=int)
@click.argument("ip")
def v2p_clear(vni: int, ip: str) -> None:
    """Remove the entry for IP in VPC VNI."""
    _show(_call("v2p.clear", vni=vni, ip=ip), _changed)


@v2p.command("dump")
def v2p_dump() -> None:
    """Every V2P entry."""
    _show(_call("v2p.dump"), lambda rows: table(rows, ["vni", "ip", "underlay", "mac"]))


@ctl.group()
def tep() -> None:
    """Mark a boundary services TEP up or down."""


def _tep_result(r: dict) -> str:
    where = f"in {r['entries']} V2B entries" if r["entries"] else "in no V2B entry yet (kept for later entries)"
    return f"{r['addr']} {'up' if r['up'] else 'down'} {where}"


@tep.command("up")
@click.argument("addr")
def tep_up(addr: str) -> None:
    """New flows may use ADDR again; idle flows rebalance onto it."""
    _show(_call("tep.up", addr=addr), _tep_result)


@tep.command("down")
@click.argument("addr")
def tep_down(addr: str) -> None:
    """Move every flow off ADDR."""
    _show(_call("tep.down", addr=addr), _tep_result)


@ctl.group()
def port() -> None:
    """Ports."""


@port.command("list")
def port_list() -> None:
    """Ports with role, devargs, counters and link state (up/down, changes, reaction time)."""
    _show(_call("port.list"), table)


@ctl.group()
def route() -> None:
    """Change underlay routes by hand (route source static or none)."""


@route.command("set")
@click.argument("prefix")
@click.option("--nexthop", "hops", type=(str, str, str), multiple=True, required=True,
              metavar="UPLINK GATEWAY MAC", help="a path (repeatable)")
def route_set(prefix: str, hops: tuple[tuple[str, str, str], ...]) -> None:
    """Reach PREFIX through every --nexthop."""
    nexthops = [{"uplink": u, "gateway": g, "mac": m} for u, g, m in hops]
    _show(_call("route.set", prefix=prefix, nexthops=nexthops), _changed)


@route.command("clear")
@click.argument("prefix")
def route_clear(prefix: str) -> None:
    """Remove the route for PREFIX."""
    _show(_call("route.clear", prefix=prefix), _changed)
