"""Pruning groups of any model, from Torch-Pruning's dependency graph.

A *group* is one independent channel decision: channels tied by a residual add, a depthwise conv, a concat
or a squeeze-excitation multiply are removed together, so they get one keep ratio. :func:`analyze` traces the
model once and records, per group, every layer slice to cut (``PruneOp``: a layer, its pruning function, and
which channel of the group each index belongs to), the geometry MTACP's state needs, and an exact
:class:`~autostruct.prune.budget.FlopModel`. Surgery then never rebuilds the graph: it replays the ops on a copy.

The classifier's output and the network input are never pruned. A group the engine cannot handle (a layer
type Torch-Pruning has no pruner for, a surgery that breaks the forward pass) is left
unpruned and listed in :attr:`PruningGraph.skipped` with the reason, never a crash.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import ops

from autostruct.errors import AutostructError
from autostruct.measure._inputs import ExampleInputs, call_model, describe, first_example
from autostruct.measure.flops import run_counted
from autostruct.prune.budget import FlopModel
from autostruct.prune.groups import PrunableGroup, PruneOp, PruningGraph
from autostruct.prune.handlers import (
    BASE_TYPES,
    HeadDims,
    ParamCut,
    WithExtras,
    extra_tensors,
    head_dims_block,
)
from autostruct.prune.trial import (
    Trial,
    attempt_cut,
    check_flop_model,
    flatten_outputs,
    run_trial,
    trial_counts,
)

log = logging.getLogger(__name__)

__all__ = ["ExampleInputs", "PrunableGroup", "PruneOp", "PruningGraph", "analyze", "prunable_groups"]

# Real layers whose channels the engine knows how to cut (Torch-Pruning pruners, exact FLOP formulas).
_SUPPORTED = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.PReLU,
              nn.modules.instancenorm._InstanceNorm, nn.LayerNorm, nn.MultiheadAttention)

def _head_dims_group(dg, block: nn.Module, names: dict) -> dict:
    """The group of a :func:`head_dims_block`: its head dimensions, the same ones in every head."""
    width = block.num_heads * block.head_dim
    p = np.arange(width, dtype=np.int64)
    qkv_idxs = np.concatenate([p, p + width, p + 2 * width])
    nodes = [(dg.module2node[block.qkv], "out", qkv_idxs, np.tile(p, 3)), (dg.module2node[block.proj], "in", p, p)]
    return {
        "channels": width,
        "channel_groups": block.num_heads,
        "leading": (names[block.qkv],),
        "consumers": (names[block.proj],),
        "members": (names[block.qkv], names[block.proj]),
        "ops": (PruneOp(names[block], HeadDims(), p, p, "out"),),
        "nodes": nodes,
        "scopes": (names[block],),
    }


def check_example_inputs(model: nn.Module, inputs: ExampleInputs) -> Any:
    """Run the model once on ``inputs``; a shape mismatch becomes an :class:`AutostructError`."""
    try:
        with torch.no_grad():
            return call_model(model, inputs)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise AutostructError(
            f"The model does not run on example inputs of shape {describe(inputs)}: {exc}. Pass inputs "
            "shaped like one batch of its data, e.g. torch.zeros(1, C, H, W) with the dataset's channels and size."
        ) from None


def _is_depthwise(module: nn.Module) -> bool:
    # Torch-Pruning's own test (ops.module2type): its depthwise pruner then cuts in, out and groups together.
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups == module.out_channels and module.out_channels > 1


def _unsupported(module: nn.Module, name: str) -> str | None:
    """Why the engine cannot cut ``module``'s channels (None: it can)."""
    if not isinstance(module, _SUPPORTED):
        return f"{type(module).__name__} '{name}' shares these channels and has no supported pruner"
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) != 1:
        # Torch-Pruning cuts the last normalized dimension, which is not the channel one here.
        return f"{type(module).__name__} '{name}' normalizes over {len(module.normalized_shape)} dimensions"
    if isinstance(module, nn.MultiheadAttention) and not module._qkv_same_embed_dim:
        return f"MultiheadAttention '{name}' has kdim/vdim different from embed_dim"
    return None


