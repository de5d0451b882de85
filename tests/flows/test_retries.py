"""The storage tasks' retry policy: transient failures are retried, errors a retry cannot fix are not."""

from __future__ import annotations

import pytest
from prefect import flow, task
from prefect.states import Completed, Failed

from flows.data_tasks import pull_captures
from flows.ledger import LedgerError
from flows.publish_tasks import publish
from flows.retries import retry_unless
from flows.score import MissingChampionError, load_champions, stage_capture
from objectstore.base import StorageError


class PermanentFault(ValueError):
    """An error that these tests treat as one no retry can fix."""


def _attempts_until_failure(error: Exception) -> int:
    """Run a real flow whose task always raises ``error``, and return how many attempts the task made."""
    attempts = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless(PermanentFault))
    def always_fails() -> None:
        attempts.append(1)
        raise error

    @flow
    def one_task() -> None:
        always_fails()

    with pytest.raises(type(error)):
        one_task()
    return len(attempts)


def test_permanent_error_fails_on_first_attempt():
    assert _attempts_until_failure(PermanentFault("cannot be fixed")) == 1


def test_other_error_uses_every_retry():
    assert _attempts_until_failure(StorageError("endpoint paused")) == 3


def test_permanent_subclass_not_retried():
    class NarrowerFault(PermanentFault):
        pass

    should_retry = retry_unless(PermanentFault)

    assert should_retry(None, None, Failed(data=NarrowerFault("x"))) is False
    assert should_retry(None, None, Failed(data=RuntimeError("x"))) is True


def test_failure_without_exception_is_retried():
    assert retry_unless(PermanentFault)(None, None, Failed(message="returned a failed state")) is True
    assert retry_unless(PermanentFault)(None, None, Completed(data=None)) is True


def test_no_permanent_type_is_rejected():
    with pytest.raises(ValueError, match="needs at least one exception type"):
        retry_unless()


@pytest.mark.parametrize(
    ("storage_task", "permanent"),
    [
        (load_champions, MissingChampionError("no lstm champion")),
        (stage_capture, FileNotFoundError("capture 'x.pcap' is neither a key nor a local file")),
        (pull_captures, LedgerError("unknown state 'half-done'")),
        (publish, LedgerError("capture 'captures/a.pcap' has no entry in runs/ledger.json")),
    ],
    ids=["load-champions", "stage-capture", "pull-captures", "publish"],
)
def test_storage_task_retry_conditions(storage_task, permanent):
    should_retry = storage_task.retry_condition_fn

    assert storage_task.retries == 2
    assert should_retry(storage_task, None, Failed(data=StorageError("connection refused by 127.0.0.1:9000"))) is True
    assert should_retry(storage_task, None, Failed(data=permanent)) is False
