#!/usr/bin/env bash
# Set up and run the demo: virtualenv, install, embedded Postgres, phantom image sets, demo accounts,
# a launched demo study, and the app at http://127.0.0.1:8000 (Ctrl+C stops it and its database).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[ml]'

# Pango lets WeasyPrint lay out the study report as PDF; without it the report still prints from the browser.
if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null \
      || echo "warning: could not install Pango; the report's PDF download stays off" >&2
  else
    echo "note: install Pango (libpango-1.0-0 libpangoft2-1.0-0) for the report's PDF download" >&2
  fi
fi
exec .venv/bin/cxrlab demo "$@"