#: Graphs of the architectures analysed last in this process. ``analyze`` is a function of the architecture and
#: the input shape only (ops name modules, never hold them), and a run analyses its base model several times
#: (preflight, pricing, every env of the process, the report), each a trace and trial surgeries.
_GRAPHS: OrderedDict[tuple, PruningGraph] = OrderedDict()
_GRAPHS_KEPT = 16


def _architecture_key(model: nn.Module, inputs: Any, validate: bool) -> tuple | None:
    """What fixes ``analyze``'s result, or None when it cannot be told from the outside: models built by
    autostruct (zoo, factories, checkpoints) carry their builder's ``autostruct_spec``, and with every tensor's
    shape (a pruned copy of the same spec differs there) it fixes the forward; a model without one is traced."""
    spec = getattr(model, "autostruct_spec", None)
    if not spec:
        return None
    try:
        spec_key = json.dumps(spec, sort_keys=True)
    except (TypeError, ValueError):
        return None
    tensors = tuple((n, tuple(t.shape), str(t.dtype))
                    for n, t in itertools.chain(model.named_parameters(), model.named_buffers()))
    flat = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    if not all(isinstance(x, torch.Tensor) for x in flat):
        return None
    shapes = tuple((tuple(x.shape), str(x.dtype), str(x.device)) for x in flat)
    return type(model).__module__, type(model).__qualname__, spec_key, tensors, shapes, validate


def analyze(model: nn.Module, example_inputs: ExampleInputs, *, validate: bool = True) -> PruningGraph:
    """Trace ``model`` and return its pruning groups (forward order), FLOP model and skipped groups.

    ``example_inputs``: one batch shaped like the data (only the first example is used). The model is not
    changed: tracing runs on a deep copy. With ``validate`` a trial surgery (every group at about half) must
    keep the forward pass working; groups that break it are skipped with the error as reason. The FLOP model
    reproduces :func:`autostruct.measure.count_flops` at any kept channels: conv, linear and attention layers
    by their formulas, every other counted call (norms, activations, pooling, functional products) by its cost
    at full width and at the trial surgery, along the channels of the groups that flow through it.
    """
    if not isinstance(example_inputs, torch.Tensor | tuple | list):  # the dependency tracer takes positional inputs
        raise AutostructError(
            f"example_inputs must be a tensor or a tuple of tensors, got {type(example_inputs).__name__}. "
            "Pass e.g. torch.zeros(1, C, H, W)."
        )
    inputs = first_example(example_inputs)
    key = _architecture_key(model, inputs, validate)
    if key is not None and key in _GRAPHS:
        _GRAPHS.move_to_end(key)
        return _GRAPHS[key]
    result = _analyze(model, inputs, validate)
    if key is not None:
        _GRAPHS[key] = result
        while len(_GRAPHS) > _GRAPHS_KEPT:
            _GRAPHS.popitem(last=False)
    return result


