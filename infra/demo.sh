#!/usr/bin/env bash
# Set up netae if needed, then run the nightly flow on the bundled labelled sample
# with embedded defaults: storage in ./netae-data, Prefect's local API, Spark local[*].
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
exec .venv/bin/netae demo "$@"
