"""Render docs/testing.md's table of the slowest tests from a ``pytest --durations=N`` output and the CPU
seconds of ``benchmarks/pytest_cpu_times.py`` (see there for the commands)."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

BEGIN, END = "<!-- slowest:begin -->", "<!-- slowest:end -->"


def cpu_seconds(path: Path) -> dict[str, float]:
    out = {}
    for line in path.read_text().splitlines():
        nodeid, _wall, own, children = line.split("\t")
        out[nodeid] = float(own) + float(children)
    return out


def slowest(pytest_output: str) -> list[tuple[float, str, str]]:
    """(seconds, phase, node id) of the ``slowest N durations`` section, in its order."""
    section = re.split(r"=+ slowest \d+ durations =+", pytest_output)[1]
    rows = re.findall(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)$", section, flags=re.M)
    return [(float(s), phase, nodeid) for s, phase, nodeid in rows]


def table(rows: list[tuple[float, str, str]], cpu: dict[str, float]) -> str:
    lines = ["| # | seconds | phase | CPU seconds of the whole test | test |", "| --- | --- | --- | --- | --- |"]
    for i, (sec, phase, nodeid) in enumerate(rows, 1):
        c = cpu.get(nodeid, math.nan)
        lines.append(f"| {i} | {sec:.1f} | {phase} | {c:.1f} | `{nodeid}` |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pytest-output", type=Path, required=True)
    p.add_argument("--cpu-times", type=Path, required=True)
    p.add_argument("--doc", type=Path, default=Path("docs/testing.md"))
    p.add_argument("--top", type=int, default=15, help="rows of the table (the output may list more)")
    args = p.parse_args()
    text = table(slowest(args.pytest_output.read_text())[: args.top], cpu_seconds(args.cpu_times))
    doc = args.doc.read_text()
    head, rest = doc.split(BEGIN)
    _, tail = rest.split(END)
    args.doc.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    print(text)


if __name__ == "__main__":
    main()
