"""Memory of a demo-shaped pruning run: the sum of PSS (and RSS) over every process of the run, sampled.

Runs ``configs/quickstart-prune.yaml`` (its tasks, model, base training and actors, on the ``local`` backend) with a
few episodes, no fine-tuning and short latency runs, in a child process under a temporary output folder; every
``--interval`` seconds it reads ``/proc/PID/smaps_rollup`` of the child and all its descendants (the actor
processes). PSS (proportional set size) charges a page shared by ``n`` processes ``1/n`` to each, so its sum over
the processes is what the run really holds; the sum of RSS counts shared pages (torch's libraries, memory-mapped
data) once per process. Prints one JSON document: the peaks of both sums, each process's peak, and the timeline.

    python benchmarks/memory.py                    # the demo's tasks, 16 episodes (~2-4 min with cached bases)
    python benchmarks/memory.py --episodes 8 --out memory.json

Base models come from the cache (``$AUTOSTRUCT_CACHE``, default ``~/.cache/autostruct``); a cold cache trains
them first (minutes), which is then part of what is measured. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "quickstart-prune.yaml"
GIB = 1024**3

#: Runs the search in the child with the Python API (no progress bars: the sampler owns the terminal).
RUNNER = "import sys, autostruct; autostruct.prune(sys.argv[1], progress=False)"


def demo_config(path: Path, out_dir: Path, episodes: int, random_episodes: int, latency_runs: int) -> dict[str, Any]:
    """The config at ``path`` cut down to a memory run: same tasks, model and actors; few episodes, no fine-tune."""
    cfg = yaml.safe_load(path.read_text())
    cfg["name"] = f"{cfg.get('name', 'run')}-memory"
    cfg["output_dir"] = str(out_dir)
    cfg["search"] = {**cfg.get("search", {}), "episodes": episodes, "random_episodes": random_episodes}
    cfg["finetune"] = {**cfg.get("finetune", {}), "epochs": 0}
    cfg["backend"] = {**cfg.get("backend", {}), "name": "local"}
    cfg["latency_runs"] = latency_runs
    return cfg


def _stat_ppid(pid: int) -> int | None:
    try:
        # The command name may hold spaces and parentheses: the fields after the last ')' are fixed.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = _stat_ppid(int(entry.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def smaps_rollup(pid: int) -> dict[str, int] | None:
    """Bytes of ``Rss``, ``Pss`` and their anonymous / file / shmem parts; None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key.strip()] = int(parts[0]) * 1024
    return out if "Pss" in out else None


def role(pid: int, root: int) -> str:
    """``main`` (the learner's process), ``actor`` (a spawned process) or the helper it is."""
    if pid == root:
        return "main"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "gone"
    if b"resource_tracker" in cmd:
        return "resource_tracker"
    return "actor" if b"spawn_main" in cmd else "other"


def sample_run(cmd: list[str], interval: float, env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` and sample its process tree until it exits."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env)
    timeline: list[dict[str, Any]] = []
    per_process: dict[int, dict[str, Any]] = {}
    peak = {"pss": 0, "rss": 0}
    peak_at: dict[str, float] = {"pss": 0.0, "rss": 0.0}
    while True:
        done = proc.poll() is not None
        now = round(time.monotonic() - t0, 2)
        total = {"pss": 0, "rss": 0, "pss_anon": 0, "pss_file": 0, "pss_shmem": 0, "pss_main": 0, "pss_actors": 0}
        n = 0
        for pid in descendants(proc.pid) if not done else []:
            m = smaps_rollup(pid)
            if m is None:
                continue
            n += 1
            total["pss"] += m["Pss"]
            total["rss"] += m.get("Rss", 0)
            total["pss_anon"] += m.get("Pss_Anon", 0)
            total["pss_file"] += m.get("Pss_File", 0)
            total["pss_shmem"] += m.get("Pss_Shmem", 0)
            rec = per_process.setdefault(pid, {"pid": pid, "role": role(pid, proc.pid), "peak_pss": 0,
                                               "peak_rss": 0, "first_seen_s": now})
            if rec["role"] in ("main", "actor"):
                total[f"pss_{'main' if rec['role'] == 'main' else 'actors'}"] += m["Pss"]
            rec["peak_pss"] = max(rec["peak_pss"], m["Pss"])
            rec["peak_rss"] = max(rec["peak_rss"], m.get("Rss", 0))
            rec["last_seen_s"] = now
        if n:
            timeline.append({"t": now, "processes": n, **total})
            for key in ("pss", "rss"):
                if total[key] > peak[key]:
                    peak[key], peak_at[key] = total[key], now
        if done:
            break
        time.sleep(interval)
    at_peak = next((s for s in timeline if s["t"] == peak_at["pss"]), {})
    return {
        "returncode": proc.returncode,
        "wall_seconds": round(time.monotonic() - t0, 1),
        "samples": len(timeline),
        "peak_pss_sum_gib": round(peak["pss"] / GIB, 3),
        "peak_pss_sum_at_s": peak_at["pss"],
        "peak_pss_breakdown_gib": {k: round(at_peak.get(k, 0) / GIB, 3)
                                   for k in ("pss_anon", "pss_file", "pss_shmem", "pss_main", "pss_actors")},
        "peak_rss_sum_gib": round(peak["rss"] / GIB, 3),
        "peak_rss_sum_at_s": peak_at["rss"],
        "largest_process_rss_gib": round(max((p["peak_rss"] for p in per_process.values()), default=0) / GIB, 3),
        "processes": [
            {k: v for k, v in p.items() if k not in ("peak_pss", "peak_rss")}
            | {"peak_pss_gib": round(p["peak_pss"] / GIB, 3), "peak_rss_gib": round(p["peak_rss"] / GIB, 3)}
            for p in sorted(per_process.values(), key=lambda p: p["first_seen_s"])
        ],
        "timeline": [{"t": s["t"], "processes": s["processes"], "pss_gib": round(s["pss"] / GIB, 3),
                      "rss_gib": round(s["rss"] / GIB, 3), "main_pss_gib": round(s["pss_main"] / GIB, 3),
                      "actors_pss_gib": round(s["pss_actors"] / GIB, 3)} for s in timeline],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="a pruning config (default: the demo's)")
    p.add_argument("--episodes", type=int, default=16, help="search episodes over all tasks (default 16)")
    p.add_argument("--random-episodes", type=int, default=2,
                   help="random-search episodes per task after the search (run in the main process; default 2)")
    p.add_argument("--latency-runs", type=int, default=20, help="timed runs per latency measurement (default 20)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    p.add_argument("--keep", type=Path, default=None, help="write the run here instead of a temporary folder")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    if not Path("/proc/self/smaps_rollup").exists():
        print("benchmarks/memory.py needs Linux /proc/PID/smaps_rollup", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="autostruct-memory-") as tmp:
        out_dir = args.keep or Path(tmp) / "run"
        cfg = demo_config(args.config, out_dir, args.episodes, args.random_episodes, args.latency_runs)
        cfg_path = Path(tmp) / "config.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        result = sample_run([sys.executable, "-c", RUNNER, str(cfg_path)], args.interval, env)
    report = {
        "benchmark": "memory",
        "config": str(args.config),
        "settings": {"episodes": args.episodes, "random_episodes": args.random_episodes,
                     "latency_runs": args.latency_runs, "finetune_epochs": 0, "backend": "local",
                     "actors": cfg.get("rl", {}).get("actors"), "interval_s": args.interval},
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        **result,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
