"""The storage contract shared by the local-folder and S3 implementations."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator


class StorageError(Exception):
    """A storage operation failed or was given an invalid key."""


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key, size in bytes and ETag (content fingerprint)."""

    key: str
    size_bytes: int
    etag: str


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative object key.

    Keys are ``/``-separated, relative, and may not contain ``..``, ``.`` or empty
    segments, backslashes or control characters, so that no key can reach outside
    the store's root folder or bucket prefix.

    Raises:
        StorageError: naming the key and the rule it breaks.
    """
    if not isinstance(key, str) or not key:
        raise StorageError(f"invalid object key {key!r}: it must be a non-empty string")
    if key.startswith("/"):
        raise StorageError(f"invalid object key {key!r}: keys are relative, remove the leading '/'")
    if "\\" in key or any(ord(char) < 32 for char in key):
        raise StorageError(f"invalid object key {key!r}: backslashes and control characters are not allowed")
    segments = key.rstrip("/").split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise StorageError(
                f"invalid object key {key!r}: empty, '.' and '..' segments are not allowed"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is empty or a valid key (with or without a trailing slash)."""
    if prefix == "":
        return prefix
    validate_key(prefix.rstrip("/") or "/")
    return prefix


class ObjectStore(ABC):
    """Flat key-value object storage with atomic whole-object writes.

    A reader never sees half an object: ``put_bytes`` and ``put_file`` publish the
    object whole or not at all. Instances are picklable, so Spark can ship them to
    executors.
    """

    @property
    @abstractmethod
    def url(self) -> str:
        """Location of the store's root, for messages (never contains credentials)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store ``data`` under ``key``, replacing any earlier object."""

    @abstractmethod
    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        """Store the local file at ``path`` under ``key``."""

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """Open the object for streaming reads; the caller closes it.

        Raises:
            StorageError: when the object does not exist.
        """

    @abstractmethod
    def open_range(self, key: str, offset: int, length: int) -> BinaryIO:
        """Open ``length`` bytes of the object starting at byte ``offset`` for streaming reads.

        Fewer bytes come back where the object ends first. The caller closes the stream.

        Raises:
            StorageError: when the object does not exist.
        """

    @abstractmethod
    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """List every object whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Return the object's info, or None when it does not exist."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object; deleting a missing object is not an error."""

    def location(self, key: str) -> str:
        """Return a human-readable location of ``key`` for logs and reports."""
        return f"{self.url.rstrip('/')}/{validate_key(key)}"

    def exists(self, key: str) -> bool:
        """Return whether an object is stored under ``key``."""
        return self.stat(key) is not None

    def get_bytes(self, key: str) -> bytes:
        """Read the whole object into memory; use ``open_read`` for large objects."""
        with self.open_read(key) as stream:
            return stream.read()

    def put_json(self, key: str, document: Any) -> None:
        """Store ``document`` as indented UTF-8 JSON."""
        payload = json.dumps(document, indent=2, sort_keys=True, default=str).encode("utf-8")
        self.put_bytes(key, payload, content_type="application/json")

    def get_json(self, key: str) -> Any:
        """Read a JSON object stored with ``put_json``."""
        return json.loads(self.get_bytes(key).decode("utf-8"))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys under ``prefix`` in sorted order."""
        for info in self.list(prefix):
            yield info.key
