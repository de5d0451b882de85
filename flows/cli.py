"""The ``netae`` command line."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import typer

from flows.environment import apply_defaults

apply_defaults()

from flows.progress import FlowProgress  # noqa: E402  (after the environment defaults)
from flows.settings import NetaeSettings  # noqa: E402

app = typer.Typer(help="netae: learn normal network traffic from captures and flag anomalies.", no_args_is_help=True)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples" / "demo"
DEMO_PREFIX = "captures/demo/"


def _settings(**overrides) -> NetaeSettings:
    values = {name: value for name, value in overrides.items() if value is not None}
    return NetaeSettings(**values)


def _run_retrain(settings: NetaeSettings) -> dict:
    from flows.retrain import retrain

    with FlowProgress("retrain") as progress:
        manifest = retrain(settings=settings)
        progress.finish()
    return manifest


@app.command()
def retrain(
    storage_url: Optional[str] = typer.Option(None, help="file://FOLDER or s3://BUCKET[/PREFIX] [env NETAE_STORAGE_URL]"),
    captures_prefix: Optional[str] = typer.Option(None, help="Key prefix of the captures to train on [env NETAE_CAPTURES_PREFIX]"),
    epochs: Optional[int] = typer.Option(None, help="Maximum training epochs per model [env NETAE_EPOCHS]"),
    window_length: Optional[int] = typer.Option(None, help="Frames per window [env NETAE_WINDOW_LENGTH]"),
    window_stride: Optional[int] = typer.Option(None, help="Frames between window starts [env NETAE_WINDOW_STRIDE]"),
    spark_master: Optional[str] = typer.Option(None, help="Spark master URL [env NETAE_SPARK_MASTER]"),
) -> None:
    """Run the nightly retraining flow once, now."""
    settings = _settings(storage_url=storage_url, captures_prefix=captures_prefix, epochs=epochs,
                         window_length=window_length, window_stride=window_stride, spark_master=spark_master)
    manifest = _run_retrain(settings)
    _print_outcome(settings, manifest)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Capture files (pcap, pcapng, gzip, Wireshark CSV) and their .labels.csv files"),
    storage_url: Optional[str] = typer.Option(None, help="file://FOLDER or s3://BUCKET[/PREFIX] [env NETAE_STORAGE_URL]"),
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
    storage_url: Optional[str] = typer.Option(None, help="file://FOLDER or s3://BUCKET[/PREFIX] [env NETAE_STORAGE_URL]"),
    epochs: Optional[int] = typer.Option(None, help="Maximum training epochs per model [env NETAE_EPOCHS]"),
) -> None:
    """Copy the bundled labelled sample into the store and run the nightly flow on it."""
    settings = _settings(storage_url=storage_url, epochs=epochs, captures_prefix=DEMO_PREFIX)
    store = settings.open_store()
    samples = sorted(path for path in SAMPLE_DIR.iterdir() if path.is_file())
    if not samples:
        raise typer.BadParameter(f"no sample found in {SAMPLE_DIR}; record one with samples/record_demo.py")
    for path in samples:
        store.put_file(DEMO_PREFIX + path.name, str(path))
    manifest = _run_retrain(settings)
    _print_outcome(settings, manifest)


def _print_outcome(settings: NetaeSettings, manifest: dict) -> None:
    store = settings.open_store()
    typer.echo(f"run id: {manifest['run_id']}")
    for item in manifest["set_aside"]:
        typer.echo(f"set aside: {item['key']}: {item['reason']}")
    for kind, values in manifest["metrics"].items():
        summary = ", ".join(f"{name} {values[name]:.3f}" for name in ("accuracy", "precision", "recall", "f1") if name in values)
        typer.echo(f"{kind}: {summary or 'no labels'}; flagged share {values['flagged_share']:.3f}")
    report = store.location(manifest["report"])
    typer.echo(f"report: {report}")


def main() -> None:
    """Entry point of the ``netae`` console script."""
    if shutil.which("java") is None:
        typer.echo("warning: no Java runtime found on PATH; Spark needs Java 17 or newer", err=True)
    app()


if __name__ == "__main__":
    main()
