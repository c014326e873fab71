#!/usr/bin/env bash
# The acceptance run of the CPU engine: `pgolf train --preset baseline --scale smoke` on the shipped data starts within
# 0.05 of ln(1024), ends clearly lower, repeats its loss lines exactly with the same seed and changes with another.
# Usage: smoke_train_test.sh PGOLF_BINARY SOURCE_DIR   (slow: about 80 s per run)
set -uo pipefail
pgolf=$1
cd "$2" || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
checks=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

for run in a b c; do
  seed=1337
  [[ $run == c ]] && seed=42
  "$pgolf" train --preset baseline --scale smoke --seed $seed --out "$work/$run" >"$work/$run.log" 2>&1 || fail "run $run exited non-zero"
  # Loss lines without timings.
  grep -oE 'step:[0-9]+/[0-9]+ (train_loss|val_loss):[0-9.]+( val_bpb:[0-9.]+)?' "$work/$run.log" >"$work/$run.losses"
done

checks=$((checks + 1))
first=$(grep -oE 'step:1/[0-9]+ train_loss:[0-9.]+' "$work/a.log" | cut -d: -f3)
awk -v x="$first" 'BEGIN { d = x - log(1024); exit !(d < 0.05 && d > -0.05) }' || fail "first loss $first is not within 0.05 of ln(1024)"
checks=$((checks + 1))
final=$(grep -oE 'val_loss:[0-9.]+' "$work/a.log" | tail -1 | cut -d: -f2)
awk -v x="$final" 'BEGIN { exit !(x < log(1024) - 1.5) }' || fail "final val_loss $final is not clearly below ln(1024)"
checks=$((checks + 1))
cmp -s "$work/a.losses" "$work/b.losses" || fail "two runs with seed 1337 differ: $(diff "$work/a.losses" "$work/b.losses" | head -3)"
checks=$((checks + 1))
cmp -s "$work/a.losses" "$work/c.losses" && fail "seed 42 gave the same loss lines as seed 1337"
checks=$((checks + 1))
grep -q 'step:150/150 val_loss:' "$work/a.losses" || fail "the run did not reach step 150 with a final validation"

echo "first train_loss $first, final val_loss $final"
echo "$((checks - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
