"""MTACP: one multi-task IMPALA search prunes a model for every (dataset, FLOPs ratio) task."""

from autostruct.mtacp.latency_lut import PruneLutResult, build_prune_lut
from autostruct.mtacp.run import PruneRunResult, run_prune
from autostruct.mtacp.zero_shot import zero_shot_prune

__all__ = ["PruneLutResult", "PruneRunResult", "build_prune_lut", "run_prune", "zero_shot_prune"]
