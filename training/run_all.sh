#!/usr/bin/env bash
# The whole recipe, one step per line (training/README.md explains each). Rebuilds the data from
# Debian packages and the allowed generators, trains both reference models, exports them into
# models/ with golden vectors into tests/golden/, and measures them with `deepscreen eval`.
#
#   bash training/run_all.sh [DATA_DIR]        # default: data/ (git-ignored)
#
# Needs: apt-get (for `apt-get download`), ffmpeg, espeak-ng, flite, festival with
# festvox-kallpc16k and festvox-kdlpc16k, and the Python packages in training/requirements.txt.
# Measured on the 2-vCPU build VM: about 75 minutes in all (see models/*.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data}
PY=${PY:-python3}
MINUTES_SPEECH=${MINUTES_SPEECH:-20}
MINUTES_MUSIC=${MINUTES_MUSIC:-25}

$PY training/data/fetch_real.py --out "$DATA/real" --only flight-of-the-amazon-queen fillets-ng-data \
    fillets-ng-data-cs fillets-ng-data-nl klettres-data ktuberling-data gcin-voice warzone2100-music \
    ufoai-music planetblupi-music-ogg wesnoth-1.16-music supertux-data
OMP_NUM_THREADS=1 $PY training/data/codec_ae.py --real "$DATA/real" --out "$DATA/ae" --minutes 4
$PY training/data/make_fakes.py --real "$DATA/real" --out "$DATA/fake" --kind speech --train-per-generator 350 --dev-per-generator 100
$PY training/data/make_fakes.py --real "$DATA/real" --ae "$DATA/ae" --out "$DATA/fake" --kind music --train-per-generator 120 --dev-per-generator 40
$PY training/data/prepare.py --kind speech --real "$DATA/real" --fake "$DATA/fake" --out "$DATA/speech"
$PY training/data/prepare.py --kind music --real "$DATA/real" --fake "$DATA/fake" --out "$DATA/music"
$PY training/train.py --kind speech --data "$DATA/speech" --minutes "$MINUTES_SPEECH" \
    --out models/speech.safetensors --golden tests/golden/embedded_speech_io.safetensors
$PY training/train.py --kind music --data "$DATA/music" --minutes "$MINUTES_MUSIC" --batch 16 \
    --out models/music.safetensors --golden tests/golden/embedded_music_io.safetensors
cargo build --release
for kind in speech music; do
    $PY training/evaluate.py --kind $kind --data "$DATA/$kind" --model models/$kind.safetensors \
        --deepscreen target/release/deepscreen --out models/$kind-dev.json
    mkdir -p models/dev-lists
    for list in dev dev-codec dev-real-reencoded; do cp "$DATA/$kind/$list.csv" "models/dev-lists/$kind-$list.csv"; done
done
