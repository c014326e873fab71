#!/usr/bin/env bash
# End-to-end checks of the pgolf executable: help for every command, exit codes, and one-line errors on bad input.
# Usage: cli_test.sh PGOLF_BINARY SOURCE_DIR
set -uo pipefail
pgolf=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=check_lib.sh
source "$(dirname "$0")/check_lib.sh"

tok="$src/data/tokenizers/fineweb_1024_bpe.model"
mini="$src/data/datasets/fineweb10B_sp1024_mini"

# Help for every command.
check help 0 "$pgolf" --help && expect_text help "$work/out" "data"
for command in "data" "data inspect" "data verify" "data encode" "model" "model info" "train" "bench" "bench train" "bench kernels" "export" "eval" "probe" "run" "audit" "reproduce" "compare" "leaderboard" "history" "show"; do
  # shellcheck disable=SC2086
  check "help $command" 0 "$pgolf" $command --help && expect_text "help $command" "$work/out" "Usage"
done
check version 0 "$pgolf" --version && expect_text version "$work/out" "pgolf "
expect_text version "$work/out" "cudnn: "

# Unknown command / missing arguments: usage errors, exit 2, one line.
check unknown-command 2 "$pgolf" frobnicate && expect_one_line unknown-command "$work/err"
check verify-no-tokenizer 2 "$pgolf" data verify "$mini" && expect_one_line verify-no-tokenizer "$work/err"

# inspect on the real shard.
check inspect 0 "$pgolf" data inspect "$mini/fineweb_val_000000.bin"
expect_text inspect "$work/out" "262,145"
expect_text inspect "$work/out" "62512cec9ab5607c370dc7304bb5021e6afb3ff2a7560d2308131e1489e54a48"
check inspect-json 0 "$pgolf" data inspect --json "$mini/fineweb_val_000000.bin"
expect_text inspect-json "$work/out" '"tokens": 262145'
check inspect-vocab 1 "$pgolf" data inspect --vocab-size 1000 "$mini/fineweb_val_000000.bin"
expect_one_line inspect-vocab "$work/err"

