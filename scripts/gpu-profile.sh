#!/usr/bin/env bash
# After scripts/gpu-check.sh, on the same GPU machine: the CUDA parity tests, the embedded models
# and the fused defaults timed on CUDA (TF32, one f32 line as a drift control), and Nsight
# Compute's time per kernel (ncu, one metric, clocks left alone) for the Whisper member and the
# fused defaults, summed by kernel. Needs the same prebuilt binaries as gpu-check.sh; writes
# the ncu CSVs to $OUT (or ./gpu-profile-out).
set -uo pipefail
root=$(pwd)
OUT=${OUT:-$root/gpu-profile-out}
mkdir -p "$OUT"
build_dir=${DEEPSCREEN_BUILD_DIR:-/work/main}  # where the test binary was built (gpu-check.sh)
if [ "$build_dir" != "$root" ] && [ ! -e "$build_dir" ]; then
    mkdir -p "$(dirname "$build_dir")" && ln -s "$root" "$build_dir"
fi
if ! ldconfig -p | grep -q 'libnvrtc\.so'; then
    lib=$(find / -name 'libnvrtc.so.1[23]' -not -path '*/proc/*' 2>/dev/null | head -n 1 || true)
    [ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export DEEPSCREEN_REQUIRE_CUDA=1 DEEPSCREEN_REQUIRE_NVRTC=1 DEEPSCREEN_REQUIRE_WGPU=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
ds=target/release/deepscreen
it=$(ls -t target/release/deps/it-* | grep -v '\.d$' | head -n 1)
echo "[$(date +%T)] == parity"
"$it" backend_ops::cuda golden:: cli::cuda_backend cli::wgpu_backend --test-threads 1 \
    --skip cuda_emulator --skip whisper_encoder_matches_reference 2>&1 | grep -E "^test |result|panicked|differ|error"
echo "[$(date +%T)] == synthetic, CUDA TF32 (f32 last, as a drift control)"
for b in 8 32; do
    for m in speech-whisper music-whisper speech music speech-cnn music-cnn speech-lcnn; do
        $ds bench -m $m --backends cuda --batch $b --repeats 10 | tail -n 1
    done
done
DEEPSCREEN_CUDA_MATH=f32 $ds bench -m speech-whisper --backends cuda --batch 32 --repeats 10 | tail -n 1
echo "[$(date +%T)] == catalog end to end, -j 16"
cat=$(mktemp -d); target/release/examples/make_catalog "$cat" 300 2 5 >/dev/null
for m in speech music; do
    for x in "" --exact; do
        echo "-- $m $x"; $ds bench --catalog "$cat" -m $m $x --backends cuda --threads 16 | tail -n 3
    done
done
echo "[$(date +%T)] == ncu: time per kernel"
summ() {
python3 - "$1" <<'PY'
import csv, sys, collections
rows = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"'))]
scale = {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0, "second": 1e3}
tot, cnt = collections.Counter(), collections.Counter()
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    name = r["Kernel Name"].split("(")[0]
    tot[name] += float(r["Metric Value"].replace(",", "")) * scale.get(r["Metric Unit"], 1.0)
    cnt[name] += 1
all_ms = sum(tot.values())
for k, v in tot.most_common():
    print(f"{k:24s} {cnt[k]:6d} launches {v:10.3f} ms total {v / cnt[k] * 1000:9.1f} us each {100 * v / all_ms:5.1f} %")
PY
}
if command -v ncu >/dev/null; then
    for spec in "tf32 speech-whisper" "f32 speech-whisper" "tf32 speech" "tf32 music"; do
        set -- $spec
        echo "-- $2 ($1), batch 32, one bench (warm-up + 4 stages x 1 repeat)"
        DEEPSCREEN_CUDA_MATH=$1 timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum --csv \
            $ds bench -m $2 --backends cuda --batch 32 --repeats 1 > "$OUT/ncu-$1-$2.csv" 2>/dev/null
        summ "$OUT/ncu-$1-$2.csv" | head -n 14
    done
else
    echo "no ncu"
fi
echo "[$(date +%T)] == done"
