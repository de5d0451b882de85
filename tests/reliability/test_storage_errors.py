"""An unreachable S3 endpoint gives a StorageError that names the location and the endpoint."""

from __future__ import annotations

import pytest
from prefect.states import Failed

from flows.score import _locate, stage_capture
from objectstore import StorageError, open_store


@pytest.fixture()
def unreachable_store(s3_proxy):
    """A store whose bucket exists, behind a proxy that is then paused."""
    store = open_store("s3://netae-errors", s3_endpoint=s3_proxy.endpoint, s3_access_key="a-key", s3_secret_key="a-secret")
    store.put_bytes("models/lstm/champion.json", b"{}")
    s3_proxy.pause()
    yield store
    s3_proxy.resume()


def test_write_to_paused_endpoint_names_key_and_endpoint(unreachable_store, s3_proxy):
    with pytest.raises(StorageError) as failure:
        unreachable_store.put_bytes("models/lstm/v2/manifest.json", b"{}")

    message = str(failure.value)
    assert message.startswith("writing s3://netae-errors/models/lstm/v2/manifest.json failed:")
    assert f"the S3 endpoint {s3_proxy.endpoint} did not respond" in message
    assert "a-secret" not in message
    assert "a-key" not in message


def test_listing_root_of_paused_endpoint_names_store(unreachable_store):
    with pytest.raises(StorageError, match=r"^listing s3://netae-errors failed: the S3 endpoint .* did not respond"):
        unreachable_store.list()


def test_object_readable_after_endpoint_returns(unreachable_store, s3_proxy):
    s3_proxy.resume()

    assert unreachable_store.get_bytes("models/lstm/champion.json") == b"{}"


def test_capture_lookup_outage_is_retried(unreachable_store):
    with pytest.raises(StorageError, match=r"captures/monday\.pcapng.* did not respond") as failure:
        _locate(unreachable_store, "captures/monday.pcapng", "capture")

    assert not isinstance(failure.value, FileNotFoundError)
    assert stage_capture.retry_condition_fn(stage_capture, None, Failed(data=failure.value)) is True
