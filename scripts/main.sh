#!/usr/bin/env bash
# Sets everything up, then builds the sample district's twin from the delivery files in
# data/samples (through the same `twin import` and `twin build` an analyst uses), prints its
# summary and how to open the one-map page (城市一张图).
#
#   bash scripts/main.sh            build out/chengdu.twin.gpkg
#   bash scripts/main.sh --serve    build it, then serve it on http://127.0.0.1:8000/
#   bash scripts/main.sh OUT.gpkg   build into OUT.gpkg instead
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
serve=0
out="out/chengdu.twin.gpkg"
for arg in "$@"; do
  case "$arg" in
    --serve) serve=1 ;;
    -*) echo "main.sh: unknown option $arg (use --serve)" >&2; exit 2 ;;
    *) out="$arg" ;;
  esac
done
port="${TWIN_PORT:-8000}"
bash "$root/scripts/setup.sh"
cd "$root"
twin=".venv/bin/twin"
mkdir -p "$(dirname "$out")"
"$twin" init "$out" --crs auto --name "成都示例街区 Chengdu sample district (synthetic)" --overwrite
"$twin" import "$out" --mapping data/samples/mapping.yaml
"$twin" -q build "$out"
"$twin" info "$out"
if [ "$serve" = 1 ]; then
  echo "one-map page: open http://127.0.0.1:$port/ in a browser (Ctrl-C stops the server)"
  exec "$twin" serve "$out" --host 127.0.0.1 --port "$port"
fi
cat <<MSG

The twin is built: $out
To see the city on the one-map page (城市一张图):
  bash scripts/main.sh --serve        (or: $twin serve $out)
  then open http://127.0.0.1:$port/ in a browser. Pipes and valves are restricted:
  give an API key of a restricted role (twin serve --keys-file, see README) in the page.
MSG
