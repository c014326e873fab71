#!/usr/bin/env bash
# Configures (once) and builds pgolf into build/ (override with PGOLF_BUILD_DIR). Extra arguments go to cmake --build,
# e.g. `scripts/build.sh --target pgolf`. CUDA is built when nvcc is found (PGOLF_CUDA=AUTO|ON|OFF).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
jobs=${PGOLF_JOBS:-$(nproc)}
# Configured every time (about a second) so a changed PGOLF_CUDA takes effect on an existing build folder.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGOLF_CUDA="${PGOLF_CUDA:-AUTO}" >/dev/null
cmake --build "$build" -j "$jobs" "$@"
