#!/usr/bin/env bash
# The whole bench suite on a machine with an NVIDIA GPU, set up and run in one go (about ten
# minutes), every table printed: kernels (GFLOPS and % of the GPU's fp32 peak, the simd and the
# tiled GEMM), end-to-end load with batching on and off at concurrency 1 and 64 (p99, GPU busy
# %), batching interleaved with the Iris latency, first requests, instructions per request,
# registry transfers, and text generation (time to first token, decode tokens/s; it says "not
# built yet" where bench/llm.bench.ts is missing).
#
#   bash bench/gpu.sh [--peak-tflops N] [--json FILE] [--allow-any-adapter]
#
#   --peak-tflops N      the GPU's fp32 peak when bench/lib/gpu-peaks.ts does not know its name
#   --json FILE          where every row and figure goes, with the environment (default
#                        ${TMPDIR:-/tmp}/nexus-bench-gpu-<date>.json)
#   --allow-any-adapter  run on whatever adapter Dawn offers, lavapipe included, with the quick
#                        suite: to try this script on a machine without a GPU
#
# Assumptions, each checked before anything runs (a failed one says what to do):
# - Debian or Ubuntu on x86-64, this repository checked out; no root needed when the Vulkan
#   loader and valgrind are already installed (as root, missing ones are installed with apt).
# - The NVIDIA driver is installed with its Vulkan driver manifest, nvidia_icd.json, in
#   /usr/share/vulkan/icd.d, /etc/vulkan/icd.d or /usr/local/nvidia/share/vulkan/icd.d (where
#   NVIDIA's container toolkit puts it); VK_DRIVER_FILES may name it instead. Only that driver is
#   used: VK_DRIVER_FILES is set to it, so a lavapipe installed beside it is never picked.
# - Network on a fresh machine for `npm ci` (Node 24 goes into .tools/ when the system's is
#   older, as deploy/bootstrap.sh does for `npm test`); nothing else is downloaded.
# - The GPU is not busy with other work: the tables are timings.
set -euo pipefail
invoked_from="$PWD"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source deploy/bootstrap.sh
source bench/setup.sh

peak_tflops=""
json="${TMPDIR:-/tmp}/nexus-bench-gpu-$(date +%Y%m%d-%H%M%S).json"
allow_any=0
while [ $# -gt 0 ]; do
  case "$1" in
    --peak-tflops) peak_tflops="${2:?--peak-tflops needs a number}"; shift 2 ;;
    --json) json="${2:?--json needs a file}"; [ "${json#/}" != "$json" ] || json="$invoked_from/$json"; shift 2 ;;
    --allow-any-adapter) allow_any=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench/gpu.sh: unknown argument '$1' (see bash bench/gpu.sh --help)" >&2; exit 2 ;;
  esac
done

fail() { printf '\033[1;31m[gpu.sh]\033[0m %s\n' "$*" >&2; exit 1; }

# The NVIDIA Vulkan driver manifest: VK_DRIVER_FILES if it names one, else the usual places.
nvidia_icd=""
for candidate in ${VK_DRIVER_FILES:-} ${VK_ICD_FILENAMES:-} \
  /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json; do
  case "$candidate" in *nvidia*) [ -f "$candidate" ] && { nvidia_icd="$candidate"; break; } ;; esac
done
if [ -n "$nvidia_icd" ]; then
  export VK_DRIVER_FILES="$nvidia_icd" VK_ICD_FILENAMES="$nvidia_icd"
  nexus_log "NVIDIA Vulkan driver: $nvidia_icd (the only one the loader will use)"
elif [ "$allow_any" -eq 1 ]; then
  nexus_log "no NVIDIA Vulkan driver; --allow-any-adapter: running the quick suite on whatever Dawn offers"
else
  fail "no NVIDIA Vulkan driver: no nvidia_icd.json in /usr/share/vulkan/icd.d, /etc/vulkan/icd.d or /usr/local/nvidia/share/vulkan/icd.d, and VK_DRIVER_FILES names none. Install the NVIDIA driver with its Vulkan component (Debian: nvidia-driver and nvidia-vulkan-icd; containers: NVIDIA_DRIVER_CAPABILITIES=all), or pass --allow-any-adapter to run the quick suite on any adapter."
fi

# One step per line: `set -e` does not stop inside an && chain.
ensure_node || fail "Node 24 could not be set up (see above)"
ensure_npm_deps || fail "npm ci failed (see above)"
[ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR="/tmp/nexus-runtime-$(id -u)"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  [ "$(id -u)" -eq 0 ] || fail "the Vulkan loader (libvulkan.so.1) is missing. As root run: apt-get install -y libvulkan1"
  nexus_log "installing the Vulkan loader (libvulkan1)"
  apt_install libvulkan1 || fail "apt-get install libvulkan1 failed"
fi
if [ "$allow_any" -eq 0 ] && command -v vulkaninfo >/dev/null; then
  vulkaninfo --summary 2>/dev/null | grep -E 'deviceName|driverName|driverInfo|apiVersion' || true
fi
# Dawn's own view: the adapter it offers must be a hardware GPU (a software one means the driver did not load).
if [ "$allow_any" -eq 1 ]; then
  node bench/lib/environment.ts
else
  node bench/lib/environment.ts --require-gpu || fail "Dawn offers no hardware GPU through $nvidia_icd: check nvidia-smi, and that the driver's Vulkan library loads (vulkaninfo --summary)."
fi
ensure_valgrind || nexus_log "without valgrind the cpu suite says so and measures nothing; the rest runs"

kernel_args="--gemm simd,tiled${peak_tflops:+ --peak-tflops $peak_tflops}"
suites="kernels e2e batching first-request cpu registry"
if [ -f bench/llm.bench.ts ]; then suites="$suites llm"; else llm_missing=1; fi
started=$(date +%s)
if [ "$allow_any" -eq 1 ]; then
  # shellcheck disable=SC2086 # one word per suite
  node bench/run.ts $suites --quick --json "$json" --with "kernels=$kernel_args" || status=$?
else
  # shellcheck disable=SC2086
  node bench/run.ts $suites --json "$json" \
    --with "kernels=$kernel_args" \
    --with 'e2e=--concurrency 1,64 --seconds 5 --rate 1000' \
    --with 'first-request=--repeats 20' \
    --with 'cpu=--quick' || status=$?
fi
echo
[ -z "${llm_missing:-}" ] || echo "## LLM decode tokens/s: not built yet (no bench/llm.bench.ts)"
echo
nexus_log "done in $(( $(date +%s) - started )) s; rows and figures in $json"
exit "${status:-0}"
