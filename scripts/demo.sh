#!/usr/bin/env bash
# The main job on the shipped sample data: install, build, then check the sp1024 sample shards and print the
# validation split's token count, scored targets at T = 1024, byte count and tokens per byte.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh" --target pgolf >/dev/null
pgolf="$build/cli/pgolf"
cd "$root"
run() { printf '\n$ pgolf %s\n' "$*"; "$pgolf" "$@"; }
run --version
run data inspect data/datasets/fineweb10B_sp1024_mini/fineweb_val_000000.bin
run data verify data/datasets/fineweb10B_sp1024_mini --tokenizer data/tokenizers/fineweb_1024_bpe.model --seq-len 1024
