"""Feature sets, and the fitted preprocessing state that turns feature rows into model input.

A feature set turns the packet rows of one capture into *feature rows*: one row
per frame (``paper``, ``service``, ``stats``) or per flow (``flow``). Every feature row has
the metadata columns of ``ROW_METADATA_COLUMNS`` plus the set's raw numeric and
categorical columns. The sets:

* ``paper``: the published method this project starts from. Per-frame
  inter-arrival time, source, destination, protocol and length, plus ports, TCP
  flags and TTL.
* ``service``: the ``paper`` features with each conversation's server port and
  the frame's direction in place of the two raw ports (see
  ``spark_jobs.service_features``).
* ``stats``: damped incremental statistics per source host, host pair and socket
  (see ``spark_jobs.stats_features``).
* ``flow``: per-flow counters and timings (see ``spark_jobs.flow_features``).

Categorical columns are label-encoded, with code 0 reserved for values never
seen in training. Numeric columns are min-max or standard scaled. Learned state
(category codes, scaler parameters, the drift baseline) lives in
:class:`Preprocessing`. It is fitted on the training split only, saved as JSON
with each model and applied unchanged to later data. This module is pure pandas
and NumPy: the Spark windows job and ad hoc scoring call the same ``transform``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

PREPROCESSING_VERSION = 2
UNKNOWN_CODE = 0
MAX_CATEGORIES = 10_000

SCALERS = ("minmax", "standard")
OUT_OF_RANGE_POLICIES = ("clip", "flag")
WINDOW_MODES = ("capture", "host")

# Columns every feature row has, whatever the feature set. ``host`` is the
# frame's source address, or a flow's initiator; host windows group by it.
# ``label`` is 1 when any frame of the row is anomalous, 0 when its frames are
# labelled and none is, and null when the capture has no labels.
ROW_METADATA_COLUMNS: tuple[str, ...] = (
    "capture_id",
    "split",
    "host",
    "first_frame",
    "last_frame",
    "start_ns",
    "end_ns",
    "label",
    "anomalous_frames",
)

# Split given to rows of packets that were never split (ad hoc scoring).
UNSPLIT = "unsplit"

# Numeric features of the ``paper`` set: name -> packet-table column it derives
# from. Missing values (a field the frame's protocol does not have) become 0.
PAPER_NUMERIC_FEATURES: dict[str, str] = {
    "log_inter_arrival_us": "inter_arrival_ns",
    "frame_len": "frame_len",
    "payload_len": "payload_len",
    "src_port": "src_port",
    "dst_port": "dst_port",
    "tcp_flags": "tcp_flags",
    "ttl": "ttl",
}
PAPER_CATEGORICAL_FEATURES: tuple[str, ...] = ("protocol", "src_addr", "dst_addr", "ip_proto")

# Every feature set's name, in the order help texts list them.
FEATURE_SET_NAMES: tuple[str, ...] = ("paper", "service", "stats", "flow")

# Names kept for callers of the first version of this module.
NUMERIC_FEATURES = PAPER_NUMERIC_FEATURES
CATEGORICAL_FEATURES = PAPER_CATEGORICAL_FEATURES
FEATURE_NAMES: tuple[str, ...] = tuple(PAPER_NUMERIC_FEATURES) + PAPER_CATEGORICAL_FEATURES

# Packet-table columns that deriving feature rows may read, for every feature set.
PACKET_COLUMNS_USED: tuple[str, ...] = (
    "capture_id",
    "frame_number",
    "timestamp_ns",
    "inter_arrival_ns",
    "frame_len",
    "payload_len",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "ip_proto",
    "eth_type",
    "vlan_id",
    "tcp_flags",
    "ttl",
    "protocol",
    "label",
)


@dataclass(frozen=True)
class FeatureSet:
    """A named way to turn one capture's packets into feature rows.

    Attributes:
        name: value of ``NETAE_FEATURE_SET``.
        row_unit: ``frame`` (one row per frame) or ``flow`` (one row per flow).
        numeric_features: raw numeric columns of the rows, scaled by the scaler.
        categorical_features: columns label-encoded with an unknown code.
        derive: builds the rows from packet rows of one group (see ``group_by``)
            sorted by time, then frame number.
        group_by: packet columns that Spark groups by before calling ``derive``;
            empty when ``derive`` works row by row. A set whose rows depend on
            earlier frames must group at least by ``capture_id``.
    """

    name: str
    row_unit: str
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    derive: Callable[[pd.DataFrame], pd.DataFrame]
    group_by: tuple[str, ...]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Order of the features in the last tensor axis: numeric, then categorical."""
        return self.numeric_features + self.categorical_features


