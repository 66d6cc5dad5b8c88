#!/usr/bin/env bash
# Installs Schemathesis (pinned in requirements.txt beside this file) into a
# venv outside the clone, for tests/tests/openapi.rs; rebuilt only when the
# requirements or the Python version change. Run by .ci/run; by hand:
#   bash tests/schemathesis/install.sh
#   export TOUCHLINE_SCHEMATHESIS=$HOME/.cache/touchline-schemathesis-venv/bin/schemathesis
set -euo pipefail
cd "$(dirname "$0")"
VENV="${TOUCHLINE_SCHEMATHESIS_VENV:-$HOME/.cache/touchline-schemathesis-venv}"
stamp="$(python3 --version 2>&1) $(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$VENV/.touchline-stamp" 2>/dev/null)" != "$stamp" ] \
   || ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$stamp" > "$VENV/.touchline-stamp"
fi
"$VENV/bin/schemathesis" --version
