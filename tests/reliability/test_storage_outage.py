"""An S3 outage during a nightly run's publish step, and where the S3 credentials may appear.

One scenario runs the real ``retrain`` flow three times against moto's S3
server behind a ``PausableProxy``:

1. a first night publishes champions;
2. a second night, with a new capture, loses the endpoint when it writes the
   LSTM version's ``manifest.json``: the proxy drops that request and refuses
   every connection after it, so the ``publish`` task fails, retries twice and
   the flow fails;
3. with the endpoint back, a rerun publishes.

The S3 keys are distinctive values, so the tests can search every log record,
stored object, Prefect artifact, flow-run parameter and error message for them.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import SimpleNamespace

import pytest
from prefect.client.orchestration import get_client

import flows.retrain
from flows import layout
from flows.ledger import LEDGER_KEY
from flows.publish_tasks import publish
from flows.retrain import retrain
from flows.settings import NetaeSettings
from objectstore import StorageError

pytestmark = pytest.mark.slow

ACCESS_KEY = "netae-access-QX7Z2KfB"
SECRET_KEY = "netae-secret-9vR4tW1pLmHs"
KINDS = ("lstm", "conv1d")
# The real task waits 5 s and 30 s between attempts; the test keeps the count and shortens the waits.
TEST_RETRY_DELAYS_S = [1, 2]
SMALL_MODELS = dict(epochs=1, lstm_units=8, conv_filters=8, window_length=16, window_stride=8, batch_size=128)


class _Records(logging.Handler):
    """Keeps every log record that reaches the root logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _upload_demo(store, demo_sample, folder: str) -> None:
    for path in demo_sample.iterdir():
        store.put_file(f"captures/{folder}/{path.name}", str(path))


def _etags(store) -> dict[str, str]:
    return {info.key: info.etag for info in store.list()}


def _published_versions(keys, kind: str) -> set[str]:
    pattern = re.compile(rf"models/{kind}/([^/]+)/manifest\.json")
    return {match.group(1) for key in keys if (match := pattern.fullmatch(key))}


def _is_lstm_manifest_put(data: bytes) -> bool:
    request_line = data.split(b"\r\n", 1)[0]
    return request_line.startswith(b"PUT ") and b"/models/lstm/" in request_line and b"/manifest.json" in request_line


