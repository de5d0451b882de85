"""MAC and IP address columns as Arrow strings, formatted once per distinct address.

A capture repeats the same few hundred addresses millions of times, so the
columns are built from a dictionary. Every address becomes an int64 key, and
Arrow dictionary-encodes the keys of all four address columns together. Each
distinct key is formatted once by compiled code (``address_text``), and
Arrow's ``take`` expands the formatted strings.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_jobs.decoder.address_text import KIND_IPV4, KIND_IPV6, KIND_MAC, KIND_NONE, address_strings
from spark_jobs.decoder.frame_bytes import MISSING, FrameBytes

KIND_SHIFT = 60


def mac_keys(frames: FrameBytes, pos: np.ndarray) -> np.ndarray:
    """Keys of the 6-byte MAC addresses at ``pos``; MISSING where there is none."""
    # Positions are only set where all 6 bytes were captured.
    high = frames.u16(pos, checked=False)
    low = frames.u32(pos + 2, checked=False)
    return np.where(pos >= 0, (KIND_MAC << KIND_SHIFT) | (high << 32) | low, MISSING)


def ip_keys(
    frames: FrameBytes, pos: np.ndarray, version: np.ndarray, ipv6_table: list[np.ndarray]
) -> np.ndarray:
    """Keys of the IPv4 or IPv6 addresses at ``pos``; MISSING where there is none.

    IPv6 addresses do not fit in 60 bits, so their key is a row number in
    ``ipv6_table``, a list of uint8 [m, 16] arrays whose rows are numbered
    across all of them. This call appends the distinct addresses it finds.
    """
    keys = np.full(len(pos), MISSING, dtype=np.int64)

    ipv4 = (version == 4) & (pos >= 0)
    if ipv4.any():
        # The IP header, addresses included, was verified as captured.
        value = frames.u32(pos, checked=False)
        keys[ipv4] = (KIND_IPV4 << KIND_SHIFT) | value[ipv4]

    ipv6 = (version == 6) & (pos >= 0)
    if ipv6.any():
        selected = np.nonzero(ipv6)[0]
        rows = frames.subset(selected).raw16(pos[selected])
        # Arrow's hash-based encoding of 16-byte values is several times faster
        # than numpy's sort-based unique over the same bytes.
        packed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(16), len(selected), [None, pa.py_buffer(rows)]
        )
        encoded = pc.dictionary_encode(packed)
        distinct = encoded.dictionary
        data = np.frombuffer(distinct.buffers()[1], dtype=np.uint8, count=(distinct.offset + len(distinct)) * 16)
        first_index = sum(len(part) for part in ipv6_table)
        ipv6_table.append(data.reshape(-1, 16)[distinct.offset:])
        inverse = encoded.indices.to_numpy().astype(np.int64)
        keys[selected] = (KIND_IPV6 << KIND_SHIFT) | (inverse + first_index)
    return keys


def address_arrays(key_columns: list[np.ndarray], ipv6_table: list[np.ndarray]) -> list[pa.Array]:
    """Turn key arrays (MISSING = null) into Arrow string arrays of the same lengths."""
    count = len(key_columns[0])
    encoded = pc.dictionary_encode(pa.array(np.concatenate(key_columns), type=pa.int64()))
    distinct = encoded.dictionary.to_numpy()
    kinds = np.where(distinct == MISSING, KIND_NONE, distinct >> KIND_SHIFT)
    values = distinct & ((1 << KIND_SHIFT) - 1)
    ipv6 = np.concatenate(ipv6_table) if ipv6_table else np.zeros((0, 16), dtype=np.uint8)
    dictionary = address_strings(kinds, values, ipv6)
    indices = encoded.indices
    return [dictionary.take(indices.slice(column * count, count)) for column in range(len(key_columns))]
