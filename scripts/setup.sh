#!/usr/bin/env bash
# Installs every Debian package pgolf needs to build and test, by name. Idempotent: silent and fast when all are present.
# --torch adds python3-torch (Debian's CPU PyTorch) for the slow parity tests against bench/torch_reference.py.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git
  libzstd-dev liblzma-dev libbrotli-dev zlib1g-dev   # codecs
  libssl-dev                                          # SHA-256
  libsentencepiece-dev                                # tokenizer byte tables and encoding
  nlohmann-json3-dev libcli11-dev                     # JSON, command line
  libsqlite3-dev                                      # the results store
  libopenblas-dev                                     # BLAS for the CPU engine (OpenMP comes with g++)
  libgtest-dev                                        # tests
  python3 python3-sentencepiece                       # independent reference values in tests/tools
)
[[ "${1:-}" == "--torch" ]] && packages+=(python3-torch python3-numpy)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
