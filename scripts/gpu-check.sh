#!/usr/bin/env bash
# GPU verification in one command, on a machine with an NVIDIA GPU (and no Rust needed there):
# runs the prebuilt parity tests with the GPU backends required (failing, not skipping, if a
# backend cannot start), then `deepscreen devices` and `deepscreen bench` on every backend: CUDA
# on its TF32 tensor cores (the default), with cp.async tile copies (DEEPSCREEN_CUDA_ASYNC_COPY=1)
# and in f32 (DEEPSCREEN_CUDA_MATH=f32), the embedded
# Whisper members, the fused defaults end to end on a catalog (with and without the cascade),
# the encoder's ops one by one (criterion), and PyTorch beside them where it is installed.
#
# Build where Rust is (same CPU architecture):
#     cargo build --release --examples && cargo test --release --no-run && cargo bench --no-run
# (the examples demo, make_catalog and separate travel with the binaries)
# then run from the repository root on the GPU machine:
#     bash scripts/gpu-check.sh
# Then scripts/gpu-profile.sh for the time of each kernel (Nsight Compute).
# SKIP_TESTS (a list of test names for the test binary's --skip) leaves tests out, e.g. those
# reading a model file that did not travel.
#
# Test binaries locate fixtures through the path they were built in (CARGO_MANIFEST_DIR);
# set DEEPSCREEN_BUILD_DIR to that path if it differs from /work/main, and it is linked here.
set -euo pipefail
root=$(pwd)
build_dir=${DEEPSCREEN_BUILD_DIR:-/work/main}
if [ "$build_dir" != "$root" ] && [ ! -e "$build_dir" ]; then
    mkdir -p "$(dirname "$build_dir")" && ln -s "$root" "$build_dir"
