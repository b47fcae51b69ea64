#!/usr/bin/env bash
# Data v3 (issue 29) on a lent GPU machine: trains the GAN vocoders and codecs (SPEECH and MUSIC:
# the instances to train, by default all of gan_vocoder.py's INSTANCES), every instance at once
# on the one GPU, for MINUTES of wall time each, from the training audio packed here beforehand
# (gan_vocoder.py --pack; the machine has neither the packages nor ffmpeg):
#
#     python3 training/data/gan_vocoder.py --kind speech --real data/real --pack .gan/speech.opus
#     python3 training/data/gan_vocoder.py --kind music --real data/real --pack .gan/music.opus
#     # pip download soundfile, cffi and pycparser wheels into .whl (docs/gpu-runs/README.md)
#
# then, there, carrying .gan and .whl:   bash scripts/gpu-train-vocoders.sh MINUTES
# The finished generators come back in $OUT as vocoders.tar.part-* (weights stored in f16 to fit
# what a call may return; load_state_dict casts them back to f32). Here:
#     cat vocoders.tar.part-* | tar -x -C data    # → data/gan-speech/*.pt, data/gan/*.pt
set -euo pipefail
minutes=${1:?usage: gpu-train-vocoders.sh MINUTES}
out=${OUT:?OUT: the folder that comes back}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:training PYTHONUNBUFFERED=1
instances() {  # every instance of kind $1 in gan_vocoder.py's INSTANCES
    python3 -c "import sys; sys.path.insert(0, 'training/data'); from gan_vocoder import INSTANCES; print(*INSTANCES['$1'])"
}
declare -A todo=([speech]="${SPEECH:-$(instances speech)}" [music]="${MUSIC:-$(instances music)}")
declare -A dirs=([speech]=gan-speech [music]=gan)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for kind in speech music; do
    for name in ${todo[$kind]}; do
        python3 training/data/gan_vocoder.py --kind "$kind" --audio ".gan/$kind.opus" --out "/tmp/gan/${dirs[$kind]}" \
            --instances "$name" --device cuda --batch 16 --minutes "$minutes" >>"$out/train.log" 2>&1 &
    done
done
wait || true
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
python3 - <<'PY'
import pathlib, torch
for p in sorted(pathlib.Path("/tmp/gan").glob("*/*.pt")):
    state = torch.load(p, map_location="cpu", weights_only=False)
    state["weights"] = {k: v.half() for k, v in state["weights"].items()}  # a codec's front stays f32
    torch.save(state, p)
    print(f"{p}: {state['steps']} steps in {state['minutes']:.1f} min")
PY
tar -C /tmp/gan -cf - . | split -b 15m - "$out/vocoders.tar.part-"
ls -la "$out"
