"""Reports rendered by a real browser: headless Chromium, with networking off.

Chromium loads the report from a file, writes a screenshot and prints the DOM
after loading. Its console messages (script errors, Content-Security-Policy
violations, failed loads) go to stderr as ``:CONSOLE`` log lines, so a report that
a browser complains about fails here. The proxy points at 127.0.0.1:9 (discard),
so any remote load the document attempted would fail instead of leaving the machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from reports import render_report
from reports.score_report import render_score_report
from tests.reports.test_score_report_document import SCORE_PLOTS, make_score_inputs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW_SIZE = (1280, 2000)
RUN_REPORT_PLOTS = ("ip-heatmap", "length-distribution", "packet-rate", "confusion-lstm", "error-lstm", "confusion-conv1d", "error-conv1d")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed; `apt-get install -y chromium` (infra/setup.sh installs it)"
)


def render_in_chromium(html: str, folder: Path) -> tuple[str, str, Path]:
    """Load ``html`` in headless Chromium; return the DOM after loading, its stderr log and the screenshot path."""
    page = folder / "report.html"
    page.write_text(html, encoding="utf-8")
    screenshot = folder / "screenshot.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={folder / 'profile'}",
        "--proxy-server=127.0.0.1:9", "--enable-logging=stderr", "--v=0",
        f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}", f"--screenshot={screenshot}", "--dump-dom", page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr, screenshot


def console_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def assert_screenshot_has_content(path: Path) -> None:
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (WINDOW_SIZE[1], WINDOW_SIZE[0])
    assert float(np.std(pixels[..., :3])) > 0.05


@pytest.fixture(scope="module")
def score_report_in_browser(tmp_path_factory):
    return render_in_chromium(render_score_report(make_score_inputs()), tmp_path_factory.mktemp("score-report"))


def test_score_report_has_no_console_message(score_report_in_browser):
    _dom, log, _screenshot = score_report_in_browser

    assert console_lines(log) == []


def test_score_report_plots_present_in_dom(score_report_in_browser, report_builders):
    dom, _log, _screenshot = score_report_in_browser
    parsed = report_builders.parse_report(dom)

    for plot_id in SCORE_PLOTS:
        assert plot_id in parsed.figures, plot_id
        assert parsed.figures[plot_id].image_src.startswith("data:image/png;base64,")


def test_score_report_markup_stays_text_in_dom(score_report_in_browser, report_builders):
    dom, _log, _screenshot = score_report_in_browser
    parsed = report_builders.parse_report(dom)

    assert "script" not in parsed.tags
    assert "<script>alert(1)</script>.example" in parsed.text


def test_score_report_screenshot_has_content(score_report_in_browser):
    _dom, _log, screenshot = score_report_in_browser

    assert_screenshot_has_content(screenshot)


def test_run_report_renders_cleanly(tmp_path, report_builders):
    dom, log, screenshot = render_in_chromium(render_report(report_builders.make_inputs()), tmp_path)
    parsed = report_builders.parse_report(dom)

    assert console_lines(log) == []
    for plot_id in RUN_REPORT_PLOTS:
        assert parsed.figures[plot_id].image_src.startswith("data:image/png;base64,"), plot_id
    assert_screenshot_has_content(screenshot)


def test_console_message_is_detected(tmp_path):
    # A blocked remote image makes Chromium log a CSP violation, which proves
    # that the checks above would see a console message if a report caused one.
    html = (
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
        "</head><body><img src=\"http://127.0.0.1:9/blocked.png\" alt=\"\"></body></html>"
    )

    _dom, log, _screenshot = render_in_chromium(html, tmp_path)

    assert any("Content Security Policy" in line for line in console_lines(log))
