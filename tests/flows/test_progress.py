"""The command line's progress bar follows a real Prefect flow run's task runs."""

from __future__ import annotations

import pytest
from prefect import flow, task

from flows.progress import FlowProgress


@task(task_run_name="succeeds")
def succeeds() -> int:
    return 1


@task(task_run_name="fails")
def fails() -> None:
    raise RuntimeError("the task failed on purpose")


@flow
def one_of_each() -> None:
    succeeds()
    fails()


@flow
def two_successes() -> None:
    succeeds()
    succeeds()


def test_failed_task_shown_as_failed():
    with pytest.raises(RuntimeError, match="on purpose"):
        with FlowProgress("score") as progress:
            one_of_each()

    assert progress.completed == 1
    assert progress.description == "fails failed"


def test_finished_tasks_advance_bar():
    with FlowProgress("score") as progress:
        two_successes()

    assert progress.completed == 2
    assert progress.description == "succeeds done"

    progress.finish()
    assert progress.completed == 7
    assert progress.description == "done"
