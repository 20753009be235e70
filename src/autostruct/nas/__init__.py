"""Multi-task NAS: search spaces, the weight-sharing supernet, costs and latency tables, the NAS MDP, the run.

Modules: ``space`` (spaces as data, architectures), ``supernet`` (elastic supernet, ``extract``, the
``nas-mobilenetv2`` model), ``train_supernet``, ``costs`` (exact FLOPs/params), ``lut`` (device latency
profiles), ``rewards``, ``evaluate``, ``env`` (``NASEnv``, ``NASEnvFactory``), ``config`` (``NASConfig``),
``search`` (:func:`~autostruct.nas.search.search`, the end-to-end run). See docs/nas.md.

Importing this package imports only the space and supernet modules (which register the ``nas-mobilenetv2``
model, so exported NAS models load with ``autostruct.export.load_model``).
"""

from __future__ import annotations

from autostruct.nas.space import (
    Architecture,
    SearchSpace,
    StageSpec,
    get_space,
    list_spaces,
    mobilenetv2_space,
)
from autostruct.nas.supernet import MODEL_NAME, NASNet, Supernet, extract

__all__ = [
    "MODEL_NAME",
    "Architecture",
    "NASNet",
    "SearchSpace",
    "StageSpec",
    "Supernet",
    "extract",
    "get_space",
    "list_spaces",
    "mobilenetv2_space",
]
