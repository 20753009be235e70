"""autostruct: multi-task structure optimization (pruning and NAS) of CNNs with IMPALA-style RL.

>>> import autostruct
>>> autostruct.train("resnet20", "fashion-mnist", epochs=3)        # doctest: +SKIP
>>> autostruct.prune("configs/quickstart-prune.yaml")              # doctest: +SKIP  (MTACP)
>>> autostruct.search("configs/quickstart-nas.yaml")               # doctest: +SKIP  (MTNAS)
>>> autostruct.search_custom(space, evaluate, tasks)               # doctest: +SKIP  (your own space)

``autostruct.prune`` is the pruning package (``from autostruct.prune import PruningEnv``, ``import
autostruct.prune.env as env``) and, called, the pruning search (``autostruct.prune(config)``): both are
documented. A plain function of that name here would not do: ``import autostruct.prune.env as env`` walks the
attributes ``autostruct.prune.env``, which a function does not have. So this module (the API layer, where the
promise lives) gives the package a ``__call__``; the pruning package itself knows nothing of the search.

The functions forward to :mod:`autostruct.api`, imported on the first call: ``import autostruct`` (which every
``import autostruct.<anything>`` runs, the CLI's ``--help`` included) stays free of torch and the searches.
"""

from __future__ import annotations

import types
from typing import Any

import autostruct.prune as _prune_package

__version__ = "0.1.0"


def train(model: str, dataset: str, **kwargs: Any) -> Any:
    """Train (or fetch from the cache) a zoo model; see :func:`autostruct.api.train`."""
    from autostruct import api  # lazy: `import autostruct` must not load torch and the searches

    return api.train(model, dataset, **kwargs)


def search(config: Any, **kwargs: Any) -> Any:
    """Run a multi-task NAS search (MTNAS); see :func:`autostruct.api.search`."""
    from autostruct import api  # lazy: `import autostruct` must not load torch and the searches

    return api.search(config, **kwargs)


def search_custom(space: Any, evaluator: Any, tasks: list[dict[str, Any]], **kwargs: Any) -> Any:
    """NAS on your own search space and evaluator; see :func:`autostruct.api.search_custom`."""
    from autostruct import api  # lazy: `import autostruct` must not load torch and the searches

    return api.search_custom(space, evaluator, tasks, **kwargs)


class _CallablePruneModule(types.ModuleType):
    """The ``autostruct.prune`` package, callable: ``autostruct.prune(config)`` runs the pruning search."""

    def __call__(self, config: Any, **kwargs: Any) -> Any:
        """Run a multi-task pruning search (MTACP); see :func:`autostruct.api.prune`."""
        from autostruct import api  # lazy: `import autostruct` must not load torch and the searches

        return api.prune(config, **kwargs)


_prune_package.__class__ = _CallablePruneModule
prune = _prune_package

__all__ = ["__version__", "prune", "search", "search_custom", "train"]
