"""The packet suite on packet tables that the project's decoder makes from small field cases.

Each case is a capture that once broke a capture tool. The decoded table must
pass the suite, including the nulls of fields that a frame's protocols lack.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from expectations import packet_suite, validate_dataframe
from spark_jobs.decoder import decode_to_table


CASE_FILES = [
    "no-transport-layer.pcap",  # ARP, LLDP, STP: no IP or port fields
    "ip-fragments.pcap",  # non-first fragments without ports
    "qinq-vlan.pcap",
    "raw-ip-v4-v6.pcap",
    "snaplen-96.pcap",  # cap_len 96 < frame_len 1514
    "tiny-first-frame.pcap",  # a 6-byte malformed frame
    "two-link-types.pcapng",
    "header-only.pcap",  # no frames: an empty table
    "wireshark-export.csv",
]


@pytest.fixture(scope="module")
def cases_directory(shared_cases: Path) -> Path:
    return shared_cases


@pytest.mark.parametrize("case_file", CASE_FILES)
def test_decoded_case_passes_packet_suite(cases_directory, case_file):
    table, _summary = decode_to_table(cases_directory / case_file, capture_id=case_file)

    outcome = validate_dataframe(table.to_pandas(), packet_suite())

    assert outcome.failed == []
    assert outcome.success is True
