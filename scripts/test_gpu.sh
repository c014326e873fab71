#!/usr/bin/env bash
# The GPU checks in one call, for a machine with an NVIDIA GPU (an H100/H200: sm_90a): builds with CUDA if the build
# is missing or stale (when cmake and ninja are there; a build packed by scripts/pack_gpu.sh is used as it is), runs
# every CUDA test (the op harness's CUDA cases against the
# CPU reference, cuDNN attention, device tensors, the optimizers and averages, the training step, the evaluations and
# TTT against the CPU run, full-scale steps), then `pgolf bench kernels --device cuda`, and prints a short
# table last. Without a GPU it says why and exits 2, having verified nothing.
#   scripts/test_gpu.sh [OUT]   (OUT: where the logs and bench.json go; default $build/gpu-results)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
out=${1:-$build/gpu-results}
mkdir -p "$out"
# The CUDA runtime, cuBLAS and cuDNN: the toolkit's, then those a PyTorch install carries (the lent machine's layout);
# a packed build (scripts/pack_gpu.sh) brings the other libraries in its lib/.
torch_libs=$(ls -d /opt/torch/.venv/lib/python3.12/site-packages/nvidia/*/lib 2>/dev/null | tr '\n' :)
export LD_LIBRARY_PATH="$build/lib:/usr/local/cuda/lib64:${torch_libs}${LD_LIBRARY_PATH:-}"
export PGOLF_TEST_SOURCE_DIR=$root  # the tests' data and presets, wherever the binaries were built

if [ -f "$build/.gpu-pack" ]; then
  : # packed by scripts/pack_gpu.sh: the binaries are there and nothing is rebuilt
elif command -v cmake >/dev/null && command -v ninja >/dev/null; then
  PGOLF_CUDA=ON "$root/scripts/build.sh" >"$out/build.log" 2>&1 || { tail -20 "$out/build.log"; echo "test_gpu: build failed"; exit 1; }
elif [ ! -x "$build/cli/pgolf" ]; then
  echo "test_gpu: no cmake/ninja here and no build at $build"; exit 1
fi

# The version text is read once into a variable: `pgolf --version | grep -q` could kill pgolf with SIGPIPE under pipefail.
version=$("$build/cli/pgolf" --version)
reason=$(sed -n 's/^cuda devices: none (\(.*\))$/\1/p' <<<"$version")
if ! grep -q '^cuda backend: built' <<<"$version"; then
  echo "test_gpu: $build was built without CUDA (configure with PGOLF_CUDA=ON)"; exit 1
fi
if [ -n "$reason" ]; then
  echo "test_gpu: no GPU here ($reason); nothing was verified"; exit 2
fi

status=0
run_tests() {  # NAME BINARY FILTER
  local name=$1 binary=$2 filter=$3
  "$binary" --gtest_filter="$filter" >"$out/$name.log" 2>&1 || status=1
  local passed failed skipped
  # The counts of gtest's summary lines ("[  SKIPPED ] 3 tests, listed below:"); none printed means zero.
  passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out/$name.log" | tail -1)
  failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out/$name.log" | tail -1)
  skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out/$name.log" | tail -1)
  printf '%-28s passed %4s  failed %3s  skipped %3s\n' "$name" "${passed:-0}" "${failed:-0}" "${skipped:-0}" >>"$out/summary.txt"
}
: >"$out/summary.txt"
run_tests "ops cpu-vs-cuda" "$build/tests/core_tests" '*CudaOps*:CudaCoverage*'
run_tests "other core cuda tests" "$build/tests/core_tests" '*Cuda*:*Cudnn*:DeviceTensor*:Device.*:-*CudaOps*:CudaCoverage*'
run_tests "optimizers, averages" "$build/tests/model_tests" '*Cuda*'
run_tests "training step, eval, TTT" "$build/tests/trainer_tests" '*Cuda*'
"$build/cli/pgolf" bench kernels --device cuda --acceptance --json "$out/bench.json" >"$out/bench.txt" 2>&1 || status=1

echo "== $(date -u +%Y-%m-%d) $(grep '^cuda device 0' <<<"$version" || true); $(grep '^cudnn:' <<<"$version" || true)"
echo "== tests (logs in $out)"
cat "$out/summary.txt"
sed -n 's/^\[  FAILED  \] \([^ ]*\.[^ ]*\).*/FAILED \1/p' "$out"/*.log | sort -u | head -40
echo "== kernels (ceilings: 796 TFLOP/s bf16 GEMM, 4.3 TB/s copy; reference: measured in this run)"
cat "$out/bench.txt"
exit $status
