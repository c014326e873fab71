#!/usr/bin/env bash
# Configures (once) and builds pgolf into build/ (override with PGOLF_BUILD_DIR). Extra arguments go to cmake --build,
# e.g. `scripts/build.sh --target pgolf`. CUDA is built when nvcc is found (PGOLF_CUDA=AUTO|ON|OFF).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
jobs=${PGOLF_JOBS:-$(nproc)}
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGOLF_CUDA="${PGOLF_CUDA:-AUTO}" >/dev/null
fi
cmake --build "$build" -j "$jobs" "$@"
