"""`opte-fast ctl`: talk to a running opte-fast over its control socket.

A command per operation of OPS (protocol.py), made from it: `v2b.set` is `ctl v2b set`, each
argument a click argument or flag as its Arg says. Aligned tables for people by default,
`--json` for scripts. Any failure is one line on stderr and exit status 2.
"""
from __future__ import annotations

import json
from typing import Any

import click

from .client import ControlClient
from .protocol import DEFAULT_SOCKET, OPS, REQUIRED, Arg, ControlError, Op, flatten

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


def _stats(r: dict) -> str:
    counters = [{"counter": k, "value": v} for k, v in r["counters"].items() if v]
    sync = ", ".join(f"{k} {v}" for k, v in flatten(r["route_sync"]).items())
    tables = ", ".join(f"{v} {k}" for k, v in r["tables"].items())
    return "\n\n".join([f"up {r['uptime_s']:.0f} s; tables: {tables}; route sync: {sync}",
                        table(r["ports"]), table(counters) if counters else "(all counters zero)"])


def _tep_result(r: dict) -> str:
    where = f"in {r['entries']} V2B entries" if r["entries"] else "in no V2B entry yet (kept for later entries)"
    return f"{r['addr']} {'up' if r['up'] else 'down'} {where}"


def _bfd(r: dict) -> str:
    columns = ["kind", "uplink", "peer", "state", "remote_state", "member_up", "local_disc", "remote_disc",
               "tx_interval_ms", "detect_ms", "last_change_s_ago", "diag", "rx_packets", "tx_packets"]
    t = r["thread"]
    thread = "BFD thread: not running" if not t else (
        f"BFD thread: {'SCHED_FIFO' if t['realtime'] else 'SCHED_OTHER'}, latest wake-up "
        f"{t['late_max_ns'] / 1e6:.2f} ms late, {t['late_over_1ms']} over 1 ms; rx {t['rx_packets']} "
        f"(no session {t['rx_no_session']}, malformed {t['rx_malformed']}, bad checksum {t['rx_bad_checksum']}, "
        f"bad hop limit {t['rx_bad_hop_limit']}, invalid {t['rx_invalid']}, authenticated {t['rx_auth']}), "
        f"tx {t['tx_packets']} (failed {t['tx_failed']})")
    return "\n\n".join([table(r["sessions"], columns), thread])


# How each operation's result reads for people; the rest are tables.
HUMAN = {
    "stats": _stats,
    "v2b.set": _changed, "v2b.clear": _changed,
    "v2p.set": _changed, "v2p.clear": _changed, "v2p.dump": lambda rows: table(rows, ["vni", "ip", "underlay", "mac"]),
    "tep.up": _tep_result, "tep.down": _tep_result,
    "route.set": _changed, "route.clear": _changed,
    "bfd": _bfd,
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
