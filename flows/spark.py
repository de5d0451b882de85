"""The Spark session of a flow run, configured from settings."""

from __future__ import annotations

from pyspark.sql import SparkSession

from flows.settings import NetaeSettings
from spark_jobs.session import get_spark


def spark_for(settings: NetaeSettings) -> SparkSession:
    """Return the process's Spark session for ``settings.spark_master``.

    Spark keeps one session per process, so the first call's master and driver
    memory stay in force for the life of the process.
    """
    return get_spark(
        master=settings.spark_master,
        driver_memory=settings.spark_driver_memory,
        shuffle_partitions=settings.spark_shuffle_partitions,
    )
