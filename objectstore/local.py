"""``file://`` storage: objects are files below one root folder."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from objectstore.base import ObjectInfo, ObjectStore, StorageError, validate_key, validate_prefix

_TEMP_PREFIX = ".tmp-"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; published objects get the
# permissions an ordinary file would get under the process umask.
_FILE_MODE = 0o666 & ~_current_umask()


class _LimitedReader(io.RawIOBase):
    """Reads at most ``remaining`` bytes of an open file, then reports end of file."""

    def __init__(self, handle: BinaryIO, remaining: int) -> None:
        self._handle, self._remaining = handle, remaining

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._remaining <= 0:
            return 0
        data = self._handle.read(min(len(buffer), self._remaining))
        buffer[: len(data)] = data
        self._remaining -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


class LocalFolderStore(ObjectStore):
    """Objects stored as files under ``root``.

    Writes go to a temporary file in the destination folder and are renamed into
    place, which is atomic on POSIX file systems, so readers see the old object or
    the new one, never a partial file. Temporary files start with ``.tmp-`` and
    are never listed.

    The ETag is a change marker built from the file's size and modification time
    in nanoseconds, not a content digest: hashing every file on each listing would
    read the whole lake. A replaced object always gets a new ETag.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root).expanduser().resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        """Absolute path of the folder that contains the objects."""
        return self._root

    @property
    def url(self) -> str:
        return self._root.as_uri()

    def _path(self, key: str) -> Path:
        path = self._root / validate_key(key)
        if self._root not in path.parents:
            raise StorageError(f"invalid object key {key!r}: it resolves outside {self._root}")
        return path

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        try:
            os.fchmod(descriptor, _FILE_MODE)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
        os.fchmod(descriptor, _FILE_MODE)
        os.close(descriptor)
        try:
            shutil.copyfile(path, temp_name)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise StorageError(f"object not found: {self.location(key)}") from None

    def open_range(self, key: str, offset: int, length: int) -> BinaryIO:
        if offset < 0 or length < 0:
            raise StorageError(f"invalid range of {self.location(key)}: offset {offset}, length {length}")
        stream = self.open_read(key)
        stream.seek(offset)
        return io.BufferedReader(_LimitedReader(stream, length))  # type: ignore[return-value]

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        infos = []
        for dirpath, _dirnames, filenames in os.walk(self._root):
            for filename in filenames:
                if filename.startswith(_TEMP_PREFIX):
                    continue
                key = Path(dirpath, filename).relative_to(self._root).as_posix()
                if key.startswith(prefix):
                    infos.append(self._info(key))
        return sorted(infos, key=lambda info: info.key)

    def stat(self, key: str) -> ObjectInfo | None:
        if not self._path(key).is_file():
            return None
        return self._info(key)

    def _info(self, key: str) -> ObjectInfo:
        status = self._path(key).stat()
        marker = f"{status.st_size}:{status.st_mtime_ns}:{status.st_ino}".encode()
        etag = hashlib.sha1(marker, usedforsecurity=False).hexdigest()
        return ObjectInfo(key=key, size_bytes=status.st_size, etag=etag)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
