"""``s3://`` storage through the ``minio`` SDK (MinIO or any S3-compatible server)."""

from __future__ import annotations

import io
import logging
from typing import Any, BinaryIO

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from objectstore.base import ObjectInfo, ObjectStore, StorageError, validate_key, validate_prefix

logger = logging.getLogger(__name__)

_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}


class _ResponseStream(io.RawIOBase):
    """A readable file object over a urllib3 response that releases it on close."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._response.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


class S3Store(ObjectStore):
    """Objects in one bucket, optionally below a key prefix.

    S3 makes a single PUT visible atomically, so readers never see half an object.
    Credentials are kept only in memory and never appear in ``url``, ``repr`` or
    error messages. The instance pickles without its HTTP client and builds a new
    one on first use, so Spark executors can use it.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint: str,
        access_key: str | None,
        secret_key: str | None,
        secure: bool = False,
        region: str = "us-east-1",
        create_bucket: bool = True,
    ) -> None:
        if not bucket:
            raise StorageError("invalid s3 location: the bucket name is missing (use s3://BUCKET/PREFIX)")
        if not endpoint:
            raise StorageError("missing S3 endpoint: set NETAE_S3_ENDPOINT to host:port of the server")
        self._bucket = bucket
        self._prefix = validate_prefix(prefix.strip("/") + "/" if prefix.strip("/") else "")
        self._endpoint = endpoint
        self._access_key = access_key
        self._secret_key = secret_key
        self._secure = secure
        self._region = region
        self._create_bucket = create_bucket
        self._client: Minio | None = None

    def __repr__(self) -> str:
        return f"S3Store(url={self.url!r}, endpoint={self._endpoint!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    @property
    def url(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    @property
    def client(self) -> Minio:
        """The MinIO client, created on first use (and the bucket with it, if allowed)."""
        if self._client is None:
            client = Minio(
                self._endpoint,
                access_key=self._access_key,
                secret_key=self._secret_key,
                secure=self._secure,
                region=self._region,
            )
            if self._create_bucket:
                try:
                    if not client.bucket_exists(self._bucket):
                        client.make_bucket(self._bucket)
                        logger.info("Created bucket %s on %s", self._bucket, self._endpoint)
                except S3Error as error:
                    raise StorageError(f"cannot use bucket {self._bucket!r}: {error.code}") from None
                except HTTPError as error:
                    raise self._unreachable("checking bucket", ".", error) from None
            self._client = client
        return self._client

    def _object_name(self, key: str) -> str:
        return self._prefix + validate_key(key)

    def _where(self, key: str) -> str:
        # Listing the whole store or checking the bucket passes "." for the root.
        return self.url if key in ("", ".") else self.location(key)

    def _failure(self, action: str, key: str, error: Exception) -> StorageError:
        code = getattr(error, "code", type(error).__name__)
        return StorageError(f"{action} {self._where(key)} failed: {code}")

    def _unreachable(self, action: str, key: str, error: HTTPError) -> StorageError:
        # urllib3 (inside minio) already retried the request 5 times with backoff.
        cause = getattr(error, "reason", None) or error
        return StorageError(
            f"{action} {self._where(key)} failed: the S3 endpoint {self._endpoint} did not respond "
            f"({type(error).__name__}: {type(cause).__name__}); check that the server runs and is reachable"
        )

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(
                self._bucket, self._object_name(key), io.BytesIO(data), len(data), content_type=content_type
            )
        except S3Error as error:
            raise self._failure("writing", key, error) from None
        except HTTPError as error:
            raise self._unreachable("writing", key, error) from None

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.fput_object(self._bucket, self._object_name(key), path, content_type=content_type)
        except S3Error as error:
            raise self._failure("writing", key, error) from None
        except HTTPError as error:
            raise self._unreachable("writing", key, error) from None

    def open_read(self, key: str) -> BinaryIO:
        try:
            response = self.client.get_object(self._bucket, self._object_name(key))
        except S3Error as error:
            if error.code in _MISSING_CODES:
                raise StorageError(f"object not found: {self.location(key)}") from None
            raise self._failure("reading", key, error) from None
        except HTTPError as error:
            raise self._unreachable("reading", key, error) from None
        return io.BufferedReader(_ResponseStream(response), buffer_size=1 << 20)  # type: ignore[return-value]

    def open_range(self, key: str, offset: int, length: int) -> BinaryIO:
        if offset < 0 or length < 0:
            raise StorageError(f"invalid range of {self.location(key)}: offset {offset}, length {length}")
        if length == 0:
            return io.BytesIO(b"")  # type: ignore[return-value]
        try:
            response = self.client.get_object(self._bucket, self._object_name(key), offset=offset, length=length)
        except S3Error as error:
            if error.code in _MISSING_CODES:
                raise StorageError(f"object not found: {self.location(key)}") from None
            if error.code == "InvalidRange":
                return io.BytesIO(b"")  # type: ignore[return-value]
            raise self._failure("reading", key, error) from None
        except HTTPError as error:
            raise self._unreachable("reading", key, error) from None
        return io.BufferedReader(_ResponseStream(response), buffer_size=1 << 20)  # type: ignore[return-value]

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        try:
            objects = self.client.list_objects(self._bucket, prefix=self._prefix + prefix, recursive=True)
            infos = [
                ObjectInfo(
                    key=item.object_name[len(self._prefix) :],
                    size_bytes=int(item.size or 0),
                    etag=(item.etag or "").strip('"'),
                )
                for item in objects
                if not item.is_dir
            ]
        except S3Error as error:
            raise self._failure("listing", prefix or ".", error) from None
        except HTTPError as error:
            raise self._unreachable("listing", prefix or ".", error) from None
        return sorted(infos, key=lambda info: info.key)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            item = self.client.stat_object(self._bucket, self._object_name(key))
        except S3Error as error:
            if error.code in _MISSING_CODES:
                return None
            raise self._failure("reading", key, error) from None
        except HTTPError as error:
            raise self._unreachable("reading", key, error) from None
        return ObjectInfo(key=key, size_bytes=int(item.size or 0), etag=(item.etag or "").strip('"'))

    def delete(self, key: str) -> None:
        try:
            self.client.remove_object(self._bucket, self._object_name(key))
        except S3Error as error:
            if error.code not in _MISSING_CODES:
                raise self._failure("deleting", key, error) from None
        except HTTPError as error:
            raise self._unreachable("deleting", key, error) from None
