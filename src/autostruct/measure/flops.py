"""FLOPs and parameter counts: autostruct's own counter, the one truth for every FLOPs number and budget.

Convention: in autostruct "FLOPs" means multiply-accumulates (MACs), per example (batch 1), the convention of
AMC, MTACP, MobileNet and Torch-Pruning. See :func:`count_flops` for exactly what each layer contributes.

:class:`CostRecorder` is the counter: it hooks every counted layer (by ``isinstance``, so a user's subclass of
``BatchNorm2d`` or ``Linear`` costs what its base class costs) and watches functional matrix products through a
``TorchFunctionMode`` (hand-written attention's ``q @ k.transpose(-2, -1)``). The pruning engine's FLOP model
(:mod:`autostruct.prune.graph`) is built from the very calls it records, so budgets and reports agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from autostruct.errors import AutostructError
from autostruct.measure._inputs import (
    ExampleInputs,
    call_model,
    describe,
    first_example,
    model_device,
    to_device,
)


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


@dataclass
class CountedCall:
    """One counted call: a layer (``module`` set, ``name`` its path) or a functional product (``module`` None,
    ``name`` the op, e.g. ``matmul``). ``kind`` says which formula priced it (see :func:`count_flops`)."""

    name: str
    module: nn.Module | None
    kind: str  # conv | linear | mha | norm | act | pool | upsample | matmul | rnn
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_grad_fn: Any
    cost: int
    meta: tuple[int, ...] = ()  # multi-head attention: (queries, keys)
    scope: str = ""  # the innermost module running when a functional product was called


_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)
_ACTS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU)
_POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
          nn.modules.pooling._AdaptiveMaxPoolNd)
_RNNS = (nn.RNNBase, nn.RNNCellBase)


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def mha_cost(module: nn.MultiheadAttention, n_q: int, n_k: int) -> int:
    """MACs of ``nn.MultiheadAttention`` for one example with ``n_q`` queries and ``n_k`` keys.

    q/k/v projections ``n_q*e*e + n_k*kdim*e + n_k*vdim*e`` (+ ``(n_q + 2*n_k)*e`` bias), ``Q K^T`` and
    ``A V`` ``2 * n_q*n_k*e``, the output projection ``n_q*e*e`` (+ ``n_q*e`` bias); scaling and softmax are free.
    """
    e = module.embed_dim
    cost = n_q * e * e + n_k * module.kdim * e + n_k * module.vdim * e + 2 * n_q * n_k * e + n_q * e * e
    if module.in_proj_bias is not None:
        cost += (n_q + 2 * n_k) * e
    if module.out_proj.bias is not None:
        cost += n_q * e
    return cost


def _tokens(module: nn.MultiheadAttention, t: torch.Tensor) -> int:
    if t.dim() == 2:  # unbatched (L, E)
        return t.shape[0]
    return t.shape[1] if module.batch_first else t.shape[0]


def module_cost(module: nn.Module, args: tuple, kwargs: dict, out: Any) -> tuple[str, int] | None:
    """``(kind, MACs)`` of one call of a counted layer, None for a layer that is not counted."""
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    y = out[0] if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor) else out
    if x is None or not isinstance(y, torch.Tensor):
        return None
    if isinstance(module, nn.modules.conv._ConvNd):
        spatial = _numel(tuple(y.shape[2:])) * y.shape[0]
        macs = math.prod(module.kernel_size) * module.in_channels // module.groups * module.out_channels * spatial
        return "conv", macs + (module.out_channels * spatial if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        macs = _numel(tuple(x.shape)) // module.in_features * module.in_features * module.out_features
        return "linear", macs + (y.numel() if module.bias is not None else 0)
    if isinstance(module, nn.MultiheadAttention):
        key = args[1] if len(args) > 1 else kwargs.get("key", x)
        return "mha", mha_cost(module, _tokens(module, x), _tokens(module, key))
    if isinstance(module, _NORMS):
        affine = getattr(module, "affine", getattr(module, "elementwise_affine", False))
        return "norm", x.numel() * (2 if affine else 1)
    if isinstance(module, _ACTS):
        return "act", y.numel()
    if isinstance(module, _POOLS):
        return "pool", x.numel()
    if isinstance(module, nn.Upsample):
        return "upsample", y.numel()
    if isinstance(module, _RNNS):
        from torch_pruning.utils.op_counter import MODULES_MAPPING

        hook = MODULES_MAPPING.get(type(module))
        if hook is None:
            return None
        module.__flops__ = 0
        hook(module, args, out)
        cost = int(module.__flops__)
        del module.__flops__
        return "rnn", cost
    return None


def _matmul_cost(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> int:
    # Each output element is a dot product over the contracted dimension (a's last).
    return out.numel() * (a.shape[-1] if a.dim() > 0 else 1)


def _einsum_cost(equation: str, operands: list[torch.Tensor]) -> int:
    """Two-operand einsum: the product of the sizes of all its distinct indices."""
    lhs = equation.replace(" ", "").split("->")[0].split(",")
    if len(lhs) != 2 or "..." in equation:
        return 0
    sizes: dict[str, int] = {}
    for spec, t in zip(lhs, operands, strict=False):
        for letter, n in zip(spec, t.shape, strict=False):
            sizes[letter] = n
    return math.prod(sizes.values())


class CostRecorder(TorchFunctionMode):
    """Record every counted call of ``model``'s forward passes run inside ``with CostRecorder(model) as rec:``.

    Layers are counted by forward hooks; matrix products called outside any counted layer (functional
    ``matmul``/``@``/``bmm``/``mm``, ``F.linear``, two-operand ``einsum``, ``F.scaled_dot_product_attention``)
    through the function mode. ``rec.calls`` lists them in call order; ``rec.total`` is their sum.
    """

    _MATMULS = {torch.matmul, torch.mm, torch.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.mm,
                torch.Tensor.bmm}

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[CountedCall] = []
        self._names = {m: n for n, m in model.named_modules()}
        self._depth = 0
        self._stack: list[str] = []
        self._handles: list[Any] = []

    @property
    def total(self) -> int:
        return sum(c.cost for c in self.calls)

    def __enter__(self):
        for module in self.model.modules():
            self._handles.append(module.register_forward_pre_hook(self._enter_layer))
            self._handles.append(module.register_forward_hook(self._record, with_kwargs=True, always_call=True))
        return super().__enter__()

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return super().__exit__(*exc)

    def _enter_layer(self, module, args):
        self._stack.append(self._names.get(module, ""))
        self._depth += module_cost_kind(module)

    def _record(self, module, args, kwargs, out):
        if self._stack:
            self._stack.pop()
        if not module_cost_kind(module):
            return
        self._depth -= 1
        priced = module_cost(module, args, kwargs, out)
        if priced is None:
            return
        kind, cost = priced
        y = out[0] if isinstance(out, (tuple, list)) else out
        x = args[0]
        meta: tuple[int, ...] = ()
        if kind == "mha":
            key = args[1] if len(args) > 1 else kwargs.get("key", x)
            meta = (_tokens(module, x), _tokens(module, key))
        self.calls.append(CountedCall(self._names.get(module, type(module).__name__), module, kind,
                                      tuple(x.shape), tuple(y.shape), y.grad_fn, int(cost), meta))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self._depth == 0 and isinstance(out, torch.Tensor):
            cost, name, first = self._functional_cost(func, args, kwargs, out)
            if cost:
                self.calls.append(CountedCall(name, None, "matmul", tuple(first.shape), tuple(out.shape),
                                              out.grad_fn, int(cost), scope=self._stack[-1] if self._stack else ""))
        return out

    def _functional_cost(self, func, args, kwargs, out) -> tuple[int, str, Any]:
        F = nn.functional
        if func in self._MATMULS and len(args) >= 2:
            return _matmul_cost(args[0], args[1], out), "matmul", args[0]
        if func is torch.Tensor.__rmatmul__ and len(args) >= 2:
            return _matmul_cost(args[1], args[0], out), "matmul", args[1]
        if func is F.linear:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            return out.numel() * weight.shape[-1] + (out.numel() if bias is not None else 0), "linear", args[0]
        if func is F.scaled_dot_product_attention:
            q, k = args[0], args[1] if len(args) > 1 else kwargs["key"]
            # Q K^T over q's width, then A V over the output's width, for every query and key.
            return out.numel() // out.shape[-1] * k.shape[-2] * (q.shape[-1] + out.shape[-1]), "sdpa", q
        if func is torch.einsum and args and isinstance(args[0], str):
            ops = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
            return _einsum_cost(args[0], ops), "einsum", ops[0] if ops else out
        return 0, "", out


def module_cost_kind(module: nn.Module) -> bool:
    """Whether calls of ``module`` are counted (see :func:`count_flops`)."""
    return isinstance(module, (nn.modules.conv._ConvNd, nn.Linear, nn.MultiheadAttention, *_NORMS, *_ACTS,
                               *_POOLS, nn.Upsample, *_RNNS))


def run_counted(model: nn.Module, inputs: Any) -> tuple[Any, CostRecorder]:
    """Run ``model`` once on ``inputs`` (a tensor, a tuple of positional tensors or a dict of keyword tensors)
    while recording its counted calls; returns the output and the recorder."""
    with CostRecorder(model) as rec:
        out = call_model(model, inputs)
    return out, rec


def count_flops(model: nn.Module, example_inputs: ExampleInputs) -> Cost:
    """Count FLOPs (multiply-accumulates) and parameters of ``model`` for one example.

    ``example_inputs`` is what the model's ``forward`` takes (a tensor, a tuple of positional tensors, or a dict
    of keyword tensors); only its shape matters, and only its first example is used, so the result is per image
    whatever the batch. The model is not changed (counted on a deep copy in eval mode, without gradients).

    What each call contributes (layers are matched with ``isinstance``, so subclasses count as their base):

    - ``Conv{1,2,3}d`` / ``ConvTranspose``: ``prod(kernel) * c_in / groups * c_out * prod(out_spatial)``
      MACs, plus ``c_out * prod(out_spatial)`` if it has a bias. A depthwise 3x3 conv on ``c`` channels thus
      costs ``9 * c * h_out * w_out``.
    - ``Linear``: ``in_features * out_features`` per token, plus ``out_features`` per token if it has a bias.
    - ``MultiheadAttention``: projections, ``Q K^T`` and ``A V`` (see :func:`mha_cost`).
    - Functional matrix products outside those layers (``@``, ``matmul``, ``bmm``, ``mm``, ``F.linear``,
      two-operand ``einsum``, ``F.scaled_dot_product_attention``): one MAC per output element per contracted
      element (hand-written attention's ``q @ k^T`` and ``attn @ v``).
    - ``BatchNorm`` / ``InstanceNorm`` / ``GroupNorm`` / ``LayerNorm``: 2 per input element if affine, else 1.
    - ``ReLU``, ``ReLU6``, ``LeakyReLU``, ``PReLU``, ``ELU``, ``GELU``: 1 per output element.
    - Max/avg pooling, adaptive or not: 1 per *input* element. ``Upsample``: 1 per output element.
    - RNN/LSTM/GRU layers: Torch-Pruning's formulas.
    - Zero: everything else, notably elementwise functional calls (``F.relu``, ``x + y``, ``x * gate``),
      ``torch.flatten``, ``nn.Flatten``, ``nn.Dropout``, ``nn.Identity``, ``nn.Hardswish``, ``nn.Sigmoid``, softmax.

    Conv and linear layers dominate: the other terms are 0.3% (VGG-16) to 6% (MobileNetV2) of the zoo models' count.

    >>> import torch
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.Flatten(), nn.Linear(4 * 6 * 6, 10, bias=False))
    >>> count_flops(net, torch.zeros(1, 1, 8, 8))
    Cost(flops=2736, params=1476)
    """
    import copy

    if not isinstance(model, nn.Module):
        raise AutostructError(f"count_flops needs an nn.Module, got {type(model).__name__}.")
    inputs = to_device(first_example(example_inputs), model_device(model))
    work = copy.deepcopy(model).eval()
    try:
        with torch.no_grad():
            _, rec = run_counted(work, inputs)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise AutostructError(
            f"Could not run {type(model).__name__} on example inputs of shape {describe(inputs)} to count FLOPs: "
            f"{exc}. Pass inputs shaped like the model's training data, e.g. torch.zeros(1, C, H, W)."
        ) from exc
    return Cost(flops=rec.total, params=sum(p.numel() for p in model.parameters()))
