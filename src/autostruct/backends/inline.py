"""``inline``: every actor runs in the learner's process, one unroll per poll, in a fixed order.

Deterministic for a given seed (no threads, no timing dependence): use it for tests and debugging.
"""

from __future__ import annotations

import traceback

import torch

from autostruct.backends.base import ActorFailure, Message
from autostruct.rl.actor import Actor, ActorSpec


class InlineBackend:
    name = "inline"

    def __init__(self) -> None:
        self.specs: list[ActorSpec] = []
        self.actors: list[Actor | None] = []
        self.generations: list[int] = []
        self._weights: dict[str, torch.Tensor] = {}
        self._version = -1
        self._next = 0
        self._failures: list[ActorFailure] = []

    def start(self, specs: list[ActorSpec], weights: dict[str, torch.Tensor], version: int) -> None:
        self.specs = list(specs)
        self.generations = [0] * len(specs)
        self.publish(weights, version)
        self.actors = [self._build(i) for i in range(len(specs))]

    def _build(self, i: int) -> Actor | None:
        try:
            return Actor(self.specs[i], self.generations[i])
        except Exception:
            self._failures.append(ActorFailure(i, self.generations[i], traceback.format_exc()))
            return None

    def publish(self, weights: dict[str, torch.Tensor], version: int) -> None:
        # Copy: the learner keeps updating its tensors in place.
        self._weights = {k: v.detach().clone() for k, v in weights.items()}
        self._version = version

    def poll(self, timeout: float) -> list[Message]:
        if self._failures:
            failures, self._failures = self._failures, []
            return list(failures)
        live = [i for i, a in enumerate(self.actors) if a is not None]
        if not live:
            return []
        i = next(j for j in [*range(self._next, len(self.actors)), *range(self._next)] if self.actors[j] is not None)
        self._next = (i + 1) % len(self.actors)
        actor = self.actors[i]
        assert actor is not None
        try:
            if actor.version != self._version:
                actor.set_weights(self._weights, self._version)
            return [actor.unroll()]
        except Exception:
            self.actors[i] = None
            return [ActorFailure(i, self.generations[i], traceback.format_exc())]

    def restart(self, actor_id: int) -> None:
        self.generations[actor_id] += 1
        self.actors[actor_id] = self._build(actor_id)

    def close(self) -> None:
        self.actors = []
