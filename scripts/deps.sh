#!/usr/bin/env bash
# deps.sh: install what comine needs to build and test, from Debian's archive (Debian 12).
# Does nothing when everything is already installed; needs root (or sudo) otherwise.
set -euo pipefail
packages=(build-essential cmake pkg-config libdnnl-dev libopenblas-dev libturbojpeg0-dev libpng-dev
          libplplot-dev plplot-driver-cairo python3 python3-numpy openmpi-bin libopenmpi-dev python3-onnx)
# optional extras: the PyTorch reference (fixtures are committed, so tests do not need it)
if [ "${COMINE_WITH_TORCH:-0}" = 1 ]; then packages+=(python3-torch python3-pil); fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
