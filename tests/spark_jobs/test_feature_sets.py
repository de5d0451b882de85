"""Feature sets and preprocessing in pandas: encoders, scalers, damped statistics, flows, field cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spark_jobs.decoder import decode_to_table
from spark_jobs.features import FEATURE_SET_NAMES, UNKNOWN_CODE, derive_rows, encode_categories, feature_set, fit_preprocessing, transform
from spark_jobs.flow_features import FLOW_IDLE_TIMEOUT_S, flow_key
from spark_jobs.stats_features import DECAY_LAMBDAS, damped_sums
from tests.packet_tables import synthetic_packets

FEATURE_SETS = FEATURE_SET_NAMES


def _packets(frames: int = 200, seed: int = 0) -> pd.DataFrame:
    return synthetic_packets("c1", frames, seed=seed).to_pandas()


def _fit_pandas(rows: pd.DataFrame, name: str, **options):
    """Fit a state on all of ``rows`` the way the Spark job does on the training split."""
    chosen = feature_set(name)
    numeric = rows[list(chosen.numeric_features)]
    counts = {column: rows[column].astype(str).value_counts().to_dict() for column in chosen.categorical_features}
    return fit_preprocessing(
        numeric.min().to_dict(), numeric.max().to_dict(), counts, window_length=4, window_stride=2,
        feature_set_name=name, numeric_mean=numeric.mean().to_dict(), numeric_std=numeric.std(ddof=0).to_dict(), **options,
    )


def _feature_values(rows: pd.DataFrame, name: str) -> np.ndarray:
    return rows[list(feature_set(name).numeric_features)].to_numpy(np.float64)


def test_unseen_host_gets_unknown_code():
    known = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    codes = encode_categories(pd.Series(["10.0.0.2", "203.0.113.7", "10.0.0.1", "10.0.0.3"]), known)
    assert codes.tolist() == [2, UNKNOWN_CODE, 1, 3]


def test_known_categories_never_share_a_code():
    rows = derive_rows(_packets(300), "paper")
    state = _fit_pandas(rows, "paper")
    for name, values in state.categories.items():
        codes = encode_categories(pd.Series(values), values)
        assert len(set(codes.tolist())) == len(values), name
        assert UNKNOWN_CODE not in codes


@pytest.mark.parametrize("name", ["paper", "flow"])
def test_unseen_protocol_and_host_transform_without_error(name):
    training = derive_rows(_packets(300, seed=1), name)
    state = _fit_pandas(training, name)
    scoring = _packets(50, seed=2)
    scoring["protocol"] = "QUIC"
    scoring["src_addr"] = "198.51.100.77"
    matrix, counts = transform(derive_rows(scoring, name), state)
    assert np.isfinite(matrix).all()
    assert counts["protocol_unknown"] == len(derive_rows(scoring, name))


@pytest.mark.parametrize("scaler", ["minmax", "standard"])
@pytest.mark.parametrize("name", FEATURE_SETS)
def test_constant_columns_give_no_nan(name, scaler):
    packets = _packets(120)
    packets["frame_len"] = 100
    packets["ttl"] = 64
    rows = derive_rows(packets, name)
    matrix, _counts = transform(rows, _fit_pandas(rows, name, scaler=scaler))
    assert np.isfinite(matrix).all()


def test_clip_keeps_unit_range_and_counts():
    rows = derive_rows(_packets(100), "paper")
    state = _fit_pandas(rows, "paper", out_of_range="clip")
    larger = rows.assign(frame_len=rows["frame_len"] + 10_000.0)
    matrix, counts = transform(larger, state)
    assert matrix.min() >= 0.0
    assert matrix.max() <= 1.0
    assert counts["frame_len_out_of_range"] == len(rows)


def test_flag_keeps_values_and_counts():
    rows = derive_rows(_packets(100), "paper")
    state = _fit_pandas(rows, "paper", out_of_range="flag")
    larger = rows.assign(frame_len=rows["frame_len"].max() * 3)
    matrix, counts = transform(larger, state)
    column = state.feature_names.index("frame_len")
    assert matrix[:, column].min() > 1.0
    assert counts["frame_len_out_of_range"] == len(rows)
    assert state.value_bounds() is None


def test_standard_scaler_centres_training_data():
    rows = derive_rows(_packets(400), "paper")
    state = _fit_pandas(rows, "paper", scaler="standard")
    matrix, _counts = transform(rows, state)
    column = state.feature_names.index("frame_len")
    assert matrix[:, column].mean() == pytest.approx(0.0, abs=1e-5)
    assert matrix[:, column].std() == pytest.approx(1.0, rel=1e-4)
    lower, upper = state.value_bounds()
    assert lower <= matrix.min()
    assert matrix.max() <= upper


def test_state_round_trips_through_json():
    rows = derive_rows(_packets(100), "stats")
    state = _fit_pandas(rows, "stats", scaler="standard", window_mode="host")
    document = json.loads(json.dumps(state.to_json()))
    assert type(state).from_json(document) == state


def test_version_one_state_loads_as_minmax_clip():
    state = _fit_pandas(derive_rows(_packets(50), "paper"), "paper").to_json()
    for name in ("scaler", "out_of_range", "window_mode", "numeric_mean", "numeric_std", "baseline", "fitted_rows"):
        state.pop(name)
    state["version"] = 1
    loaded = type(_fit_pandas(derive_rows(_packets(50), "paper"), "paper")).from_json(state)
    assert (loaded.scaler, loaded.out_of_range, loaded.window_mode) == ("minmax", "clip", "capture")


def test_old_state_uses_window_stride_for_training():
    state = _fit_pandas(derive_rows(_packets(50), "paper"), "paper").to_json()
    state.pop("training_window_stride")
    loaded = type(_fit_pandas(derive_rows(_packets(50), "paper"), "paper")).from_json(state)
    assert loaded.training_window_stride is None
    assert loaded.stride_of("train") == loaded.window_stride


def test_unknown_feature_set_is_rejected_naming_choices():
    with pytest.raises(ValueError, match="feature set must be one of paper, service, stats, flow; got 'kitsune'"):
        feature_set("kitsune")


def test_invalid_scaler_is_rejected():
    with pytest.raises(ValueError, match="scaler must be one of minmax, standard; got 'robust'"):
        fit_preprocessing({}, {}, {}, window_length=4, window_stride=2, scaler="robust")


def _naive_damped(times_s, values, decay):
    weight = linear = squares = 0.0
    last = times_s[0]
    out = []
    for time_s, value in zip(times_s, values):
        factor = 2.0 ** (-decay * (time_s - last))
        weight, linear, squares = weight * factor + 1, linear * factor + value, squares * factor + value * value
        last = time_s
        out.append((weight, linear, squares))
    return np.array(out)


def test_damped_sums_match_step_by_step_recurrence():
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.exponential(0.3, size=60))
    values = rng.integers(0, 1500, size=60).astype(float)
    values[5] = 0.0
    weight, linear, squares = damped_sums(times, values, np.asarray(DECAY_LAMBDAS))
    for index, decay in enumerate(DECAY_LAMBDAS):
        expected = _naive_damped(times, values, decay)
        np.testing.assert_allclose(weight[:, index], expected[:, 0], rtol=1e-9)
        np.testing.assert_allclose(linear[:, index], expected[:, 1], rtol=1e-9)
        np.testing.assert_allclose(squares[:, index], expected[:, 2], rtol=1e-9)


def test_damped_sums_survive_a_day_long_gap():
    weight, linear, _squares = damped_sums(np.array([0.0, 86_400.0]), np.array([100.0, 200.0]), np.asarray(DECAY_LAMBDAS))
    assert weight[1, 0] == pytest.approx(1.0)
    assert linear[1, 0] == pytest.approx(200.0)
    assert np.isfinite(weight).all()


def test_stats_host_mean_follows_each_source_only():
    packets = _packets(6)
    packets["src_addr"] = ["a", "b", "a", "b", "a", "b"]
    packets["frame_len"] = [100, 900, 100, 900, 100, 900]
    rows = derive_rows(packets, "stats")
    assert rows["host_l0p01_mean_bytes"].tolist() == pytest.approx([100, 900, 100, 900, 100, 900])
    assert rows["host_l0p01_std_bytes"].tolist() == pytest.approx([0.0] * 6, abs=1e-6)


def _flow_packets() -> pd.DataFrame:
    base = _packets(4)
    base["src_addr"] = ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.1"]
    base["dst_addr"] = ["10.0.0.2", "10.0.0.1", "10.0.0.2", "10.0.0.2"]
    base["src_port"] = [40000, 443, 40000, 40000]
    base["dst_port"] = [443, 40000, 443, 443]
    base["ip_proto"] = 6
    base["vlan_id"] = [None, None, None, 7]
    base["frame_len"] = [60, 1500, 60, 60]
    base["tcp_flags"] = [0x02, 0x12, 0x10, 0x10]
    return base


def test_flow_key_ignores_direction_not_vlan():
    keys = flow_key(_flow_packets())
    assert keys[0] == keys[1] == keys[2]
    assert keys[3] != keys[0]
    assert keys[0] == "-|6|10.0.0.1|40000|10.0.0.2|443"


def test_flow_rows_count_each_direction():
    rows = derive_rows(_flow_packets(), "flow")
    assert len(rows) == 2
    first = rows.iloc[0]
    assert (first["src2dst_packets"], first["dst2src_packets"]) == (2.0, 1.0)
    assert (first["src2dst_bytes"], first["dst2src_bytes"]) == (120.0, 1500.0)
    assert first["bidirectional_syn_packets"] == 2.0
    assert first["bidirectional_ack_packets"] == 2.0
    assert first["host"] == "10.0.0.1"
    assert (first["first_frame"], first["last_frame"]) == (1, 3)


def test_flow_idle_gap_starts_a_new_flow():
    packets = _flow_packets().iloc[:3].copy()
    packets.loc[2, "timestamp_ns"] = packets.loc[1, "timestamp_ns"] + int((FLOW_IDLE_TIMEOUT_S + 1) * 1e9)
    rows = derive_rows(packets, "flow")
    assert rows["first_frame"].tolist() == [1, 3]


@pytest.mark.parametrize("case", ["timestamps-backwards.pcap", "same-timestamp.pcap"])
@pytest.mark.parametrize("name", FEATURE_SETS)
def test_field_case_features_are_finite(shared_cases, case, name):
    table, _summary = decode_to_table(shared_cases / case, capture_id="case", name=case)
    packets = table.to_pandas()
    rows = derive_rows(packets, name)
    assert len(rows) >= 1
    assert np.isfinite(_feature_values(rows, name)).all()
    matrix, _counts = transform(rows, _fit_pandas(rows, name))
    assert np.isfinite(matrix).all()


def test_stats_transform_rejects_packet_rows():
    rows = derive_rows(_packets(50), "stats")
    state = _fit_pandas(rows, "stats")
    with pytest.raises(ValueError, match=r"build them with derive_rows\(packets, 'stats'\) first"):
        transform(_packets(50), state)
