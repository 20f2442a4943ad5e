#!/usr/bin/env bash
# Runs the client-frame fuzzer for a bounded time: run_fuzzer.sh FUZZER SECONDS WORKDIR.
# New inputs go to WORKDIR/corpus; the seeds in the source tree are only read.
set -euo pipefail
fuzzer=$1 seconds=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -dict="$here/client_frame.dict" -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$here/corpus/client_frame"
