#!/usr/bin/env bash
# Run the fuzz targets (fuzz/, FUZZING.md) for SECONDS each, from the committed seeds plus the
# local corpus fuzz/corpus/TARGET (grown by earlier runs, not committed). Needs a nightly
# toolchain and cargo-fuzz. A crash, hang (-timeout), or memory blow-up (-rss_limit_mb) fails
# the run; its input is saved under fuzz/artifacts/TARGET/ and the libFuzzer log is printed.
#
#   scripts/fuzz.sh 1200                 # every target, 20 minutes each
#   scripts/fuzz.sh 30 decode report     # two targets, 30 s each (what CI does for all)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode model_file model_config report protocol)
fi
echo "== build the fuzz targets (nightly, sanitizers)"
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/corpus/$t.log"
    # Model files are up to ~100 kB (the seeds); everything else stays well under 64 kB.
    max_len=65536
    [ "$t" = model_file ] && max_len=131072
    echo "== fuzz $t for ${seconds}s"
    if ! cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 >"$log" 2>&1; then
        # The crashing input's Debug dump can be megabytes: cut long lines.
        grep -a -v -E '^[[:space:]]*\[|^Output of' "$log" | cut -c1-300 | tail -n 60
        echo "fuzz $t: FAILED (input under fuzz/artifacts/$t/)"
        exit 1
    fi
    grep -a 'cov: ' "$log" | tail -n 1 | cut -c1-120
    grep -a -E '^Done|^stat::(average_exec_per_sec|new_units_added|peak_rss_mb)' "$log"
done
