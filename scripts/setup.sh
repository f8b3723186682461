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
# The one-map page: Chromium (browser tests and the page benchmark) and CJK fonts from Debian;
# MapLibre GL JS and esbuild from npm (web/package-lock.json), built into api/static/.
apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || apt_missing+=(fonts-noto-cjk)
command -v npm >/dev/null 2>&1 || apt_missing+=(nodejs npm)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${apt_missing[*]} from Debian" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      "${apt_missing[@]}" >/dev/null
  else
    echo "setup: missing ${apt_missing[*]}; install them (Debian packages)" >&2
  fi
fi
web_stamp="web/node_modules/.citytwin-lock"
web_want="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
if [ ! -f "$web_stamp" ] || [ "$(cat "$web_stamp")" != "$web_want" ]; then
  echo "setup: installing the one-map page's npm packages (web/)" >&2
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$web_want" > "$web_stamp"
fi
if [ ! -f api/static/app.js ] \
  || [ -n "$(find web/src web/build.mjs web/package-lock.json -newer api/static/app.js -print -quit)" ]; then
  echo "setup: building the one-map page into api/static/" >&2
  (cd web && node build.mjs >/dev/null)
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
# PostgreSQL 15 + PostGIS 3 (Debian): the PostGIS store's tests start a throwaway cluster.
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || [ ! -f /usr/share/postgresql/15/extension/postgis.control ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing postgresql-15 and postgresql-15-postgis-3 from Debian" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      postgresql-15 postgresql-15-postgis-3 >/dev/null
  else
    echo "setup: PostgreSQL 15 + PostGIS 3 not found; install them (Debian: postgresql-15 postgresql-15-postgis-3)" >&2
  fi
fi
# wrk (Debian): the HTTP load generator of the serving benchmarks (bench/api.py, bench/pgserve.py).
# python3-qgis (Debian, ~100 MB download, for /usr/bin/python3): the QGIS check opens the
# PostGIS and GeoPackage twins with QGIS's postgres and ogr providers (tests/store/test_qgis.py).
missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
/usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 || missing="$missing python3-qgis"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing$missing from Debian" >&2
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends $missing >/dev/null
  else
    echo "setup:$missing not found; install them (Debian:$missing)" >&2
  fi
fi
