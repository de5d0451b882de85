"""Build Great Expectations Data Docs from published validation results and put them in storage.

The flows publish each validation result as JSON (``ValidationOutcome.result``).
``build_data_docs`` loads those documents back into GX result objects, stores them
in a file-backed GX context inside a temporary folder, and lets GX 1.24's site
builder (``context.build_data_docs()``) render its ``local_site``: an
``index.html``, one page per result and one per expectation suite. The suites
are rebuilt from the expectations each result carries, because the index links
every result to its suite's page. ``publish_data_docs`` then copies the
site's files under a key prefix of the object store, so the pages open from
there with their relative links intact.

The site's tutorial animations (``static/images/*.gif``, about 3.4 MB) are
left out; no page of a validation result shows them. Two links of GX's page
template are rewritten before upload. GX loads the logo from its own S3 bucket,
with the data context id in the query string, so the logo link points to the
site's own copy instead. The result pages' favicon link gets the depth it lacks.

NOTE: the pages still load their scripts (jQuery, Bootstrap, Vega) from public
CDNs, so without internet access a browser shows them without their tables.
"""

from __future__ import annotations

import copy
import logging
import mimetypes
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import great_expectations as gx
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import set_context
from great_expectations.data_context.data_context.context_factory import project_manager
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.exceptions import DataContextRequiredError

from expectations.validation import _validation_lock
from objectstore import ObjectStore

logger = logging.getLogger(__name__)

_SITE_FOLDER = Path("gx") / "uncommitted" / "data_docs" / "local_site"
_LEFT_OUT_SUFFIXES = (".gif",)
_REMOTE_IMAGE = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9.-]+\.amazonaws\.com/([A-Za-z0-9_.-]+)(\?[^\"']*)?")
_FAVICON = re.compile(r"(?:\.\./)*static/images/favicon\.ico")


def build_data_docs(results: dict[str, dict], folder: Path, *, run_name: str, run_time: datetime | None = None) -> Path:
    """Render Data Docs for validation results into ``folder``.

    Args:
        results: validation results as published, keyed by a batch name
            (``packets``, ``windows``, ``drift``) that names their page.
        folder: an empty or missing folder; the GX project is created in it.
        run_name: GX run name shown on every page, e.g. the netae run id.
        run_time: GX run time; now when omitted.

    Returns:
        The folder of the built site, holding ``index.html``.

    Raises:
        ValueError: when a result document cannot be read as a GX validation result.
    """
    run_id = RunIdentifier(run_name=run_name, run_time=run_time or datetime.now(timezone.utc))
    schema = ExpectationSuiteValidationResultSchema()

    with _validation_lock:
        try:
            previous_context = project_manager.get_current_project()
        except DataContextRequiredError:
            previous_context = None
        try:
            context = gx.get_context(mode="file", project_root_dir=str(folder))
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            suites: dict[str, list] = {}
            for batch_name, document in sorted(results.items()):
                try:
                    result = schema.load(document)
                except Exception as error:  # noqa: BLE001 - marshmallow and GX raise several types
                    raise ValueError(f"validation result {batch_name!r} is not a GX validation result: {error}") from error
                key = ValidationResultIdentifier(
                    expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
                    run_id=run_id,
                    batch_identifier=batch_name,
                )
                context.validation_results_store.set(key, result)
                suites.setdefault(result.suite_name, [item.expectation_config for item in result.results])
            # The index links every result to its suite's page, so the suites are
            # rebuilt from the expectations the results carry.
            for name, configurations in sorted(suites.items()):
                # A copy drops the id the expectation had in the suite that produced the result.
                expectations = [copy.copy(configuration.to_domain_obj()) for configuration in configurations]
                context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
            context.build_data_docs()
        finally:
            set_context(previous_context)

    site = folder / _SITE_FOLDER
    logger.info("Built Data Docs for %d validation result(s) in %s", len(results), site)
    return site


def localize_links(html: str, depth: int) -> str:
    """Point a page's logo and favicon at the site's own ``static/images`` folder.

    Args:
        html: one page of the site.
        depth: folders between the site root and the page (0 for ``index.html``).
    """
    images = "../" * depth + "static/images/"
    html = _REMOTE_IMAGE.sub(lambda match: images + match.group(1), html)
    return _FAVICON.sub(images + "favicon.ico", html)


def publish_data_docs(results: dict[str, dict], store: ObjectStore, prefix: str, *, run_name: str) -> list[str]:
    """Build Data Docs for ``results`` and upload the site under ``prefix``.

    Args:
        results: validation results as published, keyed by batch name.
        store: destination store.
        prefix: key prefix ending in ``/``, e.g. ``validations/<run>/data_docs/``.
        run_name: GX run name shown on every page.

    Returns:
        The keys written, sorted; ``<prefix>index.html`` among them.
    """
    written = []
    with tempfile.TemporaryDirectory(prefix="netae-data-docs-") as temporary:
        site = build_data_docs(results, Path(temporary), run_name=run_name)
        for path in sorted(site.rglob("*")):
            if not path.is_file() or path.suffix in _LEFT_OUT_SUFFIXES:
                continue
            relative = path.relative_to(site)
            key = prefix + relative.as_posix()
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if path.suffix == ".html":
                html = localize_links(path.read_text(encoding="utf-8"), len(relative.parts) - 1)
                store.put_bytes(key, html.encode("utf-8"), content_type=content_type)
            else:
                store.put_file(key, str(path), content_type=content_type)
            written.append(key)
    logger.info("Published %d Data Docs file(s) under %s", len(written), store.location(prefix))
    return sorted(written)

