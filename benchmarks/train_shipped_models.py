"""Train the base models shipped in ``autostruct/models/shipped/`` (what ``make demo`` loads instead of training).

Each model is trained exactly as a pruning run of the config trains it (``prepare_bases``: the same cache key of
model, width, dataset, classes, epochs, seed, hold-out, recipe and, for a class subset started from the full
dataset's model, that model's key), in an empty cache so that nothing cached is reused, then copied under its
key's file name. A run whose key differs in any field never sees these files. Models already shipped are kept
(``--retrain``: trained again too).

    python benchmarks/train_shipped_models.py [configs/quickstart-prune.yaml] [--threads 1] [--retrain]

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
from autostruct.mtacp.run import prepare_bases
from autostruct.mtacp.tasks import expand_tasks

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "configs" / "quickstart-prune.yaml"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--retrain", action="store_true", help="train the models already shipped too")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shipped_models.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_yaml(PruneConfig, args.config)
    cfg = cfg.model_copy(update={"base_training": cfg.base_training.model_copy(update={"retrain": args.retrain})})
    keys, _ = expand_tasks(cfg)
    out = Path(args.out)
    rows = {r["file"]: r for r in json.loads(out.read_text())["models"]} if out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUTOSTRUCT_CACHE"] = str(Path(tmp) / "cache")
        bases = prepare_bases(cfg, Path(tmp) / "run", keys, progress=True)
        for key, base in bases.items():
            ckpt = Path(base["checkpoint"])
            meta = torch.load(ckpt, map_location="cpu", weights_only=True)["metadata"]
            if base["source"] == "trained":
                shutil.copyfile(ckpt, SHIPPED_DIR / ckpt.name)
            row = rows.get(ckpt.name, {}) | {
                "file": ckpt.name, "dataset": key.label, "init": meta.get("init"), "epochs": meta["epochs"],
                "test_accuracy": meta["metrics"]["test_accuracy"], "train_seconds": meta["metrics"]["train_seconds"],
                "created": meta.get("created")}
            if base["source"] == "trained":
                row["threads"] = args.threads
            rows[ckpt.name] = row
            print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps({"config": str(Path(args.config).relative_to(ROOT)),
                                          "torch": torch.__version__, "host": platform.processor() or platform.machine(),
                                          "models": sorted(rows.values(), key=lambda r: r["file"])}, indent=2) + "\n")


if __name__ == "__main__":
    main()
