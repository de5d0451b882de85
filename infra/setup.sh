#!/usr/bin/env bash
# Prepare a Debian or Ubuntu machine for netae: tshark, a Java runtime for Spark,
# Python's venv module, then a virtual environment in .venv with the pinned
# packages of requirements-lock.txt. Safe to rerun: each step is skipped when
# already done (the Python step while requirements-lock.txt and pyproject.toml
# are unchanged).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[netae setup] %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

apt_candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -qv '(none)'
}

packages=()
command -v tshark >/dev/null 2>&1 || packages+=(tshark)
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  packages+=(JAVA)
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  packages+=(python3-venv)
fi
# Headless Chromium renders the HTML reports in tests/reports/test_browser_render.py,
# which skips without it.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  packages+=(CHROMIUM)
fi

if [ "${#packages[@]}" -gt 0 ]; then
  log "installing system packages: ${packages[*]}"
  $SUDO apt-get update -qq
  resolved=()
  for package in "${packages[@]}"; do
    if [ "$package" = JAVA ]; then
      # Spark 4 needs Java 17 or newer; Debian 12 ships 17, Debian 13 ships 21.
      for candidate in openjdk-17-jre-headless openjdk-21-jre-headless default-jre-headless; do
        if apt_candidate "$candidate"; then resolved+=("$candidate"); break; fi
      done
    elif [ "$package" = CHROMIUM ]; then
      # Debian has a chromium package; where apt has none (Ubuntu packages it as a snap), the test skips.
      if apt_candidate chromium; then resolved+=(chromium); else log "no chromium package; the browser test will skip"; fi
    else
      resolved+=("$package")
    fi
  done
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${resolved[@]}" >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"netae needs Python 3.11 or newer, found {sys.version.split()[0]}")
PY

stamp=.venv/.netae-install-stamp
wanted=$(cat requirements-lock.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  log "Python environment .venv is up to date"
  exit 0
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
log "installing Python packages into .venv (a few minutes the first time)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c requirements-lock.txt -e ".[test]"
echo "$wanted" > "$stamp"
log "Python environment ready"
