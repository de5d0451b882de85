"""The capture ledger on a real local store: which captures a run takes, resumes or skips."""

from __future__ import annotations

import pytest

from flows.ledger import (
    CONSUMED,
    LEDGER_KEY,
    PENDING,
    SET_ASIDE,
    Ledger,
    LedgerError,
    plan_intake,
    record_decoded,
    record_published,
    record_set_aside,
)
from objectstore import open_store
from spark_jobs.captures import capture_id_for_key
from spark_jobs.extract_packets import MANIFEST_NAME, CaptureStatus, partition_prefix

PACKETS = "lake/packets/"
CAPTURES = "captures/"


@pytest.fixture()
def store(tmp_path):
    return open_store(f"file://{tmp_path / 'data'}")


def _put_capture(store, key: str, payload: bytes = b"capture bytes") -> None:
    store.put_bytes(key, payload)


def _decoded(store, key: str, run_id: str, frames: int = 10) -> CaptureStatus:
    """Return a decoded status for ``key`` and write the partition manifest that decoding leaves."""
    capture_id = capture_id_for_key(key)
    part = f"{partition_prefix(PACKETS, capture_id)}part-{run_id}-00000.parquet"
    store.put_json(partition_prefix(PACKETS, capture_id) + MANIFEST_NAME, {"run_id": run_id, "parts": [part]})
    return CaptureStatus(capture_id=capture_id, key=key, decoded=True, frames=frames, parts=[part])


def _set_aside(key: str) -> CaptureStatus:
    return CaptureStatus(capture_id=capture_id_for_key(key), key=key, decoded=False, error=f"{key}: not a capture")


def _publish(store, keys: list[str], run_id: str) -> None:
    """Take ``keys`` through a whole run: plan, decode, publish."""
    intake = plan_intake(store, CAPTURES, PACKETS)
    statuses = [_decoded(store, ref.key, run_id) for ref in intake.new if ref.key in keys]
    record_decoded(store, statuses, intake, run_id)
    record_published(store, statuses, run_id)


def test_empty_store_has_no_work(store):
    intake = plan_intake(store, CAPTURES, PACKETS)

    assert intake.new == []
    assert intake.resumed == []
    assert intake.history == []
    assert intake.unchanged == 0
    assert not intake.has_new_work


def test_first_run_takes_every_capture(store):
    _put_capture(store, "captures/a.pcap")
    _put_capture(store, "captures/b.pcapng")
    store.put_bytes("captures/b.labels.csv", b"first_frame,last_frame,label,attack\n")

    intake = plan_intake(store, CAPTURES, PACKETS)

    assert [ref.key for ref in intake.new] == ["captures/a.pcap", "captures/b.pcapng"]
    assert intake.new[1].labels_key == "captures/b.labels.csv"
    assert intake.labels_etags["captures/a.pcap"] is None
    assert intake.labels_etags["captures/b.pcapng"] == store.stat("captures/b.labels.csv").etag
    assert intake.etags["captures/a.pcap"] == store.stat("captures/a.pcap").etag
    assert intake.has_new_work


def test_published_captures_become_history(store):
    _put_capture(store, "captures/a.pcap")
    _put_capture(store, "captures/b.pcap")
    _publish(store, ["captures/a.pcap", "captures/b.pcap"], "run1")

    intake = plan_intake(store, CAPTURES, PACKETS)

    assert intake.new == []
    assert intake.resumed == []
    assert intake.unchanged == 2
    assert [status.key for status in intake.history] == ["captures/a.pcap", "captures/b.pcap"]
    assert not intake.has_new_work


def test_history_off_leaves_history_empty(store):
    _put_capture(store, "captures/a.pcap")
    _publish(store, ["captures/a.pcap"], "run1")

    intake = plan_intake(store, CAPTURES, PACKETS, include_history=False)

    assert intake.history == []
    assert intake.unchanged == 1


def test_replaced_capture_is_taken_again(store):
    _put_capture(store, "captures/a.pcap", b"first version")
    _put_capture(store, "captures/b.pcap")
    _publish(store, ["captures/a.pcap", "captures/b.pcap"], "run1")

    _put_capture(store, "captures/a.pcap", b"second version, longer")
    intake = plan_intake(store, CAPTURES, PACKETS)

    assert [ref.key for ref in intake.new] == ["captures/a.pcap"]
    assert [status.key for status in intake.history] == ["captures/b.pcap"]
    assert intake.unchanged == 1


def test_added_labels_file_makes_capture_changed(store):
    _put_capture(store, "captures/a.pcap")
    _publish(store, ["captures/a.pcap"], "run1")

    store.put_bytes("captures/a.labels.csv", b"first_frame,last_frame,label,attack\n1,2,anomaly,scan\n")
    intake = plan_intake(store, CAPTURES, PACKETS)

    assert [ref.key for ref in intake.new] == ["captures/a.pcap"]
    assert intake.new[0].labels_key == "captures/a.labels.csv"


