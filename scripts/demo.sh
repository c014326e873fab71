#!/usr/bin/env bash
# The main job on the shipped sample data: install, build, check the sp1024 sample shards (the validation split's
# token count, scored targets at T = 1024, byte count and tokens per byte), show the baseline and S2 presets, then
# reproduce the baseline's smoke scale with three seeds (`pgolf reproduce`, about 3.5 minutes on 2 cores): each seed
# trained on the CPU engine, exported as the baseline did (int8 + zlib-9, the engine's sources as the counted code)
# and scored under the training and evaluation budgets with a hash-chained ledger, audited and stored in
# runs/demo/pgolf.db; then the record folder runs/demo/baseline-smoke, the smoke track's leaderboard, one seed's
# audit re-checked from its files, and that seed's artifact scored with sliding windows; then a sample records tree
# imported with its findings and one of its folders checked as a participant would before a PR.
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
# The demo's own output starts afresh each time (a run folder holds one ledger; the database would skip stored seeds).
rm -rf runs/demo
run reproduce --preset baseline --scale smoke --seeds 1337,42,2024 --set VAL_LOSS_EVERY=0 \
  --name demo-baseline-smoke --author pgolf-demo --out runs/demo/baseline-smoke
run leaderboard --track smoke --db runs/demo/pgolf.db
run audit runs/demo/baseline-smoke/runs/seed_1337
run eval --artifact runs/demo/baseline-smoke/runs/seed_1337/final_model.int8.pga
# Participants' folders as they really are: a small records tree of hand-written folders in the real shapes, imported
# with its findings, and one folder checked before a PR (exit 1 = WARN: it is not significant against the tree's best).
run leaderboard import tests/records/fixtures/tree/records --db runs/demo/records.db
status=0
run check tests/records/fixtures/tree/records/track_10min_16mb/2026-03-17_CleanBaseline --db runs/demo/records.db || status=$?
[[ $status -le 1 ]] || exit "$status"
printf '\nrecord folder: runs/demo/baseline-smoke (README.md, submission.json, train_seed<N>.log, runs/seed_<N>/)\n'
