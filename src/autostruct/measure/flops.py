"""FLOPs and parameter counts, through Torch-Pruning's counter.

Convention: in autostruct "FLOPs" means multiply-accumulates (MACs), per example (batch 1), the convention of
AMC, MTACP, MobileNet and Torch-Pruning. See :func:`count_flops` for exactly what each layer contributes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure._inputs import ExampleInputs, describe, first_example, model_device, to_device


@dataclass(frozen=True)
class Cost:
    """Compute and size of a model for one example.

    ``flops`` are multiply-accumulates (MACs), see :func:`count_flops`; ``params`` is ``sum(p.numel())`` over all
    parameters (buffers such as batch-norm running statistics are not counted).
    """

    flops: int
    params: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def mflops(self) -> float:
        """FLOPs (MACs) in millions, the unit papers report."""
        return self.flops / 1e6


def count_flops(model: nn.Module, example_inputs: ExampleInputs) -> Cost:
    """Count FLOPs (multiply-accumulates) and parameters of ``model`` for one example.

    ``example_inputs`` is what the model's ``forward`` takes (a tensor, a tuple of positional tensors, or a dict
    of keyword tensors); only its shape matters, and only its first example is used, so the result is per image
    whatever the batch. The model is not changed (Torch-Pruning counts on a deep copy in eval mode).

    What each layer contributes (Torch-Pruning's ``count_ops_and_params``, which counts ``nn.Module`` layers of
    the exact listed types through forward hooks):

    - ``Conv{1,2,3}d`` / ``ConvTranspose``: ``prod(kernel) * c_in / groups * c_out * prod(out_spatial)``
      MACs, plus ``c_out * prod(out_spatial)`` if it has a bias. A depthwise 3x3 conv on ``c`` channels thus
      costs ``9 * c * h_out * w_out``.
    - ``Linear``: ``in_features * out_features``, plus ``out_features`` if it has a bias.
    - ``BatchNorm`` / ``InstanceNorm`` / ``GroupNorm``: 2 per input element if affine, else 1.
      ``LayerNorm`` likewise.
    - ``ReLU``, ``ReLU6``, ``LeakyReLU``, ``PReLU``, ``ELU``, ``GELU``: 1 per output element.
    - Max/avg pooling, adaptive or not: 1 per *input* element.
    - Zero: everything else, notably functional calls (``F.relu``, ``torch.flatten``), residual additions,
      ``nn.Flatten``, ``nn.Dropout``, ``nn.Identity``, ``nn.Hardswish``, ``nn.Sigmoid``.

    Conv and linear layers dominate: the other terms are 0.3% (VGG-16) to 6% (MobileNetV2) of the zoo models' count.

    >>> import torch
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.Flatten(), nn.Linear(4 * 6 * 6, 10, bias=False))
    >>> count_flops(net, torch.zeros(1, 1, 8, 8))
    Cost(flops=2736, params=1476)
    """
    # Imported here: torch_pruning is heavy, and only this function needs it.
    from torch_pruning.utils import count_ops_and_params

    if not isinstance(model, nn.Module):
        raise AutostructError(f"count_flops needs an nn.Module, got {type(model).__name__}.")
    inputs = to_device(first_example(example_inputs), model_device(model))
    try:
        flops, params = count_ops_and_params(model, inputs)
    except RuntimeError as exc:
        raise AutostructError(
            f"Could not run {type(model).__name__} on example inputs of shape {describe(inputs)} to count FLOPs: "
            f"{exc}. Pass inputs shaped like the model's training data, e.g. torch.zeros(1, C, H, W)."
        ) from exc
    return Cost(flops=round(flops), params=int(params))
