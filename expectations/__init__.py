"""Great Expectations suites for netae's data, and the helper that runs them.

* ``packet_suite()``: the contract of the packet table (``spark_jobs.packet_schema``).
* ``window_suite(steps=..., features=...)``: checks on a window tensor, run on
  ``window_summary_frame(windows)``.
* ``validate_dataframe(df, suite)``: runs a suite on a pandas or Spark
  DataFrame and returns a ``ValidationOutcome``.

Nothing here imports Prefect or TensorFlow.
"""

from expectations.packets import packet_suite
from expectations.validation import ValidationOutcome, validate_dataframe
from expectations.windows import window_suite, window_summary_frame

__all__ = [
    "ValidationOutcome",
    "packet_suite",
    "validate_dataframe",
    "window_suite",
    "window_summary_frame",
]
