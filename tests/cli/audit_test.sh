#!/usr/bin/env bash
# End-to-end checks of `pgolf run` and `pgolf audit` at smoke scale on the shipped data (about 2 minutes on 2 cores):
# a compliant baseline run passes; pre-quant TTT in observe mode fails with L6; calibration past a tiny training
# budget stops the run with T4; a tiny byte cap fails A1; a tiny evaluation budget stops it with E1; any single edited,
# deleted or swapped ledger line is named; a killed run reads as INCOMPLETE with its last phase.
# Usage: audit_test.sh PGOLF_BINARY SOURCE_DIR
set -uo pipefail
pgolf=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"
cd "$src"  # the presets' DATA_PATH and TOKENIZER_PATH are relative to the repository root

quick=(--scale smoke --set VAL_LOSS_EVERY=0)

# A compliant baseline run: PASS, with the ledger, log, artifact, code bundle and audit.json in the run folder.
check baseline-run 0 "$pgolf" run --preset baseline "${quick[@]}" --set ITERATIONS=6 --seed 7 --out "$work/base"
expect_text baseline-run "$work/out" "run complete"
expect_text baseline-run "$work/out" ": PASS"
expect_text baseline-run "$work/out" "final_int8_zlib_roundtrip_exact"
for file in ledger.jsonl ledger.head train.log audit.json final_model.int8.pga engine-source.tar.xz; do
  checks=$((checks + 1))
  [[ -s "$work/base/$file" ]] || { echo "FAIL baseline-run: $file missing"; failures=$((failures + 1)); }
done
check baseline-audit 0 "$pgolf" audit "$work/base"
expect_text baseline-audit "$work/out" "PASS"
expect_text baseline-audit "$work/out" "T2"
expect_text baseline-audit "$work/out" "A1"
expect_text baseline-audit "$work/base/audit.json" '"verdict": "PASS"'
check rerun-refused 1 "$pgolf" run --preset baseline "${quick[@]}" --out "$work/base"
expect_text rerun-refused "$work/err" "a ledger already exists"
check audit-not-a-run 1 "$pgolf" audit "$work"
expect_text audit-not-a-run "$work/err" "no ledger.jsonl"
check audit-tiny-cap 2 "$pgolf" audit "$work/base" --cap-bytes 1000
expect_text audit-tiny-cap "$work/out" "FAIL A1"

# Tampering: every single-line edit, deletion or swap is reported with its line number.
lines=$(wc -l <"$work/base/ledger.jsonl")
tamper() {  # tamper NAME PYTHON_EDIT EXPECTED_TEXT
  rm -rf "$work/t" && cp -r "$work/base" "$work/t"
  python3 - "$work/t/ledger.jsonl" "$2" <<'PY'
import sys
path, edit = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().split("\n")[:-1]
exec(edit)
open(path, "w", encoding="utf-8").write("".join(line + "\n" for line in lines))
PY
  check "tamper-$1" 2 "$pgolf" audit "$work/t"
  expect_text "tamper-$1" "$work/out" "FAIL V1"
  expect_text "tamper-$1" "$work/out" "$3"
}
tamper edit-middle 'lines[4] = lines[4].replace("\"t_ms\":", "\"t_ms\":1", 1)' "line 6: its previous-line hash does not match line 5"
tamper delete-middle 'del lines[4]' "line 5: sequence number 5, expected 4"
tamper swap 'lines[6], lines[7] = lines[7], lines[6]' "line 7: sequence number 7, expected 6"
tamper edit-last "lines[-1] = lines[-1].replace('\"complete\"', '\"COMPLETE\"')" "line $lines: does not match the hash the head anchored"
tamper delete-last 'del lines[-1]' "line $lines: missing"
tamper garbage 'lines[2] = "{not json"' "line 3: not a ledger event"
# A replaced artifact or edited log is caught from the files themselves.
rm -rf "$work/t" && cp -r "$work/base" "$work/t" && printf 'x' >>"$work/t/final_model.int8.pga"
check tamper-artifact 2 "$pgolf" audit "$work/t"
expect_text tamper-artifact "$work/out" "FAIL V4"
rm -rf "$work/t" && cp -r "$work/base" "$work/t" && sed -i 's/^final_int8_zlib_roundtrip_exact val_loss:[0-9.]*/final_int8_zlib_roundtrip_exact val_loss:1.00000000/' "$work/t/train.log"
check tamper-log 2 "$pgolf" audit "$work/t"
expect_text tamper-log "$work/out" "FAIL V3"

# A byte cap the artifact cannot meet: the run records A1 and the audit fails.
check tiny-cap-run 2 "$pgolf" run --preset baseline "${quick[@]}" --set ITERATIONS=2 --cap-bytes 100000 --out "$work/cap"
expect_text tiny-cap-run "$work/out" "FAIL A1"
expect_text tiny-cap-run "$work/out" "over the 100000-byte cap"

# A tiny evaluation budget: the timed evaluation is stopped (E1).
check eval-budget 2 "$pgolf" run --preset baseline "${quick[@]}" --set ITERATIONS=2 --eval-budget 0.5 --out "$work/eval"
expect_text eval-budget "$work/out" "run stopped (E1)"
expect_text eval-budget "$work/out" "FAIL E1"

# GPTQ calibration reads training data after a tiny training budget: the run stops at the read (T4).
check train-budget 2 "$pgolf" run --preset s3-crawler-3f2cx2 "${quick[@]}" --set ITERATIONS=50 --train-budget 0.5 \
  --out "$work/t4"
expect_text train-budget "$work/out" "stopping_early: train_budget"
expect_text train-budget "$work/out" "run stopped (T4)"
expect_text train-budget "$work/out" "FAIL T4"
expect_text train-budget "$work/out" "phase calibrate"

# S4's pre-quant TTT, run in observe mode: adapted on validation tokens before scoring them (L6, with C3 and D4).
check prequant-observe 2 "$pgolf" run --preset s4-11l-recurrence-prequant "${quick[@]}" --set ITERATIONS=2 \
  --set PREQUANT_TTT_EPOCHS=1 --set EVAL_MODE=plain --gate observe --out "$work/s4"
expect_text prequant-observe "$work/out" "FAIL L6"
expect_text prequant-observe "$work/out" "FAIL C3"
expect_text prequant-observe "$work/out" "FAIL D4"
check prequant-audit 2 "$pgolf" audit "$work/s4"
expect_text prequant-audit "$work/s4/audit.json" '"rule": "L6"'

# A run killed mid-phase leaves a ledger the verifier reads: INCOMPLETE, with the phase it was in.
"$pgolf" run --preset baseline "${quick[@]}" --set ITERATIONS=500 --out "$work/killed" >/dev/null 2>&1 &
runner=$!
for _ in $(seq 1 300); do
  grep -q '"phase":"train","event":"phase_begin"' "$work/killed/ledger.jsonl" 2>/dev/null && break
  sleep 0.2
done
sleep 1
kill -9 "$runner" 2>/dev/null
wait "$runner" 2>/dev/null
check killed 3 "$pgolf" audit "$work/killed"
expect_text killed "$work/out" "INCOMPLETE"
expect_text killed "$work/out" "last phase train"
expect_no_text killed "$work/out" "FAIL"

check_summary
