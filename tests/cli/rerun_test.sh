#!/usr/bin/env bash
# End-to-end checks of `pgolf rerun` with the fake training scripts of tests/audit/fixtures/rerun (a few seconds): two
# good seeds pass and are stored (show, history), a second invocation skips them, --json prints rerun.json, a
# score beyond the tolerance warns (R1), an overrun is killed at a 0.5 s limit (R2), a crash fails (R3), a missing
# artifact fails (R4), and bad input (missing folder, no command, bad seeds, bad --env) is one line on stderr.
# Usage: rerun_test.sh PGOLF_BINARY SOURCE_DIR
set -uo pipefail
pgolf=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=check_lib.sh
source "$2/tests/cli/check_lib.sh"
fixtures="$src/tests/audit/fixtures/rerun"
good="$fixtures/good"
db="$work/pgolf.db"
cd "$work" || exit 1

# Two good seeds: exit 0, one line per seed, the table and the comparison, the runs stored.
check good 0 "$pgolf" rerun "$good" --seeds 1,2 --out "$work/good" --db "$db" -- sh "$fixtures/fake_train.sh"
expect_text good "$work/out" "rerun: seed 1: running sh $fixtures/fake_train.sh in $work/good/seed_1/work"
expect_text good "$work/out" "rerun: seed 2: exit 0 in"
expect_text good "$work/out" "1.12600000 (final_int6_sliding_window)"
expect_text good "$work/out" "re-run val_bpb 1.12550000 ± 0.00070711 over 2 seeds vs submitted 1.12560000"
expect_text good "$work/out" "verdict PASS"
for file in rerun.json seed_1/rerun.log seed_2/rerun.log seed_1/work/final_model.int6.ptz seed_2/work/train_gpt.py; do
  checks=$((checks + 1))
  [[ -s "$work/good/$file" ]] || { echo "FAIL good: $file missing"; failures=$((failures + 1)); }
done
checks=$((checks + 1))
[[ ! -e "$good/final_model.int6.ptz" ]] || { echo "FAIL good: the submitted folder was written to"; failures=$((failures + 1)); }

check good-show 0 "$pgolf" show 1 --db "$db"
expect_text good-show "$work/out" "Fake Good Record (rerun)"
expect_text good-show "$work/out" "folder $work/good (rerun)"
expect_text good-show "$work/out" "seed 1: val_bpb 1.12500000"
expect_text good-show "$work/out" "seed 2: val_bpb 1.12600000"
expect_text good-show "$work/out" "final_int6_roundtrip"
check good-history 0 "$pgolf" history "fake good" --db "$db"
expect_text good-history "$work/out" "val_bpb 1.12550000"
expect_text good-history "$work/out" "(2 seeds)"

# Again: both seeds stored, skipped; --json prints rerun.json on stdout and the progress lines on stderr.
check good-again 0 "$pgolf" rerun "$good" --seeds 1,2 --out "$work/good" --db "$db" --json -- \
  sh "$fixtures/fake_train.sh"
expect_text good-again "$work/err" "rerun: seed 1: stored already, skipped"
expect_no_text good-again "$work/err" "running"
expect_text good-again "$work/out" '"schema": "pgolf-rerun/1"'
expect_text good-again "$work/out" '"skipped": true'
checks=$((checks + 1))
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["comparison"]["rerun"]["n"]==2 and d["verdict"]=="PASS", d' \
    "$work/out" || { echo "FAIL good-again: rerun.json content"; failures=$((failures + 1)); }
fi

# Default --out and --db: ./rerun-<folder name> and ./pgolf.db.
check default-out 0 "$pgolf" rerun "$good/" --seeds 7 -- sh "$fixtures/fake_train.sh"
expect_text default-out "$work/out" "$work/rerun-good/seed_7/work"
expect_text default-out "$work/out" "in $work/pgolf.db"
checks=$((checks + 1))
[[ -s "$work/rerun-good/rerun.json" && -s "$work/pgolf.db" ]] || { echo "FAIL default-out: files missing"; failures=$((failures + 1)); }

