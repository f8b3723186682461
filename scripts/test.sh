#!/usr/bin/env bash
# Sets everything up, then runs lint, type checks and the whole test suite (slow tests too).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" -x
# Tests run on two processes (pytest-xdist, one file per process at a time: a file's
# servers and fixtures stay in one process); TWIN_TEST_WORKERS=0 runs them in one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
.venv/bin/ruff check .
.venv/bin/mypy
# the layers (api -> query -> network / relate -> model -> store), no import cycles,
# no module importing another module's private names
.venv/bin/lint-imports
.venv/bin/python scripts/private_imports.py
workers="${TWIN_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
    exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
fi
exec .venv/bin/python -m pytest -p no:cacheprovider -n "$workers" --dist loadfile "$@"
