"""The ``service`` feature set: which side of a conversation is the server, and what the rows hold."""

from __future__ import annotations

import typing

import numpy as np
import pandas as pd
import pytest

from flows.settings import NetaeSettings
from spark_jobs.features import FEATURE_SET_NAMES, derive_rows
from spark_jobs.service_features import ACK, NO_SIDE, SYN, server_is_source
from tests.packet_tables import synthetic_packets


def _frames(rows: list[tuple]) -> pd.DataFrame:
    """Packet rows from (source, source port, destination, destination port, protocol, TCP flags).

    Integer columns are float64 with NaN for a missing value, as Arrow hands
    nullable integers to pandas.
    """
    packets = synthetic_packets("c1", len(rows)).to_pandas()
    for column, values in zip(("src_addr", "src_port", "dst_addr", "dst_port", "ip_proto", "tcp_flags"), zip(*rows)):
        numeric = column not in ("src_addr", "dst_addr")
        packets[column] = pd.Series([np.nan if numeric and value is None else value for value in values],
                                    dtype="float64" if numeric else object)
    return packets


def _service(rows: pd.DataFrame) -> list[tuple[int, float]]:
    ports = np.rint(np.expm1(rows["log_service_port"].to_numpy())).astype(int)
    return list(zip(ports.tolist(), rows["from_server"].tolist()))


def test_syn_names_server_on_high_port():
    packets = _frames([
        ("10.0.0.1", 40985, "10.0.0.2", 51000, 6, 0x18),  # mid-stream frame before the handshake of a reused tuple
        ("10.0.0.2", 51000, "10.0.0.1", 40985, 6, SYN),
        ("10.0.0.1", 40985, "10.0.0.2", 51000, 6, SYN | ACK),
        ("10.0.0.2", 51000, "10.0.0.1", 40985, 6, ACK),
    ])

    rows = derive_rows(packets, "service")

    assert _service(rows) == [(40985, 1.0), (40985, 0.0), (40985, 1.0), (40985, 0.0)]


def test_reply_alone_names_its_source_as_the_server():
    packets = _frames([
        ("10.0.0.1", 8080, "10.0.0.2", 1000, 6, SYN | ACK),
        ("10.0.0.2", 1000, "10.0.0.1", 8080, 6, ACK),
    ])

    assert server_is_source(packets).tolist() == [True, False]


def test_handshakeless_server_has_more_peers():
    # The server listens on a port higher than both of its clients' ports.
    packets = _frames([
        ("10.0.0.2", 1000, "10.0.0.1", 5353, 17, None),
        ("10.0.0.1", 5353, "10.0.0.2", 1000, 17, None),
        ("10.0.0.3", 1001, "10.0.0.1", 5353, 17, None),
    ])

    rows = derive_rows(packets, "service")

    assert _service(rows) == [(5353, 0.0), (5353, 1.0), (5353, 0.0)]


def test_peers_of_another_protocol_do_not_count():
    # TCP port 7000 of 10.0.0.1 has two peers. Its UDP port 7000 talks with one client on port 900.
    packets = _frames([
        ("10.0.0.2", 50000, "10.0.0.1", 7000, 6, 0x18),
        ("10.0.0.3", 50001, "10.0.0.1", 7000, 6, 0x18),
        ("10.0.0.1", 7000, "10.0.0.4", 900, 17, None),
    ])

    assert server_is_source(packets).tolist()[2] is False


def test_tie_picks_lower_port():
    packets = _frames([("10.0.0.2", 50000, "10.0.0.1", 53, 17, None), ("10.0.0.1", 53, "10.0.0.2", 50000, 17, None)])

    assert server_is_source(packets).tolist() == [False, True]


def test_frames_without_ports_have_no_side():
    packets = _frames([("10.0.0.1", None, "10.0.0.2", None, 1, None), ("10.0.0.2", 50000, "10.0.0.1", 53, 17, None)])

    rows = derive_rows(packets, "service")

    assert _service(rows) == [(0, NO_SIDE), (53, 0.0)]


def test_client_port_changes_leave_the_features_unchanged():
    first = _frames([("10.0.0.2", 50001, "10.0.0.1", 443, 6, SYN), ("10.0.0.1", 443, "10.0.0.2", 50001, 6, SYN | ACK)])
    second = first.copy()
    second.loc[0, "src_port"], second.loc[1, "dst_port"] = 61234, 61234
    names = ["log_service_port", "from_server", "tcp_flags", "frame_len"]

    same = derive_rows(first, "service")[names].to_numpy()
    moved = derive_rows(second, "service")[names].to_numpy()
    raw = derive_rows(first, "paper")["src_port"].to_numpy(), derive_rows(second, "paper")["src_port"].to_numpy()

    np.testing.assert_array_equal(same, moved)
    assert not np.array_equal(*raw)


def test_rows_replace_only_raw_ports():
    packets = synthetic_packets("c1", 50).to_pandas()

    paper = derive_rows(packets, "paper")
    service = derive_rows(packets, "service")

    assert "src_port" not in service
    assert "dst_port" not in service
    paper_columns = [name for name in paper.columns if name not in ("src_port", "dst_port")]
    pd.testing.assert_frame_equal(service[paper_columns], paper[paper_columns])


@pytest.mark.parametrize("name", ["paper", "service"])
def test_settings_accept_every_feature_set(name):
    assert typing.get_args(NetaeSettings.model_fields["feature_set"].annotation) == FEATURE_SET_NAMES
    assert NetaeSettings(feature_set=name).feature_set == name
