#!/usr/bin/env bash
# Packs what `scripts/test_gpu.sh` needs on a lent GPU machine that cannot build pgolf (its image has nvcc, CMake and
# ninja but not the Debian libraries pgolf links): the CUDA build's pgolf, core_tests, model_tests and trainer_tests,
# stripped, and the shared libraries they load that are not the C library's or CUDA's (those come from the machine),
# in one xz tarball small enough to travel with the working tree. Unpacked, it is a build folder for test_gpu.sh:
#   scripts/pack_gpu.sh                      # here: build/gpu-pack.tar.xz
#   tar xf build/gpu-pack.tar.xz -C /tmp && PGOLF_BUILD_DIR=/tmp/gpu-pack scripts/test_gpu.sh OUT   # there
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
tarball=${1:-$build/gpu-pack.tar.xz}
"$root/scripts/setup.sh"
PGOLF_CUDA=ON "$root/scripts/build.sh" --target pgolf core_tests model_tests trainer_tests

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pack=$stage/gpu-pack
mkdir -p "$pack/cli" "$pack/tests" "$pack/lib"
strip -o "$pack/cli/pgolf" "$build/cli/pgolf"
strip -o "$pack/tests/core_tests" "$build/tests/core_tests"
strip -o "$pack/tests/model_tests" "$build/tests/model_tests"
strip -o "$pack/tests/trainer_tests" "$build/tests/trainer_tests"
# Every library the three load, but the C library's own (glibc is the machine's) and CUDA's (the machine's toolkit).
for binary in "$pack"/cli/pgolf "$pack"/tests/*; do
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
done | sort -u | while read -r library; do
  case $(basename "$library") in
    libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | ld-linux* | libcublas* | libcudart* | libcudnn* | libnccl*) ;;
    *) cp -L "$library" "$pack/lib/" ;;
  esac
done
touch "$pack/.gpu-pack"  # test_gpu.sh: a packed build, nothing to rebuild
tar -C "$stage" -cf - gpu-pack | xz -T0 -6 >"$tarball.tmp"
mv "$tarball.tmp" "$tarball"
echo "$tarball: $(stat -c %s "$tarball") bytes ($(ls "$pack/lib" | wc -l) libraries)"
