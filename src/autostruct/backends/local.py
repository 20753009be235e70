"""``local`` (the default): one spawned process per actor; the learner stays in the calling process.

Weights travel through shared memory guarded by a sequence counter (a seqlock, no lock that a killed process
could leave held): the learner makes the counter odd, copies the new weights into one set of shared tensors,
then sets it to ``2 * version``; between unrolls an actor whose version is stale copies the tensors and keeps
the copy only if the counter was even and unchanged around it. Trajectories come back through a bounded queue that the learner reads with a timeout, so a
slow actor only delays its own unrolls, and a full queue pauses the actors instead of growing without end.
Actors ignore SIGINT (the learner decides when to stop) and exit on their own when the learner's process
is gone (e.g. after SIGKILL), so no orphan keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as queue_mod
import signal
import sys
import time
import traceback
from typing import Any

import torch
import torch.multiprocessing as tmp

from autostruct.backends.base import ActorFailure, Message
from autostruct.rl.actor import Actor, ActorSpec
from autostruct.utils.memory import release_free_memory

#: How often a blocked actor re-checks the stop flag and whether its parent is still alive.
_CHECK_S = 0.5


def _orphaned(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


def _sync_weights(actor: Actor, shared: dict[str, torch.Tensor], seq: Any) -> None:
    """Load the published weights if they are newer; retry while the learner is writing them."""
    while True:
        s1 = seq.value
        if s1 % 2 == 0 and s1 // 2 == actor.version:
            return
        if s1 % 2 == 1:  # the learner is mid-copy (a few ms at most)
            time.sleep(0.001)
            continue
        actor.set_weights(shared, s1 // 2)
        if seq.value == s1:
            return
        actor.version = -1  # torn read: the weights changed under us, load again


def actor_process_main(
    spec: ActorSpec,
    generation: int,
    shared: dict[str, torch.Tensor],
    seq: Any,
    out: Any,
    stop: Any,
    parent_pid: int,
) -> None:
    """Body of one actor process: refresh weights, unroll, send; until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(spec.threads)
    # autostruct's searches load every dataset in the learner's process before starting actors, and that process
    # reports what the loads have to say (e.g. a clamped val_size); each actor's repeat would only print it again.
    logging.getLogger("autostruct.data").setLevel(logging.ERROR)
    code = 0
    try:
        actor = Actor(spec, generation)
        while not stop.is_set() and not _orphaned(parent_pid):
            _sync_weights(actor, shared, seq)
            traj = actor.unroll()
            release_free_memory()  # an episode's activations would otherwise stay in this process's heap
            while not stop.is_set() and not _orphaned(parent_pid):
                try:
                    out.put(traj, timeout=_CHECK_S)
                    break
                except queue_mod.Full:
                    pass
    except BaseException:
        code = 1
        with contextlib.suppress(Exception):
            out.put(ActorFailure(spec.actor_id, generation, traceback.format_exc()), timeout=5)
            out.close()
            out.join_thread()  # the failure report must leave this process before it exits
    finally:
        if code == 0:
            out.cancel_join_thread()  # stopping: unsent unrolls are dropped anyway
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip interpreter teardown, which takes seconds with torch loaded; there is nothing left to save.
        os._exit(code)


class LocalBackend:
    name = "local"

    def __init__(self, queue_size: int = 0, batch_size: int = 1) -> None:
        self.ctx = tmp.get_context("spawn")
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.specs: list[ActorSpec] = []
        self.procs: list[Any] = []
        self.generations: list[int] = []
        self.reported: list[int] = []  # last generation whose failure was reported, per actor

    def start(self, specs: list[ActorSpec], weights: dict[str, torch.Tensor], version: int) -> None:
        self.specs = list(specs)
        self.shared = {k: v.detach().clone().share_memory_() for k, v in weights.items()}
        self.seq = self.ctx.RawValue("q", 2 * version)  # raw: no lock that a dying process could hold
        # Enough for one learner batch to be ready while the last one trains; more would only add policy lag.
        self.queue = self.ctx.Queue(maxsize=self.queue_size or max(self.batch_size, 2 * len(specs)))
        self.stop = self.ctx.Event()
        self.generations = [0] * len(specs)
        self.reported = [-1] * len(specs)
        self.procs = [self._spawn(i) for i in range(len(specs))]

    def _spawn(self, i: int) -> Any:
        p = self.ctx.Process(
            target=actor_process_main,
            args=(self.specs[i], self.generations[i], self.shared, self.seq, self.queue, self.stop, os.getpid()),
            name=f"autostruct-actor-{i}",
            daemon=True,
        )
        p.start()
        return p

    def publish(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self.seq.value = 2 * version - 1  # odd: writing
        for k, v in weights.items():
            self.shared[k].copy_(v)
        self.seq.value = 2 * version

    def _drain(self, msgs: list[Message], limit: int = 256) -> None:
        for _ in range(limit):
            try:
                msgs.append(self.queue.get_nowait())
            except queue_mod.Empty:
                return

    def poll(self, timeout: float) -> list[Message]:
        msgs: list[Message] = []
        with contextlib.suppress(queue_mod.Empty):
            msgs.append(self.queue.get(timeout=timeout))
        self._drain(msgs)
        out: list[Message] = []
        for m in msgs:
            if isinstance(m, ActorFailure):
                if m.generation != self.generations[m.actor_id] or self.reported[m.actor_id] == m.generation:
                    continue  # stale: that process was already replaced or reported
                self.reported[m.actor_id] = m.generation
            out.append(m)
        for i, p in enumerate(self.procs):
            if p.is_alive() or self.reported[i] == self.generations[i]:
                continue
            late: list[Message] = []
            self._drain(late)  # its own failure message may have landed just now
            for m in late:
                if isinstance(m, ActorFailure) and m.generation == self.generations[m.actor_id]:
                    if self.reported[m.actor_id] != m.generation:
                        self.reported[m.actor_id] = m.generation
                        out.append(m)
                elif not isinstance(m, ActorFailure):
                    out.append(m)
            if self.reported[i] != self.generations[i]:
                self.reported[i] = self.generations[i]
                out.append(ActorFailure(i, self.generations[i], f"actor process exited with code {p.exitcode}"))
        return out

    def restart(self, actor_id: int) -> None:
        old = self.procs[actor_id]
        # A failed actor exits by itself once its report is flushed. Killing it first can catch its queue feeder
        # between sending and releasing the queue's shared write lock, which no process can then take again: the
        # replacement's unrolls never reach the pipe and the run hangs (seen once in CI: the restarted actor's
        # feeder blocked in the lock, the learner waiting on an empty pipe). So wait, and kill only a straggler.
        old.join(timeout=5)
        if old.is_alive():
            old.kill()
            old.join(timeout=5)
        self.generations[actor_id] += 1
        self.procs[actor_id] = self._spawn(actor_id)

    def close(self) -> None:
        if not self.procs:
            return
        self.stop.set()
        deadline = time.monotonic() + 5
        # Keep draining: a process blocked on a full queue (or flushing its feeder thread) cannot exit otherwise.
        while any(p.is_alive() for p in self.procs) and time.monotonic() < deadline:
            self._drain([], limit=1024)
            time.sleep(0.02)
        for p in self.procs:
            if p.is_alive():
                p.kill()
            p.join(timeout=5)
        self._drain([], limit=10_000)
        self.queue.close()
        self.queue.cancel_join_thread()
        self.procs = []
