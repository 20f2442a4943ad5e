#!/usr/bin/env bash
# For GCC builds: builds the fuzz target alone with clang (tests/fuzz/standalone) into
# BUILDDIR and runs it for SECONDS. clang_fuzz.sh BUILDDIR SECONDS [WERROR]
set -euo pipefail
build=$1 seconds=$2 werror=${3:-OFF}
here=$(cd "$(dirname "$0")" && pwd)
cmake -S "$here/standalone" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DBRIDGE_WERROR=$werror" >/dev/null
cmake --build "$build" --target client_frame_fuzzer
exec "$here/run_fuzzer.sh" "$build/client_frame_fuzzer" "$seconds" "$build/run"
