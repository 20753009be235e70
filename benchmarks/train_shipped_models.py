"""Train the base models shipped in ``autostruct/models/shipped/`` (what ``make demo`` loads instead of training).

Each model is trained exactly as a pruning run of the config would train it (same cache key: model, width,
dataset, classes, epochs, seed, hold-out, recipe), in an empty cache so that nothing shipped or cached is reused,
then copied under its key's file name. A run whose key differs in any field never sees these files.

    python benchmarks/train_shipped_models.py [configs/quickstart-prune.yaml] [--threads 1]

Writes ``benchmarks/results/shipped_models.json`` (per model: file, test accuracy, training seconds, threads).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import torch

from autostruct.config import PruneConfig, load_yaml
from autostruct.models.shipped import SHIPPED_DIR
from autostruct.mtacp.run import _base_model, _load_data
from autostruct.mtacp.tasks import expand_tasks

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "configs" / "quickstart-prune.yaml"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shipped_models.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_yaml(PruneConfig, args.config)
    cfg = cfg.model_copy(update={"base_training": cfg.base_training.model_copy(update={"retrain": True})})
    keys, _ = expand_tasks(cfg)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["AUTOSTRUCT_CACHE"] = cache
        for key in keys:
            data = _load_data(cfg, key)
            _, ckpt, _ = _base_model(cfg, key, data, progress=True)
            meta = torch.load(ckpt, map_location="cpu", weights_only=True)["metadata"]
            target = SHIPPED_DIR / Path(ckpt).name
            shutil.copyfile(ckpt, target)
            rows.append({"file": target.name, "dataset": key.label, "test_accuracy": meta["metrics"]["test_accuracy"],
                         "train_seconds": meta["metrics"]["train_seconds"], "threads": args.threads})
            print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps({"config": str(Path(args.config).relative_to(ROOT)),
                                          "torch": torch.__version__, "host": platform.processor() or platform.machine(),
                                          "models": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