@pytest.fixture(scope="module")
def outage(s3_proxy, demo_sample):
    """Run the three nights; return what each left in the store, the logs and the error."""
    records = _Records()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(records)
    root.setLevel(logging.INFO)
    for name in ("objectstore", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    settings = NetaeSettings(
        storage_url="s3://netae-outage", s3_endpoint=s3_proxy.endpoint,
        s3_access_key=ACCESS_KEY, s3_secret_key=SECRET_KEY, spark_master="local[2]", **SMALL_MODELS,
    )
    store = settings.open_store()
    try:
        _upload_demo(store, demo_sample, "night-1")
        first = retrain(settings=settings, run_id=layout.new_run_id())
        before = _etags(store)
        champions_before = {kind: store.get_bytes(layout.champion_key(kind)) for kind in KINDS}
        ledger_before = store.get_json(LEDGER_KEY)

        _upload_demo(store, demo_sample, "night-2")
        failed_run_id = layout.new_run_id()
        s3_proxy.pause_when(_is_lstm_manifest_put)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(flows.retrain, "publish", publish.with_options(retry_delay_seconds=TEST_RETRY_DELAYS_S))
            with pytest.raises(StorageError) as failure:
                retrain(settings=settings, run_id=failed_run_id)
        was_paused = s3_proxy.paused
        refused = s3_proxy.refused_connections
        s3_proxy.resume()
        after_failure = _etags(store)
        champions_after_failure = {kind: store.get_bytes(layout.champion_key(kind)) for kind in KINDS}
        ledger_after_failure = store.get_json(LEDGER_KEY)

        rerun = retrain(settings=settings, run_id=layout.new_run_id())
        after_rerun = _etags(store)
        stored_bytes = {key: store.get_bytes(key) for key in after_rerun}
    finally:
        root.removeHandler(records)
        root.setLevel(previous_level)

    return SimpleNamespace(
        settings=settings, first=first, before=before, champions_before=champions_before,
        ledger_before=ledger_before, failed_run_id=failed_run_id, error=failure.value, was_paused=was_paused,
        refused=refused, after_failure=after_failure, champions_after_failure=champions_after_failure,
        ledger_after_failure=ledger_after_failure, rerun=rerun, after_rerun=after_rerun,
        stored_bytes=stored_bytes, log_lines=records.lines,
    )


def test_outage_hit_publish_step(outage):
    assert outage.was_paused
    assert outage.refused > 0
    assert "did not respond" in str(outage.error)
    assert outage.settings.s3_endpoint in str(outage.error)


def test_publish_retries_twice_then_fails(outage):
    retries = [line for line in outage.log_lines if re.search(r"Retry \d/2 will start", line)]

    assert publish.retries == 2
    assert publish.retry_delay_seconds == [5, 30]
    assert len(retries) == 2
    assert all("StorageError" in line for line in retries)


def test_failed_publish_keeps_champions_byte_for_byte(outage):
    assert outage.champions_after_failure == outage.champions_before


def test_failed_publish_changes_no_earlier_object(outage):
    changed = {key for key, etag in outage.before.items() if outage.after_failure.get(key) != etag}

    # The ledger is rewritten by design: the new capture enters it as pending.
    assert changed == {LEDGER_KEY}
    for key, entry in outage.ledger_before["captures"].items():
        assert outage.ledger_after_failure["captures"][key] == entry
    pending = {key for key, entry in outage.ledger_after_failure["captures"].items() if entry["state"] == "pending"}
    assert pending == {"captures/night-2/demo.pcapng"}


def test_failed_run_leaves_no_complete_version(outage):
    keys = set(outage.after_failure)

    for kind in KINDS:
        assert outage.failed_run_id not in _published_versions(keys, kind)
    assert layout.run_manifest_key(outage.failed_run_id) not in keys
    # The dropped PUT never became an object: S3 shows an object whole or not at all.
    assert layout.model_prefix("lstm", outage.failed_run_id) + "manifest.json" not in keys


def test_rerun_publishes_exactly_one_new_version(outage):
    run_id = outage.rerun["run_id"]
    keys = set(outage.after_rerun)

    for kind in KINDS:
        assert _published_versions(keys, kind) - _published_versions(set(outage.before), kind) == {run_id}
        pointer = outage.stored_bytes[layout.champion_key(kind)]
        promoted = outage.rerun["champion"][kind]["promote"]
        assert (run_id in pointer.decode()) is promoted
        assert outage.failed_run_id not in pointer.decode()
    runs = {key for key in keys if re.fullmatch(r"runs/[^/]+/manifest\.json", key)}
    assert runs == {layout.run_manifest_key(outage.first["run_id"]), layout.run_manifest_key(run_id)}


def test_rerun_consumes_pending_capture(outage):
    decoded = [item["key"] for item in outage.rerun["captures"] if item["decoded"]]

    assert decoded == ["captures/night-2/demo.pcapng"]
    assert [item["key"] for item in outage.rerun["history"]] == ["captures/night-1/demo.pcapng"]


def test_version_manifest_does_not_list_itself(outage):
    run_id = outage.rerun["run_id"]
    for kind in KINDS:
        manifest = outage.stored_bytes[layout.model_prefix(kind, run_id) + "manifest.json"].decode()

        assert '"manifest.json"' not in manifest


def test_credentials_absent_from_logs(outage):
    text = "\n".join(outage.log_lines)

    assert len(outage.log_lines) > 100
    assert ACCESS_KEY not in text
    assert SECRET_KEY not in text


def test_credentials_absent_from_stored_objects(outage):
    leaking = [key for key, data in outage.stored_bytes.items() if ACCESS_KEY.encode() in data or SECRET_KEY.encode() in data]

    assert layout.report_key(outage.rerun["run_id"]) in outage.stored_bytes
    assert leaking == []


def test_credentials_absent_from_error_message(outage):
    text = "".join(traceback.format_exception(outage.error)) + repr(outage.error)

    assert ACCESS_KEY not in text
    assert SECRET_KEY not in text


def test_credentials_absent_from_prefect_records(outage):
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
        flow_runs = client.read_flow_runs()
    artifact_text = "\n".join(f"{artifact.description} {artifact.data}" for artifact in artifacts)
    parameters_text = "\n".join(repr(run.parameters) for run in flow_runs)

    assert any("netae retrain" in (artifact.description or "") for artifact in artifacts)
    assert ACCESS_KEY not in artifact_text
    assert SECRET_KEY not in artifact_text
    assert ACCESS_KEY not in parameters_text
    assert SECRET_KEY not in parameters_text


def test_settings_repr_hides_credentials(outage):
    text = repr(outage.settings) + outage.settings.model_dump_json() + repr(outage.settings.open_store())

    assert ACCESS_KEY not in text
    assert SECRET_KEY not in text
