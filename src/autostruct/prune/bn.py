"""Batch-norm recalibration for pruned models; the implementation lives in :mod:`autostruct.models.bn`
because the NAS evaluator uses it too (nas/ may not import prune/)."""

from autostruct.models.bn import recalibrate_bn

__all__ = ["recalibrate_bn"]
