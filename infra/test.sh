#!/usr/bin/env bash
# Set up netae if needed, then run the whole test suite. Extra arguments go to pytest.
#
# Test files run in NETAE_TEST_WORKERS parallel pytest processes (default: the
# CPU count, at most 4), each file whole in one process, so that a module's
# fixtures (trained models, flow runs) are built once. Most of the suite waits
# on Spark, Prefect and child processes, so two workers fit two cores (10 to 15
# minutes against 17 in one process, measured on two cores). Each
# worker starts its own Spark driver (2 GiB) and Prefect server, which is why the
# default stops at 4. NETAE_TEST_WORKERS=0 runs everything in this process.
set -euo pipefail
cd "$(dirname "$0")/.."

workers=${NETAE_TEST_WORKERS:-$(( $(nproc) < 4 ? $(nproc) : 4 ))}
if ! [[ "$workers" =~ ^[0-9]+$ ]]; then
  echo "NETAE_TEST_WORKERS must be a whole number of worker processes (0 runs the tests in one process), not '$workers'" >&2
  exit 2
fi

bash infra/setup.sh
if [ "$workers" -eq 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
