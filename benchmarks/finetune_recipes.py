"""Fine-tuning recipes side by side on one pruned model: how many steps, with or without distillation from the
base, recover the base's test accuracy (the demo's ``finetune`` section is sized from this).

The model: the shipped full-width ResNet-20 on Fashion-MNIST, pruned uniformly to 50% of its FLOPs (channels in
multiples of 8, L1 importance), batch norm recalibrated on 5 batches, as a run's selected strategy would be.

    python benchmarks/finetune_recipes.py [--steps 150 300] [--distill 0 0.5] [--threads 1]

Adds its rows to ``benchmarks/results/finetune_recipes.json`` (accuracy before and after, gap to the base in
points, seconds; ``--steps`` beyond one epoch stop at the epoch's end).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from autostruct.config import PruneConfig, load_yaml
from autostruct.models.bn import recalibrate_bn
from autostruct.models.train import evaluate, fine_tune
from autostruct.mtacp.run import _base_model, _load_data
from autostruct.mtacp.tasks import expand_tasks
from autostruct.prune.env import PruningEnv
from autostruct.prune.uniform import uniform_strategy

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart-prune.yaml"))
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--steps", type=int, nargs="+", default=[150, 300])
    parser.add_argument("--distill", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.01])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "finetune_recipes.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_yaml(PruneConfig, args.config)
    key = expand_tasks(cfg)[0][0]  # the first dataset: Fashion-MNIST
    data = _load_data(cfg, key)
    base, ckpt, source = _base_model(cfg, key, data, progress=False)
    base_acc = evaluate(base, data.test).accuracy
    env = PruningEnv(copy.deepcopy(base), data, args.ratio, round_to=8, seed=cfg.seed)
    _, info = uniform_strategy(env)
    batches = [bx for bx, _ in data.train.batches(128, shuffle=True, seed=cfg.seed)][:5]
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.is_file() else []  # earlier runs' rows are kept
    grid = [(steps, distill, lr) for steps in args.steps for distill in args.distill for lr in args.lr]
    for steps, distill, lr in grid:
        model = env.prune(info["channels"])
        recalibrate_bn(model, batches, len(batches))
        before = evaluate(model, data.test).accuracy
        t0 = time.perf_counter()
        fine_tune(model, data, 1, lr=lr, seed=cfg.seed, progress=True, max_steps=steps,
                  teacher=base if distill else None, distill=distill,
                  label=f"fine-tune {steps} steps distill {distill} lr {lr}")
        seconds = time.perf_counter() - t0
        after = evaluate(model, data.test).accuracy
        rows.append({"steps": steps, "distill": distill, "lr": lr, "accuracy_before": before, "accuracy_after": after,
                     "gap_to_base_pt": 100 * (base_acc - after), "seconds": seconds})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps({
        "base": {"checkpoint": Path(ckpt).name, "source": source, "test_accuracy": base_acc},
        "ratio": args.ratio, "channels": info["channels"], "threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
