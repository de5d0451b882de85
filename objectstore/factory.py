"""Build a store from a location URL."""

from __future__ import annotations

from urllib.parse import urlparse

from objectstore.base import ObjectStore, StorageError
from objectstore.local import LocalFolderStore
from objectstore.s3 import S3Store

# URL schemes ``open_store`` accepts: none (a plain folder path), ``file`` and ``s3``.
STORAGE_SCHEMES: tuple[str, ...] = ("", "file", "s3")


def open_store(
    url: str,
    *,
    s3_endpoint: str | None = None,
    s3_access_key: str | None = None,
    s3_secret_key: str | None = None,
    s3_secure: bool = False,
    s3_region: str = "us-east-1",
) -> ObjectStore:
    """Open the store at ``url``.

    Args:
        url: ``file:///absolute/folder``, ``file://relative/folder`` or a plain
            folder path for local storage; ``s3://bucket`` or ``s3://bucket/prefix``
            for S3-compatible storage.
        s3_endpoint: ``host:port`` of the S3 server; required for ``s3://``.
        s3_access_key: S3 access key.
        s3_secret_key: S3 secret key.
        s3_secure: use HTTPS for the S3 endpoint.
        s3_region: S3 region; given explicitly so the client makes no location request.

    Raises:
        StorageError: for an unsupported scheme or a missing bucket or endpoint.
    """
    parsed = urlparse(url)
    if parsed.scheme not in STORAGE_SCHEMES:
        raise StorageError(f"unsupported storage location {url!r}: use file:// or s3://")
    if parsed.scheme in ("", "file"):
        folder = url[len("file://") :] if url.startswith("file://") else url
        if not folder:
            raise StorageError(f"invalid storage location {url!r}: the folder is missing")
        return LocalFolderStore(folder)
    return S3Store(
        bucket=parsed.netloc,
        prefix=parsed.path.lstrip("/"),
        endpoint=s3_endpoint or "",
        access_key=s3_access_key,
        secret_key=s3_secret_key,
        secure=s3_secure,
        region=s3_region,
    )
