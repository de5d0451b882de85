"""The packet suite on hand-built packet tables, validated with pandas and with Spark.

Frames are built as pyarrow tables with ``PACKET_SCHEMA``. The pandas frames
come from ``Table.to_pandas()``, and the Spark frames from a Parquet file of the
table read back by Spark.
"""

from __future__ import annotations

import json
import os

import great_expectations as gx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from great_expectations.data_context.data_context.context_factory import project_manager

from expectations import ValidationOutcome, packet_suite, validate_dataframe
from spark_jobs.packet_schema import PACKET_COLUMNS, PACKET_SCHEMA

T0_NS = 1_733_300_000 * 1_000_000_000

STACK_ENVIRONMENT = {
    "SPARK_LOCAL_IP": "127.0.0.1",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_CPP_MIN_LOG_LEVEL": "1",
}


def frame_row(frame_number: int, **fields) -> dict:
    """Return one packet row: the always-present fields set, every other field null unless given."""
    row = {column: None for column in PACKET_COLUMNS}
    row.update(
        capture_id="capture-a",
        frame_number=frame_number,
        timestamp_ns=T0_NS + frame_number * 1_000,
        inter_arrival_ns=1_000,
        timestamp_backwards=False,
        interface_id=0,
        link_type=1,
        snaplen_cut=False,
        malformed=False,
        src_mac="02:00:00:00:00:01",
        dst_mac="02:00:00:00:00:02",
    )
    row.update(fields)
    return row


def tcp_row(frame_number: int, **fields) -> dict:
    """Return an IPv4 TCP SYN from 192.0.2.10:40000 to 198.51.100.20:443."""
    values = dict(
        frame_len=74,
        cap_len=74,
        eth_type=0x0800,
        src_addr="192.0.2.10",
        dst_addr="198.51.100.20",
        ip_version=4,
        ip_proto=6,
        ttl=64,
        ip_id=100 + frame_number,
        is_fragment=False,
        src_port=40000,
        dst_port=443,
        tcp_flags=0x02,
        tcp_window=64240,
        payload_len=0,
        protocol="TCP",
    )
    values.update(fields)
    return frame_row(frame_number, **values)


def udp_row(frame_number: int, **fields) -> dict:
    """Return an IPv6 UDP DNS query from [2001:db8::1]:5353 to [2001:db8::2]:53."""
    values = dict(
        frame_len=90,
        cap_len=90,
        eth_type=0x86DD,
        src_addr="2001:db8::1",
        dst_addr="2001:db8::2",
        ip_version=6,
        ip_proto=17,
        ttl=255,
        is_fragment=False,
        src_port=5353,
        dst_port=53,
        payload_len=28,
        protocol="DNS",
    )
    values.update(fields)
    return frame_row(frame_number, **values)


def arp_row(frame_number: int, **fields) -> dict:
    """Return an ARP request: MAC addresses in the address columns, every IP and port field null."""
    values = dict(
        frame_len=42,
        cap_len=42,
        dst_mac="ff:ff:ff:ff:ff:ff",
        eth_type=0x0806,
        src_addr="02:00:00:00:00:01",
        dst_addr="ff:ff:ff:ff:ff:ff",
        protocol="ARP",
    )
    values.update(fields)
    return frame_row(frame_number, **values)


def valid_rows() -> list[dict]:
    """Return two TCP, one UDP and one ARP frame that satisfy every packet expectation."""
    return [tcp_row(1), udp_row(2), arp_row(3), tcp_row(4, tcp_flags=0x12, label=0)]


def packet_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PACKET_SCHEMA)


def packet_frame(rows: list[dict]) -> pd.DataFrame:
    return packet_table(rows).to_pandas()


def failures_on(outcome: ValidationOutcome, column: str) -> list[dict]:
    return [failure for failure in outcome.failed if failure["column"] == column]