def packet_row_metadata(packets: pd.DataFrame) -> pd.DataFrame:
    """Return the ``ROW_METADATA_COLUMNS`` of frame-level rows: one row per packet, same index."""
    label = pd.to_numeric(packets["label"], errors="coerce") if "label" in packets else pd.Series(np.nan, index=packets.index)
    split = packets["split"] if "split" in packets else pd.Series(UNSPLIT, index=packets.index)
    return pd.DataFrame(
        {
            "capture_id": packets["capture_id"],
            "split": split,
            "host": packets["src_addr"],
            "first_frame": packets["frame_number"].astype(np.int64),
            "last_frame": packets["frame_number"].astype(np.int64),
            "start_ns": packets["timestamp_ns"].astype(np.int64),
            "end_ns": packets["timestamp_ns"].astype(np.int64),
            "label": label.astype("Int8"),
            "anomalous_frames": label.fillna(0).astype(np.int32),
        },
        index=packets.index,
    )


def numeric_column(packets: pd.DataFrame, column: str) -> np.ndarray:
    """Return a packet column as float64 with missing values as 0."""
    return pd.to_numeric(packets[column], errors="coerce").astype("float64").fillna(0.0).to_numpy()


def category_strings(packets: pd.DataFrame, column: str) -> pd.Series:
    """Return a categorical column as strings, with missing values as the empty string."""
    return packets[column].astype("string").fillna("")


def derive_paper_rows(packets: pd.DataFrame) -> pd.DataFrame:
    """Build ``paper`` feature rows: one per frame, raw numeric values and category strings.

    Inter-arrival time becomes ``log(1 + microseconds)`` so that its heavy tail
    does not squash every other value towards 0 after min-max scaling.
    """
    rows = packet_row_metadata(packets)
    for name, column in PAPER_NUMERIC_FEATURES.items():
        values = numeric_column(packets, column)
        if name == "log_inter_arrival_us":
            values = np.log1p(np.clip(values, 0.0, None) / 1_000.0)
        rows[name] = values
    for name in PAPER_CATEGORICAL_FEATURES:
        rows[name] = category_strings(packets, name)
    return rows


PAPER = FeatureSet(
    name="paper",
    row_unit="frame",
    numeric_features=tuple(PAPER_NUMERIC_FEATURES),
    categorical_features=PAPER_CATEGORICAL_FEATURES,
    derive=derive_paper_rows,
    group_by=(),
)


def feature_set(name: str) -> FeatureSet:
    """Return the feature set called ``name``.

    Raises:
        ValueError: when no set has that name; the message lists the valid names.
    """
    # Imported here because both modules import this one for the row helpers.
    from spark_jobs.flow_features import FLOW
    from spark_jobs.service_features import SERVICE
    from spark_jobs.stats_features import STATS

    sets = {item.name: item for item in (PAPER, SERVICE, STATS, FLOW)}
    if name not in sets:
        raise ValueError(f"feature set must be one of {', '.join(sets)}; got {name!r}")
    return sets[name]


def derive_rows(packets: pd.DataFrame, feature_set_name: str) -> pd.DataFrame:
    """Derive the feature rows of one group of packets, sorted by time, then frame number."""
    ordered = packets.sort_values(["timestamp_ns", "frame_number"], kind="stable").reset_index(drop=True)
    return feature_set(feature_set_name).derive(ordered)


