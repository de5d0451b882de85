"""Keyed pseudonyms for IP and MAC addresses shown in reports.

A pseudonym is the first ``DIGEST_HEX_CHARS`` hex digits of HMAC-SHA256 over the
address in its canonical text form, under a secret key, with a prefix for the
address family (``ip4-``, ``ip6-``, ``mac-``). The same address always maps to the
same pseudonym under one key, so hosts can still be followed across a report and
across reports made with that key. Without the key, an address cannot be recovered
from its pseudonym by hashing guesses, which is what a plain hash would allow for the
small IPv4 space.

Canonical forms: IPv4 dotted quad, IPv6 compressed (``ipaddress`` module), MAC
lower-case with colons. ``2001:DB8::1`` and ``2001:db8:0::1`` therefore share a
pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

import pandas as pd

DIGEST_HEX_CHARS = 12
"""Hex digits kept from the HMAC (48 bits). Among 10,000 addresses, any two collide with
a probability of about 1.8e-7 (birthday bound n^2 / 2^49)."""

MIN_KEY_BYTES = 16

_MAC_PATTERN = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:])")
_IPV4_PATTERN = re.compile(r"(?<![0-9.])(?:\d{1,3}\.){3}\d{1,3}(?![0-9.])")
# Candidate IPv6 text: hex groups and colons with at least two colons, optionally
# ending in a dotted IPv4 part. ``ipaddress`` decides whether a candidate is valid.
_IPV6_PATTERN = re.compile(r"(?<![0-9A-Fa-f:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![0-9A-Fa-f:])")


class Pseudonymizer:
    """Maps IP and MAC addresses to keyed pseudonyms.

    Args:
        key: secret HMAC key, at least ``MIN_KEY_BYTES`` bytes. A ``str`` is
            encoded as UTF-8.

    Raises:
        ValueError: when the key is shorter than ``MIN_KEY_BYTES`` bytes.
    """

    def __init__(self, key: bytes | str) -> None:
        key_bytes = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(key_bytes) < MIN_KEY_BYTES:
            raise ValueError(
                f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes, got {len(key_bytes)}; "
                "set NETAE_PSEUDONYM_KEY to a long random value, e.g. the output of `openssl rand -hex 32`"
            )
        self._key = key_bytes
        self._cache: dict[str, str] = {}

    def address(self, value: str) -> str:
        """Return the pseudonym of one address, or ``value`` unchanged when it is no IP or MAC address.

        Text that is no address (a protocol name, ``Broadcast``) passes through, so
        a column that mixes both can be mapped as a whole.
        """
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        canonical = _canonical_address(value)
        result = value if canonical is None else self._digest(*canonical)
        self._cache[value] = result
        return result

    def text(self, value: str) -> str:
        """Replace every IP and MAC address inside free text (a Wireshark Info column) by its pseudonym."""
        value = _MAC_PATTERN.sub(lambda match: self.address(match.group(0)), value)
        value = _IPV6_PATTERN.sub(lambda match: self.address(match.group(0)), value)
        return _IPV4_PATTERN.sub(lambda match: self.address(match.group(0)), value)

    def column(self, values: pd.Series) -> pd.Series:
        """Map a column of addresses; missing values stay missing."""
        return values.map(lambda item: item if pd.isna(item) else self.address(str(item)))

    def _digest(self, family: str, canonical: str) -> str:
        mac = hmac.new(self._key, f"{family}|{canonical}".encode("utf-8"), hashlib.sha256)
        return f"{family}-{mac.hexdigest()[:DIGEST_HEX_CHARS]}"


def _canonical_address(value: str) -> tuple[str, str] | None:
    """Return (family prefix, canonical text) of an IP or MAC address, or None for other text."""
    text = value.strip()
    if _MAC_PATTERN.fullmatch(text):
        return "mac", text.lower().replace("-", ":")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ("ip4" if address.version == 4 else "ip6"), address.compressed
