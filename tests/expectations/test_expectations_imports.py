"""The expectations package stays free of the orchestration and model stacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def test_import_loads_neither_prefect_nor_tensorflow():
    check = (
        "import sys, expectations; "
        "loaded = sorted(name for name in ('prefect', 'tensorflow', 'keras') if name in sys.modules); "
        "print('loaded:' + ','.join(loaded))"
    )

    completed = subprocess.run(
        [sys.executable, "-c", check],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    # The prefix proves the import finished: a silent sys.exit(0) would print nothing.
    assert completed.stdout.strip() == "loaded:"
