"""Run an expectation suite on a pandas or Spark DataFrame and summarise the result.

Each call builds its own ephemeral Great Expectations context with a copy of
the suite and one data source with a whole-DataFrame batch. It validates in two
passes, a cheap pass/fail pass and then details for the failures only. At the
end it puts back whichever context was current before. The caller's
suite is never bound to a context, so the same suite object can be validated
again, on either engine.

Great Expectations keeps its current context in a process-wide variable.
Calls are therefore serialised with a lock, and two threads that validate at
once take turns.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.data_context import set_context
from great_expectations.data_context.data_context.context_factory import project_manager
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.exceptions import DataContextRequiredError
from great_expectations.expectations.row_conditions import deserialize_row_condition
from great_expectations.util import convert_to_json_serializable

logger = logging.getLogger(__name__)

# Unexpected values and row ids kept per failed expectation in ValidationOutcome.failed.
SAMPLE_SIZE = 5

# Unexpected values that Great Expectations collects per expectation for the full result.
PARTIAL_UNEXPECTED_COUNT = 20

_EXCEPTION_MESSAGE_CHARS = 300

_validation_lock = threading.Lock()


@dataclass
class ValidationOutcome:
    """The result of one suite on one DataFrame, in the form the flows publish.

    Attributes:
        suite_name: Name of the suite that ran ("packets", "windows").
        success: True when every expectation passed.
        evaluated: Number of expectations evaluated.
        failed: One dict per failed expectation, in the order GX reports them,
            with these keys:

            * ``expectation``: the GX expectation type, e.g.
              ``"expect_column_values_to_not_be_null"``.
            * ``column``: the column checked, or None for table-level and
              multi-column expectations.
            * ``details``: a JSON-able dict with whichever of these apply:
              ``unexpected_count``, ``unexpected_percent``, ``observed_value``,
              ``sample`` (unexpected values), ``rows`` (the row ids and value
              of each sampled row), ``columns`` (of a multi-column
              expectation), ``condition`` (the row condition) and
              ``exception`` (the error message when the check raised).
        result: The Great Expectations validation result as a JSON-able dict.
            Passed expectations carry only their success flag, and failed
            ones carry the detailed result of the second pass.
    """

    suite_name: str
    success: bool
    evaluated: int
    failed: list[dict] = field(default_factory=list)
    result: dict = field(default_factory=dict)


def validate_dataframe(df: Any, suite: gx.ExpectationSuite) -> ValidationOutcome:
    """Validate a DataFrame against a suite, choosing the engine from the DataFrame's type.

    The suite runs twice at most. The first pass checks only whether each
    expectation is met, which Spark computes with a few aggregate jobs. When
    some fail, a second pass reruns only those and collects unexpected values
    and the ids of the rows that hold them.

    Args:
        df: A ``pandas.DataFrame`` or a ``pyspark.sql.DataFrame`` (classic or
            Spark Connect). A Spark DataFrame is validated with the Spark
            session that is active, which must be the one that made ``df``.
        suite: The suite to run. It is copied, never modified or bound to a
            context. When its ``meta["row_id_columns"]`` names columns and
            ``df`` has them all, they identify the rows in failure samples.

    Returns:
        The outcome. A failed expectation, including one that raised because a
        column is missing, is reported in ``failed`` and never raised.

    Raises:
        TypeError: If ``df`` is neither a pandas nor a Spark DataFrame.
    """
    engine = _engine_for(df)
    run_name = f"{suite.name}-{engine}-{uuid.uuid4().hex[:12]}"

    started = time.perf_counter()
    with _validation_lock:
        result, detailed_failures = _run_in_ephemeral_context(df, suite, engine, run_name)
    elapsed_s = time.perf_counter() - started

    outcome = _summarise(suite, result, detailed_failures)
    logger.info(
        "Suite %r on a %s DataFrame: %s, %d expectations evaluated, %d failed, %.2f s.",
        outcome.suite_name,
        engine,
        "passed" if outcome.success else "failed",
        outcome.evaluated,
        len(outcome.failed),
        elapsed_s,
    )
    for failure in outcome.failed:
        logger.warning(
            "Suite %r: %s failed on column %s: %s",
            outcome.suite_name,
            failure["expectation"],
            failure["column"],
            failure["details"],
        )
    return outcome


def _engine_for(df: Any) -> str:
    """Return "pandas" or "spark" for a DataFrame, or raise TypeError."""
    if isinstance(df, pd.DataFrame):
        return "pandas"

    try:
        from pyspark.sql import DataFrame as SparkDataFrame
    except ImportError:
        SparkDataFrame = None

    if SparkDataFrame is not None and isinstance(df, SparkDataFrame):
        return "spark"

    raise TypeError(
        "df must be a pandas.DataFrame or a pyspark.sql.DataFrame; "
        f"received {type(df).__module__}.{type(df).__qualname__}."
    )


def _detail_result_format(df: Any, suite: gx.ExpectationSuite) -> dict:
    """Ask for unexpected values, with row ids from the suite's meta where df has those columns."""
    requested = (suite.meta or {}).get("row_id_columns") or []
    present = [column for column in requested if column in df.columns]

    result_format: dict = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT,
    }
    # GX raises on every expectation when a listed id column is missing, so the
    # ids are requested only when df has all of them.
    if present and len(present) == len(requested):
        result_format["unexpected_index_column_names"] = present
    return result_format


