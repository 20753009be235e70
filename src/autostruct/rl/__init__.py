"""The RL engine shared by the pruning and NAS searches: IMPALA actors and learner, V-trace, MC returns.

Entry points: :func:`run_impala` (train one policy on several tasks), :func:`rollout` (one greedy episode),
:func:`save_policy` / :func:`load_policy`. Envs come in through the :class:`Env` protocol (``rl/env.py``);
nothing here imports the searches.
"""

from autostruct.rl.actor import assign_tasks, rollout
from autostruct.rl.env import ActionSpec, BoxSpec, CategoricalSpec, Env, EnvFactory
from autostruct.rl.impala import ActorFailedError, ImpalaResult, run_impala
from autostruct.rl.learner import Learner
from autostruct.rl.policy import Policy, PolicySpec, load_policy, make_policy, save_policy
from autostruct.rl.returns import discounted_returns, truncated_importance_weights
from autostruct.rl.trajectory import EpisodeRecord, Trajectory
from autostruct.rl.vtrace import VTraceReturns, vtrace

__all__ = [
    "ActionSpec",
    "ActorFailedError",
    "BoxSpec",
    "CategoricalSpec",
    "Env",
    "EnvFactory",
    "EpisodeRecord",
    "ImpalaResult",
    "Learner",
    "Policy",
    "PolicySpec",
    "Trajectory",
    "VTraceReturns",
    "assign_tasks",
    "discounted_returns",
    "load_policy",
    "make_policy",
    "rollout",
    "run_impala",
    "save_policy",
    "truncated_importance_weights",
    "vtrace",
]
