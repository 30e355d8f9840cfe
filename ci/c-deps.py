#!/usr/bin/env python3
"""Check that csrc/'s dependencies point one way.

Every csrc/*.c is compiled on its own (-O0); nm then tells which file calls which, and the
compiler's dependency list which of csrc/'s headers each file includes, directly or not.
A header belongs to the files that define the functions it declares. The check fails when
  - the files call each other in a circle;
  - a file includes a header whose files call back into it (directly or through others);
  - a file of the packet path (the worker's loop, csrc/loop.c, and every file it calls) includes
    a header of the control side or the life cycle.
Usage: ci/c-deps.py [CSRC_DIR]   (default: csrc/ of this tree)
"""
import concurrent.futures
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

# The worker's side is found, not listed: the worker's loop and every file it calls, directly or not.
WORKER_LOOP = "loop.c"
# The control thread's side, and the life cycle (opte_fast.h) above it.
CONTROL_HEADERS = {"opte_fast.h", "port.h", "link.h", "builder.h", "inspect.h", "ring_io.h", "telemetry.h",
                   "memory.h"}


def compile_one(src: Path, out: Path, cflags: list[str]) -> tuple[str, set[str], set[str], set[str]]:
    obj, dep = out / f"{src.stem}.o", out / f"{src.stem}.d"
    subprocess.run(["gcc", "-std=gnu11", "-O0", "-c", *cflags, f"-I{src.parent}", "-MMD", "-MF", str(dep),
                    str(src), "-o", str(obj)], check=True)
    nm = subprocess.run(["nm", str(obj)], check=True, capture_output=True, text=True).stdout
    defined = {line.split()[-1] for line in nm.splitlines() if re.match(r"\S+ [TDBR] ", line)}
    undefined = {line.split()[-1] for line in nm.splitlines() if re.match(r"\s+U ", line)}
    deps = dep.read_text().replace("\\\n", " ").split(":", 1)[1].split()
    local = [Path(d) for d in deps if Path(d).suffix == ".h"]
    headers = {d.name for d in local if d.resolve().parent == src.parent.resolve()}
    return src.name, defined, undefined, headers


def main() -> int:
    csrc = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "csrc"
    cflags = shlex.split(subprocess.run(["pkg-config", "--cflags", "libdpdk"], check=True, capture_output=True,
                                        text=True).stdout)
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor() as pool:
        results = list(pool.map(lambda src: compile_one(src, Path(tmp), cflags), sorted(csrc.glob("*.c"))))
    defined_in = {sym: name for name, defined, _, _ in results for sym in defined}
    calls = {name: {defined_in[s] for s in undefined if s in defined_in} - {name} for name, _, undefined, _ in results}

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for callee in calls[todo.pop()] - seen:
                seen.add(callee)
                todo.append(callee)
        return seen

    owners: dict[str, set[str]] = {}
    for header in csrc.glob("*.h"):
        text = header.read_text()
        owners[header.name] = {defined_in[s] for s in defined_in if re.search(rf"\b{re.escape(s)}\s*\(", text)}

    packet_path = {WORKER_LOOP} | reaches(WORKER_LOOP)
    errors = []
    for name in sorted(calls):
        if name in reaches(name):
            circle = sorted(f for f in calls[name] if name in reaches(f))
            errors.append(f"{name} calls {', '.join(circle)}, which call back into {name}")
    for name, _, _, headers in results:
        for header in sorted(headers):
            back = sorted(f for f in owners.get(header, set()) - {name} if name in reaches(f))
            if back:
                errors.append(f"{name} includes {header}, whose functions ({', '.join(back)}) call back into it")
            if name in packet_path and header in CONTROL_HEADERS:
                errors.append(f"{name} is on the packet path but includes {header} of the control side")
    for e in errors:
        print(f"c-deps: {e}", file=sys.stderr)
    if not errors:
        print(f"c-deps: {len(results)} files of {csrc}, every dependency one way; "
              f"{len(packet_path)} on the packet path: {', '.join(sorted(packet_path))}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
