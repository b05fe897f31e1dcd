#!/usr/bin/env bash
# The whole GPU benchmark in one call, for a machine lent by the device tool
# (bench/README.md, "On a lent GPU"): run from the repository root there,
# with .device (scripts/device-bundle.sh) carried. It unpacks Node and the
# dependencies, brings the Vulkan loader where the machine has none, points
# it at NVIDIA's driver, then runs `losscape info`, `losscape bench` (issue
# 6's GPU case: ref and base on a 256x256 grid, unless arguments say
# otherwise), `losscape bench --profile` and ref's grid on the untuned slab
# GEMM for comparison, writing their JSON and logs to
# $OUT (default out-device/). Each step has a time limit, and the whole fits
# the tool's 10 minutes.
#   bash scripts/device-bench.sh [BENCH ARGS...]
#   PROFILE_MODELS=ref,base (default)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/out-device}
mkdir -p "$out"
[ -f .device/losscape-node.tar.xz ] || { echo "device-bench: .device/losscape-node.tar.xz is missing: run bash scripts/device-bundle.sh on the development machine and carry .device" >&2; exit 2; }

# Node outside the tree (so that .device stays small enough to carry again); the packages into
# ./node_modules, where they resolve from (the working tree that travels has none; a checkout's own
# node_modules is left as it is).
root=${TMPDIR:-/tmp}/losscape-device
unpack() { xz -dc .device/losscape-node.tar.xz | tar -C "$1" -xf - "$2" || { echo "device-bench: cannot unpack $2 from .device/losscape-node.tar.xz" >&2; exit 1; }; }
[ -x "$root/bin/node" ] || { mkdir -p "$root" && unpack "$root" bin; }
[ -e node_modules ] || unpack . node_modules
export PATH="$root/bin:$PATH"
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  for f in .device/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$nvidia_icd" ]; then export VK_DRIVER_FILES=$nvidia_icd; fi

echo "device-bench: node $(node --version) from $(command -v node); out $out"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/nvidia-smi.csv"
timeout 60 node bin/losscape.mjs info 2>&1 | tee "$out/info.txt"

if [ $# -gt 0 ]; then args=("$@"); else args=(--models ref,base --grids 256); fi
timeout 380 node bin/losscape.mjs bench "${args[@]}" --out "$out/bench.json" 2>&1 | tee "$out/bench.log"
bench=${PIPESTATUS[0]}
timeout 100 node bin/losscape.mjs bench --profile --models "${PROFILE_MODELS:-ref,base}" --out "$out/profile.json" 2>&1 | tee "$out/profile.log"
profile=${PIPESTATUS[0]}
# The GEMM GPUs ran before the tiled one, untuned, on ref's 256x256 grid: what tiling and tuning gained.
timeout 60 node bin/losscape.mjs bench --models ref --grids 256 --gemm slab --no-torch --no-train --naive-seconds 5 --out "$out/slab.json" 2>&1 | tee "$out/slab.log"
slab=${PIPESTATUS[0]}
echo "device-bench: bench exit $bench, profile exit $profile, slab exit $slab"
[ "$bench" = 0 ] && [ "$profile" = 0 ]