def _check_choice(parameter: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{parameter} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass
class Preprocessing:
    """Fitted encoders, scalers and drift baseline, saved with every model.

    Attributes:
        feature_set: name of the feature set (one of ``FEATURE_SET_NAMES``).
        feature_names: order of the features in the last tensor axis.
        numeric_min: per numeric feature, the minimum seen in training.
        numeric_max: per numeric feature, the maximum seen in training.
        categories: per categorical feature, the values seen in training, most
            frequent first; value ``categories[f][i]`` gets code ``i + 1`` and
            anything else gets the unknown code 0.
        window_length: rows (frames or flows) per window.
        window_stride: rows between window starts.
        scaler: ``minmax`` or ``standard``.
        out_of_range: ``clip`` or ``flag`` (see ``transform``).
        window_mode: ``capture`` or ``host``.
        training_window_stride: rows between the starts of ``train`` split
            windows; None (states saved before this field) means ``window_stride``.
        numeric_mean: per numeric feature, the training mean.
        numeric_std: per numeric feature, the training population standard deviation.
        baseline: per numeric feature, the training distribution that the drift
            suite compares new data with (see ``spark_jobs.feature_baseline``).
        fitted_rows: training rows the state was fitted on.
        version: format version of this state.
        extra: free-form additions that need no new version.
    """

    feature_set: str
    feature_names: list[str]
    numeric_min: dict[str, float]
    numeric_max: dict[str, float]
    categories: dict[str, list[str]]
    window_length: int
    window_stride: int
    scaler: str = "minmax"
    out_of_range: str = "clip"
    window_mode: str = "capture"
    training_window_stride: int | None = None
    numeric_mean: dict[str, float] = field(default_factory=dict)
    numeric_std: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, dict] = field(default_factory=dict)
    fitted_rows: int = 0
    version: int = PREPROCESSING_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def numeric_features(self) -> list[str]:
        """Numeric features, in tensor order."""
        return [name for name in self.feature_names if name in self.numeric_min]

    @property
    def categorical_features(self) -> list[str]:
        """Categorical features, in tensor order."""
        return [name for name in self.feature_names if name in self.categories]

    def to_json(self) -> dict:
        """Return the state as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict) -> Preprocessing:
        """Rebuild the state saved by ``to_json``; version 1 states load as min-max, clip, capture windows.

        Raises:
            ValueError: when the document was written by an unknown version.
        """
        version = document.get("version")
        if version == 1:
            document = {**document, "version": PREPROCESSING_VERSION}
        elif version != PREPROCESSING_VERSION:
            raise ValueError(
                f"preprocessing state version {version!r} is not supported; "
                f"expected 1 or {PREPROCESSING_VERSION}: retrain the model"
            )
        return cls(**document)

    def stride_of(self, split: str | None) -> int:
        """Return the rows between window starts in ``split``.

        Training windows may start more often than scored windows. With a stride
        above 1, windows cut from a strictly periodic exchange (a request and its
        reply, for example) all start at the same phase of it. A model fitted on
        them has never seen the other phases, and later traffic starts at those too.
        """
        if split == "train" and self.training_window_stride is not None:
            return self.training_window_stride
        return self.window_stride

    def value_bounds(self) -> tuple[float, float] | None:
        """Return the smallest and largest value ``transform`` can output, or None when unbounded.

        Unbounded means ``out_of_range`` is ``flag``, which keeps values outside
        the training range.
        """
        if self.out_of_range == "flag":
            return None
        lower, upper = 0.0, 1.0
        if self.scaler == "standard":
            for name in self.numeric_features:
                offset, scale = _standard_parameters(self, name)
                lower = min(lower, (self.numeric_min[name] - offset) / scale)
                upper = max(upper, (self.numeric_max[name] - offset) / scale)
        return lower, upper


def check_training_window_stride(training_window_stride: int | None, window_stride: int) -> None:
    """Check that training windows start every 1 to ``window_stride`` rows.

    None passes, because it means the window stride.

    Raises:
        ValueError: naming the value and the allowed range.
    """
    if training_window_stride is not None and not 1 <= training_window_stride <= window_stride:
        raise ValueError(
            f"invalid training window stride {training_window_stride}: it must be between 1 and the window stride "
            f"({window_stride}). Pass 1 to start a training window at every row."
        )


def fit_preprocessing(
    numeric_min: dict[str, float],
    numeric_max: dict[str, float],
    category_counts: dict[str, dict[str, int]],
    *,
    window_length: int,
    window_stride: int,
    feature_set_name: str = "paper",
    scaler: str = "minmax",
    out_of_range: str = "clip",
    window_mode: str = "capture",
    training_window_stride: int | None = None,
    numeric_mean: dict[str, float] | None = None,
    numeric_std: dict[str, float] | None = None,
    baseline: dict[str, dict] | None = None,
    fitted_rows: int = 0,
) -> Preprocessing:
    """Build the preprocessing state from statistics of the training split.

    A feature with no statistic gets 0 for each of them, so a state fitted on no
    rows still transforms without error.

    Args:
        numeric_min: minimum of each raw numeric feature over the training rows.
        numeric_max: maximum of each raw numeric feature over the training rows.
        category_counts: per categorical feature, row count per value.
        window_length: rows per window.
        window_stride: rows between window starts.
        feature_set_name: the feature set.
        scaler: ``minmax`` or ``standard``.
        out_of_range: ``clip`` or ``flag``.
        window_mode: ``capture`` or ``host``.
        training_window_stride: rows between the starts of training windows;
            None means ``window_stride``.
        numeric_mean: training mean of each numeric feature.
        numeric_std: training population standard deviation of each numeric feature.
        baseline: drift baseline per numeric feature.
        fitted_rows: number of training rows behind the statistics.

    Raises:
        ValueError: when a choice is not one of its allowed values.
    """
    chosen = feature_set(feature_set_name)
    _check_choice("scaler", scaler, SCALERS)
    _check_choice("out_of_range", out_of_range, OUT_OF_RANGE_POLICIES)
    _check_choice("window_mode", window_mode, WINDOW_MODES)
    check_training_window_stride(training_window_stride, window_stride)

    categories = {}
    for name in chosen.categorical_features:
        counts = category_counts.get(name, {})
        ordered = sorted(counts, key=lambda value: (-counts[value], value))
        categories[name] = ordered[:MAX_CATEGORIES]

    def per_feature(values: dict[str, float] | None) -> dict[str, float]:
        return {name: float((values or {}).get(name, 0.0)) for name in chosen.numeric_features}

    return Preprocessing(
        feature_set=chosen.name,
        feature_names=list(chosen.feature_names),
        numeric_min=per_feature(numeric_min),
        numeric_max=per_feature(numeric_max),
        categories=categories,
        window_length=window_length,
        window_stride=window_stride,
        scaler=scaler,
        out_of_range=out_of_range,
        window_mode=window_mode,
        training_window_stride=training_window_stride,
        numeric_mean=per_feature(numeric_mean),
        numeric_std=per_feature(numeric_std),
        baseline=dict(baseline or {}),
        fitted_rows=int(fitted_rows),
    )


def _standard_parameters(state: Preprocessing, name: str) -> tuple[float, float]:
    std = state.numeric_std.get(name, 0.0)
    return state.numeric_mean.get(name, 0.0), (std if std > 0.0 else 1.0)


def _scale(values: np.ndarray, state: Preprocessing, name: str) -> np.ndarray:
    """Scale raw values of one numeric feature; a constant training column scales by 1, never 0."""
    if state.scaler == "standard":
        offset, scale = _standard_parameters(state, name)
    else:
        low, high = state.numeric_min[name], state.numeric_max[name]
        offset, scale = low, (high - low if high > low else 1.0)
    return (values - offset) / scale


def encode_categories(values: pd.Series, known: list[str]) -> np.ndarray:
    """Return the int64 code of each value: ``i + 1`` for ``known[i]``, ``UNKNOWN_CODE`` for anything else."""
    return pd.Categorical(values, categories=known).codes.astype(np.int64) + 1


def transform(rows: pd.DataFrame, state: Preprocessing) -> tuple[np.ndarray, dict[str, int]]:
    """Encode and scale feature rows into model features.

    Numeric features are scaled with the training statistics. With the
    ``minmax`` scaler a column that was constant in training scales by 1, and
    with the ``standard`` scaler a column with zero deviation does too, so
    neither produces NaN. A value outside the training range is clipped to it
    when ``out_of_range`` is ``clip`` and kept as scaled when it is ``flag``;
    either way it is counted. Categorical values are coded 1..n by training
    frequency and divided by n + 1, whatever the scaler. A value never seen in
    training maps to the unknown code 0.

    Args:
        rows: feature rows of ``state.feature_set``, in window order. For the
            ``paper`` set, packet-table rows are accepted too.
        state: fitted preprocessing state.

    Raises:
        ValueError: when ``rows`` lacks numeric features of a set other than ``paper``.

    Returns:
        A float32 array [rows, features], and counts of out-of-range values
        (``<feature>_out_of_range``) and unknown categories (``<feature>_unknown``),
        only for features with a non-zero count.
    """
    missing = [name for name in state.numeric_features if name not in rows.columns]
    if missing and state.feature_set == "paper":
        rows = derive_paper_rows(rows)
    elif missing:
        raise ValueError(
            f"rows lack the {state.feature_set} features {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}; "
            f"build them with derive_rows(packets, {state.feature_set!r}) first"
        )
    columns = []
    counts: dict[str, int] = {}

    for name in state.numeric_features:
        raw = pd.to_numeric(rows[name], errors="coerce").astype("float64").fillna(0.0).to_numpy()
        low, high = state.numeric_min[name], state.numeric_max[name]
        outside = int(np.count_nonzero((raw < low) | (raw > high)))
        if outside:
            counts[f"{name}_out_of_range"] = outside
        if state.out_of_range == "clip":
            raw = np.clip(raw, low, high)
        columns.append(_scale(raw, state, name))

    for name in state.categorical_features:
        known = state.categories[name]
        codes = encode_categories(category_strings(rows, name), known)
        unknown = int(np.count_nonzero(codes == UNKNOWN_CODE))
        if unknown:
            counts[f"{name}_unknown"] = unknown
        columns.append(codes / (len(known) + 1))

    if columns and len(rows):
        matrix = np.column_stack(columns)
    else:
        matrix = np.zeros((len(rows), len(state.feature_names)))
    return matrix.astype(np.float32), counts
