#!/usr/bin/env bash
# The main job on the shipped sample data: install, build, check the sp1024 sample shards (the validation split's
# token count, scored targets at T = 1024, byte count and tokens per byte), show the baseline and S2 presets, then run
# the baseline's smoke scale through the audited pipeline (`pgolf run`, about 90 s on 2 cores) into runs/demo-smoke:
# train on the CPU engine, export as the baseline did (int8 + zlib-9, the engine's sources as the counted code) and
# score the artifact read back, under the training and evaluation budgets with a hash-chained ledger; verify the run
# from its files (`pgolf audit`), then score the artifact with sliding windows.
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
run model info --preset baseline
run model info --preset s2-growing-recurrence
rm -rf runs/demo-smoke  # the demo's own output: a run folder holds one ledger, so each demo starts afresh
run run --preset baseline --scale smoke --seed 1337 --out runs/demo-smoke
run audit runs/demo-smoke
run eval --artifact runs/demo-smoke/final_model.int8.pga
