"""Zero-shot pruning: a trained MTACP policy proposes a structure for a new (dataset, ratio) in one episode."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from autostruct.data import load_dataset
from autostruct.errors import AutostructError
from autostruct.export import export
from autostruct.measure import count_flops
from autostruct.models import import_modules
from autostruct.models.bn import recalibrate_bn
from autostruct.models.train import evaluate, fine_tune
from autostruct.prune.env import PruningEnvFactory
from autostruct.rl import load_policy, rollout
from autostruct.utils.io import write_json_atomic


def zero_shot_prune(
    policy_path: str | Path,
    dataset: str,
    ratio: float,
    *,
    classes: list[int] | None = None,
    data_root: str | None = None,
    output_dir: str | Path | None = None,
    finetune_epochs: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Prune the policy's model for ``dataset`` at FLOPs ratio ``ratio`` with one greedy episode (no search).

    The base model is the one the policy was trained with for that dataset, or (for a dataset the run did not
    see) the same architecture trained with the run's recipe. Returns a dict like one task of results.json.
    """

    if not 0 < ratio <= 1:
        raise AutostructError(f"--ratio must be in (0, 1], got {ratio}.")
    path = Path(policy_path)
    if not path.is_file():
        raise AutostructError(f"Policy '{path}' does not exist. Pass the policy.pt of a finished `autostruct prune` run.")
    policy, meta = load_policy(path)
    if "datasets" not in meta or "env" not in meta:
        raise AutostructError(f"'{path}' is not an MTACP policy (no pruning metadata). Pass a run's policy.pt.")
    t0 = time.perf_counter()
    key = (dataset, list(classes) if classes else None)
    known = [(d["dataset"], d["classes"]) for d in meta["datasets"]]
    if key in known:
        index = known.index(key)
        model = meta["datasets"][index]["checkpoint"]
    else:
        # An unseen dataset gets the next index; its beta feature (index / (n - 1)) is clipped to 1 by the env.
        index, model = len(known), meta["model"]
    # The run's imports register its architectures; its model_kwargs rebuild the same one for a new dataset.
    import_modules(meta.get("imports", []), "imports")
    env_kwargs = dict(meta["env"])
    # A run with round_to: auto (the default; policies older than this key had it too) gets auto here: the host's
    # multiple, lowered where this ratio needs it, as the run's preflight did for its own ratios.
    if meta.get("round_to_config", "auto") == "auto":
        env_kwargs["round_to"] = "auto"
    factory = PruningEnvFactory.create(
        model, dataset, ratio, classes=tuple(classes) if classes else None, width=meta["width"],
        model_kwargs=meta.get("model_kwargs") or {},
        epochs=meta["base_training_epochs"], seed=meta["seed"], data_root=data_root, device=device,
        task_id=0, dataset_index=index, num_datasets=max(len(known), 1), **env_kwargs,
    )
    env = factory()
    rec = rollout(policy, env, greedy=True)
    data = load_dataset(dataset, root=data_root, seed=meta["seed"], classes=classes)
    pruned = env.prune(rec.info["channels"])
    batches = [bx for bx, _ in data.train.batches(128, shuffle=True, seed=meta["seed"])][: meta["env"]["recal_batches"]]
    if batches:
        recalibrate_bn(pruned, batches, len(batches))
    x = data.example_input(1)
    out = {
        "dataset": dataset,
        "classes": classes,
        "ratio": ratio,
        "keep_ratios": rec.info["strategy"],
        "round_to": env.round_to,
        "rounding": env.rounding.as_dict(),
        "base_flops": rec.info["base_flops"],
        "flops": int(count_flops(pruned, x).flops),
        "params": int(count_flops(pruned, x).params),
        "val_accuracy": rec.info["accuracy"],
        "skipped_groups": [{"layer": n, "reason": r} for n, r in env.graph.skipped],
        "accuracy_before_finetune": evaluate(pruned, data.test, device=device).accuracy,
        "accuracy_after_finetune": None,
        "seconds": None,
    }
    if finetune_epochs > 0:
        fine_tune(pruned, data, finetune_epochs, device=device, progress=progress)
        out["accuracy_after_finetune"] = evaluate(pruned, data.test, device=device).accuracy
    out["seconds"] = time.perf_counter() - t0
    if output_dir is not None:
        paths = export(pruned.cpu().eval(), output_dir, x, metadata={"dataset": dataset, "ratio": ratio})
        out["model_path"], out["onnx_path"] = str(paths.model_pt), str(paths.onnx)
        write_json_atomic(Path(output_dir) / "zero_shot.json", out)
    return out
