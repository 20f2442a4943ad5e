#!/usr/bin/env bash
# Generates the Python modules of Bridge's contract (bridge/v1/bridge_pb2.py and
# bridge_pb2_grpc.py) into OUT_DIR (default: build/python at the repository's root), with
# Debian's protoc and the grpc_python_plugin of protobuf-compiler-grpc. They are build
# output, never committed: regenerate them whenever proto/ changes.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/build/python}
plugin=$(command -v grpc_python_plugin || true)
if ! command -v protoc >/dev/null || [[ -z "$plugin" ]]; then
  echo "generate_stubs.sh: needs protoc and grpc_python_plugin" \
       "(apt-get install protobuf-compiler protobuf-compiler-grpc)" >&2
  exit 1
fi
mkdir -p "$out"
protoc --proto_path="$here/proto" --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$plugin" "$here/proto/bridge/v1/bridge.proto"