def _analyze(model: nn.Module, inputs: Any, validate: bool) -> PruningGraph:
    work = copy.deepcopy(model).eval()
    for p in work.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        ref_out = check_example_inputs(work, inputs)
    names = {m: n for n, m in work.named_modules()}
    params = {p: n for n, p in work.named_parameters()}

    recorded: list[Any] = []
    outputs: list[Any] = []

    def forward_fn(m, x):
        out, rec = run_counted(m, x)
        recorded.append(rec.calls)
        outputs.extend(o for o in flatten_outputs(out) if isinstance(o, torch.Tensor))
        return out

    with torch.enable_grad():
        dg = tp.DependencyGraph().build_dependency(work, inputs, forward_fn=forward_fn, verbose=False)
    calls = recorded[-1]
    out_grad_fns = {o.grad_fn for o in outputs if o.grad_fn is not None}
    order: dict[str, int] = {}
    for c in calls:
        if c.module is not None:
            order.setdefault(c.name, len(order))

    groups, skipped = [], []
    blocks = {m.qkv: m for m in work.modules() if head_dims_block(m) and m.qkv in dg.module2node}
    for tp_group in dg.get_all_groups(root_module_types=(nn.modules.conv._ConvNd, nn.Linear)):
        root_module = tp_group[0].dep.target.module
        if root_module in blocks and tp_group[0].dep.handler == dg.get_pruner_of_module(root_module).prune_out_channels:
            groups.append(_head_dims_group(dg, blocks[root_module], names))
            continue
        built = _build_group(dg, tp_group, names, params, out_grad_fns)
        if isinstance(built, str):
            root = names.get(tp_group[0].dep.target.module, str(tp_group[0].dep.target.module))
            if built != "output":
                log.info("layer %s left unpruned: %s", root, built)
                skipped.append((root, built))
            continue
        built["root"] = (root_module, tp_group[0].dep.handler)
        groups.append(built)
    if not groups:
        raise AutostructError(
            f"{type(model).__name__} has no prunable channel group: every conv/linear output is tied to the "
            "model output or to a layer type that cannot be pruned"
            + (f" ({'; '.join(f'{n}: {r}' for n, r in skipped)})." if skipped else ".")
            + " Channel pruning needs at least one hidden conv or linear layer."
        )
    big = len(order) + 1
    for g in groups:
        g["leading"] = tuple(sorted(g["leading"], key=lambda n: order.get(n, big)))
    groups.sort(key=lambda g: min((order.get(n, big) for n in g["leading"] or g["members"]), default=big))

    base_flops = sum(c.cost for c in calls)
    provisional = _finish(groups, calls, None, skipped, base_flops, work, inputs)
    if validate and attempt_cut(model, provisional, trial_counts(provisional), inputs, ref_out)[0] is not None:
        groups = _untie(model, dg, groups, names, params, out_grad_fns, provisional, inputs, ref_out)
    if validate and any("scopes" in g for g in groups):
        # Head dimensions tied to the stream's width cut fine together with it at half, so test them alone.
        groups = _tie_heads(model, groups, lambda gs: _finish(gs, calls, None, skipped, base_flops, work, inputs),
                            inputs, ref_out)
    provisional = _finish(groups, calls, None, skipped, base_flops, work, inputs)
    keep, skipped, steps, trial = run_trial(model, provisional, inputs, ref_out, validate)
    for i, step in steps.items():
        groups[i]["channel_groups"] = step
    groups = [groups[i] for i in keep]
    flop_model = _flop_model(dg, calls, groups, names, trial)
    result = _finish(groups, calls, flop_model, skipped, base_flops, work, inputs)
    check_flop_model(model, result, inputs)
    return result


