"""One small storage interface over a local folder (``file://``) and S3/MinIO (``s3://``).

Every stage of netae reads and writes through :class:`ObjectStore`: the flows on the
driver, and the Spark jobs on executors, which open capture bytes and write Parquet
parts themselves so that no capture travels through the driver. The package imports
nothing else of netae for that reason.
"""

from objectstore.base import ObjectInfo, ObjectStore, StorageError, validate_key
from objectstore.factory import open_store

__all__ = ["ObjectInfo", "ObjectStore", "StorageError", "open_store", "validate_key"]
