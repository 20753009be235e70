"""Train, fine-tune and evaluate classifiers on in-memory datasets.

One loop serves base-model training, fine-tuning of pruned or searched models, and the benchmarks: SGD with
momentum and a per-step cosine schedule to zero, optional label smoothing, optional knowledge distillation from
a teacher (the unpruned base model: a pruned model recovers its accuracy in fewer steps when it also matches the
base's soft outputs), seeded shuffling and augmentation (a private ``torch.Generator``, so the global RNG is never
touched), a progress bar on terminals and one line per epoch elsewhere (:mod:`autostruct.utils.progress`).

Datasets are duck-typed: anything with a ``train`` (and optionally ``val``) split whose ``x`` (N, C, H, W float)
and ``y`` (N,) int64 tensors hold the whole split, as :func:`autostruct.data.load_dataset` returns.

>>> result = train(model, dataset, epochs=3, lr=0.1)                 # doctest: +SKIP
>>> evaluate(model, dataset.test).accuracy                            # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from autostruct.config import StrictModel, parse_config
from autostruct.errors import AutostructError
from autostruct.utils.device import resolve_device
from autostruct.utils.progress import format_seconds, progress_bar, progress_line

log = logging.getLogger(__name__)

Augment = Literal["auto", "none", "crop", "crop-flip"]


class TrainConfig(StrictModel):
    """Settings of one training (or fine-tuning) run."""

    epochs: int = Field(10, gt=0, description="Passes over the training split.")
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.1, gt=0, description="Peak learning rate; cosine-annealed to 0 over all steps.")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    nesterov: bool = Field(True, description="Nesterov momentum (needs momentum > 0).")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    seed: int = Field(0, description="Seeds shuffling and augmentation (not the model's init).")
    device: str = Field("cpu", description="cpu, cuda, cuda:N or auto.")
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="NHWC memory format; 'auto' uses it on CUDA only (on CPU it is rarely faster)."
    )
    augment: Augment = Field(
        "auto",
        description="'auto': random crop (padding 1/8 of the side) + horizontal flip for 3-channel images of "
        "32 px or more (CIFAR-like photos); none for grayscale or small images, where flips change digits and "
        "short runs converge faster without it.",
    )
    eval_batch_size: int = Field(512, ge=1)
    distill: float = Field(
        0.0, ge=0, le=1, description="Weight of the distillation term when a teacher is given (0: cross-entropy only, "
        "1: distillation only); see distillation_loss."
    )
    temperature: float = Field(4.0, gt=0, description="Softmax temperature of the distillation term.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many SGD steps (the cosine schedule ends there); None: every step "
        "of every epoch. A short fine-tune can stop inside its only epoch."
    )

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> TrainConfig:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0; set nesterov=False or a momentum such as 0.9")
        return self


@dataclass(frozen=True)
class EvalResult:
    """Accuracy in [0, 1], mean cross-entropy, and the number of examples."""

    accuracy: float
    loss: float
    n: int


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float | None
    val_loss: float | None
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """History per epoch, the final validation result (None without a val split), and wall time."""

    history: list[EpochStats] = field(default_factory=list)
    val: EvalResult | None = None
    seconds: float = 0.0
    config: TrainConfig | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain-types summary (for checkpoints' metadata and JSON logs)."""
        return {
            "history": [asdict(h) for h in self.history],
            "val": asdict(self.val) if self.val else None,
            "seconds": self.seconds,
            "config": self.config.model_dump() if self.config else None,
        }


def make_config(
    config: TrainConfig | None = None, epochs: int | None = None, **overrides: Any
) -> TrainConfig:
    """``config`` (or the defaults) with ``epochs`` and keyword overrides applied and validated."""
    data = (config or TrainConfig()).model_dump()
    data.update(overrides)
    if epochs is not None:
        data["epochs"] = epochs
    return parse_config(TrainConfig, data, source="training config")


