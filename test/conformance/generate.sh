#!/usr/bin/env bash
# Writes ONNX's own operator conformance cases (onnx.backend.test.case.node: each operator's
# documented examples, expected outputs computed by numpy) as model.onnx + test_data_set_0/*.pb,
# the layout onnxruntime's onnx_test_runner reads. Source: Debian's python3-onnx, so the suite is
# independent of our code and the same on every machine.
#   bash test/conformance/generate.sh [OUT_DIR]   default: node_modules/.cache/onnx-node-cases
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/node_modules/.cache/onnx-node-cases}"
python=/usr/bin/python3
if ! "$python" -c 'import onnx' 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "python3-onnx is missing (ONNX conformance cases). As root run: apt-get install -y python3-onnx" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-onnx >/dev/null
fi
version=$("$python" -c 'import onnx; print(onnx.__version__)')
if [ -f "$out/VERSION" ] && [ "$(cat "$out/VERSION")" = "$version" ]; then exit 0; fi
rm -rf "$out.partial" && mkdir -p "$out.partial"
"$python" - "$out.partial" <<'PY'
import sys, warnings
warnings.simplefilter('ignore', FutureWarning)
import numpy as np
# onnx 1.12's case modules still name aliases numpy 1.24 removed; they mean the builtins.
for alias, builtin in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if not hasattr(np, alias):
        setattr(np, alias, builtin)
import argparse
from onnx.backend.test.cmd_tools import generate_data
generate_data(argparse.Namespace(output=sys.argv[1], op_type=None))
PY
echo "$version" > "$out.partial/VERSION"
rm -rf "$out" && mv "$out.partial" "$out"
