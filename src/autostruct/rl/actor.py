"""Actors: run a local copy of the policy in their task envs and cut the experience into trajectories.

The same :class:`Actor` runs inline, inside a spawned process (``backends.local``) and as a Ray actor
(``backends.ray``). It owns one or more envs (one task each) and picks up new weights only between unrolls,
so every trajectory is acted by one weight version.

Scheduling (equal episodes per task, whatever the number of actors): the learner publishes, with every weight
version, how many episodes each task still needs (:data:`SCHEDULE_KEY`). Before each unroll the actor picks,
among its envs, the one whose task needs the most (minus the episodes it started itself since that news); when
its own tasks need nothing more it builds the env of a task that still does (``ActorSpec.all_factories``), so a
fast actor helps a slow one instead of idling. The learner logs exactly each task's quota and drops the rest.

``algorithm="vtrace"``: an unroll is ``unroll_length`` steps and may cross episode boundaries (the env is reset
inside it); with ``unroll_length=0``, and always for ``algorithm="mc"`` and ``"critic"``, an unroll is exactly
one whole episode.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from autostruct.errors import AutostructError
from autostruct.rl.env import CategoricalSpec, Env, EnvFactory
from autostruct.rl.policy import CoreState, Policy, PolicyInputs, PolicySpec
from autostruct.rl.screen import PlanningEnv, Surrogate, choose, pop_screen
from autostruct.rl.trajectory import EpisodeRecord, Trajectory


@dataclass(frozen=True)
class ActorSpec:
    """How to build one actor (picklable: it crosses process boundaries)."""

    actor_id: int
    env_factories: tuple[EnvFactory, ...]
    policy_spec: PolicySpec
    algorithm: str = "vtrace"
    unroll_length: int = 20
    seed: int = 0
    threads: int = 1
    #: Mixed into every seed so a resumed run does not replay the random streams of the first one.
    epoch: int = 0
    task_ids: tuple[int, ...] = field(default=())
    #: Every task's factory, indexed by task id: lets the actor take over tasks that still need episodes.
    all_factories: tuple[EnvFactory, ...] = field(default=())
    #: One greedy episode (diagnostics) after every this many finished episodes of an env; 0: never.
    greedy_every: int = 0
    #: Candidate episodes planned per played one once the learner publishes a surrogate (rl/screen.py); 0: off.
    screen: int = 0
    #: Weight of the surrogate's std in the screen's upper confidence bound.
    screen_kappa: float = 1.0

#: Key of the per-task "episodes still needed" tensor the learner publishes next to the weights.
SCHEDULE_KEY = "__schedule_remaining__"


def assign_tasks(num_tasks: int, num_actors: int) -> list[list[int]]:
    """Task indices per actor: round-robin; with more actors than tasks, tasks get several actors."""
    if num_tasks < 1 or num_actors < 1:
        raise AutostructError(f"Need at least one task and one actor; got {num_tasks} tasks, {num_actors} actors.")
    if num_actors >= num_tasks:
        return [[a % num_tasks] for a in range(num_actors)]
    return [[t for t in range(num_tasks) if t % num_actors == a] for a in range(num_actors)]


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def step_mask(spec: PolicySpec, env: Env, step: int) -> np.ndarray | None:
    """Valid options at ``step`` (Categorical): the step's choice count and the env's own mask."""
    a = spec.action_spec
    if not isinstance(a, CategoricalSpec):
        return None
    if step >= len(a.choices):
        raise AutostructError(
            f"Env of task {env.task_id} asked for decision {step}, but its CategoricalSpec has {len(a.choices)} steps."
        )
    mask = np.arange(a.max_choices) < a.choices[step]
    env_mask = env.action_mask()
    if env_mask is not None:
        env_mask = np.asarray(env_mask, dtype=bool).reshape(-1)
        if env_mask.shape[0] != a.max_choices:
            raise AutostructError(
                f"Env of task {env.task_id}: action_mask() has {env_mask.shape[0]} entries, expected {a.max_choices}."
            )
        mask = mask & env_mask
    if not mask.any():
        raise AutostructError(f"Env of task {env.task_id} masked every option at decision {step}.")
    return mask


def _check_obs(obs: Any, env: Env, spec: PolicySpec) -> np.ndarray:
    arr = np.asarray(obs, dtype=np.float32).reshape(-1)
    if arr.shape[0] != spec.observation_size:
        raise AutostructError(
            f"Env of task {env.task_id} returned an observation of size {arr.shape[0]}; the policy expects "
            f"{spec.observation_size}. Build the PolicySpec from this env (PolicySpec.from_env)."
        )
    return arr


class _EnvState:
    """Where one env stands between unrolls (its episode continues in the next unroll)."""

    def __init__(self, env: Env, reset_seed: int) -> None:
        self.env = env
        self.reset_seed: int | None = reset_seed
        self.obs: np.ndarray | None = None  # None: must reset before the next step
        self.finished = 0  # sampled episodes finished in this env

    def start_episode(self, policy: Policy, spec: PolicySpec) -> float:
        t0 = time.perf_counter()
        obs = self.env.reset(seed=self.reset_seed)
        self.reset_seed = None  # seed once; the env's own RNG carries on from there
        dt = time.perf_counter() - t0
        self.obs = _check_obs(obs, self.env, spec)
        self.first = True
        self.step = 0
        self.prev_action = np.zeros(spec.action_input_size, dtype=np.float32)
        self.prev_reward = 0.0
        self.core: CoreState = policy.initial_state(1)
        self.mask = step_mask(spec, self.env, 0)
        self.ep_actions: list[Any] = []
        self.ep_reward = 0.0
        self.plan: Tensor | None = None  # [steps, dim] pre-squash actions chosen by the screen, or None
        return dt


def _single_inputs(st: _EnvState) -> PolicyInputs:
    return PolicyInputs(
        obs=torch.from_numpy(st.obs).view(1, 1, -1),
        prev_action=torch.from_numpy(st.prev_action).view(1, 1, -1),
        prev_reward=torch.tensor([[st.prev_reward]], dtype=torch.float32),
        first=torch.tensor([[st.first]]),
        step=torch.tensor([[st.step]]),
        mask=None if st.mask is None else torch.from_numpy(st.mask).view(1, 1, -1),
    )


def _json_action(env_action: Any) -> Any:
    return [float(x) for x in env_action] if isinstance(env_action, np.ndarray) else int(env_action)


class Actor:
    """Runs episodes with a local policy copy and returns trajectories; see the module docstring."""

    def __init__(self, spec: ActorSpec, generation: int = 0) -> None:
        if spec.algorithm not in ("vtrace", "mc", "critic"):
            raise AutostructError(f"algorithm must be 'vtrace', 'mc' or 'critic', got '{spec.algorithm}'.")
        self.spec = spec
        self.generation = generation
        self.policy = Policy(spec.policy_spec)
        self.policy.eval()
        self.version = -1  # no weights yet
        seed = _seed(spec.seed, spec.actor_id, generation, spec.epoch)
        self.generator = torch.Generator().manual_seed(seed)
        self._seed_base = seed
        self.envs: list[_EnvState] = []
        for i, factory in enumerate(spec.env_factories):
            self._add_env(factory, spec.task_ids[i] if spec.task_ids else None)
        self._next_env = 0
        self._last_end: float | None = None
        self.remaining: np.ndarray | None = None  # per task, as last published by the learner
        self.surrogate: Surrogate | None = None  # published by the learner once it has data (rl.screen)
        self._started: dict[int, int] = {}  # episodes started per task since that news

    def _add_env(self, factory: EnvFactory, task_id: int | None) -> _EnvState:
        env = factory()
        if task_id is not None and env.task_id != task_id:
            raise AutostructError(
                f"Env factory {task_id} built an env with task_id={env.task_id}; each factory's env must "
                f"carry its index in the run's task list as task_id."
            )
        st = _EnvState(env, _seed(self._seed_base, len(self.envs)))
        self.envs.append(st)
        return st

    def set_weights(self, state_dict: dict[str, torch.Tensor], version: int) -> None:
        if SCHEDULE_KEY in state_dict:
            state_dict = dict(state_dict)
            self.remaining = state_dict.pop(SCHEDULE_KEY).numpy().astype(np.int64).copy()
            self._started = {}
        state_dict, surrogate = pop_screen(state_dict)
        if surrogate is not None:
            self.surrogate = surrogate
        self.policy.load_state_dict(state_dict)
        self.version = int(version)

    def _need(self, task: int) -> int:
        assert self.remaining is not None
        return int(self.remaining[task]) - self._started.get(task, 0) if task < len(self.remaining) else 0

    def _pick_env(self) -> _EnvState:
        """The env to act in next (see the module docstring); round-robin when no schedule was published."""
        n = len(self.envs)
        order = [(self._next_env + j) % n for j in range(n)]
        if self.remaining is not None:
            needs = {i: self._need(int(self.envs[i].env.task_id)) for i in order}
            best = max(order, key=lambda i: needs[i])  # first in rotation wins ties
            if needs[best] <= 0 and self.spec.all_factories:
                own = {int(st.env.task_id) for st in self.envs}
                others = [t for t in range(len(self.spec.all_factories)) if t not in own and self._need(t) > 0]
                if others:
                    t = max(others, key=self._need)
                    self._add_env(self.spec.all_factories[t], t)
                    best = len(self.envs) - 1
            self._next_env = (best + 1) % len(self.envs)
            return self.envs[best]
        self._next_env = (self._next_env + 1) % n
        return self.envs[order[0]]

    def _start(self, st: _EnvState) -> float:
        task = int(st.env.task_id)
        self._started[task] = self._started.get(task, 0) + 1
        dt = st.start_episode(self.policy, self.spec.policy_spec)
        if (self.spec.screen > 1 and self.surrogate is not None and self.surrogate.fitted_on
                and isinstance(st.env, PlanningEnv)):
            st.plan = plan_screened(self.policy, st.env, self.surrogate, self.spec.screen, self.spec.screen_kappa,
                                    self.generator)
        return dt

    def unroll(self) -> Trajectory:
        """Act in the next env for one unroll (``unroll_length`` steps, or one episode for ``mc``)."""
        if self.version < 0:
            raise RuntimeError("Actor.unroll() called before set_weights()")
        st = self._pick_env()
        t_start = time.perf_counter()
        env_time = policy_time = 0.0
        mc = self.spec.algorithm in ("mc", "critic") or self.spec.unroll_length == 0  # whole episodes
        if st.obs is None or mc:
            env_time += self._start(st)
        core0 = None if st.core is None else (st.core[0][0].numpy().copy(), st.core[1][0].numpy().copy())
        obs, first, prev_a, prev_r, steps, masks = [], [], [], [], [], []
        actions, rewards, dones, logps, forced = [], [], [], [], []
        episodes: list[EpisodeRecord] = []
        greedy: list[EpisodeRecord] = []
        max_steps = int(st.env.max_episode_steps)

        def record_inputs() -> None:
            obs.append(st.obs)
            first.append(st.first)
            prev_a.append(st.prev_action)
            prev_r.append(st.prev_reward)
            steps.append(st.step)
            masks.append(st.mask)

        record_inputs()
        t = 0
        while (not mc and t < self.spec.unroll_length) or (mc and not (dones and dones[-1])):
            t0 = time.perf_counter()
            with torch.inference_mode():
                out, core = self.policy(_single_inputs(st), st.core)
                if st.plan is not None:  # the screened candidate: same policy, same observations as planned
                    action = st.plan[st.step].view(1, 1, -1)
                else:
                    action = self.policy.sample(out, self.generator)
                logp = float(self.policy.log_prob(out, action)[0, 0])
            stored = action[0, 0].numpy().copy()
            env_action = self.policy.to_env_action(action[0, 0])
            t1 = time.perf_counter()
            next_obs, reward, done, info = st.env.step(env_action)
            t2 = time.perf_counter()
            policy_time += t1 - t0
            env_time += t2 - t1
            reward = float(reward)
            actions.append(stored)
            rewards.append(reward)
            logps.append(logp)
            forced.append(bool((info or {}).get("forced", False)))
            st.ep_actions.append(_json_action(env_action))
            st.ep_reward += reward
            if not done and st.step + 1 >= max_steps:
                raise AutostructError(
                    f"Env of task {st.env.task_id} ran {max_steps} steps without done=True; its max_episode_steps "
                    f"must bound the episode length."
                )
            dones.append(bool(done))
            if done:
                info = dict(info or {})
                if st.plan is not None:
                    info["screened"] = self.spec.screen  # the pick of this many planned candidates
                episodes.append(
                    EpisodeRecord(
                        task_id=int(st.env.task_id),
                        episode_index=-1,
                        actions=st.ep_actions,
                        reward=st.ep_reward,
                        info=info,
                        policy_version=self.version,
                        wall_time=0.0,
                        length=st.step + 1,
                        actor_id=self.spec.actor_id,
                    )
                )
                st.finished += 1
                # Safe between episodes: both branches below start the env afresh after the rollout's reset.
                if self.spec.greedy_every and st.finished % self.spec.greedy_every == 0:
                    t_g = time.perf_counter()
                    g = rollout(self.policy, st.env, greedy=True)
                    g.policy_version, g.actor_id = self.version, self.spec.actor_id
                    greedy.append(g)
                    env_time += time.perf_counter() - t_g
                if mc:
                    st.obs = _check_obs(next_obs, st.env, self.spec.policy_spec)
                    st.first, st.step = False, st.step + 1
                    record_inputs()
                    st.obs = None
                else:
                    env_time += self._start(st)
                    record_inputs()
            else:
                st.obs = _check_obs(next_obs, st.env, self.spec.policy_spec)
                st.first = False
                st.step += 1
                st.prev_action = self.policy.encode_prev_action(env_action)
                st.prev_reward = reward
                st.core = core
                st.mask = step_mask(self.spec.policy_spec, st.env, st.step)
                record_inputs()
            t += 1

        a_spec = self.spec.policy_spec
        t_end = time.perf_counter()
        # Cycle time since the previous unroll ended: also counts sending it and syncing weights.
        wall = t_end - (self._last_end if self._last_end is not None else t_start)
        self._last_end = t_end
        return Trajectory(
            actor_id=self.spec.actor_id,
            generation=self.generation,
            task_id=int(st.env.task_id),
            policy_version=self.version,
            obs=np.stack(obs).astype(np.float32),
            first=np.asarray(first, dtype=bool),
            prev_action=np.stack(prev_a).astype(np.float32),
            prev_reward=np.asarray(prev_r, dtype=np.float32),
            step=np.asarray(steps, dtype=np.int64),
            mask=None if masks[0] is None else np.stack(masks),
            action=(np.stack(actions).astype(np.float32) if a_spec.continuous else np.asarray(actions, dtype=np.int64)),
            reward=np.asarray(rewards, dtype=np.float32),
            done=np.asarray(dones, dtype=bool),
            behaviour_log_prob=np.asarray(logps, dtype=np.float32),
            core_state=core0,
            episodes=episodes,
            forced=np.asarray(forced, dtype=bool) if any(forced) else None,
            greedy=greedy,
            env_time=env_time,
            policy_time=policy_time,
            wall_time=wall,
        )


def rollout(policy: Policy, env: Env, greedy: bool = True, seed: int | None = None) -> EpisodeRecord:
    """Run one episode of ``policy`` in ``env`` (greedy: the mean / most likely action); no learning.

    MTACP uses this for zero-shot pruning: a policy trained on some tasks proposes a structure for a new one.
    """
    spec = policy.spec
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    st = _EnvState(env, seed)  # type: ignore[arg-type]
    was_training = policy.training
    policy.eval()
    st.start_episode(policy, spec)
    info: dict[str, Any] = {}
    try:
        for _ in range(int(env.max_episode_steps)):
            with torch.inference_mode():
                out, core = policy(_single_inputs(st), st.core)
                action = policy.greedy(out) if greedy else policy.sample(out, generator)
            env_action = policy.to_env_action(action[0, 0])
            next_obs, reward, done, info = env.step(env_action)
            st.ep_actions.append(_json_action(env_action))
            st.ep_reward += float(reward)
            if done:
                break
            st.obs = _check_obs(next_obs, env, spec)
            st.first, st.step = False, st.step + 1
            st.prev_action, st.prev_reward, st.core = policy.encode_prev_action(env_action), float(reward), core
            st.mask = step_mask(spec, env, st.step)
        else:
            raise AutostructError(f"Env of task {env.task_id} did not finish within max_episode_steps={env.max_episode_steps}.")
    finally:
        policy.train(was_training)
    return EpisodeRecord(
        task_id=int(env.task_id),
        episode_index=-1,
        actions=st.ep_actions,
        reward=st.ep_reward,
        info=dict(info or {}),
        policy_version=-1,
        wall_time=0.0,
        length=len(st.ep_actions),
    )


def plan_screened(policy: Policy, env: Any, surrogate: Surrogate | None, candidates: int, kappa: float,
                  generator: torch.Generator, greedy_first: bool = False) -> Tensor:
    """Sample ``candidates`` episodes of ``policy`` in planned copies of ``env`` (no evaluation), score their
    designs with ``surrogate`` and return the pre-squash actions ``[steps, dim]`` of the best (see rl/screen.py).

    All candidates go through the policy as one batch, and through the env as one where it plans a batch
    (``env.plan_batch(n)``, as the pruning env does); otherwise through shallow copies of it (the model and
    data are shared; only the episode's counters are the copy's own). ``greedy_first``: candidate 0 is the
    greedy episode. Without a surrogate, candidate 0 is returned.
    """
    spec = policy.spec
    plan = env.plan_batch(candidates) if hasattr(env, "plan_batch") else _PlannedCopies(env, candidates)
    obs = np.stack([_check_obs(o, env, spec) for o in plan.reset()])
    core = policy.initial_state(candidates)
    prev_action = torch.zeros(1, candidates, spec.action_input_size)
    steps: list[Tensor] = []
    for t in range(int(env.max_episode_steps)):
        inputs = PolicyInputs(
            obs=torch.from_numpy(obs).view(1, candidates, -1),
            prev_action=prev_action,
            prev_reward=torch.zeros(1, candidates),
            first=torch.full((1, candidates), t == 0),
            step=torch.full((1, candidates), t, dtype=torch.int64),
            mask=None,
        )
        with torch.inference_mode():
            out, core = policy(inputs, core)
            action = policy.sample(out, generator)
            if greedy_first:
                action[0, 0] = policy.greedy(out)[0, 0]
        steps.append(action[0])
        env_actions = policy.to_env_actions(action[0])
        next_obs, done = plan.step(env_actions)
        if done:
            break
        obs = np.stack([_check_obs(o, env, spec) for o in next_obs])
        prev_action = torch.from_numpy(np.stack([policy.encode_prev_action(a) for a in env_actions])).view(
            1, candidates, -1)
    best = 0 if surrogate is None else choose(surrogate, np.asarray(env.task_features(), dtype=np.float32),
                                              plan.designs(), kappa)
    return torch.stack(steps)[:, best].clone()


class _PlannedCopies:
    """Planned episodes of an env without ``plan_batch``: one shallow copy per episode, stepped in turn (the
    interface of ``prune.env.PlannedEpisodes``)."""

    def __init__(self, env: Any, n: int) -> None:
        self.copies = [copy.copy(env) for _ in range(n)]

    def reset(self) -> list[Any]:
        return [c.reset() for c in self.copies]

    def step(self, actions: Any) -> tuple[list[Any] | None, bool]:
        results = [c.plan_step(a) for c, a in zip(self.copies, actions, strict=True)]
        return (None if results[0][2] else [r[0] for r in results]), bool(results[0][2])

    def designs(self) -> list[np.ndarray]:
        return [c.planned_design() for c in self.copies]
