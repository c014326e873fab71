#!/usr/bin/env bash
# The counted code is the whole engine (docs/code-bytes.md): engine-source.tar.xz, unpacked on its own, configures and
# builds a pgolf that embeds the same sources (same engine digest) and exports the same artifact bytes.
# Usage: code_bundle_rebuild_test.sh PGOLF_BINARY SOURCE_DIR   (slow: a CPU-only build of pgolf, 1–5 minutes on 2 cores)
set -euo pipefail
pgolf=$1
cd "$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$pgolf" export --preset baseline --scale smoke --init-seed 1 --out "$work/a" >/dev/null
mkdir "$work/src"
tar -xJf "$work/a/engine-source.tar.xz" -C "$work/src"
[[ ! -e "$work/src/tests" ]] || { echo "FAIL: the bundle carries tests/"; exit 1; }
cmake -S "$work/src" -B "$work/build" -DPGOLF_CUDA=OFF >"$work/configure.log" 2>&1 || { tail -20 "$work/configure.log"; exit 1; }
cmake --build "$work/build" --target pgolf -j 2 >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
"$work/build/cli/pgolf" export --preset baseline --scale smoke --init-seed 1 --out "$work/b" >/dev/null
digest() { grep -oE '"engine_digest": "[0-9a-f]+"' "$1/export.json"; }
[[ "$(digest "$work/a")" == "$(digest "$work/b")" ]] || { echo "FAIL: engine digests differ"; exit 1; }
cmp "$work/a/engine-source.tar.xz" "$work/b/engine-source.tar.xz" || { echo "FAIL: code bundles differ"; exit 1; }
cmp "$work/a/final_model.int8.pga" "$work/b/final_model.int8.pga" || { echo "FAIL: artifacts differ"; exit 1; }
echo "rebuilt from the bundle: same engine digest, same code bundle, same artifact"
