#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with CTest. Tests labelled "slow" are skipped unless --slow
# is given (`scripts/test.sh --slow` runs everything). GPU tests skip with a message where no GPU is present.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
labels=(-LE slow)
[[ "${1:-}" == "--slow" ]] && labels=()
ctest --test-dir "$build" --output-on-failure -j "${PGOLF_JOBS:-$(nproc)}" "${labels[@]}"
