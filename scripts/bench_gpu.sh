#!/usr/bin/env bash
# Training throughput of pgolf against the PyTorch reference on one GPU, in one call: for the baseline and S1 presets,
# `pgolf train --device cuda` and `bench/torch_reference.py --mode bench --compile` at the same shapes, then a short
# table (tokens/s of each, ratio pgolf/torch, target >= 1.3x) written as bench_gpu.md and bench_gpu.json under OUT.
# Without a GPU it says so and exits 2, having measured nothing.
#   scripts/bench_gpu.sh [OUT]   (OUT default: $build/bench-gpu)
# Environment: PGOLF_BUILD_DIR (the build, as test_gpu.sh), BENCH_STEPS (timed steps, 20), BENCH_WARMUP (untimed
# steps first: pgolf's WARMUP_STEPS and torch's warm-up/compile steps, 5), BENCH_SCALE (full or smoke, full),
# BENCH_PRESETS (default "baseline s1-recursive-4b7l"), BENCH_PYTHON (default /opt/torch/.venv/bin/python, else
# python3).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
out=${1:-$build/bench-gpu}
steps=${BENCH_STEPS:-20}
warmup=${BENCH_WARMUP:-5}
scale=${BENCH_SCALE:-full}
presets=${BENCH_PRESETS:-baseline s1-recursive-4b7l}
target=1.3
data=$root/data/datasets/fineweb10B_sp1024_mini

if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench_gpu: no GPU here (nvidia-smi -L failed); nothing was measured"
  exit 2
fi
if [[ -n ${BENCH_PYTHON:-} ]]; then
  python=$BENCH_PYTHON
elif [[ -x /opt/torch/.venv/bin/python ]]; then
  python=/opt/torch/.venv/bin/python
else
  python=python3