def failure_types(outcome: ValidationOutcome) -> set[str]:
    return {failure["expectation"] for failure in outcome.failed}


# --- pandas -----------------------------------------------------------------


def test_valid_frame_passes_on_pandas():
    outcome = validate_dataframe(packet_frame(valid_rows()), packet_suite())

    assert outcome.failed == []
    assert outcome.success is True
    assert outcome.suite_name == "packets"
    assert outcome.evaluated == len(packet_suite().expectations)


def test_valid_frame_with_nullable_dtypes_passes_on_pandas():
    nullable_dtypes = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): pd.StringDtype(),
    }
    frame = packet_table(valid_rows()).to_pandas(types_mapper=nullable_dtypes.get)

    outcome = validate_dataframe(frame, packet_suite())

    assert outcome.failed == []


def test_empty_table_passes_on_pandas():
    outcome = validate_dataframe(packet_frame([]), packet_suite())

    assert outcome.success is True


def test_tcp_null_src_addr_fails():
    rows = valid_rows()
    rows[0]["src_addr"] = None

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert outcome.success is False
    [failure] = outcome.failed
    assert failure["column"] == "src_addr"
    assert failure["expectation"] == "expect_column_values_to_not_be_null"
    assert failure["details"]["unexpected_count"] == 1
    assert failure["details"]["condition"] == "ip_version IS NOT NULL"
    assert failure["details"]["rows"][0]["frame_number"] == 1
    assert failure["details"]["rows"][0]["capture_id"] == "capture-a"


def test_port_70000_fails_naming_dst_port():
    rows = valid_rows()
    rows[1]["dst_port"] = 70000

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert outcome.success is False
    [failure] = outcome.failed
    assert failure["column"] == "dst_port"
    assert failure["expectation"] == "expect_column_values_to_be_between"
    assert failure["details"]["sample"] == [70000]
    assert failure["details"]["rows"][0]["frame_number"] == 2


def test_negative_src_port_fails_naming_src_port():
    rows = valid_rows()
    rows[0]["src_port"] = -1

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert [failure["column"] for failure in outcome.failed] == ["src_port"]


def test_cap_len_above_frame_len_fails():
    rows = valid_rows()
    rows[2]["cap_len"] = 60  # frame_len is 42

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert outcome.success is False
    [failure] = outcome.failed
    assert failure["expectation"] == "expect_column_pair_values_a_to_be_greater_than_b"
    assert failure["column"] is None
    assert failure["details"]["columns"] == ["frame_len", "cap_len"]
    assert failure["details"]["sample"] == [[42, 60]]


def test_cap_len_equal_to_frame_len_passes():
    rows = valid_rows()
    rows[0]["cap_len"] = rows[0]["frame_len"]

    assert validate_dataframe(packet_frame(rows), packet_suite()).success is True


def test_unfragmented_udp_without_ports_fails_naming_both_ports():
    rows = valid_rows()
    rows[1]["src_port"] = None
    rows[1]["dst_port"] = None

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert {failure["column"] for failure in outcome.failed} == {"src_port", "dst_port"}
    for failure in outcome.failed:
        assert failure["details"]["condition"] == "(ip_proto IN (6, 17) AND is_fragment == False)"


def test_fragment_without_ports_passes():
    rows = valid_rows()
    rows.append(
        udp_row(5, ip_version=4, src_addr="192.0.2.1", dst_addr="192.0.2.2", ttl=64,
                ip_id=4242, is_fragment=True, src_port=None, dst_port=None, protocol="IPv4")
    )

    assert validate_dataframe(packet_frame(rows), packet_suite()).success is True


def test_ip_null_fragment_flag_fails():
    rows = valid_rows()
    rows[0]["is_fragment"] = None

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert [failure["column"] for failure in outcome.failed] == ["is_fragment"]


