"""The capture ledger: which capture objects (key and ETag) earlier runs consumed.

The ledger is one JSON document in the store, ``runs/ledger.json``, with one
entry per capture key::

    {"version": 1, "captures": {"captures/monday.pcapng": {
        "etag": "...", "capture_id": "monday-1a2b3c4d", "state": "consumed",
        "run_id": "20261204T020000Z-3fa2c1", "updated_utc": "...", "status": {...}}}}

An entry moves through two states:

* ``pending``: a run decoded the capture (or set it aside) but has not published
  yet. A rerun after a crash finds the entry with the same ETag and the packet
  table partition in the lake, and takes the capture as already decoded instead
  of decoding it again.
* ``consumed`` or ``set_aside``: a run published with this capture among its
  inputs, or (``set_aside`` only) a run stopped because none of its captures
  could be decoded. A later run skips the capture for as long as its ETag stays
  the same.

A capture stored again under the same key gets a new ETag, so the next run
decodes it again. Its lake partition is then replaced, not duplicated. A labels
file that is added, replaced or removed has the same effect, because labels are
applied while decoding.

What a run trains on: the captures that are new or changed since the last
published run, plus (with ``train_on_lake_history``, the default) the packet
table partitions of every capture that earlier runs consumed under the same
captures prefix, so the models keep their history. A run that finds nothing new
trains nothing and publishes nothing.

NOTE: the ledger is read, changed and written back whole, with no lock. The
``retrain`` deployment has a concurrency limit of one run, so scheduled and UI
runs never interleave; two ``netae retrain`` commands started by hand at the same
time against one store could lose each other's entries.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from objectstore import ObjectStore
from spark_jobs.captures import CaptureRef, capture_ref_for_key, is_capture_candidate, labels_key_for
from spark_jobs.extract_packets import MANIFEST_NAME, CaptureStatus, partition_prefix

logger = logging.getLogger(__name__)

LEDGER_KEY = "runs/ledger.json"
LEDGER_VERSION = 1

PENDING = "pending"
CONSUMED = "consumed"
SET_ASIDE = "set_aside"
_STATES = (PENDING, CONSUMED, SET_ASIDE)


class LedgerError(ValueError):
    """The ledger document in the store is not one this version can read."""


@dataclass(frozen=True)
class LedgerEntry:
    """The ledger's record of one capture key.

    Attributes:
        key: the capture's object key.
        etag: the ETag the capture had when the run listed it.
        labels_etag: the ETag of its labels file then, or None without one.
        capture_id: the capture's partition id in the packet table.
        state: ``pending``, ``consumed`` or ``set_aside`` (see the module docstring).
        run_id: the run that last changed the entry.
        updated_utc: when the entry was last changed, ISO 8601 in UTC.
        status: the capture's decoding status (``CaptureStatus`` as a dict).
    """

    key: str
    etag: str
    capture_id: str
    state: str
    run_id: str
    updated_utc: str
    status: dict = field(default_factory=dict)
    labels_etag: str | None = None

    def capture_status(self) -> CaptureStatus:
        """Return the stored decoding status as a ``CaptureStatus``."""
        return CaptureStatus(**self.status)


@dataclass
class Ledger:
    """All entries of the ledger, keyed by capture key."""

    entries: dict[str, LedgerEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, store: ObjectStore) -> Ledger:
        """Read the ledger from ``store``; an empty ledger when none was written yet.

        Raises:
            LedgerError: when the document has another version or an unknown state.
        """
        if not store.exists(LEDGER_KEY):
            return cls()

        document = store.get_json(LEDGER_KEY)
        if document.get("version") != LEDGER_VERSION:
            raise LedgerError(
                f"{store.location(LEDGER_KEY)} has version {document.get('version')!r}, expected {LEDGER_VERSION}; "
                "move it aside to start a new ledger (every capture is then decoded again)"
            )

        entries = {}
        for key, values in document.get("captures", {}).items():
            entry = LedgerEntry(key=key, **values)
            if entry.state not in _STATES:
                raise LedgerError(
                    f"{store.location(LEDGER_KEY)}: capture {key!r} has unknown state {entry.state!r}, "
                    f"expected one of {_STATES}"
                )
            entries[key] = entry
        return cls(entries)

    def save(self, store: ObjectStore) -> None:
        """Write the whole ledger to ``store`` (one atomic object write)."""
        captures = {}
        for key, entry in sorted(self.entries.items()):
            values = asdict(entry)
            del values["key"]
            captures[key] = values
        store.put_json(LEDGER_KEY, {"version": LEDGER_VERSION, "captures": captures})


@dataclass
class CaptureIntake:
    """The captures one run works on, as the ledger sorts them.

    Attributes:
        new: captures never consumed, or stored again with a new ETag; this run
            decodes them.
        resumed: captures that an earlier run decoded (or set aside) with the
            same ETag but never published, because it failed. This run takes
            their statuses and lake partitions as they are.
        history: captures that published runs consumed, whose packet table
            partitions are still in the lake; training reads them again.
        etags: ETag of every new and resumed capture at listing time, by key.
        labels_etags: ETag of the labels file of each of them, None without one.
        unchanged: number of captures skipped because a published run already
            consumed them with the same ETag.
    """

    new: list[CaptureRef] = field(default_factory=list)
    resumed: list[CaptureStatus] = field(default_factory=list)
    history: list[CaptureStatus] = field(default_factory=list)
    etags: dict[str, str] = field(default_factory=dict)
    labels_etags: dict[str, str | None] = field(default_factory=dict)
    unchanged: int = 0

    @property
    def has_new_work(self) -> bool:
        """Whether any capture is new, changed or left over from a failed run."""
        return bool(self.new or self.resumed)


def _now_utc() -> str:
    return datetime.now(timezone.utc).isoformat()


def _partition_exists(store: ObjectStore, packets_prefix: str, capture_id: str) -> bool:
    return store.exists(partition_prefix(packets_prefix, capture_id) + MANIFEST_NAME)


def plan_intake(
    store: ObjectStore,
    captures_prefix: str,
    packets_prefix: str,
    *,
    include_history: bool = True,
) -> CaptureIntake:
    """Sort the captures under ``captures_prefix`` into new, resumed and history.

    A pending entry counts as resumed only when its packet table partition is
    still in the lake (or the capture was set aside, which left no partition).
    Otherwise the capture is decoded again.

    Args:
        store: the object store holding captures, lake and ledger.
        captures_prefix: key prefix of the captures of this run.
        packets_prefix: key prefix of the packet table in the lake.
        include_history: whether consumed captures join training through their
            lake partitions.

    Returns:
        The intake; ``new`` and ``resumed`` are in key order.
    """
    ledger = Ledger.load(store)
    intake = CaptureIntake()
    listing = store.list(captures_prefix)
    etag_by_key = {info.key: info.etag for info in listing}
    listed = [info for info in listing if is_capture_candidate(info)]
    listed_keys = {info.key for info in listed}

    for info in listed:
        labels_etag = etag_by_key.get(labels_key_for(info.key))
        entry = ledger.entries.get(info.key)
        same_object = entry is not None and entry.etag == info.etag and entry.labels_etag == labels_etag
        decoded = same_object and entry.status.get("decoded", False)
        partition_ready = same_object and (not decoded or _partition_exists(store, packets_prefix, entry.capture_id))

        if same_object and entry.state == PENDING and partition_ready:
            intake.resumed.append(entry.capture_status())
        elif same_object and entry.state != PENDING and partition_ready:
            intake.unchanged += 1
            if decoded and include_history:
                intake.history.append(entry.capture_status())
            continue
        else:
            intake.new.append(capture_ref_for_key(store, info.key))
        intake.etags[info.key] = info.etag
        intake.labels_etags[info.key] = labels_etag

    # Captures consumed earlier whose object has since been deleted still train
    # through their lake partition; the lake keeps the history.
    if include_history:
        for key, entry in sorted(ledger.entries.items()):
            if key in listed_keys or not key.startswith(captures_prefix):
                continue
            if entry.state == CONSUMED and _partition_exists(store, packets_prefix, entry.capture_id):
                intake.history.append(entry.capture_status())

    return intake


def record_decoded(store: ObjectStore, statuses: list[CaptureStatus], intake: CaptureIntake, run_id: str) -> None:
    """Mark the captures a run just decoded or set aside as ``pending``.

    Args:
        store: the object store holding the ledger.
        statuses: decoding statuses of this run's captures.
        intake: the run's intake, whose ETags were taken at listing time. A
            capture replaced while the run decoded it keeps the older ETag in
            the ledger, so the next run decodes the newer object.
        run_id: the run that decoded them.
    """
    if not statuses:
        return
    ledger = Ledger.load(store)
    updated = _now_utc()
    for status in statuses:
        ledger.entries[status.key] = LedgerEntry(
            key=status.key,
            etag=intake.etags[status.key],
            labels_etag=intake.labels_etags[status.key],
            capture_id=status.capture_id,
            state=PENDING,
            run_id=run_id,
            updated_utc=updated,
            status=asdict(status),
        )
    ledger.save(store)
    logger.info("Ledger: %d capture(s) decoded by run %s, pending its publication", len(statuses), run_id)


def record_published(store: ObjectStore, statuses: list[CaptureStatus], run_id: str) -> None:
    """Mark the captures of a published run as ``consumed`` or ``set_aside``.

    Call it after the run manifest is written. Every status must have a
    ``pending`` entry from ``record_decoded``, which contains the ETag.

    Raises:
        LedgerError: when a capture has no ledger entry.
    """
    _settle(store, statuses, run_id)
    logger.info("Ledger: run %s consumed %d capture(s)", run_id, len(statuses))


def record_set_aside(store: ObjectStore, statuses: list[CaptureStatus], run_id: str) -> None:
    """Mark captures that no run can decode as ``set_aside``, for a run that stops without publishing.

    Without this, a run whose captures all fail to decode would leave them
    ``pending``, and every later run would resume them and fail the same way.
    Set aside, they are skipped until the object or its labels file is stored
    again. Every status must have a ``pending`` entry from ``record_decoded``.

    Raises:
        ValueError: when a status is of a decoded capture, which only a publication may mark.
        LedgerError: when a capture has no ledger entry.
    """
    decoded = [status.key for status in statuses if status.decoded]
    if decoded:
        raise ValueError(f"record_set_aside takes undecoded captures only, got decoded {decoded}")
    _settle(store, statuses, run_id)
    logger.info("Ledger: run %s set aside %d capture(s) it could not decode", run_id, len(statuses))


def _settle(store: ObjectStore, statuses: list[CaptureStatus], run_id: str) -> None:
    """Move pending entries to ``consumed`` (decoded) or ``set_aside`` (not decoded)."""
    ledger = Ledger.load(store)
    updated = _now_utc()
    for status in statuses:
        entry = ledger.entries.get(status.key)
        if entry is None:
            raise LedgerError(
                f"capture {status.key!r} has no entry in {store.location(LEDGER_KEY)}; "
                "record_decoded must run before record_published"
            )
        ledger.entries[status.key] = LedgerEntry(
            key=status.key,
            etag=entry.etag,
            labels_etag=entry.labels_etag,
            capture_id=status.capture_id,
            state=CONSUMED if status.decoded else SET_ASIDE,
            run_id=run_id,
            updated_utc=updated,
            status=asdict(status),
        )
    ledger.save(store)
