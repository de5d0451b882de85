"""netae's configuration: one pydantic-settings model, read from ``NETAE_*`` variables.

Every field can be set in the environment (``NETAE_WINDOW_LENGTH=64``) and most
have a command-line flag as well. Secrets (the S3 keys) come only from the
environment and are held as ``SecretStr``, so they never show in ``repr``, logs or
reports.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from objectstore import ObjectStore, open_store
from objectstore.factory import STORAGE_SCHEMES


class NetaeSettings(BaseSettings):
    """All settings of a netae run; defaults give the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="NETAE_", extra="ignore")

    storage_url: str = Field(
        "file://./netae-data",
        description="Root of all data: file://FOLDER (embedded default) or s3://BUCKET[/PREFIX].",
    )
    s3_endpoint: str | None = Field(None, description="host:port of the S3-compatible server (MinIO).")
    s3_access_key: SecretStr | None = Field(None, description="S3 access key; from the environment only.")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret key; from the environment only.")
    s3_secure: bool = Field(False, description="Use HTTPS for the S3 endpoint.")
    s3_region: str = Field("us-east-1", description="S3 region sent with every request.")

    captures_prefix: str = Field("captures/", description="Key prefix under which captures land.")
    spark_master: str = Field("local[*]", description="Spark master URL, e.g. local[*] or spark://host:7077.")
    spark_driver_memory: str = Field("2g", description="Spark driver memory (JVM size string).")
    spark_shuffle_partitions: int = Field(8, ge=1, le=100_000, description="spark.sql.shuffle.partitions.")

    window_length: int = Field(32, ge=4, le=4096, description="Frames per window.")
    window_stride: int = Field(8, ge=1, le=4096, description="Frames between the starts of two windows.")
    training_window_stride: int | None = Field(
        None, ge=1, le=4096,
        description="Frames between the starts of two training windows. Unset means window_stride. "
        "1, or any stride with no common factor with window_stride, shows the models every phase "
        "of strictly alternating request/reply traffic.",
    )
    train_fraction: float = Field(0.6, gt=0.0, lt=1.0, description="Share of each capture, in time order, used for fitting.")
    validation_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share after the training part used to calibrate thresholds."
    )

    threshold_k: float = Field(3.0, gt=0.0, le=100.0, description="k in the threshold mean + k * std of normal error.")
    epochs: int = Field(20, ge=1, le=10_000, description="Maximum training epochs per model.")
    batch_size: int = Field(64, ge=1, le=65_536, description="Windows per training batch.")
    early_stopping_patience: int = Field(3, ge=1, le=1000, description="Epochs without validation improvement before stopping.")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam learning rate.")
    lstm_units: int = Field(32, ge=1, le=4096, description="Units of each LSTM layer.")
    conv_filters: int = Field(32, ge=1, le=4096, description="Filters of the first Conv1D layer.")
    conv_kernel_size: int = Field(5, ge=1, le=255, description="Conv1D kernel size, in frames.")
    seed: int = Field(42, ge=0, description="Seed for TensorFlow, NumPy and Python random generators.")

    heatmap_hosts: int = Field(15, ge=2, le=200, description="Hosts per axis of the IP-to-IP heatmap.")
    capture_chunk_mb: int = Field(
        256, ge=1, le=1_048_576,
        description="Classic pcaps larger than this many MiB are split into chunks that executors decode in parallel.",
    )

    retrain_cron: str = Field(
        "0 2 * * *",
        description="Cron schedule (5 fields) of the nightly retrain deployment that `netae serve` serves.",
    )
    timezone: str = Field("UTC", description="IANA time zone of retrain_cron, e.g. UTC or Europe/Berlin.")
    train_on_lake_history: bool = Field(
        True,
        description="Train on the lake partitions of captures that earlier runs consumed, besides the new ones.",
    )

    feature_set: Literal["paper", "service", "stats", "flow"] = Field(
        "paper",
        description="Features per row: paper (per-frame fields), service (paper with the server port "
        "and the frame's direction instead of raw ports), stats (damped statistics per host, "
        "host pair and socket) or flow (one row per flow).",
    )
    scaler: Literal["minmax", "standard"] = Field(
        "minmax", description="Scaler of numeric features, fitted on the training split: minmax or standard."
    )
    out_of_range: Literal["clip", "flag"] = Field(
        "clip",
        description="Numeric values outside the training range: clip them to it, or keep them (flag); "
        "both are counted per split.",
    )
    window_mode: Literal["capture", "host"] = Field(
        "capture", description="Cut windows per capture, or per source host within each capture."
    )
    drift_psi_max: float = Field(
        0.25, gt=0.0, le=100.0, description="Population stability index above which a feature counts as drifted."
    )
    drift_ks_max: float = Field(
        0.2, gt=0.0, le=1.0, description="Binned Kolmogorov-Smirnov distance above which a feature counts as drifted."
    )
    threshold_method: Literal["mean_k_std", "quantile", "pot"] = Field(
        "mean_k_std",
        description="How thresholds are set on normal validation windows: mean + k std, an empirical quantile, "
        "or peaks over threshold (generalised Pareto tail).",
    )
    target_false_alarm_rate: float = Field(
        0.01, gt=0.0, lt=0.5, description="Share of normal windows the quantile and pot thresholds may flag."
    )
    pot_initial_quantile: float = Field(
        0.8, gt=0.5, lt=1.0, description="Quantile of normal validation scores above which pot fits its tail."
    )
    promotion_margin: float = Field(
        0.02, ge=0.0, le=1.0,
        description="Largest PR-AUC loss against the champion on the same windows that still promotes a new model.",
    )
    run_baselines: bool = Field(
        True, description="Also fit IsolationForest and the z-score baseline and report them beside the autoencoders."
    )

    @field_validator("storage_url")
    @classmethod
    def _check_storage_scheme(cls, value: str) -> str:
        # Checked here as well as in the store factory, so a bad URL stops before a flow starts.
        scheme = urlparse(value).scheme
        if scheme not in STORAGE_SCHEMES:
            raise ValueError(f"unsupported storage scheme {scheme!r}: use file://FOLDER, a folder path or s3://BUCKET[/PREFIX]")
        return value

    @field_validator("retrain_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(
                f"retrain_cron must have 5 fields (minute hour day-of-month month day-of-week), got {value!r}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone must be an IANA time zone name such as UTC or Europe/Berlin, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _check_fractions(self) -> NetaeSettings:
        total = self.train_fraction + self.validation_fraction
        if total >= 1.0:
            raise ValueError(
                "train_fraction + validation_fraction (NETAE_TRAIN_FRACTION, NETAE_VALIDATION_FRACTION) must be below 1 "
                "to leave a test part, "
                f"got {self.train_fraction} + {self.validation_fraction} = {total}"
            )
        if self.window_stride > self.window_length:
            raise ValueError(
                f"window_stride ({self.window_stride}, NETAE_WINDOW_STRIDE) must not exceed window_length "
                f"({self.window_length}, NETAE_WINDOW_LENGTH), "
                "or frames between windows would never be scored"
            )
        if self.training_window_stride is not None and self.training_window_stride > self.window_stride:
            raise ValueError(
                f"invalid training_window_stride ({self.training_window_stride}): it must not exceed window_stride "
                f"({self.window_stride}), because training windows start at least as often as scored ones. "
                "Lower NETAE_TRAINING_WINDOW_STRIDE or raise NETAE_WINDOW_STRIDE."
            )
        return self

    def open_store(self) -> ObjectStore:
        """Open the object store that ``storage_url`` names, with the S3 settings."""
        return open_store(
            self.storage_url,
            s3_endpoint=self.s3_endpoint,
            s3_access_key=self.s3_access_key.get_secret_value() if self.s3_access_key else None,
            s3_secret_key=self.s3_secret_key.get_secret_value() if self.s3_secret_key else None,
            s3_secure=self.s3_secure,
            s3_region=self.s3_region,
        )
