"""Pure parts of the MTACP runner: task expansion, epoch floors, config errors, the top-level API."""

from __future__ import annotations

import pytest

from autostruct.config import PruneConfig, parse_config
from autostruct.errors import AutostructError
from autostruct.mtacp.run import epochs_for
from autostruct.mtacp.tasks import expand_tasks


def test_expand_tasks_ids_and_dataset_indices():
    cfg = parse_config(PruneConfig, {"tasks": [
        {"dataset": "fashion-mnist", "ratios": [0.3, 0.5]},
        {"dataset": "fashion-mnist", "classes": [5, 7, 9], "ratios": [0.5]},
        {"dataset": "digits", "ratios": [0.5]},
    ]})
    keys, tasks = expand_tasks(cfg)
    assert [k.label for k in keys] == ["fashion-mnist", "fashion-mnist-c5.7.9", "digits"]
    assert [t.task_id for t in tasks] == [0, 1, 2, 3]
    assert [t.dataset_index for t in tasks] == [0, 0, 1, 2]
    assert [t.name for t in tasks] == ["fashion-mnist-r0.3", "fashion-mnist-r0.5", "fashion-mnist-c5.7.9-r0.5", "digits-r0.5"]


@pytest.mark.parametrize(("epochs", "min_steps", "n", "bs", "want"), [
    (3, 600, 55000, 128, 3),      # big dataset: the floor never binds
    (3, 600, 719, 128, 100),      # digits: 6 batches per epoch -> 100 epochs for 600 steps
    (0, 600, 719, 128, 0),        # 0 stays 0 (no fine-tune)
    (2, 0, 10, 128, 2),
])
def test_epochs_for(epochs, min_steps, n, bs, want):
    assert epochs_for(epochs, min_steps, n, bs) == want


@pytest.mark.parametrize(("data", "needle"), [
    ({"tasks": [{"dataset": "digits", "ratios": [0.5]}], "search": {"lbound": 0}}, "search.lbound"),
    ({"tasks": [{"dataset": "digits", "ratios": [0.0]}]}, "(0, 1]"),
    ({"tasks": [{"dataset": "digits", "ratios": [0.5]}], "rl": {"actor": 2}}, "Did you mean 'actors'"),
    ({"tasks": [{"dataset": "digits", "ratios": [0.5], "clases": [1]}]}, "Did you mean 'classes'"),
    ({"tasks": [{"dataset": "digits", "ratios": [0.5]}], "backend": {"name": "slurm"}}, "backend.name"),
])
def test_config_errors_name_the_field(data, needle):
    with pytest.raises(AutostructError, match=None) as exc:
        parse_config(PruneConfig, data)
    assert needle in str(exc.value)


def test_top_level_api_is_callable_next_to_the_subpackage():
    import autostruct.prune.env  # importing a submodule must not shadow autostruct.prune(config)

    assert callable(autostruct.prune) and callable(autostruct.search) and callable(autostruct.train)
    with pytest.raises(AutostructError, match="does not exist"):
        autostruct.prune("/nonexistent/config.yaml")
