"""The ``netae`` command line."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, get_args

import typer
from pydantic import SecretStr, ValidationError

from flows.environment import apply_defaults

apply_defaults()

from flows.progress import FlowProgress  # noqa: E402  (after the environment defaults)
from flows.settings import NetaeSettings  # noqa: E402

app = typer.Typer(help="netae: learn normal network traffic from captures and flag anomalies.", no_args_is_help=True)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples" / "demo"
DEMO_PREFIX = "captures/demo/"


def _settings(settings_class: type[NetaeSettings] = NetaeSettings, **overrides) -> NetaeSettings:
    """Build settings from flags over NETAE_* variables; an invalid value exits with one clear line."""
    values = {name: value for name, value in overrides.items() if value is not None}
    try:
        return settings_class(**values)
    except ValidationError as error:
        problems = "; ".join(_describe_problem(settings_class, item) for item in error.errors())
        typer.echo(f"error: invalid settings: {problems}", err=True)
        raise typer.Exit(code=2) from None


def _describe_problem(settings_class: type[NetaeSettings], item: dict) -> str:
    """Name the setting, its NETAE_* variable and the rejected value of one validation error.

    The value of a secret field is never shown, because the message goes to the terminal.
    """
    # Pydantic prefixes the messages of the settings' own checks with "Value error, ".
    message = str(item["msg"]).removeprefix("Value error, ")
    if not item["loc"]:
        # A check across several settings has no single field, so its message names the variables.
        return message
    field = str(item["loc"][0])
    info = settings_class.model_fields.get(field)
    secret = info is not None and SecretStr in (info.annotation, *get_args(info.annotation))
    value = "" if secret or "input" not in item else f" = {item['input']!r}"
    return f"{field} (NETAE_{field.upper()}){value}: {message}"


@contextmanager
def _exit_on(*errors: type[BaseException]):
    """Turn the given errors into one ``error:`` line on stderr and exit code 1.

    The flow run's log above already has the traceback, so the last line states
    the problem alone.
    """
    try:
        yield
    except errors as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


def _run_retrain(settings: NetaeSettings) -> dict:
    from flows.ledger import LedgerError
    from flows.retrain import NoUsableCaptureError, retrain

    with _exit_on(NoUsableCaptureError, LedgerError), FlowProgress("retrain") as progress:
        manifest = retrain(settings=settings)
        progress.finish()
    return manifest


@app.command()
def retrain(
    storage_url: Optional[str] = typer.Option(None, help="file://FOLDER or s3://BUCKET/PREFIX (env NETAE_STORAGE_URL)"),
    captures_prefix: Optional[str] = typer.Option(None, help="Key prefix of the captures to train on (env NETAE_CAPTURES_PREFIX)"),
    epochs: Optional[int] = typer.Option(None, help="Maximum training epochs per model (env NETAE_EPOCHS)"),
    window_length: Optional[int] = typer.Option(None, help="Frames per window (env NETAE_WINDOW_LENGTH)"),
    window_stride: Optional[int] = typer.Option(None, help="Frames between window starts (env NETAE_WINDOW_STRIDE)"),
    training_window_stride: Optional[int] = typer.Option(
        None, help="Frames between training window starts, 1 to the window stride; unset: the window stride "
        "(env NETAE_TRAINING_WINDOW_STRIDE)"
    ),
    spark_master: Optional[str] = typer.Option(None, help="Spark master URL (env NETAE_SPARK_MASTER)"),
) -> None:
    """Run the nightly retraining flow once, now."""
    settings = _settings(storage_url=storage_url, captures_prefix=captures_prefix, epochs=epochs,
                         window_length=window_length, window_stride=window_stride,
                         training_window_stride=training_window_stride, spark_master=spark_master)
    manifest = _run_retrain(settings)
    _print_outcome(settings, manifest)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Capture files (pcap, pcapng, gzip, Wireshark CSV) and their .labels.csv files"),
    storage_url: Optional[str] = typer.Option(None, help="file://FOLDER or s3://BUCKET/PREFIX (env NETAE_STORAGE_URL)"),
    prefix: Optional[str] = typer.Option(None, help="Key prefix to upload under [default: the captures prefix]"),
) -> None:
    """Upload local captures into the captures prefix of the store."""
    settings = _settings(storage_url=storage_url)
    store = settings.open_store()
    target = prefix or settings.captures_prefix
    for path in paths:
        if not path.is_file():
            raise typer.BadParameter(f"{path} is not a file", param_hint="PATHS")
        key = f"{target.rstrip('/')}/{path.name}"
        store.put_file(key, str(path))
        typer.echo(f"uploaded {path} -> {store.location(key)}")


@app.command()
def demo(
    storage_url: Optional[str] = typer.Option(None, help="file://FOLDER or s3://BUCKET/PREFIX (env NETAE_STORAGE_URL)"),
    epochs: Optional[int] = typer.Option(None, help="Maximum training epochs per model (env NETAE_EPOCHS)"),
) -> None:
    """Copy the bundled labelled sample into the store and run the nightly flow on it.

    A second run into the same store finds the sample already consumed and skips training.
    """
    settings = _settings(storage_url=storage_url, epochs=epochs, captures_prefix=DEMO_PREFIX)
    store = settings.open_store()
    samples = sorted(path for path in SAMPLE_DIR.iterdir() if path.is_file())
    if not samples:
        raise typer.BadParameter(f"no sample found in {SAMPLE_DIR}; record one with samples/record_demo.py")
    for path in samples:
        # An unchanged sample is not uploaded again, so a second demo run finds
        # nothing new instead of retraining on the same frames.
        stored = store.stat(DEMO_PREFIX + path.name)
        if stored is None or stored.size_bytes != path.stat().st_size or store.get_bytes(DEMO_PREFIX + path.name) != path.read_bytes():
            store.put_file(DEMO_PREFIX + path.name, str(path))
    manifest = _run_retrain(settings)
    _print_outcome(settings, manifest)
    if manifest.get("skipped"):
        typer.echo(f"the demo sample was already trained on in {store.url}; "
                   "pass another --storage-url to run the demo again")


@app.command()
def score(
    capture: str = typer.Argument(..., help="Capture to score: a key in the store, or a local file that is uploaded first"),
    labels: Optional[str] = typer.Option(None, help="Labels CSV (key or local file) for precision, recall and F1"),
    storage_url: Optional[str] = typer.Option(None, help="file://FOLDER, s3://BUCKET or s3://BUCKET/PREFIX (env NETAE_STORAGE_URL)"),
    pseudonymize: Optional[bool] = typer.Option(
        None, "--pseudonymize/--no-pseudonymize",
        help="Show IP and MAC addresses as keyed pseudonyms; the key comes from NETAE_PSEUDONYM_KEY (env NETAE_PSEUDONYMIZE)",
    ),
    top: Optional[int] = typer.Option(None, help="Flagged windows listed per model (env NETAE_TOP_FLAGGED_WINDOWS)"),
    spark_master: Optional[str] = typer.Option(None, help="Spark master URL (env NETAE_SPARK_MASTER)"),
) -> None:
    """Score one capture with the champion models and write the analyst report."""
    from flows.score import CaptureNotDecodedError, MissingChampionError, ScoreSettings, describe_hosts, score as score_flow

    values = {"storage_url": storage_url, "pseudonymize": pseudonymize, "top_flagged_windows": top, "spark_master": spark_master}
    settings = _settings(ScoreSettings, **values)
    with _exit_on(MissingChampionError, FileNotFoundError, CaptureNotDecodedError), FlowProgress("score") as progress:
        summary = score_flow(capture=capture, labels=labels, settings=settings)
        progress.finish()
    store = settings.open_store()
    typer.echo(f"run id: {summary['run_id']}")
    for kind, windows in summary["windows"].items():
        typer.echo(f"{kind}: {summary['flagged_windows'][kind]} of {windows} windows above the threshold {summary['thresholds'][kind]:.6g}")
    for kind, hosts in summary["top_hosts"].items():
        if hosts:
            typer.echo(f"{kind} highest-scoring hosts: {describe_hosts(hosts)}")
    if summary["display_filter"]:
        typer.echo(f"display filter: {summary['display_filter']}")
    if summary["export"]:
        typer.echo(f"flagged frames: {store.location(summary['export'])}")
    typer.echo(f"report: {store.location(summary['report'])}")


@app.command()
def up(
    port: int = typer.Option(4200, min=1, max=65535, help="TCP port of the Prefect server and its UI"),
    host: str = typer.Option("127.0.0.1", help="Address the server listens on; 127.0.0.1 keeps it local"),
) -> None:
    """Start a Prefect server with its UI in the background and wait until it is healthy."""
    from flows.stack import StackError, start_server, state_dir

    try:
        info = start_server(state_dir(), host=host, port=port)
    except StackError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Prefect server and UI at {info.url} (pid {info.pid}, log {info.log_path})")
    typer.echo("Point netae and the prefect command at it with:")
    typer.echo(f"export PREFECT_API_URL={info.api_url}")


@app.command()
def down() -> None:
    """Stop `netae serve`, then the Prefect server that `netae up` started, each by its recorded pid."""
    from flows.stack import state_dir, stop_server, stop_serving

    state = state_dir()
    serving_pid = stop_serving(state)
    if serving_pid is not None:
        typer.echo(f"stopped the serving process (pid {serving_pid})")
    server = stop_server(state)
    if server is None:
        typer.echo(f"no Prefect server recorded in {state}; nothing else to stop")
    else:
        typer.echo(f"stopped the Prefect server at {server.url} (pid {server.pid})")


@app.command()
def serve(
    limit: Optional[int] = typer.Option(None, min=1, help="Flow runs this process executes at once [default: no limit]"),
) -> None:
    """Serve the nightly retrain and the ad hoc score deployments until stopped (Ctrl-C or SIGTERM).

    Uses PREFECT_API_URL, or else the server that `netae up` started. Every NETAE_*
    variable set here applies to the runs it executes.
    """
    import os

    from flows.stack import read_server, server_is_healthy, state_dir

    state = state_dir()
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        recorded = read_server(state)
        if recorded is None or not server_is_healthy(recorded.api_url):
            typer.echo(
                "error: serving needs a Prefect server: start one with `netae up`, "
                "or export PREFECT_API_URL=http://HOST:PORT/api for an existing one",
                err=True,
            )
            raise typer.Exit(2)
        # Set before Prefect is imported, which reads its settings once at import.
        api_url = os.environ["PREFECT_API_URL"] = recorded.api_url
    elif not server_is_healthy(api_url):
        typer.echo(f"warning: {api_url}/health did not return true; serving anyway", err=True)

    from flows.deployments import serve_deployments

    settings = NetaeSettings()
    typer.echo(f"serving against {api_url}; retrain/nightly runs on cron {settings.retrain_cron!r} ({settings.timezone})")
    serve_deployments(settings, state, limit=limit)


@app.command()
def mix(
    background: Path = typer.Argument(..., help="Benign capture (pcap or pcapng, optionally gzip) to inject into"),
    attack: Path = typer.Argument(..., help="Attack capture whose every frame is injected and labelled anomalous"),
    offset: float = typer.Option(..., min=0.0, help="Seconds from the background's first frame to the attack's first frame"),
    out: Path = typer.Option(..., help="File to write, always pcapng whatever its suffix. Its labels file goes beside it: mixed.pcapng or mixed.pcap gives mixed.labels.csv"),
    remap: str = typer.Option("auto", help="auto (attack hosts onto the background's most active hosts), none, or an address map CSV (attack_addr,background_addr)"),
    attack_name: Optional[str] = typer.Option(None, help="Attack name in the labels file [default: the attack file's name]"),
) -> None:
    """Inject an attack capture into a benign one: a time-ordered pcapng plus its labels file."""
    from flows.mixing import MixError, mix_captures

    for path, hint in ((background, "BACKGROUND"), (attack, "ATTACK")):
        if not path.is_file():
            raise typer.BadParameter(f"{path} is not a file", param_hint=hint)
    if remap not in ("auto", "none") and not Path(remap).is_file():
        raise typer.BadParameter(f"{remap!r} is neither auto, none nor an address map file", param_hint="--remap")
    try:
        result = mix_captures(background, attack, out, offset_s=offset, remap=remap, attack_name=attack_name)
    except MixError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {result.capture_path}: {result.frames} frames, {result.injected_frames} injected "
               f"in {len(result.ranges)} range(s)")
    typer.echo(f"labels: {result.labels_path}")
    for source, target in result.address_map.items():
        typer.echo(f"remapped {source} -> {target}")


def _print_outcome(settings: NetaeSettings, manifest: dict) -> None:
    store = settings.open_store()
    typer.echo(f"run id: {manifest['run_id']}")
    if manifest.get("skipped"):
        typer.echo(f"skipped: {manifest['skipped']}")
        return
    for item in manifest["set_aside"]:
        typer.echo(f"set aside: {item['key']}: {item['reason']}")
    for kind, values in manifest["metrics"].items():
        summary = ", ".join(f"{name} {values[name]:.3f}" for name in ("accuracy", "precision", "recall", "f1") if name in values)
        typer.echo(f"{kind}: {summary or 'no labels'}; flagged share {values['flagged_share']:.3f}")
        if values.get("false_alarms"):
            from models.threshold_checks import describe_false_alarm_check

            typer.echo(f"{kind} false alarms: {describe_false_alarm_check(values['false_alarms'])}")
    report = store.location(manifest["report"])
    typer.echo(f"report: {report}")


def main() -> None:
    """Entry point of the ``netae`` console script."""
    if shutil.which("java") is None:
        typer.echo("warning: no Java runtime found on PATH; Spark needs Java 17 or newer", err=True)
    app()


if __name__ == "__main__":
    main()
