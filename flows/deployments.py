"""The deployments that ``netae serve`` serves, and the serving loop itself.

Two deployments, served by one process with Prefect 3's ``serve``:

* ``retrain/nightly``: the ``retrain`` flow on the cron schedule
  ``NETAE_RETRAIN_CRON`` (02:00 by default) in ``NETAE_TIMEZONE`` (UTC by
  default), with a deployment concurrency limit of one run. The server puts a
  run that becomes due while another ``retrain/nightly`` run is still going back
  into a ``Scheduled`` state named ``AwaitingConcurrencySlot``, and it starts
  after the first one finishes, so two runs never overlap.
* ``score/ad-hoc``: the ``score`` flow from ``flows/score.py``, with no
  schedule, for runs started from the UI or with
  ``prefect deployment run score/ad-hoc --param ...``. Where that module is
  absent, only ``retrain/nightly`` is served, with a logged warning.

Flow runs execute in child processes of the serving process and inherit its
environment, so the ``NETAE_*`` variables set where ``netae serve`` starts are
the settings of every scheduled run.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron

from flows.retrain import retrain
from flows.settings import NetaeSettings
from flows.stack import record_serving

logger = logging.getLogger(__name__)

RETRAIN_DEPLOYMENT = "nightly"
SCORE_DEPLOYMENT = "ad-hoc"
SCORE_MODULE = "flows.score"
SCORE_FLOW_NAME = "score"
TAGS = ["netae"]


def retrain_deployment(settings: NetaeSettings) -> RunnerDeployment:
    """Build the nightly ``retrain`` deployment from the schedule settings.

    Raises:
        ValueError: when ``retrain_cron`` is not a cron expression Prefect accepts.
    """
    return retrain.to_deployment(
        name=RETRAIN_DEPLOYMENT,
        schedules=[Cron(settings.retrain_cron, timezone=settings.timezone)],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        description=(
            f"Nightly retraining on the new or changed captures, cron {settings.retrain_cron!r} "
            f"in {settings.timezone}; one run at a time."
        ),
        tags=TAGS,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def load_score_flow() -> Flow | None:
    """Import the ``score`` flow from ``flows/score.py``; None when that module does not exist.

    The import is lazy so that ``netae serve`` works before the module exists.
    An import error inside an existing module propagates.

    Raises:
        TypeError: when the module has no Prefect flow named ``score``.
    """
    if importlib.util.find_spec(SCORE_MODULE) is None:
        return None
    module = importlib.import_module(SCORE_MODULE)
    candidate = getattr(module, SCORE_FLOW_NAME, None)
    if not isinstance(candidate, Flow) or candidate.name != SCORE_FLOW_NAME:
        raise TypeError(
            f"{module.__file__} must define a Prefect flow named {SCORE_FLOW_NAME!r} as `{SCORE_FLOW_NAME}`, "
            f"found {type(candidate).__name__}"
        )
    return candidate


def score_deployment() -> RunnerDeployment | None:
    """Build the ad hoc ``score`` deployment; None when ``flows/score.py`` does not exist."""
    flow = load_score_flow()
    if flow is None:
        return None
    return flow.to_deployment(
        name=SCORE_DEPLOYMENT,
        description="Score one capture with the champion models; start it from the UI or the command line.",
        tags=TAGS,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def build_deployments(settings: NetaeSettings) -> list[RunnerDeployment]:
    """Build every deployment ``netae serve`` serves, the nightly one first."""
    deployments = [retrain_deployment(settings)]
    score = score_deployment()
    if score is None:
        logger.warning("Module %s not found: serving retrain/%s only", SCORE_MODULE, RETRAIN_DEPLOYMENT)
    else:
        deployments.append(score)
    return deployments


def serve_deployments(settings: NetaeSettings, state: Path, *, limit: int | None = None) -> None:
    """Serve the deployments until the process receives SIGTERM or SIGINT.

    Blocks. The process id is recorded in ``<state>/serve.pid`` for
    ``netae down`` while it runs. On shutdown Prefect pauses the schedules, so
    the UI shows that no process is there to run them.

    Args:
        settings: the settings that give the schedule.
        state: the state folder (``NETAE_STATE_DIR``).
        limit: maximum flow runs that execute at once in this process; None
            leaves it to Prefect.
    """
    deployments = build_deployments(settings)
    pid_path = record_serving(state)
    names = ", ".join(f"{deployment.flow_name}/{deployment.name}" for deployment in deployments)
    logger.info("Serving %s (pid file %s)", names, pid_path)
    try:
        serve(*deployments, limit=limit, print_starting_message=True)
    finally:
        pid_path.unlink(missing_ok=True)
        logger.info("Stopped serving %s", names)