@pytest.mark.parametrize("column", ["ttl", "ip_proto"])
def test_captured_ip_null_header_field_fails(column):
    rows = valid_rows()
    rows[0][column] = None

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    [failure] = outcome.failed
    assert failure["column"] == column
    assert failure["details"]["condition"] == "(ip_version IS NOT NULL AND link_type != -1)"


def test_csv_row_without_ttl_passes():
    rows = valid_rows()
    rows.append(udp_row(5, link_type=-1, ttl=None, ip_proto=None, src_port=None, dst_port=None))

    assert validate_dataframe(packet_frame(rows), packet_suite()).success is True


@pytest.mark.parametrize(
    ("column", "bad_value"),
    [("ip_version", 5), ("ttl", 256), ("label", 2), ("frame_number", 0), ("inter_arrival_ns", -5)],
)
def test_out_of_range_value_fails_naming_column(column, bad_value):
    rows = valid_rows()
    rows[0][column] = bad_value

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert outcome.success is False
    assert [failure["column"] for failure in outcome.failed] == [column]


@pytest.mark.parametrize("column", ["capture_id", "timestamp_ns", "frame_len", "cap_len", "protocol"])
def test_null_in_required_column_fails_naming_column(column):
    table = packet_table(valid_rows())
    frame = table.to_pandas()
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = None

    outcome = validate_dataframe(frame, packet_suite())

    assert outcome.success is False
    assert any(
        failure["expectation"] == "expect_column_values_to_not_be_null"
        for failure in failures_on(outcome, column)
    )


def test_duplicate_frame_number_in_one_capture_fails():
    rows = valid_rows()
    rows[3]["frame_number"] = 1

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    assert failure_types(outcome) == {"expect_compound_columns_to_be_unique"}
    [failure] = outcome.failed
    assert failure["details"]["columns"] == ["capture_id", "frame_number"]
    assert failure["details"]["unexpected_count"] == 2


def test_same_frame_number_in_two_captures_passes():
    rows = valid_rows() + [tcp_row(1, capture_id="capture-b")]

    assert validate_dataframe(packet_frame(rows), packet_suite()).success is True


def test_missing_column_fails_naming_it():
    frame = packet_frame(valid_rows()).drop(columns=["ttl"])

    outcome = validate_dataframe(frame, packet_suite())

    assert outcome.success is False
    assert {failure["column"] for failure in outcome.failed} == {"ttl"}
    assert "expect_column_to_exist" in failure_types(outcome)


def test_wrong_column_type_fails_naming_column():
    frame = packet_frame(valid_rows())
    frame["frame_len"] = frame["frame_len"].astype("float64")

    outcome = validate_dataframe(frame, packet_suite())

    [failure] = outcome.failed
    assert failure["column"] == "frame_len"
    assert failure["expectation"] == "expect_column_values_to_be_in_type_list"
    assert failure["details"]["observed_value"] == "float64"


def test_outcome_is_json_serialisable():
    rows = valid_rows()
    rows[0]["src_addr"] = None
    rows[1]["dst_port"] = 70000

    outcome = validate_dataframe(packet_frame(rows), packet_suite())

    published = json.loads(json.dumps({"failed": outcome.failed, "result": outcome.result}))
    assert published["result"]["success"] is False
    assert len(published["result"]["results"]) == outcome.evaluated
    assert {failure["column"] for failure in published["failed"]} == {"src_addr", "dst_port"}


def test_validating_twice_keeps_outcome_and_suite():
    suite = packet_suite()
    suite_before = suite.to_json_dict()
    rows = valid_rows()
    rows[1]["dst_port"] = 70000
    frame = packet_frame(rows)

    first = validate_dataframe(frame, suite)
    second = validate_dataframe(frame, suite)

    assert first.failed == second.failed
    assert [failure["column"] for failure in second.failed] == ["dst_port"]
    assert suite.to_json_dict() == suite_before


def test_validation_restores_the_callers_current_context():
    callers_context = gx.get_context(mode="ephemeral")

    validate_dataframe(packet_frame(valid_rows()), packet_suite())

    assert project_manager.get_current_project() is callers_context


