#!/usr/bin/env bash
# The two commands a newcomer needs, each doing its own set-up first.
#   bash deploy/dev.sh up [nexus up flags]   start registry, executor and router; serve the example model
#   bash deploy/dev.sh test                  run the whole test suite
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$NEXUS_ROOT"

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  up)
    # One step per line: `set -e` does not stop inside an && chain.
    ensure_node || exit 1
    ensure_npm_deps || exit 1
    ensure_vulkan || exit 1
    exec node services/cli/main.ts up --example "$@"
    ;;
  test)
    ensure_node || exit 1
    ensure_npm_deps || exit 1
    ensure_vulkan || exit 1
    ensure_python_grpc || exit 1
    ensure_python_onnx || exit 1
    ensure_prometheus || exit 1
    ensure_chromium || exit 1
    exec npm test -- "$@"
    ;;
  *)
    echo "usage: bash deploy/dev.sh up|test [args]" >&2
    exit 2
    ;;
esac
