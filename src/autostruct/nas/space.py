"""Search spaces as data, and architectures as lists of categorical choices.

A :class:`SearchSpace` is a stem convolution, a list of stages of inverted-residual (MBConv) blocks and a head.
Each stage offers a set of depths and, per block, a set of depthwise kernel sizes and expand ratios (the
Once-for-All space: depth {2, 3, 4}, kernel {3, 5, 7}, expand {3, 4, 6}). Nothing else in ``autostruct.nas``
knows the default numbers: a user describes another space as a mapping (see :meth:`SearchSpace.from_dict`)
and the supernet, costs, environment and search follow.

Decisions are ordered stage by stage: the stage's depth first, then kernel and expand of each of its blocks::

    stage1.depth, stage1.block1.kernel, stage1.block1.expand, ..., stage1.block4.expand, stage2.depth, ...

**Skipped blocks.** Blocks beyond a stage's chosen depth do not exist in the network. Their kernel/expand
decisions are *masked*: :meth:`SearchSpace.action_mask` allows only choice 0 for them, so a policy spends no
probability mass (and no entropy) there, and :class:`Architecture` canonicalizes them to 0. Two index lists that
differ only in skipped blocks are therefore the same architecture.

>>> space = mobilenetv2_space(image_size=28)
>>> space.num_decisions, space.num_architectures() > 10**6
(36, True)
>>> arch = space.largest()
>>> arch.to_json()["stages"][0]
{'depth': 4, 'blocks': [{'kernel': 7, 'expand': 6}, {'kernel': 7, 'expand': 6}, {'kernel': 7, 'expand': 6}, {'kernel': 7, 'expand': 6}]}
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from autostruct.errors import AutostructError, unknown_name

DecisionKind = Literal["width", "depth", "kernel", "expand"]


@dataclass(frozen=True)
class Decision:
    """One categorical decision of a space: its readable ``name``, the values it chooses between, and where."""

    name: str
    choices: tuple[int, ...]
    kind: DecisionKind
    stage: int
    #: Block index inside the stage (0-based) for kernel/expand decisions, -1 for a stage's width and depth.
    block: int = -1


@dataclass(frozen=True)
class StageSpec:
    """A stage of MBConv blocks: output ``channels``, ``stride`` of its first block, and the choices it offers.

    ``widths`` are fractions of ``channels``; a stage with more than one offers a width decision whose choices
    are the channel counts themselves (:attr:`channel_choices`, multiples of 4), so what a policy picks and
    what the network builds are the same numbers.
    """

    channels: int
    stride: int = 1
    depths: tuple[int, ...] = (2, 3, 4)
    kernels: tuple[int, ...] = (3, 5, 7)
    expands: tuple[int, ...] = (3, 4, 6)
    widths: tuple[float, ...] = (1.0,)

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    @property
    def channel_choices(self) -> tuple[int, ...]:
        """Output channels of each width choice (``channels`` itself for width 1.0)."""
        return tuple(self.channels if w == 1.0 else make_divisible(self.channels * w, 4) for w in self.widths)

    @property
    def elastic_width(self) -> bool:
        return len(self.widths) > 1

    @property
    def max_channels(self) -> int:
        return max(self.channel_choices)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (at least ``divisor``), never dropping >10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class SearchSpace:
    """A MobileNetV2-style space: stem conv -> stages of elastic MBConv blocks -> 1x1 head conv -> pool -> linear.

    Spaces are plain data (``to_dict``/``from_dict`` round-trip through JSON), so a checkpoint can rebuild the
    exact network and a user can define a space in YAML. Invalid spaces raise :class:`AutostructError`.
    """

    name: str
    stages: tuple[StageSpec, ...]
    stem_channels: int = 16
    stem_stride: int = 1
    head_channels: int = 256
    _decisions: tuple[Decision, ...] = field(init=False, repr=False, compare=False)
    # Per stage, the index of its depth decision: is_active runs for every decision of every masked step.
    _depth_at: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"search space '{self.name}'"
        if not self.stages:
            raise AutostructError(f"{where} has no stages. Give at least one stage, e.g. {{channels: 24, stride: 2}}.")
        for what, value in (("stem_channels", self.stem_channels), ("head_channels", self.head_channels)):
            if not isinstance(value, int) or value < 1:
                raise AutostructError(f"{where}: {what} must be a positive integer, got {value!r}.")
        if self.stem_stride not in (1, 2):
            raise AutostructError(f"{where}: stem_stride must be 1 or 2, got {self.stem_stride!r}.")
        for i, st in enumerate(self.stages):
            at = f"{where}, stage {i + 1}"
            if not isinstance(st.channels, int) or st.channels < 1:
                raise AutostructError(f"{at}: channels must be a positive integer, got {st.channels!r}.")
            if st.stride not in (1, 2):
                raise AutostructError(f"{at}: stride must be 1 or 2, got {st.stride!r}.")
            for what, values, ok, rule in (
                ("depths", st.depths, lambda v: v >= 1, "integers >= 1"),
                ("kernels", st.kernels, lambda v: v >= 1 and v % 2 == 1, "odd integers such as 3, 5, 7"),
                ("expands", st.expands, lambda v: v >= 1, "integers >= 1"),
            ):
                if len(values) == 0:
                    raise AutostructError(f"{at}: {what} is empty; give at least one choice ({rule}).")
                if len(set(values)) != len(values):
                    raise AutostructError(f"{at}: {what} {list(values)} has repeated choices.")
                bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or not ok(v)]
                if bad:
                    raise AutostructError(f"{at}: {what} must be {rule}; got {bad}.")
            bad_w = [w for w in st.widths if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 1]
            if not st.widths or bad_w:
                raise AutostructError(f"{at}: widths must be fractions in (0, 1] of channels, e.g. [0.5, 0.75, 1.0]; "
                                      f"got {list(st.widths)}.")
            if len(set(st.channel_choices)) != len(st.widths):
                raise AutostructError(f"{at}: widths {list(st.widths)} of {st.channels} channels give repeated channel "
                                      f"counts {list(st.channel_choices)}; use fewer or more distinct widths.")
        object.__setattr__(self, "_decisions", self._build_decisions())
        object.__setattr__(self, "_depth_at", tuple(i for i, d in enumerate(self._decisions) if d.kind == "depth"))

    def _build_decisions(self) -> tuple[Decision, ...]:
        out: list[Decision] = []
        for s, st in enumerate(self.stages):
            if st.elastic_width:
                out.append(Decision(f"stage{s + 1}.width", st.channel_choices, "width", s))
            out.append(Decision(f"stage{s + 1}.depth", tuple(st.depths), "depth", s))
            for b in range(st.max_depth):
                out.append(Decision(f"stage{s + 1}.block{b + 1}.kernel", tuple(st.kernels), "kernel", s, b))
                out.append(Decision(f"stage{s + 1}.block{b + 1}.expand", tuple(st.expands), "expand", s, b))
        return tuple(out)

    # ------------------------------------------------------------------ structure
    @property
    def decisions(self) -> tuple[Decision, ...]:
        """All decisions, in the order an episode takes them."""
        return self._decisions

    @property
    def num_decisions(self) -> int:
        return len(self._decisions)

    @property
    def choice_counts(self) -> tuple[int, ...]:
        """Number of options per decision (what ``CategoricalSpec.choices`` takes)."""
        return tuple(len(d.choices) for d in self._decisions)

    @property
    def max_choices(self) -> int:
        return max(self.choice_counts)

    def num_architectures(self) -> int:
        """Number of distinct networks (skipped blocks counted once)."""
        total = 1
        for st in self.stages:
            per_block = len(st.kernels) * len(st.expands)
            total *= len(st.widths) * sum(per_block**d for d in st.depths)
        return total

    def scaled(self, width: float) -> SearchSpace:
        """The same space with every channel count multiplied by ``width`` (rounded to multiples of 8)."""
        if width == 1.0:
            return self
        if width <= 0:
            raise AutostructError(f"width must be > 0, got {width}.")
        return SearchSpace(
            name=self.name,
            stages=tuple(
                StageSpec(make_divisible(st.channels * width), st.stride, st.depths, st.kernels, st.expands, st.widths)
                for st in self.stages
            ),
            stem_channels=make_divisible(self.stem_channels * width),
            stem_stride=self.stem_stride,
            head_channels=make_divisible(self.head_channels * width),
        )

    # ------------------------------------------------------------------ masks and sampling
    def is_active(self, step: int, prefix: Sequence[int]) -> bool:
        """Whether decision ``step`` matters given the earlier choices ``prefix`` (False for skipped blocks)."""
        d = self._decisions[step]
        if d.kind in ("depth", "width"):
            return True
        depth_pos = self._depth_at[d.stage]
        depth = self._decisions[depth_pos].choices[prefix[depth_pos]]
        return d.block < depth

    def action_mask(self, prefix: Sequence[int]) -> np.ndarray:
        """Allowed options for the next decision (index ``len(prefix)``), over ``max_choices`` entries.

        Options beyond the decision's own count are always False; a skipped block allows only option 0.
        """
        step = len(prefix)
        if step >= self.num_decisions:
            raise AutostructError(f"All {self.num_decisions} decisions are taken; there is no next decision to mask.")
        mask = np.zeros(self.max_choices, dtype=bool)
        if self.is_active(step, prefix):
            mask[: len(self._decisions[step].choices)] = True
        else:
            mask[0] = True
        return mask

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture: depth per stage uniform, then each active block's choices uniform."""
        indices: list[int] = []
        for step, d in enumerate(self._decisions):
            indices.append(int(rng.integers(len(d.choices))) if self.is_active(step, indices) else 0)
        return Architecture(self, tuple(indices))

    def _extreme(self, pick: Callable[[Sequence[int]], int]) -> Architecture:
        return Architecture(self, tuple(d.choices.index(pick(d.choices)) for d in self._decisions))

    def largest(self) -> Architecture:
        """Widest and deepest stages, largest kernels and expand ratios (the most FLOPs)."""
        return self._extreme(max)

    def smallest(self) -> Architecture:
        """Narrowest and shallowest stages, smallest kernels and expand ratios (the fewest FLOPs)."""
        return self._extreme(min)

    def arch(self, indices: Sequence[int]) -> Architecture:
        """Validate a list of choice indices and return the (canonical) :class:`Architecture`."""
        return Architecture(self, tuple(indices))

    # ------------------------------------------------------------------ data
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stem_channels": self.stem_channels,
            "stem_stride": self.stem_stride,
            "head_channels": self.head_channels,
            "stages": [
                {
                    "channels": st.channels,
                    "stride": st.stride,
                    "depths": list(st.depths),
                    "kernels": list(st.kernels),
                    "expands": list(st.expands),
                    # Only written when elastic, so the mapping (and every cache key hashed from it) of a
                    # fixed-width space reads as it always has.
                    **({"widths": list(st.widths)} if st.elastic_width else {}),
                }
                for st in self.stages
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Build a space from a mapping such as::

            {name: tiny, stem_channels: 8, head_channels: 64,
             stages: [{channels: 16, stride: 2, depths: [1, 2], kernels: [3, 5], expands: [2, 4]}]}
        """
        if not isinstance(data, Mapping):
            raise AutostructError(f"A search space must be a mapping or a name, got {type(data).__name__}.")
        known = {"name", "stages", "stem_channels", "stem_stride", "head_channels"}
        extra = set(data) - known
        if extra:
            raise AutostructError(
                f"Unknown key(s) {sorted(extra)} in search space. Valid keys: {sorted(known)}; "
                "stage keys: channels, stride, depths, kernels, expands, widths."
            )
        stages_in = data.get("stages")
        if not isinstance(stages_in, Sequence) or isinstance(stages_in, str):
            raise AutostructError(
                "Search space needs 'stages', a list of {channels, stride, depths, kernels, expands, widths}."
            )
        stages = []
        stage_keys = {"channels", "stride", "depths", "kernels", "expands", "widths"}
        for i, st in enumerate(stages_in):
            if not isinstance(st, Mapping) or "channels" not in st:
                raise AutostructError(f"Search space stage {i + 1} must be a mapping with at least 'channels'.")
            extra = set(st) - stage_keys
            if extra:
                raise AutostructError(f"Unknown key(s) {sorted(extra)} in stage {i + 1}. Valid: {sorted(stage_keys)}.")
            kw = {k: tuple(v) if k in ("depths", "kernels", "expands", "widths") else v for k, v in st.items()}
            stages.append(StageSpec(**kw))
        kwargs = {k: data[k] for k in ("stem_channels", "stem_stride", "head_channels") if k in data}
        return cls(name=str(data.get("name", "custom")), stages=tuple(stages), **kwargs)


@dataclass(frozen=True)
class BlockChoice:
    """The resolved settings of one active MBConv block."""

    stage: int
    block: int
    in_channels: int
    out_channels: int
    stride: int
    kernel: int
    expand: int


@dataclass(frozen=True)
class Architecture:
    """One network of a space: a choice index per decision (skipped blocks canonicalized to 0).

    ``to_json`` gives the readable form (depth, kernel and expand per stage) plus the raw indices;
    :meth:`from_json` accepts either form, or a bare list of indices.
    """

    space: SearchSpace = field(repr=False)
    indices: tuple[int, ...]

    def __post_init__(self) -> None:
        space, idx = self.space, self.indices
        if len(idx) != space.num_decisions:
            raise AutostructError(
                f"An architecture of space '{space.name}' has {space.num_decisions} choice indices, got {len(idx)}."
            )
        canon: list[int] = []
        for step, (i, d) in enumerate(zip(idx, space.decisions, strict=True)):
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < len(d.choices):
                raise AutostructError(
                    f"Choice {step} ('{d.name}') must be an index in [0, {len(d.choices) - 1}] "
                    f"(choices {list(d.choices)}), got {i!r}."
                )
            canon.append(int(i) if space.is_active(step, canon) else 0)
        object.__setattr__(self, "indices", tuple(canon))

    # ------------------------------------------------------------------ views
    def values(self) -> dict[str, int]:
        """Decision name -> chosen value, for active decisions only."""
        out = {}
        for step, (i, d) in enumerate(zip(self.indices, self.space.decisions, strict=True)):
            if self.space.is_active(step, self.indices):
                out[d.name] = d.choices[i]
        return out

    def depths(self) -> list[int]:
        return [d.choices[i] for i, d in zip(self.indices, self.space.decisions, strict=True) if d.kind == "depth"]

    def widths(self) -> list[int]:
        """Output channels of each stage (the chosen width, or the stage's fixed channels)."""
        vals = self.values()
        return [vals.get(f"stage{s + 1}.width", st.channels) for s, st in enumerate(self.space.stages)]

    @property
    def head_in_channels(self) -> int:
        return self.widths()[-1]

    def blocks(self) -> list[BlockChoice]:
        """Active blocks in network order, with their channels and strides resolved."""
        vals = self.values()
        out = []
        in_ch = self.space.stem_channels
        for s, (st, width) in enumerate(zip(self.space.stages, self.widths(), strict=True)):
            depth = vals[f"stage{s + 1}.depth"]
            for b in range(depth):
                out.append(
                    BlockChoice(
                        stage=s,
                        block=b,
                        in_channels=in_ch,
                        out_channels=width,
                        stride=st.stride if b == 0 else 1,
                        kernel=vals[f"stage{s + 1}.block{b + 1}.kernel"],
                        expand=vals[f"stage{s + 1}.block{b + 1}.expand"],
                    )
                )
                in_ch = width
        return out

    def __str__(self) -> str:
        parts, blocks, widths = [], self.blocks(), self.widths()
        for s, st in enumerate(self.space.stages):
            inner = ",".join(f"k{b.kernel}e{b.expand}" for b in blocks if b.stage == s)
            parts.append(f"{'c' + str(widths[s]) if st.elastic_width else ''}[{inner}]")
        return "".join(parts)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        blocks, widths = self.blocks(), self.widths()
        return {
            "space": self.space.name,
            "indices": list(self.indices),
            "stages": [
                {
                    **({"width": widths[s]} if st.elastic_width else {}),
                    "depth": sum(1 for b in blocks if b.stage == s),
                    "blocks": [{"kernel": b.kernel, "expand": b.expand} for b in blocks if b.stage == s],
                }
                for s, st in enumerate(self.space.stages)
            ],
        }

    @classmethod
    def from_json(cls, space: SearchSpace, data: Any) -> Architecture:
        """Parse ``[i0, i1, ...]``, ``{"indices": [...]}`` or the readable ``{"stages": [{depth, blocks}]}``."""
        if isinstance(data, Mapping) and "indices" in data:
            return cls(space, tuple(data["indices"]))
        if isinstance(data, Mapping) and "stages" in data:
            return cls._from_stages(space, data["stages"])
        if isinstance(data, Sequence) and not isinstance(data, str):
            return cls(space, tuple(data))
        raise AutostructError(
            "An architecture must be a list of choice indices, {'indices': [...]}, or "
            "{'stages': [{'depth': d, 'blocks': [{'kernel': k, 'expand': e}, ...]}, ...]}; "
            f"got {type(data).__name__}."
        )

    @classmethod
    def _from_stages(cls, space: SearchSpace, stages: Any) -> Architecture:
        if not isinstance(stages, Sequence) or len(stages) != len(space.stages):
            n = len(stages) if isinstance(stages, Sequence) else type(stages).__name__
            raise AutostructError(f"Space '{space.name}' has {len(space.stages)} stages; the architecture lists {n}.")

        def index(value: Any, choices: tuple[int, ...], where: str) -> int:
            if value not in choices:
                raise AutostructError(f"{where}: {value!r} is not one of {list(choices)}.")
            return choices.index(value)

        indices: list[int] = []
        for s, (st, entry) in enumerate(zip(space.stages, stages, strict=True)):
            where = f"stages[{s}]"
            if not isinstance(entry, Mapping) or "blocks" not in entry:
                raise AutostructError(f"{where} must be a mapping with 'blocks' (and optionally 'depth').")
            blocks = entry["blocks"]
            if st.elastic_width:
                indices.append(index(entry.get("width", st.max_channels), st.channel_choices, f"{where}.width"))
            depth = entry.get("depth", len(blocks))
            indices.append(index(depth, st.depths, f"{where}.depth"))
            if len(blocks) != depth:
                raise AutostructError(f"{where}: depth is {depth} but {len(blocks)} blocks are listed.")
            for b in range(st.max_depth):
                if b < depth:
                    blk = blocks[b]
                    if not isinstance(blk, Mapping) or not {"kernel", "expand"} <= set(blk):
                        raise AutostructError(f"{where}.blocks[{b}] must be a mapping with 'kernel' and 'expand'.")
                    indices.append(index(blk["kernel"], st.kernels, f"{where}.blocks[{b}].kernel"))
                    indices.append(index(blk["expand"], st.expands, f"{where}.blocks[{b}].expand"))
                else:
                    indices.extend((0, 0))
        return cls(space, tuple(indices))


# ---------------------------------------------------------------------- named spaces


def mobilenetv2_space(image_size: int = 32) -> SearchSpace:
    """The default OFA-like MobileNetV2 space, adapted to the input size.

    Four searchable stages (24, 40, 80, 96 channels; depth {2, 3, 4}; kernel {3, 5, 7}; expand {3, 4, 6}),
    a 16-channel 3x3 stem and a 256-channel head: 7371^4 ~ 3e15 architectures. Small inputs (<= 64 px, e.g.
    8x8 digits, 28x28 Fashion-MNIST, 32x32 CIFAR) keep the stem at stride 1, so the stages see 28 -> 14 -> 7 -> 4;
    larger inputs downsample in the stem and the last stage too.
    """
    large = image_size > 64
    return SearchSpace(
        name="mobilenetv2",
        stem_channels=16,
        stem_stride=2 if large else 1,
        head_channels=256,
        stages=(
            StageSpec(24, 2),
            StageSpec(40, 2),
            StageSpec(80, 2),
            StageSpec(96, 2 if large else 1),
        ),
    )


def mobilenetv2_elastic_space(image_size: int = 32) -> SearchSpace:
    """The MobileNetV2 space with elastic stage widths, sized so that its choices change accuracy and cost.

    Per stage: width {0.5, 0.75, 1.0} of (16, 32, 48, 64) channels, depth {1, 2, 3}, expand {3, 4, 6}, and
    depthwise kernels from {3, 5, 7} no larger than the stage's output feature map (3 is always offered). The
    stem downsamples inputs of 24 px and more, so on 28x28 the stages see 14, 7, 4, 4: the last two stages
    choose only 3x3 (a 7x7 kernel on a 4x4 map would only spend FLOPs), and the architectures span
    ~0.6-11 MFLOPs (>10x), cheap enough to train stand-alone on one CPU core. 8x8 digits keep the stem at
    stride 1; inputs over 64 px also downsample in the first and last stage.
    """
    large = image_size > 64
    stem_stride = 2 if image_size >= 24 else 1
    strides = (2, 2, 2, 2) if large else (1, 2, 2, 1)
    size = math.ceil(image_size / stem_stride)
    stages = []
    for channels, stride in zip((16, 32, 48, 64), strides, strict=True):
        size = math.ceil(size / stride)
        kernels = tuple(k for k in (3, 5, 7) if k <= max(size, 3))
        stages.append(StageSpec(channels, stride, depths=(1, 2, 3), kernels=kernels, expands=(3, 4, 6),
                                widths=(0.5, 0.75, 1.0)))
    return SearchSpace(name="mobilenetv2-elastic", stem_channels=16, stem_stride=stem_stride, head_channels=128,
                       stages=tuple(stages))


SPACES: dict[str, Callable[[int], SearchSpace]] = {
    "mobilenetv2": mobilenetv2_space,
    "mobilenetv2-elastic": mobilenetv2_elastic_space,
}


def list_spaces() -> list[str]:
    return sorted(SPACES)


@functools.lru_cache(maxsize=64)
def _named_space(name: str, image_size: int) -> SearchSpace:
    return SPACES[name](image_size)


def get_space(spec: str | Mapping[str, Any] | SearchSpace, image_size: int = 32) -> SearchSpace:
    """Resolve a space given by name (adapted to ``image_size``), by a mapping (see :meth:`SearchSpace.from_dict`)."""
    if isinstance(spec, SearchSpace):
        return spec
    if isinstance(spec, str):
        if spec not in SPACES:
            raise unknown_name("search space", spec, SPACES)
        return _named_space(spec, int(image_size))
    return SearchSpace.from_dict(spec)


def feature_sizes(space: SearchSpace, image_size: int) -> list[int]:
    """Spatial size after the stem and after each stage (convs with padding k//2: out = ceil(in / stride))."""
    size = math.ceil(image_size / space.stem_stride)
    out = [size]
    for st in space.stages:
        size = math.ceil(size / st.stride)
        out.append(size)
    return out