# verify on the shipped dataset, then on a corrupted copy.
check verify 0 "$pgolf" data verify "$mini" --tokenizer "$tok" --seq-len 1024
expect_text verify "$work/out" "262,144 scored at T=1024"
expect_text verify "$work/out" "OK"
mkdir -p "$work/bad"
cp "$mini"/*.bin "$work/bad/"
printf 'garbage' | dd of="$work/bad/fineweb_train_000000.bin" bs=1 seek=0 conv=notrunc status=none
check verify-corrupt 1 "$pgolf" data verify "$work/bad" --tokenizer "$tok"
expect_one_line verify-corrupt "$work/err"
expect_text verify-corrupt "$work/err" "fineweb_train_000000.bin: bad magic"
truncate -s 1000 "$work/bad/fineweb_train_000000.bin"
check verify-truncated 1 "$pgolf" data verify "$work/bad" --tokenizer "$tok"
expect_text verify-truncated "$work/err" "truncated header"
check verify-bad-tokenizer 1 "$pgolf" data verify "$mini" --tokenizer "$mini/fineweb_val_000000.bin"
expect_one_line verify-bad-tokenizer "$work/err"
check inspect-missing 1 "$pgolf" data inspect "$work/nope.bin"
expect_one_line inspect-missing "$work/err"

# encode a JSONL and a plain file, then verify the result.
printf '{"text": "Hello world, the year 2024 was great."}\n{"text": "second document"}\n' >"$work/docs.jsonl"
printf 'a plain text document\nwith two lines\n' >"$work/plain.txt"
check encode 0 "$pgolf" data encode --tokenizer "$tok" --out "$work/enc" --val-docs 1 "$work/docs.jsonl" "$work/plain.txt"
expect_text encode "$work/out" "fineweb_val_000000.bin"
check encode-inspect 0 "$pgolf" data inspect --json "$work/enc/fineweb_val_000000.bin"
expect_text encode-inspect "$work/out" '"tokens": 17'  # BOS + the 16 known-answer ids
check encode-again 1 "$pgolf" data encode --tokenizer "$tok" --out "$work/enc" "$work/docs.jsonl"
expect_text encode-again "$work/err" "--force"
check encode-bad-val-docs 1 "$pgolf" data encode --tokenizer "$tok" --out "$work/enc2" --val-docs x "$work/docs.jsonl"
expect_one_line encode-bad-val-docs "$work/err"
check encoded-verify 0 "$pgolf" data verify "$work/enc" --tokenizer "$tok" --seq-len 4

# model info: the published parameter count of the baseline, exactly.
check model-info 0 "$pgolf" model info --preset baseline
expect_text model-info "$work/out" "17,059,912 (matches the published 17,059,912)"
for pair in "s1-recursive-4b7l:29,950,082" "s2-growing-recurrence:26,698,335 plus 2,560" "s3-crawler-3f2cx2:38,346,836" \
  "s4-11l-recurrence-prequant:26,928,220"; do
  preset=${pair%%:*}
  check "model-info-$preset" 0 "$pgolf" model info --preset "$preset"
  expect_text "model-info-$preset" "$work/out" "parameters   ${pair#*:}"
  expect_text "model-info-$preset" "$work/out" "(matches the published"
done
check model-info-json 0 "$pgolf" model info --preset baseline --scale smoke --json
expect_text model-info-json "$work/out" '"scale": "smoke"'
check model-info-set 0 "$pgolf" model info --preset baseline --set NUM_LAYERS=11 --keys
expect_text model-info-set "$work/out" "DIFFERS from the published"
expect_text model-info-set "$work/out" "NUM_LAYERS=11"
check model-info-bad-key 1 "$pgolf" model info --set NUM_LAYER=11
expect_one_line model-info-bad-key "$work/err"
check model-info-bad-preset 1 "$pgolf" model info --preset nope
expect_one_line model-info-bad-preset "$work/err"

# train: a few steps of the smoke scale on the shipped data, from the source folder (TOKENIZER_PATH is relative).
pushd "$src" >/dev/null
check train 0 "$pgolf" train --preset baseline --scale smoke --seed 7 --out "$work/run" \
  --set ITERATIONS=3 --set VAL_LOSS_EVERY=0 --set WARMUP_STEPS=0 --set VAL_BATCH_SIZE=524288
popd >/dev/null
expect_text train "$work/out" "step:3/3 val_loss:"
expect_text train "$work/out" "seed:7"
[[ -f "$work/run/final_model.safetensors" && -f "$work/run/train.log" ]] || { echo "FAIL train: run files missing"; failures=$((failures + 1)); }
check train-no-out 2 "$pgolf" train --preset baseline
expect_one_line train-no-out "$work/err"
# --device: an unknown name, and cuda, are refused in one line before any work (no GPU here, or no CUDA step yet).
check train-bad-device 1 "$pgolf" train --preset baseline --scale smoke --out "$work/run3" --device tpu
expect_one_line train-bad-device "$work/err"
expect_text train-bad-device "$work/err" "unknown device 'tpu' (expected cpu or cuda)"
check train-cuda 1 "$pgolf" train --preset baseline --scale smoke --out "$work/run3" --device cuda
expect_one_line train-cuda "$work/err"
[[ ! -e "$work/run3" ]] || { echo "FAIL train-cuda: wrote $work/run3"; failures=$((failures + 1)); }

# bench kernels on the cpu: every op row against the copy or sgemm measured in the same run; JSON rows.
check bench-kernels 0 "$pgolf" bench kernels --filter rmsnorm --min-seconds 0.001 --json "$work/bench.json"
expect_text bench-kernels "$work/out" "% reference"
expect_text bench-kernels "$work/out" "rmsnorm backward"
expect_text bench-kernels "$work/out" "100.0% copy"
expect_text bench-kernels "$work/bench.json" '"op": "rmsnorm forward"'
check bench-kernels-gemm 0 "$pgolf" bench kernels --filter "kv 512" --min-seconds 0.001
expect_text bench-kernels-gemm "$work/out" "% sgemm"
check bench-kernels-bad-tokens 1 "$pgolf" bench kernels --tokens 1000
expect_one_line bench-kernels-bad-tokens "$work/err"
check train-bad-data 1 "$pgolf" train --preset baseline --scale smoke --data "$work/nope" --out "$work/run2" \
  --tokenizer "$tok"
expect_one_line train-bad-data "$work/err"

# export: the run's weights to each seed's artifact; sizes from the files; the round trip scored and read back by eval.
pushd "$src" >/dev/null
check export 0 "$pgolf" export --run "$work/run"
expect_text export "$work/out" "final_int8_zlib_roundtrip_exact val_loss:"
expect_text export "$work/out" "quantization_gap val_bpb:"
model_bytes=$(stat -c %s "$work/run/final_model.int8.pga")
code_bytes=$(stat -c %s "$work/run/engine-source.tar.xz")
expect_text export "$work/out" "Total submission size int8+zlib: $((model_bytes + code_bytes)) bytes"
expect_text export "$work/out" "Code size (compressed): $code_bytes bytes"
expect_text export "$work/run/export.log" "Serialized model int8+zlib: $model_bytes bytes"
roundtrip=$(grep -oE 'final_int8_zlib_roundtrip_exact val_loss:[0-9.]+ val_bpb:[0-9.]+' "$work/out" | sed 's/.*val_loss://')
check eval 0 "$pgolf" eval --artifact "$work/run/final_model.int8.pga" --mode plain
expect_text eval "$work/out" "final_int8_zlib_roundtrip_exact val_loss:${roundtrip}"
check eval-preset 0 "$pgolf" eval --artifact "$work/run/final_model.int8.pga" --preset baseline --scale smoke \
  --set NUM_LAYERS=4
check export-gptq 0 "$pgolf" export --run "$work/run" --scheme gptq-search --codec brotli-11 --no-eval \
  --out "$work/gptq"
expect_text export-gptq "$work/out" "gptq:calibration train_loader_batches:2"
expect_text export-gptq "$work/out" "Total submission size int6+brotli:"
check eval-gptq 0 "$pgolf" eval --artifact "$work/gptq/final_model.gptq-search.pga"
# Sliding-window evaluation through the gate: every target once, the byte count of `data verify`, the probe passes.
check eval-sliding 0 "$pgolf" eval --artifact "$work/run/final_model.int8.pga" --mode sliding --stride 64
expect_text eval-sliding "$work/out" "scored_targets:262144 rescored:0 unscored:0 bytes:638652"
expect_text eval-sliding "$work/out" "final_int8_zlib_sliding_window_exact val_loss:"
check data-verify-bytes 0 "$pgolf" data verify data/datasets/fineweb10B_sp1024_mini \
  --tokenizer data/tokenizers/fineweb_1024_bpe.model --seq-len 128
expect_text data-verify-bytes "$work/out" "val bytes    638,652"
check eval-quirk-enforce 1 "$pgolf" eval --artifact "$work/run/final_model.int8.pga" --reference-end-quirk
expect_one_line eval-quirk-enforce "$work/err"
check eval-quirk-observe 0 "$pgolf" eval --artifact "$work/run/final_model.int8.pga" --reference-end-quirk \
  --gate observe --max-tokens 20000
expect_text eval-quirk-observe "$work/out" "gate_violation rule:C4"
expect_text eval-quirk-observe "$work/out" "this score is not compliant"
check probe 0 "$pgolf" probe --artifact "$work/run/final_model.int8.pga" --tokens 2048 --position 1000
expect_text probe "$work/out" "causality probe: PASS"
expect_text probe "$work/out" "targets 1..1000 compared: 1000, NLLs changed: 0"
# Score-first TTT through the gate: each target once, the reference's line, and the probe passes for it too.
check eval-ttt 0 "$pgolf" eval --artifact "$work/run/final_model.int8.pga" --mode ttt --max-tokens 12288 \
  --set TTT_CHUNK_TOKENS=4096
expect_text eval-ttt "$work/out" "ttt:score_first optimizer:sgd chunks:3 adapted:2"
expect_text eval-ttt "$work/out" "scored_targets:12287 rescored:0 unscored:0"
expect_text eval-ttt "$work/out" "final_ttt_sliding_exact val_loss:"
expect_text eval-ttt "$work/out" "eval_timing: deserialize:"
check probe-ttt 0 "$pgolf" probe --artifact "$work/run/final_model.int8.pga" --mode ttt --tokens 8192 \
  --position 5000 --set TTT_CHUNK_TOKENS=2048
expect_text probe-ttt "$work/out" "causality probe: PASS (mode ttt"
check probe-bad-position 1 "$pgolf" probe --artifact "$work/run/final_model.int8.pga" --tokens 2048 --position 5000
expect_one_line probe-bad-position "$work/err"
# Every codec carries the same tensors: each artifact loads and scores the same to the last digit.
for codec in zstd-22 xz-6 xz-9 brotli-11 zlib-9; do
  check "export-$codec" 0 "$pgolf" export --run "$work/run" --scheme int6-row-search --codec "$codec" --no-eval \
    --out "$work/codec-$codec"
  check "eval-$codec" 0 "$pgolf" eval --artifact "$work/codec-$codec/final_model.int6-row-search.pga" --mode plain
  grep -oE 'final_int6_roundtrip_exact .*' "$work/out" >"$work/codec-$codec.score"
  [[ $codec == zstd-22 ]] && continue
  checks=$((checks + 1))
  cmp -s "$work/codec-zstd-22.score" "$work/codec-$codec.score" || { echo "FAIL eval-$codec: score differs from zstd-22"; failures=$((failures + 1)); }
done
popd >/dev/null
cp "$work/run/final_model.int8.pga" "$work/corrupt.pga"
printf '\x55' | dd of="$work/corrupt.pga" bs=1 seek=$((model_bytes / 2)) conv=notrunc status=none
check eval-corrupt 1 "$pgolf" eval --artifact "$work/corrupt.pga"
expect_one_line eval-corrupt "$work/err"
head -c $((model_bytes - 1)) "$work/run/final_model.int8.pga" >"$work/truncated.pga"
check eval-truncated 1 "$pgolf" eval --artifact "$work/truncated.pga"
expect_one_line eval-truncated "$work/err"
expect_text eval-truncated "$work/err" "not a pgolf artifact"
check export-bad-scheme 1 "$pgolf" export --run "$work/run" --scheme int4 --no-eval --out "$work/bad"
expect_one_line export-bad-scheme "$work/err"
expect_text export-bad-scheme "$work/err" "known: int8, int6-row-search"
check export-run-and-preset 1 "$pgolf" export --run "$work/run" --preset s1-recursive-4b7l --no-eval
expect_one_line export-run-and-preset "$work/err"
check export-prequant-refused 1 "$pgolf" export --run "$work/run" --set PREQUANT_TTT_EPOCHS=1 --no-eval --out "$work/pq" \
  --data "$src/data/datasets/fineweb10B_sp1024_mini" --tokenizer "$src/data/tokenizers/fineweb_1024_bpe.model"
expect_one_line export-prequant-refused "$work/err"
expect_text export-prequant-refused "$work/err" "validation gate (C3)"
check export-no-run 1 "$pgolf" export --run "$work/nope" --no-eval
expect_one_line export-no-run "$work/err"
check eval-no-artifact 2 "$pgolf" eval
expect_one_line eval-no-artifact "$work/err"

check_summary
