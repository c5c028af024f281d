#!/usr/bin/env bash
# Packs what a bare NVIDIA GPU machine (driver present; no Deno, no Vulkan loader, no network)
# needs to run this repository's WebGPU code, into two git-ignored folders of the checkout:
#   .deno/deno.xz    the pinned Deno binary, xz-compressed (~30 MiB)
#   .deno/remote.sh  the prelude to `source` there (a copy of tools/device/remote.sh)
#   .gl/*.deb        Debian's Vulkan/EGL loader packages, which the NVIDIA driver needs
# Run on a development machine with network, from anywhere in the checkout. Copy the checkout with
# `.deno/`, `.gl/` (and `data/` for training) to the GPU machine; start commands there with
# `source .deno/remote.sh && …`. Environment: DENO_BIN (a deno binary to pack; default the one on
# PATH, else deno@DENO_VERSION from npm), DENO_VERSION (default 2.9.6).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
mkdir -p .deno .gl

deno_bin=${DENO_BIN:-$(command -v deno || true)}
if [ -z "$deno_bin" ]; then
  ver=${DENO_VERSION:-2.9.6}
  tmp=$(mktemp -d)
  (cd "$tmp" && npm init -y >/dev/null && npm i --silent "deno@$ver" >/dev/null)
  deno_bin=$(ls "$tmp"/node_modules/@deno/linux-x64-glibc/deno)
fi
if [ ! -f .deno/deno.xz ] || [ "$deno_bin" -nt .deno/deno.xz ]; then
  xz -T2 -6 -c "$deno_bin" > .deno/deno.xz.tmp && mv .deno/deno.xz.tmp .deno/deno.xz
fi
cp "$here/remote.sh" .deno/remote.sh

if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  # A private package list, so no root is needed and the system's lists stay untouched.
  lists=$(mktemp -d); mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update >/dev/null 2>&1 || true
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 \
    >/dev/null 2>&1) || true
  if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    echo "prepare: Cannot download the Vulkan loader (libvulkan1 and friends) with apt-get;" \
      "put their amd64 .deb files into $root/.gl by hand" >&2
    exit 1
  fi
fi
du -sh .deno .gl
echo "ready: take .deno and .gl along; on the GPU machine start with: source .deno/remote.sh && …"
