"""Find captures in storage and give each a stable capture id."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from objectstore import ObjectInfo, ObjectStore

LABELS_SUFFIX = ".labels.csv"
_CAPTURE_SUFFIXES = (".pcapng.gz", ".pcap.gz", ".pcapng", ".pcap", ".cap", ".csv.gz", ".csv", ".gz")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class CaptureRef:
    """A capture to decode: its id in the packet table and its storage keys."""

    capture_id: str
    key: str
    labels_key: str | None = None


def _stem(key: str) -> str:
    name = PurePosixPath(key).name
    for suffix in _CAPTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def capture_id_for_key(key: str) -> str:
    """Return the capture id of the capture stored under ``key``.

    The id is the file name without its capture extension, reduced to
    ``[A-Za-z0-9_.-]``, plus the first 8 hex digits of the SHA-1 of the whole key,
    so the same key always maps to the same partition and two folders holding
    files of one name do not collide.
    """
    readable = _UNSAFE.sub("_", _stem(key)).strip("._") or "capture"
    digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"{readable[:60]}-{digest}"


def labels_key_for(key: str) -> str:
    """Return the key where the labels file of the capture at ``key`` would be."""
    parent = PurePosixPath(key).parent.as_posix()
    name = _stem(key) + LABELS_SUFFIX
    return name if parent in ("", ".") else f"{parent}/{name}"


def is_capture_candidate(info: ObjectInfo) -> bool:
    """Return whether a listed object should be decoded as a capture.

    Labels files and hidden files (names starting with a dot) are not captures.
    Every other object is a candidate; the decoder decides from its magic bytes
    whether it is really a capture.
    """
    name = PurePosixPath(info.key).name
    return not (name.startswith(".") or name.endswith(LABELS_SUFFIX))


def capture_ref_for_key(store: ObjectStore, key: str) -> CaptureRef:
    """Return the reference of the capture at ``key``, with its labels file if one exists."""
    labels_key = labels_key_for(key)
    return CaptureRef(
        capture_id=capture_id_for_key(key),
        key=key,
        labels_key=labels_key if store.exists(labels_key) else None,
    )


def discover_captures(store: ObjectStore, prefix: str) -> list[CaptureRef]:
    """List the captures under ``prefix``, in key order."""
    return [capture_ref_for_key(store, info.key) for info in store.list(prefix) if is_capture_candidate(info)]
