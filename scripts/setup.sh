#!/usr/bin/env bash
# Installs every Debian package flashline needs to build and test. Idempotent: packages
# already present are skipped by apt, and apt is not called at all when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libopenmpi-dev openmpi-bin libucx-dev
  libboost-dev libboost-system-dev prometheus-cpp-dev
  libyaml-cpp-dev nlohmann-json3-dev libpcre2-dev libcli11-dev libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  python3 python3-numpy
  curl
)
# Node.js (>= 20) and npm run the HTTP end-to-end tests (tests/http); Debian's packages only
# where no node is installed already (a newer one from elsewhere is kept).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# The OpenAI Node client for tests/http, at the version package-lock.json pins.
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$root/tests/http/node_modules/openai" ]; then
  (cd "$root/tests/http" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup: CUDA toolkit found at /usr/local/cuda (GPU code will be compiled)"
else
  echo "setup: no CUDA toolkit (GPU code skipped)"
fi