def test_unpublished_decode_is_resumed(store):
    _put_capture(store, "captures/a.pcap")
    intake = plan_intake(store, CAPTURES, PACKETS)
    status = _decoded(store, "captures/a.pcap", "crashed-run")
    record_decoded(store, [status], intake, "crashed-run")

    again = plan_intake(store, CAPTURES, PACKETS)

    assert again.new == []
    assert again.resumed == [status]
    assert again.etags == {"captures/a.pcap": store.stat("captures/a.pcap").etag}
    assert again.has_new_work


def test_resume_without_partition_decodes_again(store):
    _put_capture(store, "captures/a.pcap")
    intake = plan_intake(store, CAPTURES, PACKETS)
    status = _decoded(store, "captures/a.pcap", "crashed-run")
    record_decoded(store, [status], intake, "crashed-run")
    store.delete(partition_prefix(PACKETS, status.capture_id) + MANIFEST_NAME)

    again = plan_intake(store, CAPTURES, PACKETS)

    assert [ref.key for ref in again.new] == ["captures/a.pcap"]
    assert again.resumed == []


@pytest.mark.parametrize("settle", [record_published, record_set_aside], ids=["published", "run-stopped"])
def test_set_aside_capture_waits_for_replacement(store, settle):
    _put_capture(store, "captures/bad.pcap", b"not a capture")
    intake = plan_intake(store, CAPTURES, PACKETS)
    record_decoded(store, [_set_aside("captures/bad.pcap")], intake, "run1")
    settle(store, [_set_aside("captures/bad.pcap")], "run1")

    unchanged = plan_intake(store, CAPTURES, PACKETS)
    _put_capture(store, "captures/bad.pcap", b"fixed, replaced capture")
    replaced = plan_intake(store, CAPTURES, PACKETS)

    assert Ledger.load(store).entries["captures/bad.pcap"].state == SET_ASIDE
    assert unchanged.new == []
    assert unchanged.resumed == []
    assert unchanged.history == []
    assert unchanged.unchanged == 1
    assert [ref.key for ref in replaced.new] == ["captures/bad.pcap"]


def test_set_aside_rejects_decoded_capture(store):
    _put_capture(store, "captures/a.pcap")
    intake = plan_intake(store, CAPTURES, PACKETS)
    decoded = _decoded(store, "captures/a.pcap", "run1")
    record_decoded(store, [decoded], intake, "run1")

    with pytest.raises(ValueError, match=r"undecoded captures only, got decoded \['captures/a\.pcap'\]"):
        record_set_aside(store, [decoded], "run1")
    assert Ledger.load(store).entries["captures/a.pcap"].state == PENDING


def test_deleted_capture_stays_in_history(store):
    _put_capture(store, "captures/a.pcap")
    _publish(store, ["captures/a.pcap"], "run1")
    store.delete("captures/a.pcap")

    intake = plan_intake(store, CAPTURES, PACKETS)

    assert [status.key for status in intake.history] == ["captures/a.pcap"]
    assert intake.unchanged == 0


def test_history_stays_within_captures_prefix(store):
    _put_capture(store, "captures/demo/a.pcap")
    intake = plan_intake(store, "captures/demo/", PACKETS)
    statuses = [_decoded(store, "captures/demo/a.pcap", "run1")]
    record_decoded(store, statuses, intake, "run1")
    record_published(store, statuses, "run1")
    store.delete("captures/demo/a.pcap")

    other = plan_intake(store, "captures/other/", PACKETS)

    assert other.history == []


def test_ledger_entries_record_states_and_etags(store):
    _put_capture(store, "captures/a.pcap")
    _put_capture(store, "captures/bad.pcap", b"junk")
    intake = plan_intake(store, CAPTURES, PACKETS)
    statuses = [_decoded(store, "captures/a.pcap", "run1"), _set_aside("captures/bad.pcap")]

    record_decoded(store, statuses, intake, "run1")
    pending = Ledger.load(store).entries
    record_published(store, statuses, "run2")
    published = Ledger.load(store).entries

    assert {entry.state for entry in pending.values()} == {PENDING}
    assert published["captures/a.pcap"].state == CONSUMED
    assert published["captures/bad.pcap"].state == SET_ASIDE
    assert published["captures/a.pcap"].run_id == "run2"
    assert published["captures/a.pcap"].etag == store.stat("captures/a.pcap").etag
    assert published["captures/a.pcap"].capture_status() == statuses[0]


def test_publishing_unrecorded_capture_fails(store):
    status = _decoded(store, "captures/a.pcap", "run1")

    with pytest.raises(LedgerError, match=r"'captures/a.pcap' has no entry in .*runs/ledger.json"):
        record_published(store, [status], "run1")


def test_ledger_of_other_version_is_rejected(store):
    store.put_json(LEDGER_KEY, {"version": 99, "captures": {}})

    with pytest.raises(LedgerError, match="has version 99, expected 1"):
        plan_intake(store, CAPTURES, PACKETS)


def test_ledger_with_unknown_state_is_rejected(store):
    store.put_json(
        LEDGER_KEY,
        {"version": 1, "captures": {"captures/a.pcap": {
            "etag": "e", "capture_id": "a", "state": "half-done", "run_id": "r", "updated_utc": "t", "status": {}}}},
    )

    with pytest.raises(LedgerError, match="unknown state 'half-done'"):
        Ledger.load(store)
