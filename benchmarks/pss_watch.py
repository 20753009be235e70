"""Run a command and record the peak memory of its whole process tree (sum of PSS, and of RSS).

PSS (``/proc/PID/smaps_rollup``) counts a page shared by n processes as 1/n in each, so the sum over a tree is what
the tree really holds; the RSS sum counts shared pages once per process. Linux only. The tree is sampled every
``--interval`` seconds; the peak sample is kept with its per-process split.

    python benchmarks/pss_watch.py --out runs/demo-pss.json -- make demo     # issue 14's measure of the demo
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from autostruct.utils.io import write_json_atomic


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now."""
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out += tree(int(child))
    except OSError:  # exited while we looked
        pass
    return out


def rollup(pid: int) -> dict[str, int]:
    """Pss and Rss of one process in bytes (0 once it has exited)."""
    vals = {"Pss": 0, "Rss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in vals:
                    vals[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return vals


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--out", default=None)
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SystemExit("give the command to watch after --, e.g. pss_watch.py -- make demo")
    if not os.path.exists("/proc/self/smaps_rollup"):
        raise SystemExit("needs Linux's /proc/PID/smaps_rollup")
    start = time.monotonic()
    proc = subprocess.Popen(command)
    peak: dict[str, Any] = {"pss_bytes": 0}
    rss_max = 0
    while proc.poll() is None:
        procs = {pid: rollup(pid) for pid in tree(proc.pid)}
        pss = sum(v["Pss"] for v in procs.values())
        rss = sum(v["Rss"] for v in procs.values())
        rss_max = max(rss_max, rss)
        if pss > peak["pss_bytes"]:
            peak = {"pss_bytes": pss, "rss_bytes": rss, "t_s": time.monotonic() - start,
                    "processes": [{"pid": pid, "pss_bytes": v["Pss"], "rss_bytes": v["Rss"], "cmd": cmdline(pid)}
                                  for pid, v in procs.items()]}
        time.sleep(args.interval)
    result = {"command": command, "returncode": proc.returncode, "seconds": time.monotonic() - start,
              "peak": peak, "peak_pss_gib": peak["pss_bytes"] / 2**30, "peak_rss_sum_gib": rss_max / 2**30}
    print(json.dumps(result, indent=2))
    if args.out:
        write_json_atomic(args.out, result)
    return result


if __name__ == "__main__":
    sys.exit(main()["returncode"])
