"""``ray``: the same :class:`~autostruct.rl.actor.Actor` as Ray actors (``pip install 'autostruct[ray]'``).

``address=None`` starts a private local Ray (shut down again by :meth:`RayBackend.close`); ``"auto"`` or
``"ray://host:port"`` joins a running cluster. Ray is imported only here, so the package works without it.

Each actor keeps two ``unroll`` calls queued, so it never idles while a result travels back. Weights are
put in the object store once per version, only when an actor is handed new work.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from pathlib import Path
from typing import Any

import torch

from autostruct.backends.base import ActorFailure, Message
from autostruct.errors import AutostructError
from autostruct.rl.actor import Actor, ActorSpec
from autostruct.rl.trajectory import Trajectory

_IN_FLIGHT = 2


class RayActorWorker:
    """Holds an :class:`Actor`; the Ray wrapper is applied at start (``ray.remote`` needs ray imported)."""

    def __init__(self, spec: ActorSpec, generation: int) -> None:
        torch.set_num_threads(spec.threads)
        self.actor = Actor(spec, generation)

    def unroll(self, weights: dict[str, torch.Tensor], version: int) -> Trajectory:
        if version != self.actor.version:
            self.actor.set_weights(weights, version)
        return self.actor.unroll()


def package_pythonpath() -> str:
    """PYTHONPATH for local Ray workers: the folder autostruct is imported from (works from a source checkout)."""
    root = str(Path(__file__).resolve().parents[2])  # src/autostruct/backends/ray_backend.py -> src
    rest = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([root, rest]) if rest else root


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AutostructError(
            "backend 'ray' needs Ray: pip install 'autostruct[ray]' (or choose backend 'local')."
        ) from None
    return ray


class RayBackend:
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.owns_ray = False
        self.handles: list[Any] = []
        self.pending: dict[Any, int] = {}  # object ref -> actor id
        self.generations: list[int] = []
        self.failed: list[bool] = []

    def start(self, specs: list[ActorSpec], weights: dict[str, torch.Tensor], version: int) -> None:
        ray = self.ray = import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if self.address is None:
                kwargs["num_cpus"] = self.num_cpus or max(len(specs), os.cpu_count() or 1)
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": package_pythonpath()}}
            ray.init(address=self.address, **kwargs)
            self.owns_ray = True
        self.remote_cls = ray.remote(num_cpus=1, max_restarts=0)(RayActorWorker)
        self.specs = list(specs)
        self.generations = [0] * len(specs)
        self.failed = [False] * len(specs)
        self.publish(weights, version)
        self.handles = [None] * len(specs)
        for i in range(len(specs)):
            self._create(i)

    def _create(self, i: int) -> None:
        self.handles[i] = self.remote_cls.remote(self.specs[i], self.generations[i])
        for _ in range(_IN_FLIGHT):
            self._submit(i, self.handles[i])

    def _submit(self, i: int, handle: Any) -> None:
        if self._weights_ref is None:
            self._weights_ref = self.ray.put(self._weights)
        ref = handle.unroll.remote(self._weights_ref, self._version)
        self.pending[ref] = i

    def publish(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self._weights = {k: v.detach().clone() for k, v in weights.items()}
        self._version = version
        self._weights_ref = None  # put lazily, once, when the next call is submitted

    def poll(self, timeout: float) -> list[Message]:
        if not self.pending:
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if ready:
            more, _ = self.ray.wait([r for r in self.pending if r not in ready], num_returns=len(self.pending) - 1,
                                    timeout=0) if len(self.pending) > 1 else ([], [])
            ready = ready + more
        out: list[Message] = []
        for ref in ready:
            i = self.pending.pop(ref)
            try:
                traj = self.ray.get(ref)
            except Exception:
                if not self.failed[i]:
                    self.failed[i] = True
                    out.append(ActorFailure(i, self.generations[i], traceback.format_exc()))
                continue
            out.append(traj)
            if not self.failed[i] and traj.generation == self.generations[i]:
                self._submit(i, self.handles[i])
        return out

    def restart(self, actor_id: int) -> None:
        for ref in [r for r, i in self.pending.items() if i == actor_id]:
            del self.pending[ref]
        self.ray.kill(self.handles[actor_id], no_restart=True)
        self.generations[actor_id] += 1
        self.failed[actor_id] = False
        self._create(actor_id)

    def close(self) -> None:
        if not self.handles:
            return
        for h in self.handles:
            with contextlib.suppress(Exception):  # already dead
                self.ray.kill(h, no_restart=True)
        self.handles = []
        self.pending = {}
        if self.owns_ray:
            self.ray.shutdown()