def resolve_augment(augment: Augment, in_channels: int, image_size: int) -> Augment:
    """What ``augment='auto'`` means for an input shape (see :class:`TrainConfig`)."""
    if augment != "auto":
        return augment
    return "crop-flip" if in_channels == 3 and image_size >= 32 else "none"


def augment_batch(x: torch.Tensor, mode: Augment, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding (1/8 of the side) and/or horizontal flip, per image, vectorized."""
    if mode == "none":
        return x
    n, c, h, w = x.shape
    dev = x.device
    if mode in ("crop", "crop-flip"):
        pad = max(1, round(max(h, w) / 8))
        padded = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(dev)
        rows = oy[:, None] + torch.arange(h, device=dev)
        cols = ox[:, None] + torch.arange(w, device=dev)
        x = padded[
            torch.arange(n, device=dev)[:, None, None, None],
            torch.arange(c, device=dev)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
    if mode == "crop-flip":
        flip = (torch.rand(n, generator=generator) < 0.5).to(dev)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def distillation_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    *,
    weight: float = 0.0,
    temperature: float = 4.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Hinton et al.'s distillation loss, averaged over the batch:

    ``(1 - weight) * CE(logits, targets) + weight * T**2 * KL(softmax(teacher_logits / T) || softmax(logits / T))``

    The ``T**2`` keeps the soft term's gradient on the scale of the hard term's whatever the temperature.
    Without ``teacher_logits`` (or with ``weight=0``) it is the plain cross-entropy.
    """
    hard = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    if teacher_logits is None or weight == 0:
        return hard
    t = temperature
    soft = F.kl_div(
        F.log_softmax(logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1), reduction="batchmean", log_target=True
    )
    return (1 - weight) * hard + weight * t * t * soft


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def evaluate(
    model: nn.Module, split: Any, *, batch_size: int = 512, device: str | torch.device | None = None
) -> EvalResult:
    """Accuracy and mean cross-entropy of ``model`` on ``split`` (anything with ``x``/``y`` tensors).

    Runs in eval mode under ``torch.inference_mode`` and restores the model's train/eval mode afterwards.
    ``device=None`` evaluates where the model already is; otherwise the model is moved there.
    """
    n = len(split.y)
    if n == 0:
        raise AutostructError("Cannot evaluate on an empty split; use a larger val_size or a bigger subset.")
    dev = _model_device(model) if device is None else resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    loss_sum = 0.0
    correct = 0
    try:
        with torch.inference_mode():
            for i in range(0, n, batch_size):
                xb = split.x[i : i + batch_size].to(dev, non_blocking=True)
                yb = split.y[i : i + batch_size].to(dev, non_blocking=True)
                logits = model(xb)
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
                correct += (logits.argmax(1) == yb).sum().item()
    finally:
        model.train(was_training)
    return EvalResult(accuracy=correct / n, loss=loss_sum / n, n=n)


def _progress(enabled: bool):
    return progress_bar(enabled)


def train(
    model: nn.Module,
    dataset: Any,
    epochs: int | None = None,
    *,
    config: TrainConfig | None = None,
    progress: bool = True,
    callback: Callable[[EpochStats], None] | None = None,
    teacher: nn.Module | None = None,
    teacher_logits: torch.Tensor | None = None,
    label: str = "train",
    **overrides: Any,
) -> TrainResult:
    """Train ``model`` in place on ``dataset.train``; validate on ``dataset.val`` after each epoch.

    Settings come from ``config`` (default :class:`TrainConfig`) with ``epochs`` and any keyword overrides
    (``lr=0.05``, ``batch_size=64``, ``device="cuda"``, ...) on top; unknown or invalid settings raise
    :class:`AutostructError` naming the field. ``callback`` receives each epoch's :class:`EpochStats`.
    ``teacher`` (with ``distill > 0``): distil from its outputs (:func:`distillation_loss`); it is run in eval mode
    and not changed. ``teacher_logits``: the teacher's outputs on every training image, in order
    (:func:`distillation_targets`), read instead of running the teacher each step; only without augmentation,
    where they are what the teacher would compute. ``label`` names the run in the progress bar and lines (e.g.
    ``"fine-tune fashion-mnist-r0.5"``).
    On CPU two runs with the same seed and initial weights give identical results. The model is left in eval
    mode, in the default memory format, on the training device.
    """
    cfg = make_config(config, epochs, **overrides)
    dev = resolve_device(cfg.device)
    x_all, y_all = dataset.train.x, dataset.train.y
    n = len(y_all)
    if n < 2:
        raise AutostructError(f"The training split has {n} example(s); training needs at least 2.")
    _, c, h, w = x_all.shape
    aug = resolve_augment(cfg.augment, c, max(h, w))
    channels_last = dev.type == "cuda" if cfg.channels_last == "auto" else cfg.channels_last
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    val_split = getattr(dataset, "val", None)
    has_val = val_split is not None and len(val_split.y) > 0

    model.to(dev, memory_format=memory_format)
    distil = teacher is not None and cfg.distill > 0
    if distil:
        teacher_was_training = teacher.training
        teacher.to(dev).eval()
    cached = None
    if distil and teacher_logits is not None:
        if aug != "none" or teacher_logits.shape[0] != n:
            raise AutostructError(
                f"teacher_logits hold {teacher_logits.shape[0]} rows for {n} training images with augment "
                f"'{aug}'; they replace the teacher only for the same images without augmentation."
            )
        cached = teacher_logits.to(dev)
    # The data lives in memory; on an accelerator move it once, not per batch.
    x_all, y_all = x_all.to(dev), y_all.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov,
    )
    # A lone example in the last batch breaks BatchNorm on 1x1 maps; drop it (it is reshuffled next epoch).
    steps_per_epoch = n // cfg.batch_size + (1 if n % cfg.batch_size >= 2 else 0)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None and cfg.max_steps < total_steps:
        total_steps = cfg.max_steps
        epochs_run = math.ceil(total_steps / steps_per_epoch)
    else:
        epochs_run = cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(config=cfg)
    start = time.perf_counter()
    log.info("training %s on %d examples: %s", type(model).__name__, n, cfg.model_dump())

    with _progress(progress) as bar:
        for epoch in range(1, epochs_run + 1):
            t0 = time.perf_counter()
            steps = min(steps_per_epoch, total_steps - (epoch - 1) * steps_per_epoch)
            task = bar.add_task(f"{label} epoch {epoch}/{epochs_run}", total=steps, info="")
            model.train()
            perm = torch.randperm(n, generator=generator).to(dev)
            loss_sum = torch.zeros((), device=dev)
            correct = torch.zeros((), device=dev, dtype=torch.long)
            seen = 0
            lr_used = optimizer.param_groups[0]["lr"]
            for step in range(steps):
                idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                xb = augment_batch(x_all[idx], aug, generator).contiguous(memory_format=memory_format)
                yb = y_all[idx]
                logits = model(xb)
                if distil:
                    if cached is not None:
                        soft = cached[idx]
                    else:
                        with torch.no_grad():
                            soft = teacher(xb)
                    loss = distillation_loss(logits, yb, soft, weight=cfg.distill,
                                             temperature=cfg.temperature, label_smoothing=cfg.label_smoothing)
                else:
                    loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
                seen += len(yb)
                if step % 20 == 0 or step == steps - 1:
                    # .item() syncs with the device, so only every few steps.
                    current = loss_sum.item() / seen
                    if not math.isfinite(current):
                        raise AutostructError(
                            f"Training diverged (loss {current}) in epoch {epoch}, step {step + 1}. "
                            f"Lower the learning rate (now {cfg.lr})."
                        )
                    bar.update(task, completed=step + 1, info=f"loss {current:.4f}")
            val = evaluate(model, val_split, batch_size=cfg.eval_batch_size) if has_val else None
            stats = EpochStats(
                epoch=epoch,
                train_loss=loss_sum.item() / seen,
                train_accuracy=correct.item() / seen,
                val_accuracy=val.accuracy if val else None,
                val_loss=val.loss if val else None,
                lr=lr_used,
                seconds=time.perf_counter() - t0,
            )
            result.history.append(stats)
            result.val = val
            info = f"loss {stats.train_loss:.4f} acc {stats.train_accuracy:.4f}"
            if val:
                info += f" val {val.accuracy:.4f}"
            bar.update(task, info=info)
            log.info("epoch %d/%d: %s (%.1fs)", epoch, epochs_run, info, stats.seconds)
            # One line per epoch off a terminal; at most about 20 for a run of many short epochs (digits: 6 steps).
            if epoch % math.ceil(epochs_run / 20) == 0 or epoch == epochs_run:
                left = (time.perf_counter() - start) / (epoch * steps_per_epoch) * (total_steps - epoch * steps_per_epoch)
                progress_line(progress, f"{label} epoch {epoch}/{epochs_run} ({steps} steps): {info}, "
                                        f"{format_seconds(stats.seconds)}" + (f", ~{format_seconds(left)} left" if left > 0 else ""))
            if callback is not None:
                callback(stats)

    if distil:
        teacher.train(teacher_was_training)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def fine_tune(
    model: nn.Module,
    dataset: Any,
    epochs: int | None = None,
    *,
    lr: float = 0.01,
    config: TrainConfig | None = None,
    progress: bool = True,
    callback: Callable[[EpochStats], None] | None = None,
    teacher: nn.Module | None = None,
    teacher_logits: torch.Tensor | None = None,
    label: str = "fine-tune",
    **overrides: Any,
) -> TrainResult:
    """:func:`train` with a smaller peak learning rate (default 0.01), for pruned or extracted models; pass the
    unpruned model as ``teacher`` and ``distill=0.5`` (say) to distil from it."""
    return train(
        model, dataset, epochs, config=config, progress=progress, callback=callback, teacher=teacher,
        teacher_logits=teacher_logits, label=label, lr=lr, **overrides
    )


