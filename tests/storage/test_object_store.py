"""The object store contract, on a local folder and on a real S3 server (moto on 127.0.0.1)."""

from __future__ import annotations

import pickle

import pytest

from objectstore import StorageError, open_store


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return open_store(f"file://{tmp_path / 'store'}")
    server = request.getfixturevalue("s3_server")
    bucket = f"store-{tmp_path.name[-20:].lower().replace('_', '-')}"
    return open_store(
        f"s3://{bucket}/root", s3_endpoint=server.endpoint, s3_access_key="testing", s3_secret_key="testing"
    )


def test_put_then_get_returns_same_bytes(store):
    store.put_bytes("a/b/data.bin", b"\x00\x01payload")
    assert store.get_bytes("a/b/data.bin") == b"\x00\x01payload"


def test_list_returns_sorted_keys_under_prefix(store):
    for key in ("p/2.txt", "p/1.txt", "q/3.txt"):
        store.put_bytes(key, key.encode())
    assert [info.key for info in store.list("p/")] == ["p/1.txt", "p/2.txt"]
    assert [info.size_bytes for info in store.list("p/")] == [7, 7]


def test_replacing_object_changes_etag(store):
    store.put_bytes("x.bin", b"first")
    before = store.stat("x.bin").etag
    store.put_bytes("x.bin", b"second version")
    assert store.stat("x.bin").etag != before


def test_missing_object_raises_not_found(store):
    with pytest.raises(StorageError, match="object not found: .*missing.bin"):
        store.open_read("missing.bin")
    assert store.stat("missing.bin") is None


def test_delete_removes_object(store):
    store.put_bytes("gone.txt", b"x")
    store.delete("gone.txt")
    store.delete("gone.txt")
    assert not store.exists("gone.txt")


def test_json_round_trip(store):
    store.put_json("doc.json", {"k": [1, 2]})
    assert store.get_json("doc.json") == {"k": [1, 2]}


def test_put_file_streams_local_file(store, tmp_path):
    source = tmp_path / "capture.pcap"
    source.write_bytes(b"x" * 70_000)
    store.put_file("captures/capture.pcap", str(source))
    with store.open_read("captures/capture.pcap") as stream:
        assert len(stream.read()) == 70_000


def test_store_survives_pickling(store):
    store.put_bytes("k.txt", b"v")
    copy = pickle.loads(pickle.dumps(store))
    assert copy.get_bytes("k.txt") == b"v"


@pytest.mark.parametrize("key", ["../escape.txt", "a/../../b", "/abs/key", "a//b", "a\\b", "./a", ""])
def test_unsafe_keys_are_rejected(store, key):
    with pytest.raises(StorageError, match="invalid object key"):
        store.put_bytes(key, b"x")


def test_s3_url_and_repr_hide_credentials(s3_server):
    store = open_store("s3://secretless/p", s3_endpoint=s3_server.endpoint, s3_access_key="AKIDEXAMPLE", s3_secret_key="s3cr3t-value")
    assert "s3cr3t-value" not in repr(store)
    assert "s3cr3t-value" not in store.url
    assert "AKIDEXAMPLE" not in repr(store)


def test_unsupported_scheme_is_rejected():
    with pytest.raises(StorageError, match="unsupported storage location 'ftp://x'"):
        open_store("ftp://x")


def test_s3_without_endpoint_is_rejected():
    with pytest.raises(StorageError, match="NETAE_S3_ENDPOINT"):
        open_store("s3://bucket")


def test_open_range_returns_requested_slice(store):
    store.put_bytes("r.bin", bytes(range(200)))
    with store.open_range("r.bin", 10, 5) as stream:
        assert stream.read() == bytes(range(10, 15))
    with store.open_range("r.bin", 195, 100) as stream:
        assert stream.read() == bytes(range(195, 200))
