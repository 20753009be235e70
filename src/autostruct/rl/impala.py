"""IMPALA: actors on a backend, one learner in this process, checkpoints, logs. Entry point: :func:`run_impala`.

A run owns one folder::

    config.json       what was run (policy spec, RL and backend config, algorithm, budget)
    episodes.jsonl    one line per finished episode; episode_index = line number (see rl/logs.py)
    greedy.jsonl      greedy rollouts the actors made for diagnostics (info.task_episodes: when, per task)
    metrics.jsonl     learner stats per update; tb/ the same as TensorBoard scalars
    events.jsonl      actor failures and restarts, starts and resumes
    checkpoint.pt     learner state (weights, optimizer, counters, RNG), written atomically
    policy.pt         the final policy (load_policy), result.json a summary

Kill semantics: finished episodes are durable as soon as they are logged. On resume the learner restarts from
its last checkpoint and the episode counter from the log, so nothing logged is repeated and nothing is lost.
Episodes still in flight when the process died (inside an actor, or finished by an actor but not yet
logged) are simply lost: they were never half-logged, and the resumed run plays new ones in their place.
Updates made after the last checkpoint are lost too (at most ``rl.checkpoint_every``).

Budget: ``total_episodes`` is split into equal quotas per task (:func:`task_quotas`); the engine logs exactly
each task's quota, tells actors what each task still needs (see ``rl/actor.py``), and drops the few episodes
that finish after a task's quota is full. Each fresh batch of trajectories gives one update, followed by
``rl.replay_ratio`` updates on batches drawn from the last ``rl.replay_size`` trajectories (V-trace or the
truncated importance weights correct for the policy having moved since they were acted).
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from autostruct.config import BackendConfig, RLConfig
from autostruct.errors import AutostructError
from autostruct.rl.actor import SCHEDULE_KEY, ActorSpec, assign_tasks
from autostruct.rl.env import EnvFactory
from autostruct.rl.learner import ALGORITHMS, Algorithm, Learner
from autostruct.rl.logs import EpisodeLog, MetricsWriter, append_jsonl, complete_lines, open_jsonl
from autostruct.rl.policy import Policy, PolicySpec, make_policy, save_policy
from autostruct.rl.screen import ScreenData
from autostruct.rl.trajectory import EpisodeRecord, Trajectory
from autostruct.utils.io import DiskFullError, is_disk_full, torch_save_atomic, write_json_atomic
from autostruct.utils.progress import format_seconds, progress_bar, progress_line

log = logging.getLogger("autostruct.rl")

CHECKPOINT_FORMAT = "autostruct.impala/1"
_POLL_S = 0.05


class EngineBackend(Protocol):
    """What the engine needs of a backend (``autostruct.backends.base.Backend`` implements it): start actors,
    publish weights, poll for trajectories and failures, restart a failed actor, close."""

    name: str

    def start(self, specs: list[ActorSpec], weights: dict[str, torch.Tensor], version: int) -> None: ...

    def publish(self, weights: dict[str, torch.Tensor], version: int) -> None: ...

    def poll(self, timeout: float) -> list[Any]: ...

    def restart(self, actor_id: int) -> None: ...

    def close(self) -> None: ...


#: Where the compatibility path finds the builder of a backend from its config (module, function).
BACKEND_BUILDER = ("autostruct.backends", "make_backend")


def _backend_config(backend: EngineBackend | BackendConfig | str | None) -> BackendConfig | None:
    """The config of the compatibility forms (a config or a backend name); None for a backend object."""
    if backend is None:
        return BackendConfig()
    if isinstance(backend, str):
        return BackendConfig(name=backend)  # type: ignore[arg-type]  # pydantic rejects an unknown name
    if isinstance(backend, BackendConfig):
        return backend
    return None


def _build_backend(config: BackendConfig, rl: RLConfig) -> EngineBackend:
    """The compatibility path for callers that pass a config: resolve the default builder by its registered name.

    rl/ does not depend on backends/ (the backends import the engine's actor); callers that own the wiring,
    like :func:`autostruct.pipeline.run_search`, build the backend and pass the object.
    """
    builder = importlib.import_module(BACKEND_BUILDER[0])
    return getattr(builder, BACKEND_BUILDER[1])(config, rl)


class ActorFailedError(RuntimeError):
    """An actor kept failing after ``backend.max_restarts`` restarts; the message holds its last traceback."""


@dataclass
class ImpalaResult:
    """What a run produced. ``episodes`` covers the whole run, including episodes logged before a resume."""

    run_dir: Path
    episodes: list[EpisodeRecord]
    best: dict[int, EpisodeRecord]  # highest-reward episode per task id
    learner_stats: dict[str, float]  # means over this session's updates
    updates: int  # learner version at the end
    env_steps: int
    elapsed_s: float  # summed over resumes
    policy: Policy
    policy_path: Path
    checkpoint_path: Path
    actor_restarts: dict[int, int] = field(default_factory=dict)
    resumed_at_episode: int = 0  # episodes already logged when this session started
    greedy: list[EpisodeRecord] = field(default_factory=list)  # greedy rollouts (diagnostics), whole run
    quotas: list[int] = field(default_factory=list)  # episodes per task


def task_quotas(total_episodes: int, num_tasks: int) -> list[int]:
    """Episodes per task: equal shares of ``total_episodes`` (the first ``total % tasks`` tasks get one more)."""
    base, extra = divmod(total_episodes, num_tasks)
    return [base + (1 if t < extra else 0) for t in range(num_tasks)]


@dataclass
class _Window:
    """Accumulators between two metrics lines."""

    start: float
    episodes: int = 0
    env_time: float = 0.0
    policy_time: float = 0.0
    actor_wall: float = 0.0
    learner_time: float = 0.0
    rewards: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    actions: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    greedy: dict[int, float] = field(default_factory=dict)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def _validate(env_factories: Sequence[EnvFactory], algorithm: str, total_episodes: int) -> None:
    if not env_factories:
        raise AutostructError("run_impala needs at least one env factory (one per task).")
    if algorithm not in ALGORITHMS:
        raise AutostructError(
            f"Unknown algorithm '{algorithm}'. Use 'vtrace' (pruning), 'mc' (NAS) or 'critic' (continuous actions)."
        )
    if total_episodes < len(env_factories):
        raise AutostructError(
            f"total_episodes must be at least one per task: got {total_episodes} for {len(env_factories)} tasks."
        )


def run_impala(
    env_factories: Sequence[EnvFactory],
    policy_spec: PolicySpec,
    *,
    total_episodes: int,
    run_dir: str | Path,
    rl: RLConfig | None = None,
    backend: EngineBackend | BackendConfig | str | None = None,
    max_restarts: int | None = None,
    algorithm: Algorithm = "vtrace",
    resume: bool = False,
    seed: int = 0,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    progress: bool = True,
    tensorboard: bool = True,
) -> ImpalaResult:
    """Train one policy on all tasks until ``total_episodes`` episodes (over all tasks) are logged.

    ``env_factories[i]`` builds the env of task ``i`` (its ``task_id`` must be ``i``); factories must be picklable
    for the ``local`` and ``ray`` backends. ``algorithm`` is ``"vtrace"`` (n-step unrolls, V-trace targets; the
    pruning search) or ``"mc"`` (whole episodes, Monte Carlo returns with truncated importance weights; NAS).
    ``resume=True`` continues the run in ``run_dir`` (or starts one if the folder is empty); without it a
    folder that already holds a run is an error. ``on_episode`` is called in this process for every episode
    as it is logged. SIGINT/SIGTERM write a checkpoint, then raise KeyboardInterrupt / SystemExit(143).

    ``backend`` is where the actors run: a backend object (``autostruct.backends.make_backend(config, rl)``; it is
    started at most once, by this call) or, for compatibility, a :class:`BackendConfig`, a backend name or None
    (``local``). ``max_restarts`` (restarts of a failing actor before the run gives up) defaults to the config's
    ``max_restarts``, or :class:`BackendConfig`'s default for a backend object.
    """
    rl = rl or RLConfig()
    algorithm = rl.algorithm or algorithm  # a config's explicit choice wins over the search's default
    backend_cfg = _backend_config(backend)
    if max_restarts is None:
        max_restarts = (backend_cfg or BackendConfig()).max_restarts
    backend_record = (backend_cfg.model_dump() if backend_cfg is not None
                      else {"name": getattr(backend, "name", type(backend).__name__),
                            "address": getattr(backend, "address", None), "max_restarts": max_restarts})
    _validate(env_factories, algorithm, total_episodes)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, episodes_path = run_dir / "checkpoint.pt", run_dir / "episodes.jsonl"
    if not resume and (ckpt_path.exists() or (episodes_path.exists() and episodes_path.stat().st_size > 0)):
        raise AutostructError(
            f"Run directory '{run_dir}' already holds a run. Pass resume=True (--resume) to continue it, or choose "
            f"an empty directory."
        )

    policy = make_policy(policy_spec, seed)
    learner = Learner(policy, rl, algorithm, seed=seed)
    env_steps, elapsed_before = 0, 0.0
    if ckpt_path.exists():
        payload = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise AutostructError(f"'{ckpt_path}' is not an autostruct IMPALA checkpoint.")
        if payload["policy_spec"] != policy_spec.to_dict() or payload["algorithm"] != algorithm:
            raise AutostructError(
                f"Cannot resume '{run_dir}': it was run with algorithm '{payload['algorithm']}' and policy "
                f"{payload['policy_spec']}, now {algorithm} and {policy_spec.to_dict()}. Use the same settings "
                f"or a new run directory."
            )
        learner.load_state_dict(payload["learner"])
        env_steps, elapsed_before = int(payload["env_steps"]), float(payload["elapsed_s"])
        _set_rng_state(payload["rng"])
    episode_log = EpisodeLog(episodes_path)
    resumed_at = episode_log.count
    quotas = task_quotas(total_episodes, len(env_factories))
    logged = [0] * len(env_factories)
    screen = ScreenData(seed=seed) if rl.screen > 1 else None
    for rec in episode_log.records:
        logged[rec.task_id] += 1
        if screen is not None:
            screen.add(rec.task_id, rec.reward, rec.info)
        if not ckpt_path.exists():  # else the checkpoint holds the reward statistics
            learner.observe_episode(rec.task_id, rec.reward)
    greedy_path = run_dir / "greedy.jsonl"
    greedy_records = [EpisodeRecord.from_json(json.loads(line)) for line in complete_lines(greedy_path)
                      if line.strip()]
    if episode_log.records:
        elapsed_before = max(elapsed_before, episode_log.records[-1].wall_time)
    events = open_jsonl(run_dir / "events.jsonl")
    if not (run_dir / "config.json").exists():
        write_json_atomic(
            run_dir / "config.json",
            {
                "algorithm": algorithm,
                "total_episodes": total_episodes,
                "seed": seed,
                "num_tasks": len(env_factories),
                "policy_spec": policy_spec.to_dict(),
                "rl": rl.model_dump(),
                "backend": backend_record,
            },
        )

    t0 = time.monotonic()

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - t0

    best: dict[int, EpisodeRecord] = {}
    for rec in episode_log.records:
        if rec.task_id not in best or rec.reward > best[rec.task_id].reward:
            best[rec.task_id] = rec

    def save_checkpoint() -> None:
        episode_log.sync()  # the log on disk is never behind the checkpoint's episodes_logged
        torch_save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "policy_spec": policy_spec.to_dict(),
                "algorithm": algorithm,
                "learner": learner.state_dict(),
                "env_steps": env_steps,
                "elapsed_s": elapsed(),
                "episodes_logged": episode_log.count,
                "rng": _rng_state(),
            },
            ckpt_path,
        )

    append_jsonl(events, {"event": "resume" if resumed_at or learner.version else "start", "episode": resumed_at,
                          "update": learner.version, "time": time.time()})
    restarts: dict[int, int] = defaultdict(int)
    session_stats: dict[str, list[float]] = defaultdict(list)
    stop_signal: list[int] = []

    def schedule() -> dict[str, torch.Tensor]:
        remaining = torch.tensor([q - n for q, n in zip(quotas, logged, strict=True)], dtype=torch.int64)
        published = {**learner.weights(), SCHEDULE_KEY: remaining}
        if screen is not None:
            # Refit on every episode logged so far (all tasks) before each publication: the actors screen their
            # next candidates with what the whole run knows. Before the warm-up an unfitted one keeps the
            # published tensors' shapes fixed (process backends preallocate them).
            ready = len(screen) >= rl.screen_warmup * len(env_factories)
            published.update((screen.refit() if ready else screen.placeholder()).tensors())
        return published

    if episode_log.count < total_episodes:
        specs = _actor_specs(env_factories, policy_spec, rl, algorithm, seed, epoch=episode_log.count)
        replay: list[Trajectory] = []
        replay_rng = np.random.default_rng([seed, episode_log.count, 7])
        replay_credit = 0.0
        last_checkpoint = learner.version
        greedy_file = open_jsonl(greedy_path)
        backend_obj: EngineBackend = (_build_backend(backend_cfg, rl) if backend_cfg is not None
                                      else backend)  # type: ignore[assignment]
        metrics = MetricsWriter(run_dir, tensorboard=tensorboard, purge_step=learner.version + 1)
        old_handlers = _install_signal_handlers(stop_signal)
        bar = _Progress(progress, total_episodes, episode_log.count)
        buffer: list[Trajectory] = []
        window = _Window(start=time.monotonic())
        failing = False
        try:
            backend_obj.start(specs, schedule(), learner.version)
            learner.optimizer  # noqa: B018 - build it while the actors start
            while episode_log.count < total_episodes and not stop_signal:
                for msg in backend_obj.poll(_POLL_S):
                    if isinstance(msg, Trajectory):
                        env_steps += msg.length
                        window.env_time += msg.env_time
                        window.policy_time += msg.policy_time
                        window.actor_wall += msg.wall_time
                        for ep in msg.episodes:
                            learner.observe_episode(ep.task_id, ep.reward)
                            if logged[ep.task_id] >= quotas[ep.task_id]:
                                continue  # the budget is exact: episodes past a task's quota are dropped unlogged
                            logged[ep.task_id] += 1
                            ep.episode_index, ep.wall_time = episode_log.count, round(elapsed(), 3)
                            episode_log.append(ep)
                            if screen is not None:
                                screen.add(ep.task_id, ep.reward, ep.info)
                            window.episodes += 1
                            window.rewards[ep.task_id].append(ep.reward)
                            if ep.task_id not in best or ep.reward > best[ep.task_id].reward:
                                best[ep.task_id] = ep
                            bar.advance(ep)
                            if on_episode is not None:
                                on_episode(ep)
                        for g in msg.greedy:
                            g.info["task_episodes"] = logged[g.task_id]
                            g.wall_time = round(elapsed(), 3)
                            greedy_records.append(g)
                            append_jsonl(greedy_file, g.to_json())
                            window.greedy[g.task_id] = g.reward
                        if policy_spec.continuous:
                            keep = np.ones(msg.length, dtype=bool) if msg.forced is None else ~msg.forced
                            executed = (np.tanh(msg.action.reshape(msg.length, -1)[keep, 0]) + 1) / 2
                            window.actions[msg.task_id].extend(executed.tolist())
                        buffer.append(msg)
                    else:
                        restarts[msg.actor_id] += 1
                        n = restarts[msg.actor_id]
                        append_jsonl(events, {"event": "actor_failure", "actor": msg.actor_id,
                                              "generation": msg.generation, "restart": n, "error": msg.error,
                                              "time": time.time()})
                        if n > max_restarts:
                            raise ActorFailedError(
                                f"actor {msg.actor_id} failed {n} times (max_restarts={max_restarts}); "
                                f"last error:\n{msg.error}"
                            )
                        log.warning("actor %d failed (restart %d of %d): %s", msg.actor_id, n,
                                    max_restarts, msg.error.strip().splitlines()[-1])
                        backend_obj.restart(msg.actor_id)
                while len(buffer) >= rl.batch_size and not stop_signal:
                    tl = time.monotonic()
                    batch, buffer = buffer[: rl.batch_size], buffer[rl.batch_size:]
                    stats = learner.update(batch)
                    replay.extend(batch)
                    del replay[: max(0, len(replay) - rl.replay_size)]
                    replay_credit += rl.replay_ratio
                    replayed = []
                    while replay_credit >= 1.0 and len(replay) >= rl.batch_size:
                        replay_credit -= 1.0
                        pick = replay_rng.choice(len(replay), size=rl.batch_size, replace=False)
                        replayed.append(learner.update([replay[i] for i in pick], replayed=True))
                    backend_obj.publish(schedule(), learner.version)
                    window.learner_time += time.monotonic() - tl
                    for k, v in stats.items():
                        session_stats[k].append(v)
                    line = {**stats, **_window_stats(window, episode_log.count, env_steps, elapsed())}
                    if replayed:
                        line["replay_updates"] = float(len(replayed))
                        line["replay_loss"] = float(np.mean([r["loss"] for r in replayed]))
                    metrics.log(learner.version, line)
                    window = _Window(start=time.monotonic())
                    if learner.version - last_checkpoint >= rl.checkpoint_every:
                        save_checkpoint()
                        last_checkpoint = learner.version
        except BaseException:
            failing = True
            raise
        finally:
            _restore_signal_handlers(old_handlers)
            bar.close()
            backend_obj.close()
            _shut_down([
                lambda: save_checkpoint() if learner.version > 0 else None,
                metrics.close,
                lambda: append_jsonl(events, {"event": "stop", "episode": episode_log.count,
                                              "update": learner.version,
                                              "signal": stop_signal[0] if stop_signal else None,
                                              "time": time.time()}),
                events.close,
                greedy_file.close,
                episode_log.close,
            ], failing)
        if stop_signal:
            if stop_signal[0] == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + stop_signal[0])
    else:
        events.close()
        episode_log.close()

    policy_path = save_policy(policy, run_dir / "policy.pt", {"updates": learner.version, "algorithm": algorithm})
    result = ImpalaResult(
        run_dir=run_dir,
        episodes=list(episode_log.records),
        best=dict(sorted(best.items())),
        learner_stats={k: float(np.mean(v)) for k, v in session_stats.items()},
        updates=learner.version,
        env_steps=env_steps,
        elapsed_s=elapsed(),
        policy=policy,
        policy_path=policy_path,
        checkpoint_path=ckpt_path,
        actor_restarts=dict(restarts),
        resumed_at_episode=resumed_at,
        greedy=greedy_records,
        quotas=quotas,
    )
    write_json_atomic(
        run_dir / "result.json",
        {
            "episodes": len(result.episodes),
            "episodes_per_task": {str(t): n for t, n in enumerate(logged)},
            "updates": result.updates,
            "env_steps": result.env_steps,
            "elapsed_s": round(result.elapsed_s, 3),
            "best": {str(t): r.to_json() for t, r in result.best.items()},
            "learner_stats": result.learner_stats,
            "actor_restarts": {str(k): v for k, v in result.actor_restarts.items()},
            "policy": str(policy_path),
        },
    )
    return result


def _shut_down(steps: Sequence[Callable[[], object]], failing: bool) -> None:
    """Run every step; raise the first error after all ran, or only log it while another error is on its way.

    A full disk fails the last checkpoint too: that must neither hide the write that failed first nor leave the
    logs open.
    """
    first: Exception | None = None
    for step in steps:
        try:
            step()
        except Exception as exc:
            if not failing:
                first = first or exc
            elif is_disk_full(exc) or isinstance(exc, DiskFullError):
                log.debug("while stopping: %s", exc)
            else:
                log.warning("while stopping: %s", exc)
    if first is not None:
        raise first


def _actor_specs(
    env_factories: Sequence[EnvFactory], policy_spec: PolicySpec, rl: RLConfig, algorithm: str, seed: int, epoch: int
) -> list[ActorSpec]:
    return [
        ActorSpec(
            actor_id=a,
            env_factories=tuple(env_factories[t] for t in tasks),
            task_ids=tuple(tasks),
            policy_spec=policy_spec,
            algorithm=algorithm,
            unroll_length=rl.unroll_length,
            seed=seed,
            threads=rl.threads_per_actor,
            epoch=epoch,
            all_factories=tuple(env_factories),
            greedy_every=rl.greedy_every,
            screen=rl.screen,
            screen_kappa=rl.screen_kappa,
        )
        for a, tasks in enumerate(assign_tasks(len(env_factories), rl.actors))
    ]


def _window_stats(w: _Window, episodes: int, env_steps: int, elapsed: float) -> dict[str, float]:
    dt = max(time.monotonic() - w.start, 1e-9)
    out: dict[str, float] = {
        "episodes": float(episodes),
        "env_steps": float(env_steps),
        "time_s": round(elapsed, 3),
        "episodes_per_s": w.episodes / dt,
        # Share of the actors' time spent inside the env (the rest: policy inference, queueing, weight sync).
        "actor_utilization": w.env_time / w.actor_wall if w.actor_wall > 0 else float("nan"),
        "actor_policy_share": w.policy_time / w.actor_wall if w.actor_wall > 0 else float("nan"),
        "learner_share": w.learner_time / dt,
    }
    for task, rewards in sorted(w.rewards.items()):
        out[f"rewards/task_{task}"] = float(np.mean(rewards))
    for task, actions in sorted(w.actions.items()):
        if actions:
            out[f"action_mean/task_{task}"] = float(np.mean(actions))
            out[f"action_std/task_{task}"] = float(np.std(actions))
    for task, reward in sorted(w.greedy.items()):
        out[f"greedy/task_{task}"] = float(reward)
    return out


def _install_signal_handlers(stop_signal: list[int]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        if stop_signal:  # a second Ctrl-C: stop now, the finally-block still checkpoints
            raise KeyboardInterrupt
        stop_signal.append(signum)

    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(old: dict[int, Any]) -> None:
    for s, h in old.items():
        signal.signal(s, h)


class _Progress:
    """Progress over episodes (:mod:`autostruct.utils.progress`): a bar with the best reward per task on a
    terminal, a line per tenth of the episodes elsewhere."""

    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self._p = None
        if not enabled:
            return
        self._total, self._done, self._t0, self._done0 = total, done, time.monotonic(), done
        self._every = max(1, total // 10)
        self._p = progress_bar(enabled)
        self._task = self._p.add_task("episodes", total=total, completed=done, info="")
        self._best: dict[int, float] = {}
        self._p.start()

    def advance(self, ep: EpisodeRecord) -> None:
        if self._p is None:
            return
        self._done += 1
        self._best[ep.task_id] = max(self._best.get(ep.task_id, -np.inf), ep.reward)
        best = " ".join(f"t{t}:{r:.3f}" for t, r in sorted(self._best.items())[:6])
        self._p.update(self._task, advance=1, description=f"episodes (best {best})")
        if self._done % self._every == 0 or self._done == self._total:
            spent = time.monotonic() - self._t0
            left = spent / max(1, self._done - self._done0) * (self._total - self._done)
            progress_line(True, f"episodes {self._done}/{self._total} (best {best}), {format_seconds(spent)}, "
                                f"~{format_seconds(left)} left")

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()
