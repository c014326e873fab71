#!/usr/bin/env bash
# Each seed preset trains at smoke scale on its shipped data (sp8192 for S3) on the CPU engine: the first loss is
# ln(vocab), the final validation loss is clearly lower; then its own export (scheme, codec, calibration) round-trips
# with a small bpb rise, and `pgolf eval` of the artifact read back gives the round-trip score to the last digit.
# Usage: [PRESETS="s2-growing-recurrence …"] seed_presets_smoke_test.sh PGOLF_BINARY SOURCE_DIR (default: all four)
set -uo pipefail
pgolf=$1
cd "$2" || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
checks=0
for preset in ${PRESETS:-s1-recursive-4b7l s2-growing-recurrence s3-crawler-3f2cx2 s4-11l-recurrence-prequant}; do
  checks=$((checks + 1))
  if ! "$pgolf" train --preset "$preset" --scale smoke --out "$work/$preset" >"$work/$preset.log" 2>&1; then
    echo "FAIL $preset: exit non-zero"; tail -3 "$work/$preset.log"; failures=$((failures + 1)); continue
  fi
  first=$(grep -oE 'step:1/[0-9]+ train_loss:[0-9.]+' "$work/$preset.log" | cut -d: -f3)
  final=$(grep -oE 'val_loss:[0-9.]+' "$work/$preset.log" | tail -1 | cut -d: -f2)
  vocab=$("$pgolf" model info --preset "$preset" --scale smoke --keys | grep '^  VOCAB_SIZE=' | cut -d= -f2)
  if awk -v x="$first" -v y="$final" -v v="$vocab" 'BEGIN { exit !((x - log(v))^2 < 0.01 && y < log(v) - 1.0) }'; then
    echo "ok $preset: first train_loss $first, final val_loss $final (ln vocab $(awk -v v="$vocab" 'BEGIN{printf "%.4f", log(v)}'))"
  else
    echo "FAIL $preset: first train_loss $first, final val_loss $final"; failures=$((failures + 1))
  fi
  export_args=()
  if [[ $preset == s4-11l-recurrence-prequant ]]; then
    # S4 trains on the validation tokens before quantizing (pre-quant TTT): refused by default, recorded in observe
    # mode (one epoch here instead of ten, to keep the test short).
    checks=$((checks + 1))
    if "$pgolf" export --run "$work/$preset" --no-eval --out "$work/$preset-refused" >"$work/$preset.refused" 2>&1 ||
      ! grep -q "validation gate (C3)" "$work/$preset.refused"; then
      echo "FAIL $preset export: pre-quant TTT was not refused in enforce mode"; failures=$((failures + 1))
    fi
    export_args=(--gate observe --set PREQUANT_TTT_EPOCHS=1)
  fi
  checks=$((checks + 1))
  if ! "$pgolf" export --run "$work/$preset" "${export_args[@]}" >"$work/$preset.export" 2>&1; then
    echo "FAIL $preset export: exit non-zero"; tail -3 "$work/$preset.export"; failures=$((failures + 1)); continue
  fi
  gap=$(grep -oE 'quantization_gap val_bpb:[-+0-9.]+' "$work/$preset.export" | cut -d: -f2)
  exact=$(grep -oE 'roundtrip_exact val_loss:[0-9.]+ val_bpb:[0-9.]+' "$work/$preset.export" | cut -d' ' -f2-)
  artifact=$(ls "$work/$preset"/final_model.*.pga)
  "$pgolf" eval --artifact "$artifact" --mode plain >"$work/$preset.eval" 2>&1
  if awk -v g="$gap" 'BEGIN { exit !(g > -0.01 && g < 0.1) }' && grep -qF "roundtrip_exact $exact" "$work/$preset.eval"; then
    echo "ok $preset export: $(grep -oE 'Total submission size [^ ]+: [0-9]+' "$work/$preset.export"), gap $gap bpb"
  else
    echo "FAIL $preset export: gap '$gap' bpb, round trip '$exact'"; tail -2 "$work/$preset.eval"; failures=$((failures + 1))
  fi
done
echo "$((checks - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