def distillation_targets(teacher: nn.Module, dataset: Any, augment: Augment = "auto", device: str = "cpu",
                         batch_size: int = 512) -> torch.Tensor | None:
    """The teacher's outputs on every training image of ``dataset``, in order, for ``teacher_logits`` (None
    when ``augment`` resolves to augmentation: the teacher must then see each augmented batch).

    One pass in large eval batches; fine-tunes that distil from the same teacher on the same images (another
    cycle, another budget of the same base model) read it instead of running the teacher at every step.
    """
    x = dataset.train.x
    if resolve_augment(augment, x.shape[1], max(x.shape[2], x.shape[3])) != "none":
        return None
    dev = resolve_device(device)
    was_training = teacher.training
    teacher.to(dev).eval()
    with torch.no_grad():
        out = torch.cat([teacher(x[i : i + batch_size].to(dev)) for i in range(0, len(x), batch_size)])
    teacher.train(was_training)
    return out


def fine_tune_cycles(
    model: nn.Module,
    dataset: Any,
    epochs: int,
    *,
    target_val_accuracy: float | None = None,
    max_cycles: int = 1,
    seed: int = 0,
    label: str = "fine-tune",
    **kwargs: Any,
) -> list[TrainResult]:
    """:func:`fine_tune` for ``epochs``, then again (a new cycle of ``epochs`` with a fresh schedule: a warm
    restart) while the validation accuracy is under ``target_val_accuracy``, at most ``max_cycles`` cycles in all.

    One cycle when the target is None or the dataset has no validation split. A model that recovers in the
    first cycle costs nothing more; one that does not gets more steps without the caller guessing how many a
    cut needs. Each cycle shuffles with its own seed (``seed + cycle``). Returns every cycle's result.
    """
    results: list[TrainResult] = []
    for cycle in range(max_cycles):
        results.append(fine_tune(model, dataset, epochs, seed=seed + cycle,
                                 label=label if cycle == 0 else f"{label} (cycle {cycle + 1})", **kwargs))
        val = results[-1].val.accuracy if results[-1].val is not None else None
        if target_val_accuracy is None or val is None or val >= target_val_accuracy:
            break
    return results
