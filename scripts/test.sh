#!/usr/bin/env bash
# Set up everything the tests need (virtualenv, packages, Chromium, Orthanc) and run lint, contracts and tests.
# Uses TEST_DATABASE_URL's Postgres server when set, otherwise an embedded server started by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev,ml]'

# Debian packages the tests drive: Chromium for the browser tests, Orthanc with its DICOMweb plugin as the
# PACS of the DICOMweb import tests. Tests whose program is missing are skipped, saying what to install.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/Orthanc ] || missing+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's ${missing[*]} for the tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: ${missing[*]} missing; their tests will be skipped (apt-get install ${missing[*]})" >&2
  fi
fi

.venv/bin/ruff check .
.venv/bin/lint-imports
# The tests run in one process per core (pytest-xdist; TEST_PROCESSES=N sets the number, 0 runs them in this
# process), each with its own database, store, server and browser. Most tests wait on servers, workers and
# browsers, so the cores share the waiting. The job tests' workers then get one torch thread each: with a
# thread per core every process wanted both cores and two processes were slower than one.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
.venv/bin/pytest -q -n "${TEST_PROCESSES:-auto}" --dist worksteal "$@"