def _build_group(dg, tp_group, names: dict, params: dict, out_grad_fns: set, channels: int | None = None
                 ) -> dict | str:
    """Turn a Torch-Pruning group into our record, or a reason why it is left unpruned. ``names``/``params``:
    the names of the traced copy's modules and parameters. ``channels``: the number of independent channels
    when the items' root indices are not the root layer's channels."""
    root_module = tp_group[0].dep.target.module
    channels = dg.get_out_channels(root_module) if channels is None else channels
    ops_, leading, consumers, members, ch_groups = [], [], [], [], 1
    node_kinds: list[tuple[Any, str, np.ndarray, np.ndarray]] = []
    for item in tp_group:
        node = item.dep.target
        module = node.module
        idxs = np.asarray(item.idxs, dtype=np.int64)
        roots = np.asarray(item.root_idxs, dtype=np.int64)
        if node.type == ops.OPTYPE.OUTPUT:
            return "output"
        if isinstance(module, nn.Parameter):
            # A parameter of no prunable layer (class token, position embedding, layer scale): Torch-Pruning
            # traced which of its dimensions carries the channels (``pruning_dim``).
            where, dim = params.get(module), getattr(node, "pruning_dim", None)
            if where is None or dim is None or len(idxs) == 0 or int(idxs.max()) >= module.shape[dim]:
                return "an unwrapped nn.Parameter shares these channels"
            owner, _, attr = where.rpartition(".")
            ops_.append(PruneOp(owner, ParamCut(attr, int(dim)), idxs, roots, "io"))
            node_kinds.append((node, "io", idxs, roots))
            continue
        if module not in names:  # a traced op (add, cat, relu, flatten ...): nothing to cut, but channels flow through
            if node.type == ops.OPTYPE.CUSTOMIZED:
                return f"customized op {module!r}"
            if node.grad_fn in out_grad_fns:
                return "output"
            node_kinds.append((node, "io", idxs, roots))
            continue
        reason = _unsupported(module, names[module])
        if reason is not None:
            return reason
        pruner = dg.get_pruner_of_module(module)
        if pruner.prune_out_channels == pruner.prune_in_channels:
            kind = "io"
        elif item.dep.handler == pruner.prune_out_channels:
            kind = "out"
        else:
            kind = "in"
        if _is_depthwise(module):
            kind = "io"
        if kind != "in" and node.grad_fn in out_grad_fns:
            return "output"  # these channels are the model's output (the classifier)
        name = names[module]
        handler = item.dep.handler
        if kind != "in" and type(module) not in BASE_TYPES:
            extras = extra_tensors(module, pruner.get_out_channels(module))
            handler = WithExtras(handler, extras) if extras else handler
        ops_.append(PruneOp(name, handler, idxs, roots, kind))
        node_kinds.append((node, kind, idxs, roots))
        members.append(name)
        is_conv = isinstance(module, nn.modules.conv._ConvNd)
        if is_conv and module.groups > 1 and not _is_depthwise(module):
            ch_groups = math.lcm(ch_groups, module.groups)
        if isinstance(module, nn.GroupNorm):
            ch_groups = math.lcm(ch_groups, module.num_groups)
        if isinstance(module, nn.MultiheadAttention):
            # Torch-Pruning keeps embed_dim divisible by the heads; the same channels go in every head.
            ch_groups = math.lcm(ch_groups, module.num_heads)
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            if kind == "out" or (kind == "io" and not _is_depthwise(module)):
                leading.append(name)
            elif kind == "in":
                consumers.append(name)
    if channels is None or channels < 2:
        return "fewer than 2 channels"
    if channels % ch_groups:
        return f"{channels} channels do not split into {ch_groups} equal channel groups"
    return {
        "channels": int(channels),
        "channel_groups": int(ch_groups),
        "leading": tuple(dict.fromkeys(leading)),
        "consumers": tuple(dict.fromkeys(consumers)),
        "members": tuple(dict.fromkeys(members)),
        "ops": tuple(ops_),
        "nodes": node_kinds,
    }


