"""Create the Spark session that every job uses."""

from __future__ import annotations

import logging
import os

from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


def get_spark(
    *,
    master: str = "local[*]",
    app_name: str = "netae",
    driver_memory: str = "2g",
    shuffle_partitions: int = 8,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the active Spark session, creating it on first use.

    The session time zone is UTC so that any timestamp Spark renders matches the
    packet table, whose times are integer nanoseconds in UTC anyway. Arrow is on
    for pandas conversions. ``SPARK_LOCAL_IP`` defaults to 127.0.0.1 for local
    masters so that Spark binds to loopback only.

    Args:
        master: Spark master URL (``local[*]``, ``local[2]``, ``spark://host:7077``).
        app_name: application name shown in the Spark UI.
        driver_memory: JVM heap of the driver; only applies when this call starts the JVM.
        shuffle_partitions: ``spark.sql.shuffle.partitions``.
        extra_conf: further Spark settings, applied last.
    """
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "true")
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    logger.info("Spark session ready: master=%s, version=%s", spark.sparkContext.master, spark.version)
    return spark
