"""New scenarios from a finished run: a structure for a new (dataset, ratio) in zero or a few episodes.

Zero-shot, the run's policy plans many candidate strategies, the nearest solved tasks' best strategies
(rescaled to the new budget) join them, and the surrogate fitted on the run's scored episodes picks one
(``autostruct.mtacp.transfer.propose``); a run without scored designs falls back to the policy's greedy
episode. Few-shot (``episodes`` > 0), the nearest solved tasks' strategies are evaluated first, then each
episode is the surrogate's pick among planned candidates, the surrogate learns from every new score, and the
strategy is selected as a search's is (top-k re-scored on images that scored no episode).
"""

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
from autostruct.mtacp.transfer import few_shot, propose, screen_data, solved_strategies
from autostruct.prune.env import PruningEnvFactory
from autostruct.prune.selection import env_rescore, select_strategy
from autostruct.rl import load_policy
from autostruct.rl.logs import read_episodes
from autostruct.utils.io import write_json_atomic


def _run_paths(policy_path: str | Path) -> tuple[Path, Path | None]:
    """``policy.pt`` and the run's episode log (None when absent) from a run folder or its ``policy.pt``."""
    path = Path(policy_path)
    if path.is_dir():
        path = path / "policy.pt"
    if not path.is_file():
        raise AutostructError(
            f"Policy '{policy_path}' does not exist. Pass a finished `autostruct prune` run's folder or its policy.pt."
        )
    log = path.parent / "search" / "episodes.jsonl"
    return path, log if log.is_file() else None


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
    episodes: int = 0,
) -> dict[str, Any]:
    """Prune the run's model for ``dataset`` at FLOPs ratio ``ratio`` with no search (``episodes=0``) or a
    few-shot search of ``episodes`` episodes warm-started from the run (see the module docstring).

    ``policy_path`` is a run folder or its ``policy.pt``. The base model is the one the run used for that
    dataset, or (for a dataset the run did not see) the same architecture trained with the run's recipe.
    Returns a dict like one task of results.json, with ``mode`` and ``evaluations``.
    """

    if not 0 < ratio <= 1:
        raise AutostructError(f"--ratio must be in (0, 1], got {ratio}.")
    if not 0 <= episodes <= 100:
        raise AutostructError(f"--episodes must be in [0, 100] (few-shot), got {episodes}.")
    path, log_path = _run_paths(policy_path)
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
    run_episodes = read_episodes(log_path) if log_path is not None else []
    run_data, solved = screen_data(run_episodes), solved_strategies(run_episodes)
    run_episodes_used = len(run_data)  # the few-shot episodes join the data below
    if episodes > 0:
        scored = few_shot(policy, env, run_data, episodes, seed=meta["seed"], solved=solved)
        chosen = select_strategy(scored, env_rescore(env), top_k=min(5, episodes)).info
    else:
        _, chosen = env.evaluate_counts(propose(policy, env, run_data, seed=meta["seed"], solved=solved))
    data = load_dataset(dataset, root=data_root, seed=meta["seed"], classes=classes)
    pruned = env.prune(chosen["channels"])
    batches = [bx for bx, _ in data.train.batches(128, shuffle=True, seed=meta["seed"])][: meta["env"]["recal_batches"]]
    if batches:
        recalibrate_bn(pruned, batches, len(batches))
    x = data.example_input(1)
    out = {
        "dataset": dataset,
        "classes": classes,
        "ratio": ratio,
        "mode": "few-shot" if episodes else "zero-shot",
        "evaluations": episodes,
        "run_episodes_used": run_episodes_used,  # the run's scored episodes the surrogate learned from
        "keep_ratios": chosen["strategy"],
        "round_to": env.round_to,
        "rounding": env.rounding.as_dict(),
        "base_flops": chosen["base_flops"],
        "flops": int(count_flops(pruned, x).flops),
        "params": int(count_flops(pruned, x).params),
        "val_accuracy": chosen["accuracy"],
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
