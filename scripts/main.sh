#!/usr/bin/env bash
# Sets everything up, then builds the sample district's twin from the delivery files in
# data/samples (through the same `twin import` an analyst uses) and prints its summary.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
twin=".venv/bin/twin"
out="${1:-out/chengdu.twin.gpkg}"
mkdir -p "$(dirname "$out")"
"$twin" init "$out" --crs auto --name "成都示例街区 Chengdu sample district (synthetic)" --overwrite
"$twin" import "$out" --mapping data/samples/mapping.yaml
"$twin" info "$out"
