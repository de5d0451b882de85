"""A rich progress bar on the command line that follows a flow run's tasks."""

from __future__ import annotations

import logging

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

# Task runs of one ``retrain`` flow run: pull, decode, validate packets, windows,
# validate windows, three per model kind (train, threshold, evaluate), report, publish.
TASKS_PER_FLOW = {"retrain": 12, "score": 7}
# Prefect's task-run log line at the end of each task run, followed by the state's name.
FINISHED = "Finished in state "
SUCCESSFUL_STATES = ("Completed", "Cached")


class _TaskRunHandler(logging.Handler):
    """Advances the bar when Prefect logs that a task run finished or started."""

    def __init__(self, progress: Progress, bar_id) -> None:
        super().__init__(level=logging.INFO)
        self._progress, self._bar_id = progress, bar_id

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "task_run_name", None) or record.name
        message = record.getMessage()
        if message.startswith(FINISHED):
            state = message.removeprefix(FINISHED).split("(", 1)[0].strip()
            if state in SUCCESSFUL_STATES:
                self._progress.update(self._bar_id, advance=1, description=f"{name} done")
            else:
                # A failed task does not advance the bar, and its last frame names the state.
                self._progress.update(self._bar_id, description=f"{name} {state.lower()}")
        elif message.startswith("Created task run") or message.startswith("Executing"):
            self._progress.update(self._bar_id, description=name)


class FlowProgress:
    """Context manager showing one progress bar for a flow run on stderr."""

    def __init__(self, flow_name: str) -> None:
        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), transient=False,
        )
        self._bar_id = self._progress.add_task(flow_name, total=TASKS_PER_FLOW.get(flow_name))
        self._handler = _TaskRunHandler(self._progress, self._bar_id)
        self._logger = logging.getLogger("prefect.task_runs")

    def __enter__(self) -> FlowProgress:
        self._progress.start()
        self._logger.addHandler(self._handler)
        return self

    def finish(self) -> None:
        """Fill the bar once the flow has returned."""
        total = self._progress.tasks[0].total
        self._progress.update(self._bar_id, completed=total, description="done")

    @property
    def description(self) -> str:
        """The text beside the bar: the current task run, or how the last one ended."""
        return self._progress.tasks[0].description

    @property
    def completed(self) -> int:
        """Task runs that finished successfully so far."""
        return int(self._progress.tasks[0].completed)

    def __exit__(self, *exc_info) -> None:
        self._logger.removeHandler(self._handler)
        self._progress.stop()
