"""autostruct: multi-task structure optimization (pruning and NAS) of CNNs with IMPALA-style RL.

>>> import autostruct
>>> autostruct.train("resnet20", "fashion-mnist", epochs=3)        # doctest: +SKIP
>>> autostruct.prune("configs/quickstart-prune.yaml")              # doctest: +SKIP  (MTACP)
>>> autostruct.search("configs/quickstart-nas.yaml")               # doctest: +SKIP  (MTNAS)
>>> autostruct.search_custom(space, evaluate, tasks)               # doctest: +SKIP  (your own space)
"""

from __future__ import annotations

from typing import Any

from autostruct import prune  # the package is callable: autostruct.prune(config) runs MTACP

__version__ = "0.1.0"


def train(model: str, dataset: str, **kwargs: Any) -> Any:
    """Train (or fetch from the cache) a zoo model; see :func:`autostruct.api.train`."""
    from autostruct.api import train as _train

    return _train(model, dataset, **kwargs)


def search(config: Any, **kwargs: Any) -> Any:
    """Run a multi-task NAS search (MTNAS); see :func:`autostruct.api.search`."""
    from autostruct.api import search as _search

    return _search(config, **kwargs)


def search_custom(space: Any, evaluator: Any, tasks: list[dict[str, Any]], **kwargs: Any) -> Any:
    """NAS on your own search space and evaluator; see :func:`autostruct.api.search_custom`."""
    from autostruct.api import search_custom as _search_custom

    return _search_custom(space, evaluator, tasks, **kwargs)


__all__ = ["__version__", "prune", "search", "search_custom", "train"]
