"""Does the supernet rank architectures as training them alone does? Kendall tau over sampled architectures.

    python benchmarks/nas_ranking.py --out benchmarks/results/nas-ranking.json     # ~25 min on one core
    python benchmarks/nas_ranking.py --tiny --out /tmp/nas-ranking-tiny.json      # seconds (the test's setting)

Steps: train (or load from the cache) the supernet of ``mobilenetv2-elastic`` on Fashion-MNIST's whole training
split minus the hold-out, with the sandwich rule and in-place distillation; sample ``--archs`` architectures
uniformly (seeded); score each with supernet weights (BN recalibrated, accuracy on the hold-out's search split,
the NAS reward's accuracy); train each from scratch with one :class:`Recipe` and test it; report Kendall's tau
(tau-b) between the two, over all architectures and within the lower and upper half of their FLOPs (where the
size of a net alone cannot explain the order). Each trained architecture is written to ``--out`` as it
finishes; ``--resume`` skips those already there. :mod:`nas_standalone` imports the setup and the recipe from
here, so both benchmarks share one supernet (one cache entry) and one notion of stand-alone accuracy.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------- Kendall tau


def kendall_tau_reference(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b straight from its definition, O(n^2): (C - D) / sqrt((n0 - n1)(n0 - n2)), where C and D
    count concordant and discordant pairs, n0 = n(n-1)/2, and n1 / n2 the pairs tied in x / in y."""
    conc = disc = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        ties_x += dx == 0
        ties_y += dy == 0
        conc += dx * dy > 0
        disc += dx * dy < 0
    n0 = len(x) * (len(x) - 1) / 2
    denom = np.sqrt((n0 - ties_x) * (n0 - ties_y))
    return float((conc - disc) / denom) if denom > 0 else float("nan")


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (scipy's when scipy is installed, else :func:`kendall_tau_reference`); None where it is
    undefined (fewer than two values, or all of x or of y tied), so the JSON stays valid."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    if len(x) < 2:
        return None
    try:
        from scipy.stats import kendalltau
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        tau = kendall_tau_reference(x, y)
    else:
        tau = float(kendalltau(x, y).statistic)
    return None if np.isnan(tau) else tau


# ---------------------------------------------------------------------------------------------- setup


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Stand-alone training of one architecture from scratch (written into every JSON that uses it)."""

    train_size: int | None = 10_000  # a fixed subset of the training split (subset_seed); None: all of it
    epochs: int = 1  # one pass: what one shared CPU core allows for ~80 nets in one session
    lr: float = 0.05  # SGD, Nesterov momentum 0.9, weight decay 5e-4, cosine to 0 (autostruct.models.train)
    batch_size: int = 128
    test_size: int | None = 5_000  # a fixed subset of the test split; None: all 10k
    subset_seed: int = 0


@dataclasses.dataclass(frozen=True)
class Setup:
    """The supernet and its scoring: what makes two runs share a cached supernet."""

    dataset: str = "fashion-mnist"
    space: str = "mobilenetv2-elastic"
    val_size: int = 2_000  # hold-out images behind a supernet score (the NAS reward's accuracy)
    rescore_size: int = 1_000  # hold-out images of the searches' re-score (nas_standalone); carved here too
    recal_batches: int = 8  # BN recalibration batches of 64 training images per architecture
    supernet_epochs: int = 2
    supernet_train_size: int | None = None  # None: the whole training split minus the hold-out
    supernet_sampling: str = "sandwich"
    supernet_distill: bool = True
    supernet_batch_size: int = 128
    supernet_min_steps: int = 300  # SupernetConfig's default; the tiny setting lowers it
    seed: int = 0  # data split, supernet and calibration seed

    @property
    def holdout(self) -> int:
        return self.val_size + self.rescore_size

    def supernet_config(self) -> Any:
        from autostruct.nas.config import SupernetConfig

        return SupernetConfig(epochs=self.supernet_epochs, train_size=self.supernet_train_size,
                              batch_size=self.supernet_batch_size, sampling=self.supernet_sampling,
                              distill=self.supernet_distill, min_steps=self.supernet_min_steps)


TINY_SETUP = Setup(dataset="digits", val_size=200, rescore_size=100, recal_batches=2, supernet_epochs=1,
                   supernet_train_size=256, supernet_batch_size=64, supernet_min_steps=4)
TINY_RECIPE = Recipe(train_size=256, epochs=1, batch_size=64, test_size=200)


@dataclasses.dataclass
class Loaded:
    data: Any
    space: Any
    supernet: Any
    evaluator: Any
    costs: Any
    supernet_info: dict[str, Any]


def load(setup: Setup, cache: Path | None = None, supernet: bool = True) -> Loaded:
    """Data, space, the (cached or freshly trained) supernet, its evaluator on the hold-out's search split
    (``supernet=False``: neither, for a process that only trains architectures stand-alone)."""
    from autostruct.data import load_dataset
    from autostruct.nas.env import make_evaluator
    from autostruct.nas.evaluate import TaskCosts
    from autostruct.nas.space import get_space
    from autostruct.nas.train_supernet import get_or_train_supernet

    data = load_dataset(setup.dataset, val_size=setup.holdout, seed=setup.seed)
    space = get_space(setup.space, data.image_size)
    costs = TaskCosts(data.in_channels, data.image_size, data.num_classes)
    if not supernet:
        return Loaded(data, space, None, None, costs, {"path": None, "skipped": True})
    t0 = time.monotonic()
    net, info = get_or_train_supernet(space, data, setup.supernet_config(), seed=setup.seed, val_size=setup.holdout,
                                      root=cache, progress=False)
    evaluator = make_evaluator(net, data, setup.val_size, setup.recal_batches, 64, setup.seed,
                               rescore_size=setup.rescore_size)
    sn = {"path": str(info.path), "cache_hit": info.hit, "seconds": round(time.monotonic() - t0, 1),
          "metrics": info.metrics}
    return Loaded(data, space, net, evaluator, costs, sn)


def standalone_accuracy(loaded: Loaded, arch: Sequence[int], recipe: Recipe, train_seed: int) -> float:
    """Test accuracy (percent) of ``arch`` trained from scratch with ``recipe``; ``train_seed`` seeds the
    initial weights and the batch order."""
    from autostruct.models.registry import create_model
    from autostruct.models.train import evaluate, train
    from autostruct.nas.supernet import MODEL_NAME

    d = loaded.data
    torch.manual_seed(train_seed)
    model = create_model(MODEL_NAME, num_classes=d.num_classes, in_channels=d.in_channels, image_size=d.image_size,
                         arch=list(arch), space=loaded.space.to_dict())
    train_split = d.train if recipe.train_size is None else d.train.subset(recipe.train_size, seed=recipe.subset_seed)
    no_val = d.val.subset(0) if len(d.val) else d.val
    train(model, dataclasses.replace(d, train=train_split, val=no_val), recipe.epochs, lr=recipe.lr,
          batch_size=recipe.batch_size, seed=train_seed, progress=False, channels_last=True)
    test = d.test if recipe.test_size is None else d.test.subset(recipe.test_size, seed=recipe.subset_seed + 1)
    return 100.0 * evaluate(model, test).accuracy


# ---------------------------------------------------------------------------------------------- the benchmark


def flops_halves_tau(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Kendall tau within the lower and the upper half of the architectures by FLOPs."""
    ranked = sorted(rows, key=lambda r: r["flops"])
    half = len(ranked) // 2
    out = {}
    for name, part in (("lower_flops_half", ranked[:half]), ("upper_flops_half", ranked[half:])):
        out[name] = {"kendall_tau": kendall_tau([r["supernet_score"] for r in part], [r["test_accuracy"] for r in part]),
                     "n_archs": len(part),
                     "flops_range": [part[0]["flops"], part[-1]["flops"]] if part else None}
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [r["supernet_score"] for r in rows]
    accs = [r["test_accuracy"] for r in rows]
    flops = [r["flops"] for r in rows]
    return {"kendall_tau": kendall_tau(scores, accs), "n_archs": len(rows),
            "kendall_tau_flops_vs_accuracy": kendall_tau(flops, accs),
            **flops_halves_tau(rows)}


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def sample_uniform(space: Any, n: int, rng: np.random.Generator) -> list[Any]:
    """``n`` distinct architectures drawn with :meth:`SearchSpace.sample` (uniform per decision)."""
    archs, seen = [], set()
    while len(archs) < n:
        a = space.sample(rng)
        if a.indices not in seen:
            seen.add(a.indices)
            archs.append(a)
    return archs


def sample_flops_stratified(space: Any, costs: Any, n: int, rng: np.random.Generator, pool: int = 4000) -> list[Any]:
    """``n`` distinct architectures spread evenly over log FLOPs, from the space's smallest to its largest.

    Uniform sampling piles architectures up in the middle of the FLOPs range (90% of them between 1.9M and 5.4M of
    0.7-12M), where one stand-alone run's noise is as large as their differences. Here a pool is drawn with a
    size level per architecture (each decision's index near ``level * (choices - 1)``, so the ends of the range
    are reached), and for each of ``n`` log-spaced FLOPs targets the nearest unused pool member is taken.
    """
    decisions = space.decisions
    members: dict[tuple[int, ...], Any] = {a.indices: a for a in (space.smallest(), space.largest())}
    for _ in range(5 * pool):  # a small space has fewer than ``pool`` members
        if len(members) >= pool:
            break
        level = rng.uniform()
        idx: list[int] = []
        for step, d in enumerate(decisions):
            k = len(d.choices)
            i = int(np.clip(np.rint(level * (k - 1) + rng.normal(0.0, 0.6)), 0, k - 1))
            idx.append(i if space.is_active(step, idx) else 0)
        a = space.arch(idx)
        members.setdefault(a.indices, a)
    ranked = sorted(members.values(), key=lambda a: costs(a)["flops"])
    logf = np.log([costs(a)["flops"] for a in ranked])
    targets = np.linspace(logf[0], logf[-1], n)
    used: set[int] = set()
    out = []
    for t in targets:
        order = np.argsort(np.abs(logf - t), kind="stable")
        j = next(int(j) for j in order if int(j) not in used)
        used.add(j)
        out.append(ranked[j])
    return out


SAMPLINGS = ("uniform", "flops-stratified")


def run(setup: Setup, recipe: Recipe, n_archs: int, arch_seed: int, out: Path | None, resume: bool,
        cache: Path | None = None, sampling: str = "uniform", phase: str = "all") -> dict[str, Any]:
    """Score and train ``n_archs`` architectures; ``phase`` splits the work between two processes on two cores:
    ``supernet`` only trains (and caches) the supernet, ``standalone`` only trains the architectures (their
    supernet scores stay null), ``all`` does both and fills what an earlier ``--resume``d file lacks."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    torch.set_num_threads(1)
    t_all = time.monotonic()
    if phase == "supernet":
        loaded = load(setup, cache)
        print(json.dumps({"supernet": loaded.supernet_info}), flush=True)
        return {"supernet": loaded.supernet_info}
    loaded = load(setup, cache, supernet=phase != "standalone")
    print(json.dumps({"supernet": loaded.supernet_info}), flush=True)
    rng = np.random.default_rng(arch_seed)
    archs = (sample_uniform(loaded.space, n_archs, rng) if sampling == "uniform"
             else sample_flops_stratified(loaded.space, loaded.costs, n_archs, rng))
    done: dict[tuple[int, ...], dict[str, Any]] = {}
    if resume and out is not None and out.is_file():
        prev = json.loads(out.read_text())
        if (prev["setup"] == json.loads(json.dumps(dataclasses.asdict(setup)))
                and prev["recipe"] == dataclasses.asdict(recipe) and prev.get("arch_sampling", "uniform") == sampling):
            done = {tuple(r["arch"]): r for r in prev["archs"]}
    doc: dict[str, Any] = {
        "setup": dataclasses.asdict(setup), "recipe": dataclasses.asdict(recipe), "arch_seed": arch_seed,
        "arch_sampling": sampling, "supernet": loaded.supernet_info, "archs": [],
        "flops_range": [loaded.costs(loaded.space.smallest())["flops"], loaded.costs(loaded.space.largest())["flops"]],
    }
    # Trained in a seeded shuffled order (written in FLOPs order), so a stopped stratified run holds both ends.
    order = {a.indices: i for i, a in enumerate(archs)}
    for a in (archs if sampling == "uniform" else [archs[i] for i in np.random.default_rng(arch_seed).permutation(len(archs))]):
        row = dict(done.get(a.indices) or {"arch": list(a.indices), "arch_str": str(a),
                                            "flops": int(loaded.costs(a)["flops"]), "supernet_score": None})
        t0 = time.monotonic()
        fresh = False
        if row["supernet_score"] is None and loaded.evaluator is not None:
            row["supernet_score"] = round(100.0 * loaded.evaluator.accuracy(a)[0], 3)
            fresh = True
        if "test_accuracy" not in row:
            row.update(test_accuracy=round(standalone_accuracy(loaded, a.indices, recipe, train_seed=0), 3),
                       train_seed=0, seconds=round(time.monotonic() - t0, 1))
            fresh = True
        doc["archs"].append(row)
        if fresh:
            print(json.dumps(row), flush=True)
            if out is not None:
                _write(out, {**doc, "partial": True})
    doc["archs"].sort(key=lambda r: order[tuple(r["arch"])])
    scored = [r for r in doc["archs"] if r["supernet_score"] is not None]
    if len(scored) == len(doc["archs"]):
        doc["rank_correlation"] = summarize(doc["archs"])
        print(json.dumps({"rank_correlation": doc["rank_correlation"]}), flush=True)
    else:
        doc["partial"] = True  # stand-alone accuracies without supernet scores: a later run with --resume adds them
    doc["total_seconds"] = round(time.monotonic() - t_all, 1)
    if out is not None:
        _write(out, doc)
    return doc


def recipe_from_args(recipe: Recipe, args: argparse.Namespace) -> Recipe:
    """``recipe`` with the command line's ``--epochs``, ``--train-size`` and ``--test-size`` (0: the whole split)."""
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    if args.train_size is not None:
        recipe = dataclasses.replace(recipe, train_size=args.train_size or None)
    if args.test_size is not None:
        recipe = dataclasses.replace(recipe, test_size=args.test_size or None)
    return recipe


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=20, help="sampled architectures trained stand-alone")
    ap.add_argument("--arch-seed", type=int, default=0)
    ap.add_argument("--supernet-epochs", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="stand-alone epochs")
    ap.add_argument("--train-size", type=int, default=None, help="stand-alone training images (0: all of them)")
    ap.add_argument("--test-size", type=int, default=None, help="stand-alone test images (0: the whole test split)")
    ap.add_argument("--tiny", action="store_true", help="8x8 digits, a few hundred images: seconds")
    ap.add_argument("--cache", type=Path, default=None, help="supernet cache folder (default: autostruct's)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", action="store_true", help="keep the architectures --out already holds")
    ap.add_argument("--sampling", choices=SAMPLINGS, default="uniform",
                    help="uniform per decision, or spread evenly over log FLOPs (smallest to largest)")
    ap.add_argument("--phase", choices=("all", "supernet", "standalone"), default="all",
                    help="supernet: train and cache it only; standalone: train the architectures only (scores "
                         "null); all: both, filling what a --resume'd file lacks")
    args = ap.parse_args(argv)
    setup, recipe = (TINY_SETUP, TINY_RECIPE) if args.tiny else (Setup(), Recipe())
    if args.supernet_epochs is not None:
        setup = dataclasses.replace(setup, supernet_epochs=args.supernet_epochs)
    return run(setup, recipe_from_args(recipe, args), args.archs, args.arch_seed, args.out, args.resume, args.cache, args.sampling,
               args.phase)


if __name__ == "__main__":
    main()
