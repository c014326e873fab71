#!/usr/bin/env bash
# End-to-end checks of pgolf reproduce, leaderboard, history, show and compare at smoke scale (about 2 minutes on 2
# cores): a 3-seed reproduction writes a record folder and stores every run; a re-run skips stored seeds; a killed
# reproduction keeps its finished seed; another config is refused in the same folder; a better second submission is
# significant and joins the frontier; queries by track, date, name and id, in text and JSON.
# Usage: records_test.sh PGOLF_BINARY SOURCE_DIR
set -uo pipefail
pgolf=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
cd "$src"  # the presets' DATA_PATH and TOKENIZER_PATH are relative to the repository root

db="$work/rec/pgolf.db"
quick=(--preset baseline --scale smoke --set VAL_LOSS_EVERY=0)

check first 0 "$pgolf" reproduce "${quick[@]}" --set ITERATIONS=4 --seeds 1337,42,2024 --name first --author alice \
  --date 2026-01-01 --out "$work/rec/first"
expect_text first "$work/out" "record folder: $work/rec/first"
expect_text first "$work/out" "over 3 seeds"
expect_text first "$work/out" "no earlier record of track smoke"
for file in README.md submission.json train_seed1337.log train_seed42.log train_seed2024.log \
  runs/seed_42/ledger.jsonl runs/seed_42/audit.json pgolf.db; do
  checks=$((checks + 1))
  target="$work/rec/first/$file"
  [[ $file == pgolf.db ]] && target=$db
  [[ -s "$target" ]] || { echo "FAIL first: $file missing"; failures=$((failures + 1)); }
done
expect_text first "$work/rec/first/submission.json" '"schema": "pgolf-submission/1"'
expect_text first "$work/rec/first/submission.json" '"2024": {'
expect_text first "$work/rec/first/README.md" "mean ± std"
expect_text first "$work/rec/first/README.md" "pgolf audit runs/seed_1337"

check rerun-skips 0 "$pgolf" reproduce "${quick[@]}" --set ITERATIONS=4 --seeds 1337,42,2024 --name first \
  --author alice --date 2026-01-01 --out "$work/rec/first"
expect_text rerun-skips "$work/out" "seed 42: stored already, skipped"
expect_no_text rerun-skips "$work/out" "running into"

check other-config 1 "$pgolf" reproduce "${quick[@]}" --set ITERATIONS=5 --seeds 1337 --out "$work/rec/first"
expect_text other-config "$work/err" "holds a submission of another config"

# A reproduction killed in its second seed keeps the first; running it again skips that one.
"$pgolf" reproduce "${quick[@]}" --set ITERATIONS=4 --seeds 5,6 --name killed --date 2026-01-02 \
  --out "$work/rec/killed" >"$work/killed.out" 2>&1 &
runner=$!
for _ in $(seq 1 600); do
  grep -q "seed 6: running" "$work/killed.out" && break
  sleep 0.2
done
sleep 1
kill -9 "$runner" 2>/dev/null
wait "$runner" 2>/dev/null
check killed-rerun 0 "$pgolf" reproduce "${quick[@]}" --set ITERATIONS=4 --seeds 5,6 --name killed --date 2026-01-02 \
  --out "$work/rec/killed"
expect_text killed-rerun "$work/out" "seed 5: stored already, skipped"
expect_text killed-rerun "$work/out" "seed 6: running"

# A better submission (twice the training) a month later: significant against the first, and on the frontier.
check second 0 "$pgolf" reproduce "${quick[@]}" --set ITERATIONS=12 --seeds 1,2,3 --name second --author bob \
  --github-id bobgolf --date 2026-02-01 --out "$work/rec/second"
expect_text second "$work/out" "vs first: welch_bpb"
expect_text second "$work/rec/second/README.md" "welch_bpb (gate)"
expect_text second "$work/rec/second/submission.json" '"against_name": "first"'

check leaderboard 0 "$pgolf" leaderboard --track smoke --db "$db"
expect_text leaderboard "$work/out" "first"
expect_text leaderboard "$work/out" "second"
expect_text leaderboard "$work/out" "vs first"
check leaderboard-as-of 0 "$pgolf" leaderboard --track smoke --as-of 2026-01-15 --db "$db"
expect_no_text leaderboard-as-of "$work/out" "second"
check leaderboard-json 0 "$pgolf" leaderboard --track smoke --db "$db" --json
expect_text leaderboard-json "$work/out" '"frontier": ['
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [r["name"] for r in d["frontier"]][-1]=="second", d' \
  "$work/out" || { echo "FAIL leaderboard-json: second is not the last frontier row"; failures=$((failures + 1)); }
checks=$((checks + 1))
check leaderboard-empty 0 "$pgolf" leaderboard --track track_10min_16mb --db "$db"

check history 0 "$pgolf" history ALICE --db "$db"
expect_text history "$work/out" "first"
expect_no_text history "$work/out" "second"
check history-json 0 "$pgolf" history bobgolf --db "$db" --json
expect_text history-json "$work/out" '"name": "second"'
check show 0 "$pgolf" show 1 --db "$db"
expect_text show "$work/out" "seed 2024:"
expect_text show "$work/out" "int8_zlib_roundtrip"
check show-json 0 "$pgolf" show 1 --db "$db" --json
expect_text show-json "$work/out" '"runs": ['
check show-missing 1 "$pgolf" show 99 --db "$db"
expect_one_line show-missing "$work/err"

check compare-ids 0 "$pgolf" compare 3 1 --db "$db"
expect_text compare-ids "$work/out" "(the gate)"
expect_text compare-ids "$work/out" "A passes"
check compare-folders 0 "$pgolf" compare "$work/rec/second" "$work/rec/first" --json
expect_text compare-folders "$work/out" '"gate": "welch_bpb"'
check compare-runs 0 "$pgolf" compare "$work/rec/second/runs/seed_1,$work/rec/second/runs/seed_2" "$work/rec/first"
check compare-bad 1 "$pgolf" compare "$work/nothing" 1 --db "$db"
expect_one_line compare-bad "$work/err"
check bad-seeds 1 "$pgolf" reproduce "${quick[@]}" --seeds 1,x --out "$work/rec/bad"
expect_text bad-seeds "$work/err" "'x' is not a seed"

check_summary
