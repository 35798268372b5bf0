#!/usr/bin/env bash
# Set up everything the tests need (virtualenv, packages, Chromium) and run lint, contracts and tests.
# Uses TEST_DATABASE_URL's Postgres server when set, otherwise an embedded server started by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev,ml]'

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's Chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: /usr/bin/chromium is missing, browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi

.venv/bin/ruff check .
.venv/bin/lint-imports
# TEST_PROCESSES=N runs the tests in N processes (pytest-xdist), each with its own database, store, server
# and browser. The default is one: on 2 cores two processes took 20 min 25 s against about 12 in one, since
# the job tests' workers (torch, a thread per core) then fight over the cores.
if [ "${TEST_PROCESSES:-0}" != 0 ]; then
  exec .venv/bin/pytest -q -n "$TEST_PROCESSES" --dist worksteal "$@"
fi
.venv/bin/pytest -q "$@"
