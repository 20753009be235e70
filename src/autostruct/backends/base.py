"""The one interface every backend implements: start actors, publish weights, collect trajectories.

The learner (``autostruct.rl.impala``) drives a backend like this::

    backend.start(actor_specs, weights, version=0)
    while ...:
        for msg in backend.poll(timeout=0.05):   # never blocks longer than timeout
            ...                                  # Trajectory or ActorFailure
        backend.publish(weights, version)
    backend.close()

A failed actor stays down until the learner calls :meth:`Backend.restart` (the retry budget lives there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from autostruct.rl.actor import ActorSpec
from autostruct.rl.trajectory import Trajectory


@dataclass
class ActorFailure:
    """An actor raised (or its process died); ``error`` is the formatted traceback or exit reason."""

    actor_id: int
    generation: int
    error: str


Message = Trajectory | ActorFailure


class Backend(Protocol):
    name: str

    def start(self, specs: list[ActorSpec], weights: dict[str, torch.Tensor], version: int) -> None:
        """Start one actor per spec with the given initial weights."""
        ...

    def publish(self, weights: dict[str, torch.Tensor], version: int) -> None:
        """Make ``weights`` (learner version ``version``) the ones actors use from their next unroll on."""
        ...

    def poll(self, timeout: float) -> list[Message]:
        """Whatever arrived within ``timeout`` seconds (possibly nothing); never waits on one slow actor."""
        ...

    def restart(self, actor_id: int) -> None:
        """Replace a failed actor with a fresh one (next generation, fresh seeds, current weights)."""
        ...

    def close(self) -> None:
        """Stop every actor; unfinished unrolls are dropped."""
        ...