def _flop_model(dg, calls: list, groups: list[dict], names: dict, trial: Trial | None) -> FlopModel:
    """FLOPs as a function of kept channels (see :class:`FlopModel`), call by counted call.

    Conv, linear and multi-head attention layers get their formula. Any other call costs an affine function of
    the size of the channel dimension that the groups flow through (one cost per element, or per contracted
    element); its slope comes from its cost in the ``trial`` surgery, where every group keeps about half.
    """
    n_groups = len(groups)
    # Per traced node and side: how many times each group's channels appear there.
    forms: dict[tuple[int, str], np.ndarray] = {}
    seen: set[tuple[int, str, int, bytes]] = set()
    for gi, g in enumerate(groups):
        for node, kind, idxs, _roots in g["nodes"]:
            mult = len(idxs) / g["channels"]
            for side in (("in", "out") if kind == "io" else (kind,)):
                mark = (id(node), side, gi, np.sort(idxs).tobytes())
                if mark in seen:  # the same slice reached twice (an io layer listed for both sides)
                    continue
                seen.add(mark)
                forms.setdefault((id(node), side), np.zeros(n_groups))[gi] += mult
    node_of_module = {m: n for m, n in dg.module2node.items() if m in names}
    node_of_grad_fn = {n.grad_fn: n for n in dg.module2node.values() if n.grad_fn is not None}

    zeros = np.zeros(n_groups)
    rows = {k: [] for k in ("in_const", "in_coef", "out_const", "out_coef", "p", "q", "r", "s")}
    nominal = np.asarray([g["channels"] for g in groups], dtype=np.float64)
    trial_calls = trial[1] if trial is not None else None
    if trial_calls is not None and [c.name for c in trial_calls] != [c.name for c in calls]:
        log.warning("the trial surgery changed which layers run; FLOPs of norms and activations are taken as fixed")
        trial_calls = None

    def add(in_c, in_coef, out_c, out_coef, p, q, r, s):
        # The forms hold multiplicities m; a count C(k) = C - m @ (N - k) = (C - m @ N) + m @ k.
        rows["in_const"].append(in_c - in_coef @ nominal)
        rows["in_coef"].append(in_coef)
        rows["out_const"].append(out_c - out_coef @ nominal)
        rows["out_coef"].append(out_coef)
        for k, v in zip("pqrs", (p, q, r, s), strict=True):
            rows[k].append(float(v))

    for i, c in enumerate(calls):
        m = c.module
        node = node_of_module.get(m) if m is not None else None
        node = node or node_of_grad_fn.get(c.out_grad_fn)
        f_in = forms.get((id(node), "in"), zeros) if node is not None else zeros
        f_out = forms.get((id(node), "out"), zeros) if node is not None else zeros
        if c.cost == 0:
            continue
        if c.kind == "conv":
            spatial = math.prod(c.out_shape[2:])
            kernel = math.prod(m.kernel_size)
            bias = spatial if m.bias is not None else 0
            if _is_depthwise(m):
                add(0, zeros, m.out_channels, f_out, 0, kernel * spatial + bias, 0, 0)
            else:
                add(m.in_channels, f_in, m.out_channels, f_out, kernel * spatial / m.groups, bias, 0, 0)
        elif c.kind == "linear" and m is not None:
            tokens = math.prod(c.in_shape) / m.in_features
            add(m.in_features, f_in, m.out_features, f_out, tokens, tokens if m.bias is not None else 0, 0, 0)
        elif c.kind == "mha" and m._qkv_same_embed_dim:
            n_q, n_k = c.meta
            e = m.embed_dim
            linear_e = 2 * n_q * n_k + ((n_q + 2 * n_k) if m.in_proj_bias is not None else 0)
            linear_e += n_q if m.out_proj.bias is not None else 0
            add(e, f_in, e, f_out, 2 * n_q + 2 * n_k, linear_e, 0, 0)
        else:
            d = f_out if np.any(f_out) else f_in
            if m is None and not np.any(d):
                # A product inside an attention block whose head dimensions are a group (HeadDims): its
                # width is that group's.
                for gi, g in enumerate(groups):
                    if any(c.scope == s or c.scope.startswith(s + ".") for s in g.get("scopes", ())):
                        d = np.eye(n_groups)[gi]
            full, at_trial = float(d @ nominal), float(d @ trial[0]) if trial_calls is not None else 0.0
            if trial_calls is None or not np.any(d) or full == at_trial:
                add(0, zeros, 0, zeros, 0, 0, 0, c.cost)
                continue
            slope = (c.cost - trial_calls[i].cost) / (full - at_trial)
            add(full, d, 0, zeros, 0, 0, slope, c.cost - slope * full)
    if not rows["p"]:
        add(0, zeros, 0, zeros, 0, 0, 0, 0)
    return FlopModel.from_lists(**{k: np.asarray(v) for k, v in rows.items()})


