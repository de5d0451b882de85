"""The "packets" suite: the contract of the packet table, as Great Expectations code.

The suite is engine-neutral. Type checks list Spark and pandas type names
together (see ``expectations.column_types``), and row conditions are Great
Expectations condition objects (``Column("ip_version").is_not_null()``), which
GX 1.24 translates into a pandas query or a Spark SQL filter for whichever
engine runs the suite. The legacy string conditions with a ``condition_parser``
are deprecated since GX 1.9 and would tie the suite to one engine.

NOTE: The order of frames within a capture is not checked. Row order is not a
property of a Spark DataFrame or of a partitioned Parquet dataset, so the suite
checks what an unordered table can show: ``(capture_id, frame_number)`` is
unique and frame numbers start at 1.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from expectations.column_types import type_names_for_field
from spark_jobs.decoder.wireshark_csv import CSV_LINK_TYPE
from spark_jobs.packet_schema import PACKET_FIELDS

PACKET_SUITE_NAME = "packets"

# Columns that identify a row in failure samples: validate_dataframe reads this from the suite's meta.
PACKET_ROW_ID_COLUMNS: list[str] = ["capture_id", "frame_number"]

# Columns that every frame has, whatever its protocols.
REQUIRED_COLUMNS: list[str] = [
    "capture_id",
    "frame_number",
    "timestamp_ns",
    "frame_len",
    "cap_len",
    "protocol",
]

# Fields set on every IP packet, whatever the input format.
IP_FIELD_COLUMNS: list[str] = ["src_addr", "dst_addr", "is_fragment"]

# IP header fields set on every IP packet decoded from a capture. Rows from a
# Wireshark CSV export (link_type CSV_LINK_TYPE) never have the TTL, and have
# the protocol number only where the export names TCP or UDP.
IP_HEADER_COLUMNS: list[str] = ["ip_proto", "ttl"]

IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
MAX_PORT = 65535
MAX_TTL = 255


def packet_suite() -> gx.ExpectationSuite:
    """Build the suite that every packet table must pass.

    The suite checks:
        * every column of ``PACKET_SCHEMA`` exists and has the schema's type;
        * the columns every frame has are not null;
        * ``(capture_id, frame_number)`` is unique, frame numbers start at 1 and
          inter-arrival times are not negative;
        * ``cap_len <= frame_len``;
        * ports lie in 0..65535, TTL in 0..255, ``ip_version`` in {4, 6} and
          ``label`` in {0, 1}, each with nulls allowed;
        * nulls appear only where the frame's protocols have no such field.
          Addresses and the fragment flag are set on every IP packet. The
          transport protocol number and TTL are set on every IP packet decoded
          from a capture, because a Wireshark CSV export lacks them. Both ports
          are set on every TCP or UDP packet that is not an IP fragment,
          because only fragments may lack a transport header.

    The suite belongs to no Great Expectations context, so building it needs no
    context and it can be validated any number of times.

    Returns:
        A new suite named ``"packets"``.
    """
    expectations: list[gxe.Expectation] = []

    expectations.extend(_schema_expectations())
    expectations.extend(_identity_expectations())
    expectations.extend(_range_expectations())
    expectations.extend(_protocol_null_expectations())

    return gx.ExpectationSuite(
        name=PACKET_SUITE_NAME,
        expectations=expectations,
        meta={"row_id_columns": PACKET_ROW_ID_COLUMNS},
    )


def _schema_expectations() -> list[gxe.Expectation]:
    """Expect each schema column to exist with its type, and the always-present ones to be set."""
    expectations: list[gxe.Expectation] = []

    for field in PACKET_FIELDS:
        expectations.append(gxe.ExpectColumnToExist(column=field.name))
        expectations.append(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=field.name, type_list=type_names_for_field(field)
            )
        )

    for column in REQUIRED_COLUMNS:
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column))

    return expectations


def _identity_expectations() -> list[gxe.Expectation]:
    """Expect each frame to be identified once, numbered from 1, with a non-negative gap."""
    return [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["capture_id", "frame_number"]),
        gxe.ExpectColumnValuesToBeBetween(column="frame_number", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="inter_arrival_ns", min_value=0),
    ]


def _range_expectations() -> list[gxe.Expectation]:
    """Expect lengths, ports, TTL, IP version and label within the values the fields can take."""
    return [
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="frame_len", column_B="cap_len", or_equal=True
        ),
        gxe.ExpectColumnValuesToBeBetween(column="src_port", min_value=0, max_value=MAX_PORT),
        gxe.ExpectColumnValuesToBeBetween(column="dst_port", min_value=0, max_value=MAX_PORT),
        gxe.ExpectColumnValuesToBeBetween(column="ttl", min_value=0, max_value=MAX_TTL),
        gxe.ExpectColumnValuesToBeInSet(column="ip_version", value_set=[4, 6]),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
    ]


def _protocol_null_expectations() -> list[gxe.Expectation]:
    """Expect the fields of IP, TCP and UDP to be set on every packet that has those layers."""
    expectations: list[gxe.Expectation] = []

    is_ip_packet = Column("ip_version").is_not_null()
    for column in IP_FIELD_COLUMNS:
        expectations.append(
            gxe.ExpectColumnValuesToNotBeNull(column=column, row_condition=is_ip_packet)
        )

    is_ip_packet_from_capture = is_ip_packet & (Column("link_type") != CSV_LINK_TYPE)
    for column in IP_HEADER_COLUMNS:
        expectations.append(
            gxe.ExpectColumnValuesToNotBeNull(column=column, row_condition=is_ip_packet_from_capture)
        )

    # NOTE: A TCP or UDP frame cut by the snapshot length before its ports (a snaplen
    # under about 38 bytes on Ethernet) has null ports and fails this check.
    # The check above makes is_fragment non-null on every IP packet, so "== False"
    # selects exactly the unfragmented ones on both engines. GX rejects an OR inside
    # an AND, so "== False OR IS NULL" cannot be written here.
    is_unfragmented_tcp_or_udp = Column("ip_proto").is_in([IP_PROTO_TCP, IP_PROTO_UDP]) & (
        Column("is_fragment") == False  # noqa: E712 - builds a GX condition, not a Python test
    )
    for column in ("src_port", "dst_port"):
        expectations.append(
            gxe.ExpectColumnValuesToNotBeNull(column=column, row_condition=is_unfragmented_tcp_or_udp)
        )

    return expectations
