"""Replace one ``## `` section of a Markdown file, such as docs/benchmarks.md, and keep the others.

Each benchmark script owns one section of the benchmarks page and rewrites only
that section, so the scripts can run in any order.
"""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, section: str) -> None:
    """Replace the section whose heading is ``section``'s first line, or append it.

    Args:
        path: the Markdown file; created with a ``# Benchmarks`` title when missing.
        section: the new section, starting with its ``## `` heading line.

    Raises:
        ValueError: when ``section`` does not start with a ``## `` heading.
    """
    heading = section.split("\n", 1)[0]
    if not heading.startswith("## "):
        raise ValueError(f"a section must start with a '## ' heading, got {heading!r}")
    document = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(document):
        document = pattern.sub(lambda _match: section.rstrip("\n") + "\n\n", document, count=1)
    else:
        prefix = document.rstrip("\n") + "\n\n" if document.strip() else "# Benchmarks\n\n"
        document = prefix + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document.rstrip("\n") + "\n", encoding="utf-8")
