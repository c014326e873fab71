#!/usr/bin/env bash
# The independent check that pgolf and bench/torch_reference.py implement the same baseline and S1 models: at smoke
# scale, pgolf's val_loss (export.json's full-precision pre-quantization score) and the PyTorch one on the same weights
# and validation tokens must agree within 1e-4, for freshly initialised weights, for weights pgolf trained 8 steps, and
# for the same 8 steps trained by PyTorch from pgolf's initial weights (optimizer parity; f32 Newton–Schulz).
# Usage: torch_parity_test.sh PGOLF_BINARY SOURCE_DIR   (slow label; exit 77 = skipped when python3 has no torch)
set -uo pipefail
pgolf=$1
root=$2
python=${PGOLF_TORCH_PYTHON:-/usr/bin/python3}
tolerance=1e-4
tokens=16384  # scored targets: 128 sequences of the smoke TRAIN_SEQ_LEN 128
steps=8

if ! "$python" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "torch parity: skipped: $python cannot import torch and numpy"
  exit 77
fi
cd "$root" || exit 1
source_data=$root/data/datasets/fineweb10B_sp1024_mini
if [[ ! -f $source_data/fineweb_val_000000.bin ]]; then
  echo "torch parity: skipped: no validation shard at $source_data"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
checks=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# pgolf scores the whole validation split; a copy holding only the first tokens + 1 makes it score exactly the tokens
# torch_reference.py --max-tokens reads from the full shard.
mkdir -p "$work/data"
ln -s "$source_data/fineweb_train_000000.bin" "$work/data/"
"$python" - "$source_data/fineweb_val_000000.bin" "$work/data/fineweb_val_000000.bin" $((tokens + 1)) <<'EOF' || exit 1
import sys
import numpy as np
source, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
header = np.fromfile(source, dtype="<i4", count=256)
values = np.fromfile(source, dtype="<u2", count=count, offset=1024)
assert header[0] == 20240520 and values.size == count, "unexpected validation shard"
header = header.copy()
header[2] = count
with open(target, "wb") as file:
    file.write(header.tobytes())
    file.write(values.tobytes())
EOF

# pgolf_score RUN: trains with the remaining arguments into RUN, exports it, prints the pre-quantization val_loss.
pgolf_score() {
  local run=$1
  shift
  "$pgolf" train --scale smoke --data "$work/data" --tokenizer "$root/data/tokenizers/fineweb_1024_bpe.model" \
    --set WARMUP_STEPS=0 --set VAL_LOSS_EVERY=0 --set SWA_EVERY=0 --set MUON_PRECISION=f32 "$@" --out "$run" \
    >"$run.train.log" 2>&1 || { echo "pgolf train failed: $(tail -1 "$run.train.log")" >&2; return 1; }
  "$pgolf" export --run "$run" --data "$work/data" --tokenizer "$root/data/tokenizers/fineweb_1024_bpe.model" \
    --out "$run/export" >"$run.export.log" 2>&1 \
    || { echo "pgolf export failed: $(tail -1 "$run.export.log")" >&2; return 1; }
  "$python" -c 'import json, sys; print(repr(json.load(open(sys.argv[1]))["prequant"]["val_loss"]))' \
    "$run/export/export.json"
}

# torch_score WEIGHTS [ARGS…]: torch_reference.py's val_loss on the first $tokens targets of the full shard.
torch_score() {
  local weights=$1
  shift
  "$python" "$root/bench/torch_reference.py" --mode eval --device cpu --weights "$weights" --max-tokens $tokens \
    --data "$source_data" "$@" >"$work/torch.json" 2>"$work/torch.err" \
    || { echo "torch_reference.py failed: $(tail -1 "$work/torch.err")" >&2; return 1; }
  "$python" - "$work/torch.json" $tokens <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
assert result["tokens"] == int(sys.argv[2]), f"torch_reference.py scored {result['tokens']} targets"
print(repr(result["val_loss"]))
EOF
}

# compare LABEL PGOLF TORCH: checks |Δ| ≤ tolerance; sets delta (not in a subshell, so failures count).
compare() {
  checks=$((checks + 1))
  delta=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.3e", b - a }')
  awk -v a="$2" -v b="$3" -v t=$tolerance 'BEGIN { d = b - a; if (d < 0) d = -d; exit !(d <= t) }' \
    || fail "$1: pgolf $2, torch $3, |Δ| > $tolerance"
}

for preset in baseline s1-recursive-4b7l; do
  init=$work/$preset-init
  trained=$work/$preset-trained
  failures_before=$failures
  pgolf_init=$(pgolf_score "$init" --preset $preset --set ITERATIONS=0) \
    || { fail "$preset: pgolf at step 0"; continue; }
  pgolf_trained=$(pgolf_score "$trained" --preset $preset --set ITERATIONS=$steps --set WARMDOWN_ITERS=$((steps / 2))) \
    || { fail "$preset: pgolf after $steps steps"; continue; }
  torch_init=$(torch_score "$init/final_model.safetensors") || { fail "$preset: torch eval at step 0"; continue; }
  torch_trained=$(torch_score "$trained/final_model.safetensors") \
    || { fail "$preset: torch eval after $steps steps"; continue; }
  torch_retrained=$(torch_score "$init/final_model.safetensors" --train-steps $steps --set ITERATIONS=$steps \
    --set WARMDOWN_ITERS=$((steps / 2))) || { fail "$preset: torch training $steps steps"; continue; }
  compare "$preset initial weights" "$pgolf_init" "$torch_init"
  delta_init=$delta
  compare "$preset weights after $steps pgolf steps" "$pgolf_trained" "$torch_trained"
  delta_trained=$delta
  compare "$preset $steps steps trained by torch" "$pgolf_trained" "$torch_retrained"
  delta_retrained=$delta
  status=PASS
  [[ $failures -ne $failures_before ]] && status=FAIL
  echo "torch parity $preset: $status val_loss over $tokens tokens: step 0 pgolf $pgolf_init Δ $delta_init;" \
    "step $steps pgolf $pgolf_trained Δ $delta_trained (same weights), Δ $delta_retrained (torch-trained)"
done

echo "$((checks - failures)) passed, $failures failed"
[[ $failures -eq 0 ]]
