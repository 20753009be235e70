"""A small synthetic NAS table with structure across two "datasets" (the worked example of docs/nas.md).

A cell of three operation slots, an optional fourth slot (active only at ``depth: 2``): 5**3 * (1 + 5) = 750
architectures. Accuracy rises with better operations (conv3x3 > conv1x1 > skip > avgpool > none), the two
datasets share that ranking but ``hard`` rewards depth 2 and penalizes ``none`` more, plus fixed per-architecture
noise; FLOPs count the convolutions. Every architecture is in ``TABLE[dataset]``, keyed by :func:`arch_key`.
"""

from __future__ import annotations

import itertools

import numpy as np

from autostruct.nas.custom import CustomSpace

OPS = ["none", "skip", "avgpool", "conv1x1", "conv3x3"]
DATASETS = ("easy", "hard")

SPACE = CustomSpace.from_dict({
    "name": "cell",
    "decisions": [
        {"name": "op1", "choices": OPS},
        {"name": "op2", "choices": OPS},
        {"name": "op3", "choices": OPS},
        {"name": "depth", "choices": [1, 2]},
        {"name": "op4", "choices": OPS, "when": {"depth": 2}},
    ],
})

_QUALITY = {"none": 0.0, "skip": 0.4, "avgpool": 0.25, "conv1x1": 0.7, "conv3x3": 1.0}
_FLOPS = {"none": 0.0, "skip": 0.0, "avgpool": 0.05e6, "conv1x1": 0.2e6, "conv3x3": 1.0e6}


def arch_key(arch: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in arch.items())


def _build() -> dict[str, dict[str, dict[str, float]]]:
    rng = np.random.default_rng(0)
    archs = []
    for ops in itertools.product(OPS, repeat=3):
        archs.append({"op1": ops[0], "op2": ops[1], "op3": ops[2], "depth": 1})
        archs.extend({"op1": ops[0], "op2": ops[1], "op3": ops[2], "depth": 2, "op4": op4} for op4 in OPS)
    table: dict[str, dict[str, dict[str, float]]] = {d: {} for d in DATASETS}
    for arch in archs:
        ops = [arch[k] for k in ("op1", "op2", "op3", "op4") if k in arch]
        quality = sum(_QUALITY[o] for o in ops) / 4
        flops = 0.1e6 + sum(_FLOPS[o] for o in ops)
        nones = sum(o == "none" for o in ops)
        easy = 0.80 + 0.12 * quality - 0.02 * nones + rng.normal(0, 0.005)
        hard = 0.55 + 0.20 * quality - 0.05 * nones + (0.03 if arch["depth"] == 2 else 0.0) + rng.normal(0, 0.01)
        for dataset, acc in (("easy", easy), ("hard", hard)):
            table[dataset][arch_key(arch)] = {"accuracy": round(float(acc), 4), "flops": flops,
                                              "params": round(flops / 50)}
    return table


TABLE = _build()


def evaluate(arch: dict, dataset: str) -> dict[str, float]:
    """The evaluator: a lookup in the table."""
    return TABLE[dataset][arch_key(arch)]


def best(dataset: str, flops: float) -> float:
    """The best accuracy within a FLOPs budget (what a search should approach)."""
    return max(r["accuracy"] for r in TABLE[dataset].values() if r["flops"] <= flops)


def evaluate_without_accuracy(arch: dict, dataset: str) -> dict[str, float]:
    """A broken evaluator (for the error tests)."""
    return {"flops": 1.0}
