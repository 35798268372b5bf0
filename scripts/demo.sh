#!/usr/bin/env bash
# Set up and run the demo: virtualenv, install, embedded Postgres, phantom image sets, demo accounts,
# a launched demo study, and the app at http://127.0.0.1:8000 (Ctrl+C stops it and its database).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[ml]'
exec .venv/bin/cxrlab demo "$@"
