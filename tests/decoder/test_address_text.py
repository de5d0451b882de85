"""Address text written by compiled code equals what the C library's inet_ntop writes."""

from __future__ import annotations

import socket

import numpy as np

from spark_jobs.decoder.address_text import KIND_IPV4, KIND_IPV6, KIND_MAC, KIND_NONE, address_strings

EDGE_IPV6 = [
    "::", "::1", "1::", "::2", "::ffff:1.2.3.4", "::1.2.3.4", "::0.0.0.1", "::ffff:0.0.0.0",
    "1:0:0:2::3", "1::2:0:0:3", "1:0:1:0:1:0:1:0", "fe80::1:0:0:0", "2001:db8::1", "0:0:1::",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "64:ff9b::192.0.2.33", "::ffff:0:1.2.3.4", "1:2:3:4:5:6:7:8",
]


def _random_ipv6(rng: np.random.Generator, count: int) -> np.ndarray:
    """Addresses with many zero groups, so that every compression case occurs."""
    groups = rng.integers(0, 0x10000, size=(count, 8))
    groups[rng.random((count, 8)) < 0.5] = 0
    return groups.astype(">u2").view(np.uint8).reshape(count, 16)


def test_ipv6_text_matches_inet_ntop():
    rng = np.random.default_rng(5)
    edge = np.array([list(socket.inet_pton(socket.AF_INET6, text)) for text in EDGE_IPV6], dtype=np.uint8)
    addresses = np.concatenate([edge, _random_ipv6(rng, 20_000)])

    texts = address_strings(
        np.full(len(addresses), KIND_IPV6), np.arange(len(addresses)), addresses
    ).to_pylist()

    expected = [socket.inet_ntop(socket.AF_INET6, bytes(row)) for row in addresses]
    assert texts == expected


def test_ipv4_and_mac_text():
    rng = np.random.default_rng(6)
    ipv4 = np.concatenate([[0, 0xFFFFFFFF, 0x0A000001, 0x01020304], rng.integers(0, 2**32, 5_000)])
    mac = np.concatenate([[0, 0xFFFFFFFFFFFF, 0x0000000000AB], rng.integers(0, 2**48, 5_000)])
    kinds = np.concatenate([np.full(len(ipv4), KIND_IPV4), np.full(len(mac), KIND_MAC)])
    values = np.concatenate([ipv4, mac])

    texts = address_strings(kinds, values, np.zeros((0, 16), dtype=np.uint8)).to_pylist()

    expected = [socket.inet_ntoa(int(value).to_bytes(4, "big")) for value in ipv4]
    expected += [int(value).to_bytes(6, "big").hex(":") for value in mac]
    assert texts == expected


def test_none_kind_is_null():
    texts = address_strings(
        np.array([KIND_NONE, KIND_IPV4, KIND_NONE]), np.array([0, 0x7F000001, 0]), np.zeros((0, 16), np.uint8)
    )

    assert texts.to_pylist() == [None, "127.0.0.1", None]
    assert texts.null_count == 2
