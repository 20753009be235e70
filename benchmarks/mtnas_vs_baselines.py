"""MTNAS vs single-task searches at equal evaluation budgets, and found networks vs width-scaled expert models.

    python benchmarks/mtnas_vs_baselines.py --quick              # 3 Digits tasks, minutes on 2 CPU cores
    python benchmarks/mtnas_vs_baselines.py --evals 150 --out bench-nas.json   # Fashion-MNIST + Digits

Per task (same supernet, same environment, same evaluation):
- best reward vs number of evaluations for MTNAS (one controller, IMPALA actors, MC returns with truncated
  importance weights, all tasks at once), single-task REINFORCE (ENAS-style), random search and regularized
  evolution, each with ``--evals`` evaluations per task;
- how many evaluations each method needs to reach random search's best reward (target: MTNAS >= 3x fewer);
- wall time: the multi-task search vs the sum of the single-task REINFORCE runs;
- after identical training from scratch (``--train-epochs``), test accuracy of MTNAS' best architecture vs
  MobileNetV2 and ResNet-20 width-scaled to the largest width within the task's FLOPs budget.

Prints one JSON document (and writes it to ``--out``). Timings are wall-clock on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

TASKS_QUICK = [("digits", 0.8e6), ("digits", 1.2e6), ("digits", 1.8e6)]
TASKS_FULL = [("fashion-mnist", 12e6), ("fashion-mnist", 20e6), ("digits", 1.2e6)]


def evals_to_reach(curve: list[float], target: float) -> int | None:
    """1-based number of evaluations after which ``curve`` (best so far) first reaches ``target``."""
    for i, v in enumerate(curve, start=1):
        if v >= target - 1e-12:
            return i
    return None


def widest_within(model_name: str, data: Any, budget: float) -> tuple[float, int]:
    """Largest width (to 1%) whose zoo model fits ``budget`` FLOPs; returns (width, flops)."""
    from autostruct.measure import count_flops
    from autostruct.models import create_model

    x = torch.zeros(1, data.in_channels, data.image_size, data.image_size)

    def flops(w: float) -> int:
        m = create_model(model_name, data.num_classes, data.in_channels, data.image_size, width=w)
        return count_flops(m, x).flops

    lo, hi = 0.05, 4.0
    if flops(lo) > budget:
        return lo, flops(lo)
    for _ in range(12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if flops(mid) <= budget else (lo, mid)
    return round(lo, 3), flops(lo)


def train_and_test(model: torch.nn.Module, data: Any, epochs: int, train_size: int | None, seed: int) -> float:
    from autostruct.models.train import evaluate, train

    d = data if train_size is None else dataclasses.replace(data, train=data.train.subset(train_size, seed=seed))
    train(model, d, epochs, lr=0.05, batch_size=128, seed=seed, progress=False, channels_last=True)
    return evaluate(model.to(memory_format=torch.contiguous_format), data.test).accuracy


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 Digits tasks (8x8), small supernet training")
    ap.add_argument("--evals", type=int, default=None, help="evaluations per task and method (default 60 quick / 150)")
    ap.add_argument("--supernet-epochs", type=int, default=None)
    ap.add_argument("--supernet-train-size", type=int, default=None)
    ap.add_argument("--val-size", type=int, default=None)
    ap.add_argument("--train-epochs", type=int, default=None, help="identical training of found vs expert nets")
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--actors", type=int, default=None, help="default: one per task (equal episodes per task)")
    ap.add_argument("--backend", default="local", choices=["inline", "local"])
    ap.add_argument("--seed", type=int, default=0, help="supernet, data and training seed")
    ap.add_argument("--seeds", default="0,1,2", help="search seeds (each method runs once per seed)")
    ap.add_argument("--skip-experts", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from autostruct.baselines.nas_evolution import regularized_evolution
    from autostruct.baselines.nas_random import random_search
    from autostruct.baselines.nas_reinforce import reinforce_search
    from autostruct.config import BackendConfig
    from autostruct.data import load_dataset
    from autostruct.models.registry import create_model
    from autostruct.nas.config import NASConfig, SupernetConfig
    from autostruct.nas.env import NASEnvFactory
    from autostruct.nas.space import mobilenetv2_space
    from autostruct.nas.supernet import extract
    from autostruct.nas.train_supernet import get_or_train_supernet, load_supernet
    from autostruct.rl import CategoricalSpec, PolicySpec, run_impala

    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    quick = args.quick
    evals = args.evals or (60 if quick else 150)
    val_size = args.val_size or (300 if quick else 1000)
    sn_cfg = SupernetConfig(epochs=args.supernet_epochs or (10 if quick else 5),
                            train_size=args.supernet_train_size or (None if quick else 10000),
                            batch_size=64 if quick else 128)
    train_epochs = args.train_epochs or (15 if quick else 3)
    train_size = args.train_size or (None if quick else 10000)
    tasks = TASKS_QUICK if quick else TASKS_FULL
    datasets = list(dict.fromkeys(d for d, _ in tasks))
    t_all = time.monotonic()

    data, supernets, sn_seconds = {}, {}, {}
    for name in datasets:
        data[name] = load_dataset(name, val_size=val_size, seed=args.seed)
        space = mobilenetv2_space(data[name].image_size)
        _, info = get_or_train_supernet(space, data[name], sn_cfg, seed=args.seed, val_size=val_size, progress=False)
        supernets[name] = info
        sn_seconds[name] = info.metrics.get("seconds")

    factories = [
        NASEnvFactory(space="mobilenetv2", dataset=d, budgets={"flops": b}, supernet_path=str(supernets[d].path),
                      task_id=i, dataset_index=datasets.index(d), num_datasets=len(datasets), val_size=val_size,
                      seed=args.seed, name=f"{d}-flops{b / 1e6:g}M")
        for i, (d, b) in enumerate(tasks)
    ]
    out: dict[str, Any] = {"settings": {**vars(args), "out": str(args.out) if args.out else None, "evals": evals,
                                        "val_size": val_size, "supernet": sn_cfg.model_dump(), "train_epochs": train_epochs,
                                        "train_size": train_size},
                           "supernet_seconds": sn_seconds, "tasks": []}

    env0 = factories[0]()
    spec = PolicySpec(observation_size=env0.observation_size, action_spec=CategoricalSpec(env0.space.choice_counts))
    envs = [f() for f in factories]
    rl_cfg = NASConfig.model_fields["rl"].annotation(actors=args.actors or len(tasks))  # the NAS defaults
    curves: dict[tuple[int, str], list[list[float]]] = {}
    best_recs: dict[int, dict[str, Any]] = {}
    mt_wall, st_wall = [], []
    for seed in seeds:
        # --- MTNAS: one controller for all tasks, evals x tasks episodes in total
        with tempfile.TemporaryDirectory(prefix="mtnas-bench-") as tmp:
            t0 = time.monotonic()
            res = run_impala(factories, spec, total_episodes=evals * len(tasks), run_dir=Path(tmp) / "search",
                             rl=rl_cfg, backend=BackendConfig(name=args.backend),
                             algorithm="mc", seed=seed, progress=False, tensorboard=False)
            mt_wall.append(time.monotonic() - t0)
        st = 0.0
        for i, env in enumerate(envs):
            curve, best = [], float("-inf")
            for e in (e for e in res.episodes if e.task_id == i):
                if e.info.get("meets_budgets") and e.reward > best:
                    best = e.reward
                    if seed == seeds[0]:
                        best_recs[i] = e.info
                curve.append(best)
            curves.setdefault((i, "mtnas"), []).append(curve)
            for name, fn in (("random", random_search), ("evolution", regularized_evolution),
                             ("reinforce", reinforce_search)):
                env.evaluator.clear_cache()  # every method pays for its own evaluations
                r = fn(env, evals, seed=seed)
                curves.setdefault((i, name), []).append(r.best_so_far())
                if name == "reinforce":
                    st += r.seconds
        st_wall.append(st)
        print(json.dumps({"seed": seed, "mtnas_wall_seconds": mt_wall[-1], "reinforce_wall_seconds_sum": st}), flush=True)

    for i, factory in enumerate(factories):
        row: dict[str, Any] = {"task": factory.name, "budget_flops": tasks[i][1], "methods": {}}
        for name in ("mtnas", "random", "evolution", "reinforce"):
            per_seed = []
            for k, curve in enumerate(curves[(i, name)]):
                target = curves[(i, "random")][k][-1]
                n_random = evals_to_reach(curves[(i, "random")][k], target)
                n = evals_to_reach(curve, target)
                per_seed.append({"evaluations": len(curve), "best_reward": curve[-1] if curve else None,
                                 "evals_to_random_best": n, "random_evals_to_its_best": n_random})
            reached = [p["evals_to_random_best"] for p in per_seed if p["evals_to_random_best"]]
            row["methods"][name] = {
                "mean_best_reward": float(sum(p["best_reward"] for p in per_seed) / len(per_seed)),
                "seeds_reaching_random_best": f"{len(reached)}/{len(per_seed)}",
                "mean_evals_to_random_best": float(sum(reached) / len(reached)) if reached else None,
                "mean_best_so_far_every_10": [
                    float(sum(c[j] for c in curves[(i, name)]) / len(seeds))
                    for j in range(9, min(len(c) for c in curves[(i, name)]), 10)
                ],
                "per_seed": per_seed,
            }
        rnd = row["methods"]["random"]["mean_evals_to_random_best"]
        for name in ("mtnas", "evolution", "reinforce"):
            m = row["methods"][name]["mean_evals_to_random_best"]
            row["methods"][name]["speedup_vs_random"] = rnd / m if rnd and m else None
        best_rec = best_recs.get(i)
        if best_rec:
            row["mtnas_best"] = {k: best_rec[k] for k in ("arch_str", "accuracy", "flops", "reward")}

        # --- found vs expert nets after identical training from scratch
        if not args.skip_experts and best_rec is not None:
            d = data[tasks[i][0]]
            sn = load_supernet(supernets[tasks[i][0]].path, d.num_classes, d.in_channels)
            arch = envs[i].space.arch(best_rec["arch"])
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)
                spec_kw = extract(sn, arch, image_size=d.image_size).autostruct_spec
                found = create_model(spec_kw["name"], **spec_kw["kwargs"])
            expert_rows = {"mtnas_found": {"flops": best_rec["flops"],
                                           "test_accuracy": train_and_test(found, d, train_epochs, train_size, args.seed)}}
            for zoo in ("mobilenetv2", "resnet20"):
                w, f = widest_within(zoo, d, tasks[i][1])
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(args.seed)
                    m = create_model(zoo, d.num_classes, d.in_channels, d.image_size, width=w)
                expert_rows[zoo] = {"width": w, "flops": f,
                                    "test_accuracy": train_and_test(m, d, train_epochs, train_size, args.seed)}
            row["after_identical_training"] = expert_rows
        out["tasks"].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "methods"}
                         | {"methods": {k: {kk: vv for kk, vv in v.items() if kk != "per_seed"}
                                        for k, v in row["methods"].items()}}), flush=True)

    out["mtnas_wall_seconds"] = mt_wall
    st_wall_sum = st_wall
    out["single_task_reinforce_wall_seconds_sum"] = st_wall_sum
    out["total_seconds"] = time.monotonic() - t_all
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "tasks"}, indent=2))
    return out


if __name__ == "__main__":
    main()
