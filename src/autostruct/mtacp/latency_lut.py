"""Build a pruning run's per-layer latency table on the machine this runs on (the target device).

A run prices ``latency_ms`` tasks with ``search.latency_table``: ``host`` measures here, a path reads a table
measured elsewhere. :func:`build_prune_lut` makes that table on the device: it resolves the config's model and
input shape exactly as the run does (imports, model name / ``model.pt`` / factory, ``width``, ``model_kwargs``,
the dataset's channels, size and classes, ``search.round_to`` including ``auto``, measured here), measures every
layer cell and calibrates on whole pruned models (:func:`~autostruct.prune.latency_table.host_table`), and writes
the JSON that ``search.latency_table: <path>`` accepts. Every input is checked before anything is measured or
written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autostruct.config import PruneConfig, coerce_config
from autostruct.errors import AutostructError
from autostruct.measure import LatencyTable
from autostruct.measure.lut import default_device_name
from autostruct.mtacp.preflight import check_prune_inputs, load_config_checkpoint, priced_model
from autostruct.mtacp.tasks import expand_tasks
from autostruct.prune.latency_table import host_table, layer_specs, model_fingerprint
from autostruct.utils.runs import say

__all__ = ["PruneLutResult", "build_prune_lut"]


@dataclass(frozen=True)
class PruneLutResult:
    """What :func:`build_prune_lut` wrote: the table, its path, and what it prices."""

    path: Path
    table: LatencyTable
    datasets: list[str]  # labels of the config's task data the table prices (same model and input shape)
    round_to: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest (what the CLI prints)."""
        cal = self.table.meta.get("calibration", {})
        return {
            "table": str(self.path), "device": self.table.device, "datasets": self.datasets,
            "model": self.table.meta.get("config_model"), "input_shape": self.table.meta.get("input_shape"),
            "round_to": self.round_to, "threads": self.table.threads, "cells": len(self.table.entries),
            "calibration_max_rel_error": round(float(cal.get("max_rel_error", float("nan"))), 4),
            "calibration_mean_rel_error": round(float(cal.get("mean_rel_error", float("nan"))), 4),
            "seconds": round(self.seconds, 2),
        }


def _check_out(out: Path) -> None:
    if out.suffix.lower() != ".json":
        raise AutostructError(f"--out must be the path of a .json file, e.g. profiles/pi4-resnet20.json; got '{out}'.")
    if out.is_dir():
        raise AutostructError(f"--out '{out}' is a folder; give a file path such as {out / 'table.json'}.")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir():
        raise AutostructError(f"--out '{out}': its folder cannot be created (a parent is not a folder).")


def build_prune_lut(
    config: PruneConfig | dict[str, Any] | str | Path,
    out: str | Path,
    *,
    dataset: str | None = None,
    threads: int | None = None,
    device_name: str | None = None,
    progress: bool = False,
) -> PruneLutResult:
    """Measure the pruning latency table of ``config``'s model on this machine and write it to ``out`` (JSON).

    ``dataset`` picks the task data (a task data label such as ``fashion-mnist-c5.7.9``, or a dataset name) when the
    config's latency tasks use data of different shapes; a table prices one model and input shape, so data that
    give the same layers share it. Without latency tasks, every task's data count. ``threads`` defaults to
    ``search.latency_threads``, ``device_name`` to this host's (e.g. ``linux-aarch64``).
    Raises :class:`AutostructError` (and writes nothing) on any bad input.
    """

    out = Path(out)
    _check_out(out)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise AutostructError(f"--threads must be an integer >= 1, got {threads!r}.")
    if device_name is not None and not device_name.strip():
        raise AutostructError("--device-name must not be empty; use e.g. raspberry-pi-4.")
    cfg = coerce_config(PruneConfig, config)
    # Resolve everything here, as the run will there: the config's own latency_table is the file being built.
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"latency_table": "host"})})
    threads = threads or cfg.search.latency_threads
    keys, tasks = expand_tasks(cfg)
    if dataset is not None:
        keys = [k for k in keys if k.label == dataset] or [k for k in keys if k.dataset == dataset]
        if not keys:
            labels = ", ".join(k.label for k in expand_tasks(cfg)[0])
            raise AutostructError(f"--dataset '{dataset}' is not among the config's task data ({labels}).")
    latency_keys = [k for k in keys if any(t.data == k and t.is_latency for t in tasks)]
    keys = latency_keys or keys
    round_to = check_prune_inputs(cfg)
    checkpoint = load_config_checkpoint(cfg)
    by_print: dict[str, list[Any]] = {}
    priced = {}
    for key in keys:
        model, graph, x = priced_model(cfg, key, checkpoint)
        fp = model_fingerprint(layer_specs(model, graph, x, round_to))
        by_print.setdefault(fp, []).append(key)
        priced.setdefault(fp, (model, graph, x))
    if len(by_print) > 1:
        groups = "; ".join(", ".join(k.label for k in ks) for ks in by_print.values())
        raise AutostructError(
            f"The config's {'latency ' if latency_keys else ''}tasks use data that give the model different layers "
            f"({groups}); one table prices one model and input shape. Pass --dataset with one of these labels "
            "(and give each run the table of its data)."
        )
    fp, same = next(iter(by_print.items()))
    labels = [k.label for k in same]
    model, graph, x = priced[fp]
    say(progress, f"latency table of '{cfg.model}' at input {'x'.join(map(str, x.shape))}, round_to {round_to}, "
                  f"{threads} thread(s): measuring layer cells and whole pruned models")
    t0 = time.monotonic()
    table, _ = host_table(model, graph, x, round_to, threads=threads, use_cache=False)
    table.device = device_name.strip() if device_name else default_device_name()
    table.meta.update({
        "config_model": cfg.model, "width": cfg.width, "model_kwargs": dict(cfg.model_kwargs),
        "datasets": labels, "round_to_config": cfg.search.round_to,
    })
    table.save(out)
    return PruneLutResult(path=out, table=table, datasets=labels, round_to=round_to, seconds=time.monotonic() - t0)