def test_unsupported_frame_type_raises_type_error():
    with pytest.raises(TypeError, match=r"df must be a pandas.DataFrame or a pyspark.sql.DataFrame; received builtins.list\."):
        validate_dataframe(valid_rows(), packet_suite())


# --- Spark -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local[1] Spark session bound to 127.0.0.1, stopped after this module's tests."""
    pyspark_sql = pytest.importorskip("pyspark.sql")

    environment = dict(STACK_ENVIRONMENT, KERAS_HOME=str(tmp_path_factory.mktemp("keras-home")))
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)

    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("netae-expectations-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    yield session
    session.stop()

    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def spark_frame(spark, rows: list[dict], folder):
    """Write the rows as Parquet and read them back with Spark."""
    path = folder / "packets.parquet"
    pq.write_table(packet_table(rows), path)
    return spark.read.parquet(str(path))


def test_valid_frame_passes_on_spark(spark, tmp_path):
    frame = spark_frame(spark, valid_rows(), tmp_path)

    outcome = validate_dataframe(frame, packet_suite())

    assert outcome.failed == []
    assert outcome.success is True
    assert outcome.evaluated == len(packet_suite().expectations)
    assert frame.is_cached is False


def test_faulty_rows_fail_on_spark_naming_each_column(spark, tmp_path):
    rows = valid_rows()
    rows[0]["src_addr"] = None  # TCP without a source address
    rows[1]["dst_port"] = 70000  # port out of range
    rows[2]["cap_len"] = 60  # ARP frame: cap_len 60 > frame_len 42
    rows.append(udp_row(5, src_port=None))  # unfragmented UDP without a source port
    rows.append(udp_row(6, is_fragment=True, src_port=None, dst_port=None))  # fragment: passes
    frame = spark_frame(spark, rows, tmp_path)

    outcome = validate_dataframe(frame, packet_suite())

    assert outcome.success is False
    assert {failure["column"] for failure in outcome.failed} == {"src_addr", "dst_port", "src_port", None}

    [null_address] = failures_on(outcome, "src_addr")
    assert null_address["details"]["condition"] == "ip_version IS NOT NULL"
    assert null_address["details"]["rows"][0]["frame_number"] == 1

    [bad_port] = failures_on(outcome, "dst_port")
    assert bad_port["details"]["sample"] == [70000]

    [missing_port] = failures_on(outcome, "src_port")
    assert missing_port["details"]["condition"] == "(ip_proto IN (6, 17) AND is_fragment == False)"
    assert [row["frame_number"] for row in missing_port["details"]["rows"]] == [5]

    [lengths] = failures_on(outcome, None)
    assert lengths["expectation"] == "expect_column_pair_values_a_to_be_greater_than_b"
    assert lengths["details"]["columns"] == ["frame_len", "cap_len"]


def test_wrong_column_type_fails_on_spark(spark, tmp_path):
    frame = spark_frame(spark, valid_rows(), tmp_path)
    frame = frame.withColumn("frame_number", frame["frame_number"].cast("int"))

    outcome = validate_dataframe(frame, packet_suite())

    [failure] = outcome.failed
    assert failure["column"] == "frame_number"
    assert failure["details"]["observed_value"] == "IntegerType"


def test_empty_table_passes_on_spark(spark, tmp_path):
    frame = spark_frame(spark, [], tmp_path)

    assert validate_dataframe(frame, packet_suite()).success is True


def test_spark_then_pandas_validation_in_one_process(spark, tmp_path):
    suite = packet_suite()
    spark_outcome = validate_dataframe(spark_frame(spark, valid_rows(), tmp_path), suite)

    pandas_outcome = validate_dataframe(packet_frame(valid_rows()), suite)

    assert spark_outcome.success is True
    assert pandas_outcome.success is True
