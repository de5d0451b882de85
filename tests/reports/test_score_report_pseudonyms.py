"""Keyed pseudonyms of IP and MAC addresses, alone and applied to a whole score report."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest

from reports.pseudonyms import DIGEST_HEX_CHARS, Pseudonymizer
from reports.score_inputs import pseudonymize_inputs
from reports.score_report import render_score_report
from tests.reports.test_score_report_document import make_score_inputs

KEY = "an-example-key-of-32-characters!"
OTHER_KEY = "another-key-also-32-characters!!"


def test_same_address_same_pseudonym_under_one_key():
    first = Pseudonymizer(KEY)
    second = Pseudonymizer(KEY)

    assert first.address("192.0.2.1") == second.address("192.0.2.1")
    assert first.address("192.0.2.1") == first.address("192.0.2.1")


def test_pseudonym_differs_under_another_key():
    assert Pseudonymizer(KEY).address("192.0.2.1") != Pseudonymizer(OTHER_KEY).address("192.0.2.1")


def test_different_addresses_get_different_pseudonyms():
    pseudonymizer = Pseudonymizer(KEY)
    pseudonyms = {pseudonymizer.address(f"10.0.{i // 256}.{i % 256}") for i in range(2000)}

    assert len(pseudonyms) == 2000


def test_pseudonym_is_hmac_sha256_of_family_and_address():
    expected = hmac.new(KEY.encode(), b"ip4|192.0.2.1", hashlib.sha256).hexdigest()[:DIGEST_HEX_CHARS]

    assert Pseudonymizer(KEY).address("192.0.2.1") == f"ip4-{expected}"


def test_address_families_are_prefixed():
    pseudonymizer = Pseudonymizer(KEY)

    assert pseudonymizer.address("192.0.2.1").startswith("ip4-")
    assert pseudonymizer.address("2001:db8::1").startswith("ip6-")
    assert pseudonymizer.address("02:00:00:00:00:05").startswith("mac-")


def test_equal_addresses_in_other_spellings_share_pseudonym():
    pseudonymizer = Pseudonymizer(KEY)

    assert pseudonymizer.address("2001:DB8:0::1") == pseudonymizer.address("2001:db8::1")
    assert pseudonymizer.address("02-00-00-00-00-0A") == pseudonymizer.address("02:00:00:00:00:0a")


def test_text_that_is_no_address_passes_through():
    pseudonymizer = Pseudonymizer(KEY)

    assert pseudonymizer.address("Broadcast") == "Broadcast"
    assert pseudonymizer.address("DNS") == "DNS"
    assert pseudonymizer.address("999.1.1.1") == "999.1.1.1"


def test_addresses_inside_info_text_are_replaced():
    pseudonymizer = Pseudonymizer(KEY)
    info = "Who has 192.0.2.1? Tell 192.0.2.254 (02:00:00:00:00:05), via 2001:db8::7 at 12:30:45"

    replaced = pseudonymizer.text(info)

    for address in ("192.0.2.1", "192.0.2.254", "02:00:00:00:00:05", "2001:db8::7"):
        assert address not in replaced
        assert pseudonymizer.address(address) in replaced
    assert replaced.startswith("Who has ip4-")
    assert replaced.endswith("at 12:30:45")


def test_missing_values_stay_missing_in_a_column():
    column = pd.Series(["192.0.2.1", None, "Broadcast"], dtype="object")

    mapped = Pseudonymizer(KEY).column(column)

    assert mapped.iloc[0].startswith("ip4-")
    assert mapped.iloc[1] is None
    assert mapped.iloc[2] == "Broadcast"


def test_short_key_is_rejected():
    with pytest.raises(ValueError, match="at least 16 bytes, got 5; set NETAE_PSEUDONYM_KEY"):
        Pseudonymizer("short")


def test_pseudonymized_report_shows_no_original_address():
    inputs = make_score_inputs()
    addresses = set(inputs.packets["src_addr"]) | set(inputs.packets["dst_addr"])
    pseudonymizer = Pseudonymizer(KEY)

    document = render_score_report(pseudonymize_inputs(inputs, pseudonymizer))

    for address in addresses:
        assert f">{address}<" not in document
        assert f"{address} (" not in document
    assert "192.0.2.10" not in document  # inside the Info text of frame 3
    assert pseudonymizer.address("192.0.2.10") in document
    assert 'data-pseudonymized="true"' in document


def test_report_pseudonyms_stable_across_renders_with_one_key():
    inputs = make_score_inputs()
    first = render_score_report(pseudonymize_inputs(inputs, Pseudonymizer(KEY)))
    second = render_score_report(pseudonymize_inputs(inputs, Pseudonymizer(KEY)))
    other = render_score_report(pseudonymize_inputs(inputs, Pseudonymizer(OTHER_KEY)))

    busiest = inputs.packets["src_addr"].value_counts().index[0]
    assert Pseudonymizer(KEY).address(busiest) in first
    assert Pseudonymizer(KEY).address(busiest) in second
    assert Pseudonymizer(KEY).address(busiest) not in other
    assert Pseudonymizer(OTHER_KEY).address(busiest) in other
