"""Retry policy of the tasks that read or write the object store.

Those tasks retry twice, after 5 and then 30 seconds, so that a store that is
briefly unreachable (a restarting MinIO, a dropped connection) does not fail a
nightly run. A retry cannot fix a missing champion, a path that does not exist
or a damaged ledger, though, and waiting 35 seconds before saying so only
delays the user. ``storage_retries`` names such errors per task, and the task
then fails on the first attempt with the original message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RETRIES = 2
RETRY_DELAYS_S = [5, 30]


def storage_retries(*permanent: type[BaseException]) -> dict[str, Any]:
    """Return the ``@task`` keyword arguments of a storage task.

    The task retries ``RETRIES`` times after ``RETRY_DELAYS_S`` seconds, except on
    the ``permanent`` error types, which end it at the first attempt.
    """
    return {"retries": RETRIES, "retry_delay_seconds": list(RETRY_DELAYS_S), "retry_condition_fn": retry_unless(*permanent)}


def retry_unless(*permanent: type[BaseException]) -> Callable[[Any, Any, Any], bool]:
    """Return a Prefect ``retry_condition_fn`` that retries every failure except the given error types.

    Args:
        permanent: exception types that a retry cannot fix. Subclasses count too.

    Returns:
        A callable ``(task, task_run, state) -> bool``: ``False`` when the failed
        state contains one of ``permanent``, ``True`` otherwise (a failure without
        an exception, such as a returned ``Failed`` state, is retried).
    """
    if not permanent:
        raise ValueError("retry_unless needs at least one exception type. Without one, leave retry_condition_fn unset")

    def should_retry(task: Any, task_run: Any, state: Any) -> bool:
        return not isinstance(failure_of(state), permanent)

    return should_retry


def failure_of(state: Any) -> BaseException | None:
    """Return the exception in a failed Prefect state, or ``None`` when the state contains none.

    The task engine wraps a raised exception as ``Failed(data=exception)``. A
    state whose data is a Prefect ``ResultRecord`` keeps it under ``.result`` instead.
    """
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data
    result = getattr(data, "result", None)
    return result if isinstance(result, BaseException) else None
