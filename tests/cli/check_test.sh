#!/usr/bin/env bash
# End-to-end checks of pgolf leaderboard import and pgolf check over the fixture records tree
# (tests/records/fixtures/tree) and the static-scan fixtures (tests/audit/fixtures/scan), in seconds: the import lists
# every folder, is idempotent and keeps failing folders off the frontier; check gives PASS/WARN/FAIL with exit 0/1/2,
# significance against the frontier or a named submission, text and JSON, and scan findings with file:line.
# Usage: check_test.sh PGOLF_BINARY SOURCE_DIR
set -uo pipefail
pgolf=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"

tree="$src/tests/records/fixtures/tree/records"
record="$tree/track_10min_16mb"
db="$work/pgolf.db"

# --- import ---
check import 0 "$pgolf" leaderboard import "$tree" --db "$db"
expect_text import "$work/out" "records/track_10min_16mb/2026-03-17_CleanBaseline"
expect_text import "$work/out" "records/track_non_record_16mb/2026-03-24_Ternary"
expect_text import "$work/out" "imported 9 folders, 22 runs"
cp "$work/out" "$work/first_import"
check import_again 0 "$pgolf" leaderboard import "$tree" --db "$db"
checks=$((checks + 1))
if ! diff -q "$work/first_import" "$work/out" >/dev/null; then
  echo "FAIL import_again: a second import printed something else (ids or counts changed)"
  diff "$work/first_import" "$work/out" | sed 's/^/  | /'
  failures=$((failures + 1))
fi
check import_json 0 "$pgolf" leaderboard import "$tree" --db "$db" --json
expect_text import_json "$work/out" '"unreadable": 0'
check frontier 0 "$pgolf" leaderboard --db "$db"
expect_text frontier "$work/out" "Clean baseline"
expect_text frontier "$work/out" "#8 SP8192 Hessian: an audit or check failed"
check show 0 "$pgolf" show 8 --db "$db"
expect_text show "$work/out" "A5"
expect_text show "$work/out" "count the model only"
check history 0 "$pgolf" history "Ternary" --db "$db"
expect_text history "$work/out" "track_non_record_16mb"

# --- check: verdicts and exit statuses ---
check clean_no_db 0 "$pgolf" check "$record/2026-03-17_CleanBaseline" --db "$work/none.db"
expect_text clean_no_db "$work/out" "verdict: PASS"
expect_text clean_no_db "$work/out" "significance not tested"
expect_text clean_no_db "$work/out" "train_seed42.log:11"
expect_text clean_no_db "$work/out" "largest total 15,863,533 bytes (margin 136,467)"
check clean_vs_frontier 1 "$pgolf" check "$record/2026-03-17_CleanBaseline" --db "$db"
expect_text clean_vs_frontier "$work/out" "significance against #2 Best seed headline"
expect_text clean_vs_frontier "$work/out" "WARN P1 not_significant"
check best_vs_clean 1 "$pgolf" check "$record/2026-03-19_BestSeedHeadline" --db "$db" --against 1
expect_text best_vs_clean "$work/out" "significance against #1 Clean baseline"
expect_text best_vs_clean "$work/out" "— passes"
expect_text best_vs_clean "$work/out" "WARN S6 headline_not_mean"
check missing 2 "$pgolf" check "$record/2026-03-21_MissingFiles" --db "$db"
expect_text missing "$work/out" "FAIL F1 missing_file: no README.md"
expect_text missing "$work/out" "verdict: FAIL"
check json 2 "$pgolf" check "$record/2026-04-06_SP8192_ModelOnlyBytes" --db "$db" --json
expect_text json "$work/out" '"verdict": "FAIL"'
expect_text json "$work/out" '"kind": "model_only_bytes"'
expect_text json "$work/out" '"evidence": "logs/train_seed1337.txt:10"'

# --- check: the static scan through a participant's folder ---
scan="$src/tests/audit/fixtures/scan"
mkdir -p "$work/folders"
cp -r "$record/2026-03-17_CleanBaseline" "$work/folders/legal"
cp "$scan/legal_score_first_ttt.py" "$work/folders/legal/train_gpt.py"
check scan_legal 0 "$pgolf" check "$work/folders/legal" --db "$work/none.db"
expect_text scan_legal "$work/out" "legal L1"
expect_text scan_legal "$work/out" "verdict: PASS"
cp -r "$record/2026-03-17_CleanBaseline" "$work/folders/prequant"
cp "$scan/prequant_ttt_adamw.py" "$work/folders/prequant/train_gpt.py"
check scan_prequant 2 "$pgolf" check "$work/folders/prequant" --db "$work/none.db"
expect_text scan_prequant "$work/out" "FAIL L6 scan"
expect_text scan_prequant "$work/out" "[train_gpt.py:"
cp -r "$record/2026-03-17_CleanBaseline" "$work/folders/dead"
cp "$scan/never_called.py" "$work/folders/dead/train_gpt.py"
check scan_dead 0 "$pgolf" check "$work/folders/dead" --db "$work/none.db"
expect_text scan_dead "$work/out" "INFO L6 scan"
expect_text scan_dead "$work/out" "never called"

# --- bad input: one line on stderr, non-zero exit ---
check missing_folder 1 "$pgolf" check "$work/nonexistent"
expect_one_line missing_folder "$work/err"
expect_text missing_folder "$work/err" "not a record folder"
check against_unknown 1 "$pgolf" check "$record/2026-03-17_CleanBaseline" --db "$db" --against 999
expect_one_line against_unknown "$work/err"
check import_missing 1 "$pgolf" leaderboard import "$work/nonexistent" --db "$db"
expect_one_line import_missing "$work/err"
expect_text import_missing "$work/err" "not a records tree"

check_summary
