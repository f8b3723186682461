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
# Mosquitto (Debian): the MQTT broker the sensing tests and benchmark start on a loopback port.
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing mosquitto from Debian" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq mosquitto >/dev/null
  else
    echo "setup: mosquitto not found; install it (Debian: mosquitto)" >&2
  fi
fi