def _run_in_ephemeral_context(
    df: Any, suite: gx.ExpectationSuite, engine: str, run_name: str
) -> tuple[ExpectationSuiteValidationResult, list[ExpectationValidationResult]]:
    """Run both passes on ``df`` in a fresh ephemeral context, then restore the previous one.

    Returns:
        The first pass's result over the whole suite, and the second pass's
        results for the expectations that failed (empty when none failed).
    """
    try:
        previous_context = project_manager.get_current_project()
    except DataContextRequiredError:
        previous_context = None

    try:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)

        if engine == "spark":
            # persist=False: GX would otherwise cache the caller's DataFrame and leave it cached.
            data_source = context.data_sources.add_spark(name=run_name, persist=False)
        else:
            data_source = context.data_sources.add_pandas(name=run_name)
        asset = data_source.add_dataframe_asset(name=run_name)
        batch_definition = asset.add_batch_definition_whole_dataframe(name=run_name)

        registered_suite = context.suites.add(copy.deepcopy(suite))
        first_pass = _run_suite(
            df, batch_definition, registered_suite, run_name, {"result_format": "BOOLEAN_ONLY"}
        )

        failed_ids = {result.expectation_config.id for result in first_pass.results if not result.success}
        if not failed_ids:
            return first_pass, []

        failed_expectations = [
            expectation.copy(update={"id": None})
            for expectation in registered_suite.expectations
            if expectation.id in failed_ids
        ]
        detail_suite = context.suites.add(
            gx.ExpectationSuite(name=f"{suite.name}-failed-{run_name}", expectations=failed_expectations)
        )
        second_pass = _run_suite(
            df, batch_definition, detail_suite, f"{run_name}-failed", _detail_result_format(df, suite)
        )
        return first_pass, list(second_pass.results)
    finally:
        set_context(previous_context)


def _run_suite(
    df: Any,
    batch_definition: Any,
    suite: gx.ExpectationSuite,
    name: str,
    result_format: dict,
) -> ExpectationSuiteValidationResult:
    validation_definition = gx.ValidationDefinition(data=batch_definition, suite=suite, name=name)
    return validation_definition.run(batch_parameters={"dataframe": df}, result_format=result_format)


def _summarise(
    suite: gx.ExpectationSuite,
    result: ExpectationSuiteValidationResult,
    detailed_failures: list[ExpectationValidationResult],
) -> ValidationOutcome:
    """Condense both passes into a ValidationOutcome.

    Each failed result of the first pass is replaced, in the published result
    too, by its detailed counterpart from the second pass, matched by
    expectation type and arguments.
    """
    details_by_key = {_expectation_key(detail): detail for detail in detailed_failures}

    failed: list[dict] = []
    published = convert_to_json_serializable(result.to_json_dict())
    for index, expectation_result in enumerate(result.results):
        if expectation_result.success:
            continue

        detailed = details_by_key.get(_expectation_key(expectation_result), expectation_result)
        failed.append(_describe_failure(detailed))
        published["results"][index] = convert_to_json_serializable(detailed.to_json_dict())

    return ValidationOutcome(
        suite_name=suite.name,
        success=bool(result.success),
        evaluated=len(result.results),
        failed=failed,
        result=published,
    )


def _expectation_key(expectation_result: ExpectationValidationResult) -> str:
    """Identify an expectation across passes by its type and arguments, less the batch id."""
    configuration = expectation_result.expectation_config
    kwargs = {key: value for key, value in configuration.kwargs.items() if key != "batch_id"}
    return json.dumps(
        {"type": configuration.type, "kwargs": convert_to_json_serializable(kwargs)},
        sort_keys=True,
        default=repr,
    )


def _describe_failure(expectation_result: ExpectationValidationResult) -> dict:
    """Describe one failed expectation as ``{"expectation", "column", "details"}``."""
    as_json = expectation_result.to_json_dict()
    configuration = as_json.get("expectation_config") or {}
    kwargs = configuration.get("kwargs") or {}
    result = as_json.get("result") or {}

    details: dict = {}

    for key in ("unexpected_count", "unexpected_percent", "observed_value"):
        if result.get(key) is not None:
            details[key] = result[key]

    if result.get("partial_unexpected_list"):
        details["sample"] = result["partial_unexpected_list"][:SAMPLE_SIZE]
    if result.get("partial_unexpected_index_list"):
        details["rows"] = result["partial_unexpected_index_list"][:SAMPLE_SIZE]

    columns = _columns_of(kwargs)
    if columns:
        details["columns"] = columns

    row_condition = kwargs.get("row_condition")
    if row_condition is not None:
        # A condition object's repr reads like SQL: "(ip_proto IN (6, 17) AND is_fragment == False)".
        details["condition"] = repr(deserialize_row_condition(row_condition))

    message = _exception_message(as_json.get("exception_info"))
    if message:
        details["exception"] = message

    return {
        "expectation": configuration.get("type"),
        "column": kwargs.get("column"),
        # Row ids from pandas can be numpy integers, which json.dumps rejects.
        "details": convert_to_json_serializable(details),
    }


def _columns_of(kwargs: dict) -> list[str]:
    """Return the columns of a pair or multi-column expectation, or [] for others."""
    if "column_list" in kwargs:
        return list(kwargs["column_list"])
    if "column_A" in kwargs and "column_B" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return []


def _exception_message(exception_info: Any) -> str | None:
    """Return the first exception message of a result, shortened, or None when nothing raised.

    GX stores either one ``{"raised_exception", "exception_message", ...}`` dict
    or a dict of them keyed by metric id.
    """
    if not isinstance(exception_info, dict):
        return None

    candidates = [exception_info, *[value for value in exception_info.values() if isinstance(value, dict)]]
    for candidate in candidates:
        if candidate.get("raised_exception") and candidate.get("exception_message"):
            return str(candidate["exception_message"])[:_EXCEPTION_MESSAGE_CHARS]
    return None