def _finish(groups, calls, flop_model, skipped, base_flops, work, inputs) -> PruningGraph:
    """The graph of ``groups``; without a ``flop_model`` (a provisional graph for the trial surgery) the
    per-group FLOPs are 0 and the FLOP model is a placeholder."""
    nominal = np.asarray([g["channels"] for g in groups], dtype=np.float64)
    modules = dict(work.named_modules())
    first_call = {}
    for c in calls:
        if c.module is not None:
            first_call.setdefault(c.name, c)
    out = []
    for gi, g in enumerate(groups):
        g_flops = 0.0
        if flop_model is not None:
            without = nominal.copy()
            without[gi] = 0
            g_flops = float(flop_model(nominal) - flop_model(without))
        lead = g["leading"][0] if g["leading"] else g["members"][0]
        module, call = modules[lead], first_call.get(lead)
        c_in, h, w, stride, kernel = 1, 1, 1, 1, 1
        if isinstance(module, nn.modules.conv._ConvNd):
            c_in, stride, kernel = module.in_channels, max(module.stride), max(module.kernel_size)
            if call is not None and len(call.in_shape) >= 4:
                h, w = call.in_shape[2], call.in_shape[3]
        elif isinstance(module, nn.Linear):
            c_in = module.in_features
        out.append(
            PrunableGroup(
                index=gi, name=lead, channels=g["channels"], channel_groups=g["channel_groups"],
                leading=g["leading"], consumers=g["consumers"], c_in=int(c_in), h=int(h), w=int(w),
                stride=int(stride), kernel=int(kernel), flops=int(round(g_flops)), ops=g["ops"],
            )
        )
    if flop_model is None:
        flop_model = FlopModel.from_lists(in_const=[0.0], in_coef=[[0.0] * len(groups)], out_const=[0.0],
                                          out_coef=[[0.0] * len(groups)], p=[0.0], q=[0.0], r=[0.0], s=[base_flops])
    got = flop_model.flops(nominal)
    if got != base_flops:  # a bug in the FLOP model, not a user error; the env reports measured FLOPs anyway
        log.warning("FLOP model gives %d for the unpruned model, the counter %d", got, base_flops)
    base_params = sum(p.numel() for p in work.parameters())
    shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else tuple(inputs[0].shape)
    return PruningGraph(tuple(out), tuple(skipped), flop_model, int(base_flops), int(base_params), shape)


@dataclass
class _Item:
    """A Torch-Pruning group item rebuilt from single-channel queries (``dep``, ``idxs``, ``root_idxs``)."""

    dep: Any
    idxs: list[int]
    root_idxs: list[int]


def _fails_alone(model, graph: PruningGraph, i: int, inputs, ref_out) -> bool:
    """Whether cutting group ``i`` alone to about half breaks the forward pass."""
    counts = graph.channels.copy()
    counts[i] = trial_counts(graph)[i]
    return attempt_cut(model, graph, counts, inputs, ref_out)[0] is not None


