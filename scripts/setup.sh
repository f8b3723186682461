#!/usr/bin/env bash
# Creates .venv and installs citytwin with everything its jobs and tests need.
# Idempotent: re-installs only when pyproject.toml changed. Source it or run it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.citytwin-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing citytwin and its dependencies into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install --quiet -e ".[all]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import twin, geopandas, pyogrio, wntr, pyrosm" \
    || { echo "setup: installation failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
# GDAL's own command-line readers (ogrinfo) check that the twin file is a real GeoPackage.
if ! command -v ogrinfo >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing gdal-bin (ogrinfo) from Debian" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdal-bin >/dev/null
  else
    echo "setup: ogrinfo not found; install GDAL's command-line tools (Debian: gdal-bin)" >&2
  fi
fi
# The Khronos glTF validator (npm) checks every glb the 3D export writes (tests/test_tiles3d.py).
if [ ! -d tools/gltf-validator/node_modules/gltf-validator ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing nodejs and npm from Debian" >&2
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "setup: npm not found; install Node.js and npm (Debian: nodejs npm)" >&2
    fi
  fi
  echo "setup: installing the glTF validator (tools/gltf-validator)" >&2
  (cd tools/gltf-validator && npm ci --no-audit --no-fund --silent)
fi
