#!/usr/bin/env bash
# Sets everything up, then runs lint, type checks and the whole test suite (slow tests too).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" -x
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
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
