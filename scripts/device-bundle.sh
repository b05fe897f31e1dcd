#!/usr/bin/env bash
# Packs what `losscape bench` needs on a bare x86-64 Linux GPU machine that
# has no Node.js and reaches no registry (the device tool's machines, see
# bench/README.md): this machine's node binary, the production dependencies
# from node_modules (Dawn's binary for linux-x64 only) and the Vulkan loader
# (Debian's libvulkan1, downloaded with apt-get), into .device/ (ignored by
# git; about 35 MB). scripts/device-bench.sh unpacks and runs it there.
# Run after `npm run setup`, from anywhere:  bash scripts/device-bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d node_modules/webgpu ] || { echo "device-bundle: run npm run setup first (node_modules is missing)" >&2; exit 2; }
[ "$(uname -m)" = x86_64 ] || { echo "device-bundle: the GPU machines are x86-64; this one is $(uname -m)" >&2; exit 2; }

out=.device
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
rm -rf "$out"
mkdir -p "$out/debs" "$stage/bin" "$stage/node_modules"

cp "$(command -v node)" "$stage/bin/node"
# The production dependency tree, as npm resolved it (nested node_modules come along).
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
  rel=${dir#"$PWD/node_modules/"}
  mkdir -p "$stage/node_modules/$(dirname "$rel")"
  [ -e "$stage/node_modules/$rel" ] || cp -a "$dir" "$stage/node_modules/$rel"
done
# Dawn ships a binary per platform; the GPU machines need linux-x64's.
find "$stage/node_modules/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +

tar -C "$stage" -cf - bin node_modules | xz -T0 -6 > "$out/losscape-node.tar.xz"
(cd "$out/debs" && apt-get download libvulkan1 >/dev/null 2>&1) || { echo "device-bundle: apt-get download libvulkan1 failed" >&2; exit 1; }
node -e "console.log(process.version)" > "$out/NODE_VERSION"
du -sh "$out" | awk '{print "device-bundle: " $1 " in .device (node " v ")"}' v="$(cat "$out/NODE_VERSION")"
