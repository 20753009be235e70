"""The sharing benchmark's selections tested again after a different fine-tune length (issue 19's regime check).

Issue 19 asks for a regime where the structure still matters after fine-tuning: "if the fine-tune washes that
out (random search at a third of the budget no worse than the best searcher at all of it), make the regime
harder (a shorter fine-tune, ...) until it does, and say so". The selections a sharing run made do not depend
on the fine-tune (every method selects before it), so a shorter fine-tune needs no new search: this script
prunes each fine-tuned record's selected channels from the same base model, recalibrates, fine-tunes for
``--finetune-steps`` steps with the run's recipe (``TestScorer``, the same code the run used) and tests again.
Records without a fine-tune (the curve's other budgets) are copied unchanged.

    python benchmarks/sharing_refinetune.py --results 'benchmarks/results/sharing-v3/*.json' \\
        --finetune-steps 10 --out-dir benchmarks/results/sharing-v3-ft10

Each input file gives one output file of the same name: ``records`` and ``new_scenario_records`` with
``test_accuracy_finetuned`` measured anew, ``sizes.finetune_steps`` set, and ``refinetune`` saying from which
file and command. Render with ``render_sharing.py --results 'DIR/*.json' --section NAME``.
"""

from __future__ import annotations

import argparse
import glob
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from autostruct.mtacp.run import make_factories, prepare_bases
from autostruct.mtacp.tasks import expand_tasks
from autostruct.utils.io import write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mtacp_vs_baselines as bench  # noqa: E402
from sharing import new_dataset_factory  # noqa: E402


def _envs_by_label(args: argparse.Namespace, workdir: Path) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """The run's config, and per dataset label (e.g. ``fashion-mnist-c5.7.9``): (data key, an env of that base).

    Pruning to given channels does not depend on the env's budget, so one env per base model serves every
    record of that dataset, the new scenarios' ratios included.
    """
    regime = bench.REGIMES[args.regime]
    cfg = bench.build_config(args, workdir, regime["data"], regime["ratios"])
    keys, tasks = expand_tasks(cfg)
    bases = prepare_bases(cfg, workdir, keys, progress=False)
    factories = make_factories(cfg, tasks, bases)
    out = {}
    for t in tasks:
        out.setdefault(t.data.label, (t.data, factories[t.task_id]()))
    if getattr(args, "new_scenarios", False) and args.new_dataset:
        new_key, factory = new_dataset_factory(args, cfg, workdir, factories[0])
        out[new_key.label] = (new_key, factory())
    return cfg, out


def _label_of(task: str, labels: list[str]) -> str:
    """The dataset label a task name starts with (``<label>-r<ratio>``; the longest match wins)."""
    found = [lab for lab in labels if task.startswith(lab + "-r")]
    if not found:
        raise SystemExit(f"no dataset of the run matches task '{task}' (labels: {labels})")
    return max(found, key=len)


def refinetune(path: Path, steps: int, out_dir: Path, workdir: Path) -> Path:
    doc = json.loads(path.read_text())
    argv = shlex.split(doc["command"])[2:]  # after "python benchmarks/mtacp_vs_baselines.py"
    args = bench.parse([*argv, "--finetune-steps", str(steps)])
    torch.set_num_threads(args.threads)
    cfg, envs = _envs_by_label(args, workdir)
    scorer = bench.TestScorer(cfg, args)
    labels = list(envs)
    t0 = time.perf_counter()
    n = 0
    for field in ("records", "new_scenario_records"):
        for rec in doc.get(field, []):
            if rec.get("test_accuracy_finetuned") is None:
                continue
            key, env = envs[_label_of(rec["task"], labels)]
            acc = scorer(env, key, rec["channels"], finetune=True)
            rec["test_accuracy_finetuned"] = 100 * acc["test_accuracy_finetuned"]
            n += 1
    doc["sizes"]["finetune_steps"] = steps
    doc["refinetune"] = {"from": str(path), "finetune_steps": steps, "records_refinetuned": n,
                         "seconds": time.perf_counter() - t0,
                         "command": " ".join(["python", "benchmarks/sharing_refinetune.py", *sys.argv[1:]])}
    out = out_dir / path.name
    write_json_atomic(out, doc)
    print(f"{path} -> {out}: {n} records fine-tuned for {steps} steps in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", required=True, help="glob of a sharing run's JSON files")
    p.add_argument("--finetune-steps", type=int, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--workdir", type=Path, default=None, help="base-model records (default: a temporary folder)")
    args = p.parse_args(argv)
    paths = sorted(Path(x) for x in glob.glob(args.results))
    if not paths:
        p.error(f"no file matches {args.results}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="autostruct-refinetune-"))
    for path in paths:
        refinetune(path, args.finetune_steps, args.out_dir, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