def _untie(model, dg, groups: list[dict], names, params, out_grad_fns, graph: PruningGraph, inputs, ref_out
           ) -> list[dict]:
    """Rebuild the groups whose half cut fails alone from single-channel queries of Torch-Pruning's graph.

    A whole-group query keeps one root index per position, so channels that one layer carries twice (a Ghost
    module's ``cat([y, dw(y)])``: output channels ``j`` and ``j + c`` both come from ``y``'s channel ``j``) look
    independent, and cutting one of them breaks the forward pass. Asking for each root channel alone shows which
    root channels go together; each such set becomes one channel of the rebuilt group. Attention head-dimension
    groups (:func:`_head_dims_group`) have no Torch-Pruning root to query; :func:`_tie_heads` handles those.
    """
    out = list(groups)
    for i, g in enumerate(groups):
        if "root" not in g or not _fails_alone(model, graph, i, inputs, ref_out):
            continue
        root, handler = g["root"]
        component: dict[int, int] = {}
        queries = []
        for r in range(int(dg.get_out_channels(root) or 0)):
            if r in component:
                continue
            sub = dg.get_pruning_group(root, handler, [r])
            for t in {int(j) for j in sub[0].idxs} | {r}:
                component.setdefault(t, len(queries))
            queries.append(sub)
        if len(queries) >= g["channels"] or len(queries) < 2:
            continue
        items: dict[tuple[int, Any], _Item] = {}
        for cid, sub in enumerate(queries):
            for item in sub:
                key = (id(item.dep.target), item.dep.handler)
                merged = items.setdefault(key, _Item(item.dep, [], []))
                fresh = [int(j) for j in item.idxs if int(j) not in merged.idxs]
                merged.idxs.extend(fresh)
                merged.root_idxs.extend([cid] * len(fresh))
        rebuilt = _build_group(dg, list(items.values()), names, params, out_grad_fns, channels=len(queries))
        if isinstance(rebuilt, dict):
            rebuilt["root"] = g["root"]
            rebuilt["leading"] = g["leading"]
            out[i] = rebuilt
    return out


def _tie_heads(model, groups: list[dict], provisional: Callable[[list[dict]], PruningGraph], inputs, ref_out
               ) -> list[dict]:
    """Merge attention head dimensions that cannot be cut alone into the group of the block's input channels.

    timm's attention ends with ``x.transpose(1, 2).reshape(B, N, C)``, ``C`` being its *input* width: its head
    dimensions then only shrink together with the residual stream it reads (and MobileViT's transformer width
    likewise). Such a block's head-dimension group, when its half cut fails alone, joins the group that holds
    its ``qkv`` input if that group has as many channels: position ``p`` of the merged group is stream channel
    ``p`` and head dimension ``p`` of every such block, and its channel multiple is a multiple of the heads, so
    every head keeps the same dimensions. A merge whose half cut still fails is dropped (the trial then skips
    the groups, with the reason).
    """
    graph = provisional(groups)
    heads_of: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        if "scopes" not in g or "root" in g or not _fails_alone(model, graph, i, inputs, ref_out):
            continue
        qkv = g["leading"][0]
        stream = next((j for j, s in enumerate(groups) if j != i and s["channels"] == g["channels"]
                       and any(op.module == qkv and op.kind == "in" for op in s["ops"])), None)
        if stream is not None:
            heads_of.setdefault(stream, []).append(i)
    if not heads_of:
        return groups
    out = list(groups)
    gone: set[int] = set()
    for j, heads in heads_of.items():
        merged = _merge([groups[j]] + [groups[i] for i in heads])
        trial = [merged if k == j else g for k, g in enumerate(out) if k not in heads]
        if not _fails_alone(model, provisional(trial), trial.index(merged), inputs, ref_out):
            out[j] = merged
            gone.update(heads)
    return [g for k, g in enumerate(out) if k not in gone]


def _merge(parts: list[dict]) -> dict:
    """One group cutting the same positions of every part (all of ``parts[0]``'s channel count)."""
    first = parts[0]
    merged = {
        "channels": first["channels"],
        "channel_groups": math.lcm(*(p["channel_groups"] for p in parts)),
        **{k: tuple(dict.fromkeys(x for p in parts for x in p[k])) for k in ("leading", "consumers", "members")},
        "ops": tuple(op for p in parts for op in p["ops"]),
        "nodes": [n for p in parts for n in p["nodes"]],
        "scopes": tuple(s for p in parts for s in p.get("scopes", ())),
    }
    if "root" in first:
        merged["root"] = first["root"]
    return merged


def prunable_groups(model: nn.Module, example_inputs: ExampleInputs) -> list[PrunableGroup]:
    """The independent channel decisions of ``model`` in forward order (see :func:`analyze`).

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    >>> [(g.name, g.channels) for g in prunable_groups(net, torch.zeros(1, 3, 8, 8))]
    [('0', 8)]
    """
    return list(analyze(model, example_inputs).groups)
