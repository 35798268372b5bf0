#!/usr/bin/env bash
# Set up and run the demo: virtualenv, install, embedded Postgres, the image sets (phantoms and the shipped
# LCO archive), demo accounts, a launched demo study, a job worker, and the app at http://127.0.0.1:8000
# (Ctrl+C stops it and its database). Each step prints a line "==> step: what it does".
set -euo pipefail
cd "$(dirname "$0")/.."

step() { if [ -t 1 ]; then printf '\033[1m==> %s\033[0m\n' "$*"; else printf '==> %s\n' "$*"; fi; }
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  step "install: creating the virtualenv .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
step "install: installing the app with its ml extra into .venv (pip; torch alone is several GB on x86_64)"
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[ml]'

# Pango lets WeasyPrint lay out the study report as PDF; without it the report still prints from the browser.
if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "install: Pango (apt-get), for the study report's PDF"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null \
      || echo "warning: could not install Pango; the report's PDF download stays off" >&2
  else
    echo "note: install Pango (libpango-1.0-0 libpangoft2-1.0-0) for the report's PDF download" >&2
  fi
fi
step "install: done; starting the demo (cxrlab demo $*)"
exec .venv/bin/cxrlab demo "$@"
