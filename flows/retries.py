"""Retry policy of the tasks that read or write the object store.

Those tasks retry twice, after 5 and then 30 seconds, so that a store that is
briefly unreachable (a restarting MinIO, a dropped connection) does not fail a
nightly run. A retry cannot fix a missing champion, a path that does not exist
or a damaged ledger, though, and waiting 35 seconds before saying so only
delays the user. ``retry_unless`` names such errors per task, and the task then
fails on the first attempt with the original message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RETRIES = 2
RETRY_DELAYS_S = [5, 30]


def retry_unless(*permanent: type[BaseException]) -> Callable[[Any, Any, Any], bool]:
    """Return a Prefect ``retry_condition_fn`` that retries every failure except the given error types.

    Args:
        permanent: exception types that a retry cannot fix; subclasses count too.

    Returns:
        A callable ``(task, task_run, state) -> bool``: ``False`` when the failed
        state contains one of ``permanent``, ``True`` otherwise (a failure without
        an exception, such as a returned ``Failed`` state, is retried).
    """
    if not permanent:
        raise ValueError("retry_unless needs at least one exception type; without one, leave retry_condition_fn unset")

    def should_retry(task: Any, task_run: Any, state: Any) -> bool:
        return not isinstance(failure_of(state), permanent)

    return should_retry


def failure_of(state: Any) -> BaseException | None:
    """Return the exception in a failed Prefect state, or ``None`` when the state contains none.

    The task engine wraps a raised exception as ``Failed(data=exception)``. A
    persisted result keeps it under ``.result`` instead.
    """
    data = getattr(state, "data", None)
    if isinstance(data, BaseException):
        return data
    held = getattr(data, "result", None)
    return held if isinstance(held, BaseException) else None
