"""The benchmarks page: each script replaces only its own section."""

from __future__ import annotations

import pytest

from bench.markdown_section import write_section

PAGE = "# Benchmarks\n\n## Decoding\n\nold decode\n\n## Models\n\nold models\n"


def test_section_replaced_in_place(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE, encoding="utf-8")

    write_section(page, "## Decoding\n\nnew decode\n")

    assert page.read_text(encoding="utf-8") == "# Benchmarks\n\n## Decoding\n\nnew decode\n\n## Models\n\nold models\n"


def test_last_section_replaced_and_new_one_appended(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(PAGE, encoding="utf-8")

    write_section(page, "## Models\n\nnew models\n")
    write_section(page, "## Frame and host scores\n\ntable\n")

    assert page.read_text(encoding="utf-8") == (
        "# Benchmarks\n\n## Decoding\n\nold decode\n\n## Models\n\nnew models\n\n## Frame and host scores\n\ntable\n"
    )


def test_missing_page_is_created(tmp_path):
    page = tmp_path / "docs" / "benchmarks.md"

    write_section(page, "## Models\n\nnumbers\n")

    assert page.read_text(encoding="utf-8") == "# Benchmarks\n\n## Models\n\nnumbers\n"


def test_section_without_heading_rejected(tmp_path):
    with pytest.raises(ValueError, match="'## ' heading"):
        write_section(tmp_path / "benchmarks.md", "numbers only\n")