fi
mkdir -p "$out"
# The CUDA runtime, cuBLAS and cuDNN: the toolkit's, then those the PyTorch install carries (the lent machine's
# layout); a packed build (scripts/pack_gpu.sh) brings the other libraries in its lib/.
torch_libs=$(ls -d /opt/torch/.venv/lib/python3.*/site-packages/nvidia/*/lib 2>/dev/null | tr '\n' :)
export LD_LIBRARY_PATH="$build/lib:/usr/local/cuda/lib64:${torch_libs}${LD_LIBRARY_PATH:-}"

if [[ -f $build/.gpu-pack ]]; then
  : # packed by scripts/pack_gpu.sh: the binaries are there and nothing is rebuilt
elif command -v cmake >/dev/null && command -v ninja >/dev/null; then
  PGOLF_CUDA=ON "$root/scripts/build.sh" --target pgolf >"$out/build.log" 2>&1 \
    || { tail -20 "$out/build.log"; echo "bench_gpu: build failed"; exit 1; }
elif [[ ! -x $build/cli/pgolf ]]; then
  echo "bench_gpu: no cmake/ninja here and no build at $build"
  exit 1
fi
pgolf=$build/cli/pgolf
version=$("$pgolf" --version 2>&1)  # captured once: grep -q on a pipe could end pgolf with SIGPIPE under pipefail
if ! grep -q '^cuda backend: built' <<<"$version"; then
  echo "bench_gpu: $build was built without CUDA (configure with PGOLF_CUDA=ON)"
  exit 1
fi

# number FILE PATTERN: the first number after PATTERN in FILE ("" when absent).
number() { grep -oE "$2[-+0-9.eE]+" "$1" 2>/dev/null | tail -1 | sed "s/^$2//"; }

status=0
device=$(sed -n 's/^cuda device 0: *//p' <<<"$version" | head -1)
rows=""
json_rows=""
for preset in $presets; do
  run=$out/pgolf-$preset
  rm -rf "$run"
  # WARMDOWN_ITERS=0 and SWA_EVERY=0: constant learning rate and no weight averaging, the step torch_reference.py times.
  "$pgolf" train --preset "$preset" --scale "$scale" --device cuda --data "$data" \
    --tokenizer "$root/data/tokenizers/fineweb_1024_bpe.model" \
    --set ITERATIONS="$steps" --set WARMUP_STEPS="$warmup" --set VAL_LOSS_EVERY=0 --set TRAIN_LOG_EVERY=0 \
    --set MAX_WALLCLOCK_SECONDS=0 --set WARMDOWN_ITERS=0 --set SWA_EVERY=0 --out "$run" >"$out/pgolf-$preset.log" 2>&1 \
    || { echo "bench_gpu: pgolf train $preset failed: $(tail -1 "$out/pgolf-$preset.log")"; status=1; }
  pgolf_tps=$(number "$out/pgolf-$preset.log" 'train_throughput tokens_per_second:')
  pgolf_ms=$(number "$out/pgolf-$preset.log" 'train_throughput tokens_per_second:[-+0-9.eE]* step_avg_ms:')
  pgolf_mfu=$(number "$out/pgolf-$preset.log" ' mfu:')
  [[ -z $pgolf_tps ]] && { echo "bench_gpu: no train_throughput line in $out/pgolf-$preset.log"; status=1; }

  scale_arguments=()
  [[ $scale != full ]] && scale_arguments=(--scale "$scale")
  "$python" "$root/bench/torch_reference.py" --mode bench --compile --device cuda \
    --preset-file "$root/model/presets/$preset.json" "${scale_arguments[@]}" --data "$data" \
    --steps "$steps" --warmup "$warmup" >"$out/torch-$preset.json" 2>"$out/torch-$preset.log" \
    || { echo "bench_gpu: torch_reference.py $preset failed: $(tail -1 "$out/torch-$preset.log")"; status=1; }
  torch_tps=$(number "$out/torch-$preset.json" '"tokens_per_second": ')
  torch_ms=$(number "$out/torch-$preset.json" '"step_ms": ')
  torch_version=$(sed -n 's/.*"torch": "\([^"]*\)".*/\1/p' "$out/torch-$preset.json")

  ratio=""
  verdict="n/a"
  if [[ -n $pgolf_tps && -n $torch_tps ]]; then
    ratio=$(awk -v a="$pgolf_tps" -v b="$torch_tps" 'BEGIN { printf "%.3f", a / b }')
    verdict=$(awk -v r="$ratio" -v t=$target 'BEGIN { print (r >= t) ? "meets" : "below" }')
  fi
  rows+=$(printf '| %s | %s | %s | %s | %s | %s | %s |' "$preset" "${pgolf_tps:-failed}" "${pgolf_ms:-}" \
    "${torch_tps:-failed}" "${torch_ms:-}" "${ratio:-n/a}" "$verdict")$'\n'
  row_format='%s{"model": "%s", "pgolf_tokens_per_second": %s, "pgolf_step_ms": %s, "pgolf_mfu": %s, '
  row_format+='"torch_tokens_per_second": %s, "torch_step_ms": %s, "ratio": %s, "meets_target": %s}'
  json_rows+=$(printf "$row_format" \
    "${json_rows:+, }" "$preset" "${pgolf_tps:-null}" "${pgolf_ms:-null}" "${pgolf_mfu:-null}" "${torch_tps:-null}" \
    "${torch_ms:-null}" "${ratio:-null}" "$([[ $verdict == meets ]] && echo true || echo false)")
done

{
  echo "# pgolf vs PyTorch training throughput ($(date -u +%Y-%m-%d), ${device:-unknown GPU})"
  echo
  echo "Scale $scale, $steps timed steps after $warmup untimed;" \
    "torch ${torch_version:-?} with torch.compile and bf16 autocast."
  echo "Ratio = pgolf tokens/s / torch tokens/s; target >= ${target}x."
  echo
  echo "| model | pgolf tok/s | pgolf ms/step | torch tok/s | torch ms/step | ratio | target ${target}x |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
} >"$out/bench_gpu.md"
printf '{"device": "%s", "scale": "%s", "steps": %s, "warmup": %s, "torch": "%s", "target_ratio": %s, "rows": [%s]}\n' \
  "${device:-}" "$scale" "$steps" "$warmup" "${torch_version:-}" "$target" "$json_rows" >"$out/bench_gpu.json"
cat "$out/bench_gpu.md"
echo "(logs, bench_gpu.md and bench_gpu.json in $out)"
exit $status