# Options before the folder, --env before the folder, and a command with its own dashed flags after --.
check dashes 0 "$pgolf" rerun --seeds 3 --out "$work/dashes" --db "$db" --env FAKE_EVAL_S=20.5 --env FAKE_TRAIN_MS=900 \
  "$good" -- sh -e -u "$fixtures/fake_train.sh" --nproc_per_node=8
expect_text dashes "$work/out" "rerun: seed 3: running sh -e -u $fixtures/fake_train.sh --nproc_per_node=8"
expect_text dashes "$work/dashes/rerun.json" '"eval_time_s": 20.5'
expect_text dashes "$work/dashes/rerun.json" '"train_time_ms": 900.0'

# A score beyond the tolerance (an --env variable reaches the script): WARN, exit 1, R1.
check tolerance 1 "$pgolf" rerun "$good" --seeds 1 --out "$work/far" --db "$db" --env FAKE_BPB=1.13000000 -- \
  sh "$fixtures/fake_train.sh"
expect_text tolerance "$work/out" "seed 1 R1 warn: re-run val_bpb 1.13000000"
expect_text tolerance "$work/out" "verdict WARN"

# An overrun: killed at a 0.5 s limit, exit 2, R2, well before the script's 30 s sleep.
start=$SECONDS
check overrun 2 "$pgolf" rerun "$good" --seeds 1 --out "$work/overrun" --db "$db" --limit 0.5 --grace 0.5 -- \
  sh "$fixtures/overrun.sh"
expect_text overrun "$work/out" "killed at the limit"
expect_text overrun "$work/out" "R2 fail: killed at the"
checks=$((checks + 1))
(( SECONDS - start < 10 )) || { echo "FAIL overrun: took $((SECONDS - start)) s"; failures=$((failures + 1)); }

# A crash: exit 3, R3, stderr captured in the log.
check crash 2 "$pgolf" rerun "$good" --seeds 1 --out "$work/crash" --db "$db" -- sh "$fixtures/crash.sh"
expect_text crash "$work/out" "R3 fail: the command ended with exit 3"
expect_text crash "$work/crash/seed_1/rerun.log" "RuntimeError"

# No artifact: R4.
check no-artifact 2 "$pgolf" rerun "$good" --seeds 1 --out "$work/noart" --db "$db" -- sh "$fixtures/no_artifact.sh"
expect_text no-artifact "$work/out" "R4 fail: no artifact file"

# A command that does not exist: R3 naming it.
check not-found 2 "$pgolf" rerun "$good" --seeds 1 --out "$work/notfound" --db "$db" -- pgolf-no-such-command-xyz
expect_text not-found "$work/out" "cannot run 'pgolf-no-such-command-xyz': command not found"

# Bad input: one line on stderr, non-zero exit.
check missing-folder 1 "$pgolf" rerun "$work/absent" --seeds 1 --db "$db" -- sh "$fixtures/fake_train.sh"
expect_one_line missing-folder "$work/err"
expect_text missing-folder "$work/err" "is not a folder"
check no-command 1 "$pgolf" rerun "$good" --seeds 1 --db "$db"
expect_one_line no-command "$work/err"
expect_text no-command "$work/err" "no command given"
check bad-seeds 1 "$pgolf" rerun "$good" --seeds 1,x --db "$db" -- sh "$fixtures/fake_train.sh"
expect_one_line bad-seeds "$work/err"
expect_text bad-seeds "$work/err" "'x' is not a seed"
check bad-env 1 "$pgolf" rerun "$good" --seeds 1 --db "$db" --env NOVALUE -- sh "$fixtures/fake_train.sh"
expect_one_line bad-env "$work/err"
check seed-env 1 "$pgolf" rerun "$good" --seeds 1 --db "$db" --env SEED=3 -- sh "$fixtures/fake_train.sh"
expect_text seed-env "$work/err" "SEED is set per seed"

check_summary
