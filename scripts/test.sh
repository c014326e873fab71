#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with CTest. Tests labelled "slow" are skipped unless --slow
# is given (`scripts/test.sh --slow` runs everything); --skip-end-to-end also skips the CLI end-to-end scripts (label
# end_to_end). GPU tests skip with a message where no GPU is present.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PGOLF_BUILD_DIR:-$root/build}
# The slow tests also compare pgolf with the PyTorch peer (bench/torch_reference.py), which needs python3-torch.
if [[ "${1:-}" == "--slow" ]]; then "$root/scripts/setup.sh" --torch; else "$root/scripts/setup.sh"; fi
"$root/scripts/build.sh"
labels=(-LE slow)
case "${1:-}" in
  --slow) labels=() ;;
  # The end-to-end scripts drive the same CLI in every build configuration; a second configuration may skip them.
  --skip-end-to-end) labels=(-LE 'slow|end_to_end') ;;
esac
ctest --test-dir "$build" --output-on-failure -j "${PGOLF_JOBS:-$(nproc)}" "${labels[@]}"