fi
# NVRTC: use the toolkit's if the loader finds it, else a pip wheel's (e.g. PyTorch's).
if ! ldconfig -p | grep -q 'libnvrtc\.so'; then
    lib=$(find / -name 'libnvrtc.so.1[23]' -not -path '*/proc/*' 2>/dev/null | head -n 1 || true)
    [ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export DEEPSCREEN_REQUIRE_CUDA=1 DEEPSCREEN_REQUIRE_NVRTC=1
export DEEPSCREEN_REQUIRE_WGPU=${DEEPSCREEN_REQUIRE_WGPU:-1}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

status=0
bin=$(ls -t target/release/deps/it-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)
if [ -z "$bin" ]; then echo "missing the test binary (tests/it): build it first"; exit 2; fi
skips=(--skip cuda_emulator --skip cpu_emulator)
for t in ${SKIP_TESTS:-}; do skips+=(--skip "$t"); done
for suite in cuda_kernels backend_ops golden cli; do
    echo "[$(date +%T)] == $suite"
    # The CPU emulator of the CUDA driver is for machines without a GPU; here it is redundant.
    "$bin" "$suite::" --test-threads 1 "${skips[@]}" || status=1
done
echo "[$(date +%T)] == devices"
target/release/deepscreen devices
echo "[$(date +%T)] == bench: one synthetic batch of 32 per backend, every embedded model (CUDA on TF32 tensor cores)"
target/release/deepscreen bench --backends cpu,wgpu,cuda --batch 32 --repeats 5 || status=1
echo "[$(date +%T)] == the same, CUDA in f32 (no tensor cores)"
DEEPSCREEN_CUDA_MATH=f32 target/release/deepscreen bench --backends cuda --batch 32 --repeats 5 || status=1
# Never timed on a GPU yet: linear layers' TF32 GEMM with its tiles copied by cp.async in two
# stages (opt-in); this run against the first says whether it should become the default.
echo "[$(date +%T)] == the same, CUDA's linear layers with cp.async tile copies (DEEPSCREEN_CUDA_ASYNC_COPY=1)"
DEEPSCREEN_CUDA_ASYNC_COPY=1 target/release/deepscreen bench --backends cuda --batch 32 --repeats 5 || status=1
echo "[$(date +%T)] == the same, wgpu with its register-blocked GEMM (the 16x16-tile one is the default on a GPU)"
DEEPSCREEN_WGPU_GEMM=rb target/release/deepscreen bench --backends wgpu --batch 32 --repeats 5 || status=1
# Never timed on a GPU yet (BENCHMARKS.md): the default opens subgroup reductions where offered
# and f16 tiles never; these two runs say whether either default should change.
echo "[$(date +%T)] == the same, wgpu with its linear layers' GEMM tiles in f16, then without subgroup reductions"
DEEPSCREEN_WGPU_F16=1 target/release/deepscreen bench --backends wgpu --batch 32 --repeats 5 || status=1
DEEPSCREEN_WGPU_SUBGROUPS=0 target/release/deepscreen bench --backends wgpu --batch 32 --repeats 5 || status=1
if [ -e models/whisper-tiny-en-encoder.safetensors ]; then
    echo "[$(date +%T)] == bench: the Whisper tiny.en encoder front-end, 32 windows of 10 s"
    target/release/deepscreen bench --model models/whisper-tiny-en-encoder.safetensors \
        --backends cpu,wgpu,cuda --batch 32 --repeats 5 || status=1
fi
echo "[$(date +%T)] == bench: end to end on the demo catalog"
demo=$(mktemp -d)
target/release/examples/demo "$demo" >/dev/null
for model in music speech; do
    target/release/deepscreen bench --catalog "$demo/catalog" --model "$demo/untrained-$model.safetensors" \
        --backends cpu,wgpu,cuda --threads "$(nproc)" --batch 16 || status=1
done
echo "[$(date +%T)] == the fused defaults end to end on a catalog (WAV, 44.1 kHz stereo), -j $(nproc)"
catalog=$(mktemp -d)
target/release/examples/make_catalog "$catalog" 300 2 5 >/dev/null
for model in speech music; do
    for exact in "" --exact; do
        echo "-- $model ${exact:-(cascade)}"
        target/release/deepscreen bench --catalog "$catalog" --model $model $exact \
            --backends wgpu,cuda --threads "$(nproc)" || status=1
    done
    echo "-- $model (cascade), CUDA's linear layers with cp.async tile copies"
    DEEPSCREEN_CUDA_ASYNC_COPY=1 target/release/deepscreen bench --catalog "$catalog" --model $model \
        --backends cuda --threads "$(nproc)" || status=1
    echo "-- $model, CUDA in f32"
    DEEPSCREEN_CUDA_MATH=f32 target/release/deepscreen bench --catalog "$catalog" --model $model \
        --backends cuda --threads "$(nproc)" || status=1
done
if [ -x target/release/examples/separate ]; then
    echo "[$(date +%T)] == the separator (Spleeter's shape, random weights): 60 s of stereo, separation and presence test"
    for b in cpu wgpu cuda; do
        target/release/examples/separate random-spleeter synthetic:60 "$demo/vocals.wav" $b 3 || status=1
    done
    DEEPSCREEN_CUDA_MATH=f32 target/release/examples/separate random-spleeter synthetic:60 "$demo/vocals.wav" cuda 3 \
        || status=1
fi
crit=$(ls -t target/release/deps/backends-* 2>/dev/null | grep -v '\.d$' | head -n 1 || true)
if [ -n "$crit" ]; then
    echo "[$(date +%T)] == the Whisper base encoder's ops one by one (criterion, batch 8 x 4 s): cuda, cuda-tf32, wgpu"
    "$crit" --bench "encoder/.*/(cuda|wgpu)" --warm-up-time 0.5 --measurement-time 1 --noplot \
        2>&1 | grep -E "^encoder|time:" || status=1
fi
if python3 -c "import torch" 2>/dev/null; then
    echo "[$(date +%T)] == PyTorch: the Whisper-base encoder and its ops, f32 and TF32"
    for b in 8 32; do
        PYTHONPATH="training${PYTHONPATH:+:$PYTHONPATH}" python3 training/whisper/bench_torch_encoder.py \
            --batch $b --seconds 4 || status=1
    done
fi
if python3 -c "import torch, torchaudio, safetensors" 2>/dev/null; then
    echo "[$(date +%T)] == PyTorch on the same models and batch (for the ratio)"
    for model in music speech; do
        PYTHONPATH="training${PYTHONPATH:+:$PYTHONPATH}" python3 training/bench_torch.py "$demo/untrained-$model.safetensors" --batch 32 --device cuda || status=1
    done
fi
exit $status
